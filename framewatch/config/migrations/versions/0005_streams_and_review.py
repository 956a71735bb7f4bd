"""Live streams, their recent frames and covers, flagged frames with reviewers' decisions, console sessions.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "streams",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("domain", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("app", sa.String(255), nullable=False, server_default=""),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("live", sa.Boolean, nullable=False),
        sa.Column("began_at", sa.Float, nullable=True),
        sa.Column("ended_at", sa.Float, nullable=True),
        sa.Column("first_frame_at", sa.BigInteger, nullable=True),
        sa.Column("last_frame_at", sa.BigInteger, nullable=True),
        sa.Column("cover_frame_id", sa.String(128), nullable=True),
        sa.Column("cover_key", sa.Text, nullable=True),
        sa.Column("cover_content_type", sa.String(64), nullable=True),
        sa.Column("cover_time", sa.BigInteger, nullable=True),
        sa.Column("last_suggestion", sa.String(16), nullable=True),
        sa.Column("last_label", sa.String(64), nullable=True),
        sa.Column("last_source", sa.String(64), nullable=True),
        sa.Column("provider_flags", sa.Integer, nullable=False, server_default="0"),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.UniqueConstraint("domain", "name", name="uq_stream_domain_name"),
    )
    op.create_index("ix_streams_live", "streams", ["live", "domain"])
    op.create_index("ix_streams_updated", "streams", ["updated_at"])
    op.create_table(
        "frames",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("domain", sa.String(255), nullable=False),
        sa.Column("stream", sa.String(255), nullable=False),
        sa.Column("app", sa.String(255), nullable=False, server_default=""),
        sa.Column("capture_time", sa.BigInteger, nullable=False),
        sa.Column("source_url", sa.Text, nullable=False),
        sa.Column("image_key", sa.Text, nullable=True),
        sa.Column("image_content_type", sa.String(64), nullable=True),
        sa.Column("blob_keys", sa.Text, nullable=False, server_default="[]"),
        sa.Column("suggestion", sa.String(16), nullable=True),
        sa.Column("label", sa.String(64), nullable=False, server_default=""),
        sa.Column("sub_label", sa.String(64), nullable=False, server_default=""),
        sa.Column("score", sa.Integer, nullable=False, server_default="0"),
        sa.Column("source", sa.String(64), nullable=False, server_default=""),
        sa.Column("flagged", sa.Boolean, nullable=False),
        sa.Column("received_at", sa.Float, nullable=False),
        sa.Column("decision", sa.String(16), nullable=True),
        sa.Column("decided_by", sa.String(128), nullable=True),
        sa.Column("decided_at", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_frames_stream_time", "frames", ["domain", "stream", "capture_time"])
    op.create_index("ix_frames_flagged", "frames", ["flagged", "domain", "received_at"])
    op.create_table(
        "console_sessions",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("reviewer", sa.String(64), nullable=False),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("console_sessions")
    op.drop_table("frames")
    op.drop_table("streams")
