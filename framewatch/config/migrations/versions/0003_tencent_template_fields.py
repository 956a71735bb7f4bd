"""The rest of Tencent's CallBackTemplateInfo: four more notify URLs and the recording exception levels; the
callback key optional, as at Tencent (a domain bound to a template without one is refused at the ingress).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

URLS = ("stream_mix_notify_url", "record_status_notify_url", "audio_audit_notify_url", "record_exception_notify_url")


def upgrade() -> None:
    with op.batch_alter_table("callback_templates") as batch:
        for name in URLS:
            batch.add_column(sa.Column(name, sa.Text, nullable=True))
        batch.add_column(sa.Column("record_exception_levels", sa.Text, nullable=True))  # a JSON array of integers
        batch.alter_column("callback_key", existing_type=sa.String(64), nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("callback_templates") as batch:
        batch.alter_column("callback_key", existing_type=sa.String(64), nullable=False)
        batch.drop_column("record_exception_levels")
        for name in reversed(URLS):
            batch.drop_column(name)
