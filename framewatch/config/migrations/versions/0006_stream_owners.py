"""Stream data belongs to the account that owned its domain when it arrived: an owner on streams and frames.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("streams", "frames"):
        op.add_column(table, sa.Column("account_id", sa.Integer, nullable=True))
        # What is there now was received under today's owners (an unbound domain's rows have none: swept).
        op.execute(
            f"UPDATE {table} SET account_id = "
            f"(SELECT account_id FROM callback_rules WHERE callback_rules.domain = {table}.domain)"
        )
    op.create_index("ix_frames_account_flagged", "frames", ["account_id", "flagged", "received_at"])


def downgrade() -> None:
    op.drop_index("ix_frames_account_flagged", "frames")
    for table in ("streams", "frames"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("account_id")
