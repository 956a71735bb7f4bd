"""Templates choose how their domains' screenshots are moderated: one in N of each stream, and how long a
near-identical frame may carry the verdict of the last frame the model judged safe.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "callback_templates", sa.Column("moderation_sample_every", sa.Integer, nullable=False, server_default="1")
    )
    op.add_column(
        "callback_templates", sa.Column("moderation_reuse_seconds", sa.Integer, nullable=False, server_default="0")
    )


def downgrade() -> None:
    with op.batch_alter_table("callback_templates") as batch:
        batch.drop_column("moderation_reuse_seconds")
        batch.drop_column("moderation_sample_every")
