"""A provider's verdict row says it is one: it may now hold the judged frame's image (fetched and thumbnailed),
so "no image" no longer tells it apart from a frame the pipeline stored.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("frames", sa.Column("provider_verdict", sa.Boolean, nullable=False, server_default=sa.false()))
    op.execute("UPDATE frames SET provider_verdict = (image_key IS NULL)")  # what the rows without an image were


def downgrade() -> None:
    with op.batch_alter_table("frames") as batch:
        batch.drop_column("provider_verdict")
