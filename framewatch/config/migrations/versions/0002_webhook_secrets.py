"""A Standard Webhooks secret per callback template, and its predecessor during a rotation.

Revision ID: 0002
Revises: 0001
"""

import base64
import secrets

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("callback_templates") as batch:
        batch.add_column(sa.Column("webhook_secret", sa.String(128), nullable=True))
        batch.add_column(sa.Column("previous_webhook_secret", sa.String(128), nullable=True))
        batch.add_column(sa.Column("previous_webhook_secret_expires_at", sa.BigInteger, nullable=True))
    # Templates made before: each gets a secret of its own, as a new template does.
    connection = op.get_bind()
    templates = sa.table("callback_templates", sa.column("id", sa.Integer), sa.column("webhook_secret", sa.String))
    for (template_id,) in connection.execute(sa.select(templates.c.id)).all():
        secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
        connection.execute(templates.update().where(templates.c.id == template_id).values(webhook_secret=secret))


def downgrade() -> None:
    with op.batch_alter_table("callback_templates") as batch:
        batch.drop_column("previous_webhook_secret_expires_at")
        batch.drop_column("previous_webhook_secret")
        batch.drop_column("webhook_secret")
