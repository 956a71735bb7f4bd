"""Accounts, callback templates, callback rules, detect notify configs, audit log, config revision.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

URLS = (
    "stream_begin_notify_url",
    "stream_end_notify_url",
    "record_notify_url",
    "snapshot_notify_url",
    "porn_censorship_notify_url",
    "push_exception_notify_url",
)


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("token_hash", sa.String(128), nullable=True, unique=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "callback_templates",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("callback_key", sa.String(64), nullable=False),
        sa.Column("previous_callback_key", sa.String(64), nullable=True),
        sa.Column("previous_key_expires_at", sa.BigInteger, nullable=True),
        *(sa.Column(url, sa.Text, nullable=True) for url in URLS),
        sa.Column("allow_unsigned", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("account_id", "name", name="uq_template_account_name"),
    )
    op.create_table(
        "callback_rules",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("domain", sa.String(255), nullable=False, unique=True),
        sa.Column("app_name", sa.String(255), nullable=False),
        sa.Column("template_id", sa.Integer, sa.ForeignKey("callback_templates.id"), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "detect_notify_configs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("domain", sa.String(255), nullable=False, unique=True),
        sa.Column("notify_url", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("account_id", sa.Integer, nullable=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
    )
    revision_table = op.create_table(
        "config_revision",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("revision", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(revision_table, [{"id": 1, "revision": 1}])


def downgrade() -> None:
    for table in (
        "config_revision",
        "audit_log",
        "detect_notify_configs",
        "callback_rules",
        "callback_templates",
        "accounts",
    ):
        op.drop_table(table)
