"""The config store's tables (SQLAlchemy Core). Alembic migrations under `migrations/` create them."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

metadata = MetaData()

# The URL columns of a callback template, one per event kind, as the clouds name them (snake_case).
NOTIFY_URL_FIELDS = (
    "stream_begin_notify_url",
    "stream_end_notify_url",
    "record_notify_url",
    "snapshot_notify_url",
    "porn_censorship_notify_url",
    "push_exception_notify_url",
    "stream_mix_notify_url",
    "record_status_notify_url",
    "audio_audit_notify_url",
    "record_exception_notify_url",
)

accounts = Table(
    "accounts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("token_hash", String(128), nullable=True, unique=True),
    Column("created_at", BigInteger, nullable=False),
)

templates = Table(
    "callback_templates",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("description", Text, nullable=False, default=""),
    # Optional, as at Tencent: callbacks for a domain bound to a template without a key are refused.
    Column("callback_key", String(64), nullable=True),
    # Key rotation: the previous key stays valid until previous_key_expires_at (Unix seconds).
    Column("previous_callback_key", String(64), nullable=True),
    Column("previous_key_expires_at", BigInteger, nullable=True),
    *(Column(field, Text, nullable=True) for field in NOTIFY_URL_FIELDS),
    Column("record_exception_levels", Text, nullable=True),  # a JSON array of integers, as Tencent stores it
    Column("allow_unsigned", Boolean, nullable=False, default=False),
    # Moderation of its domains' screenshots: every Nth of a stream, and a near-identical frame's verdict reused
    # for up to this many seconds of capture time (0: off).
    Column("moderation_sample_every", Integer, nullable=False, default=1, server_default="1"),
    Column("moderation_reuse_seconds", Integer, nullable=False, default=0, server_default="0"),
    # Signs every delivery's webhook-signature (Standard Webhooks); the previous one is still sent during a change.
    Column("webhook_secret", String(128), nullable=True),
    Column("previous_webhook_secret", String(128), nullable=True),
    Column("previous_webhook_secret_expires_at", BigInteger, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    UniqueConstraint("account_id", "name", name="uq_template_account_name"),
)

rules = Table(
    "callback_rules",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    # One domain, one template (docs/protocols/tencent.md §6): the domain is unique across every account.
    Column("domain", String(255), nullable=False, unique=True),
    Column("app_name", String(255), nullable=False, default=""),
    Column("template_id", Integer, ForeignKey("callback_templates.id"), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

detect_notify = Table(
    "detect_notify_configs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("domain", String(255), nullable=False, unique=True),
    Column("notify_url", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# Key pairs for the clouds' SDKs. HMAC verification needs the secret itself: it is kept encrypted (Fernet) under
# the master key, never in clear.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("key_id", String(64), nullable=False, unique=True),
    Column("secret_encrypted", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("last_used_at", BigInteger, nullable=True),
    Column("revoked_at", BigInteger, nullable=True),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, nullable=True),
    Column("action", String(64), nullable=False),
    Column("params", Text, nullable=False),
    Column("at", BigInteger, nullable=False),
)

# Live streams, written by the streams stage: state from the providers' begin/end events and the frames, the
# cover (the newest frame moderation did not flag) and the last verdict.
streams = Table(
    "streams",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("domain", String(255), nullable=False),
    Column("name", String(255), nullable=False),
    Column("app", String(255), nullable=False, default=""),
    Column("provider", String(32), nullable=False),
    # The account that owned the domain when the data arrived: only its own, while it owns the domain, see it.
    Column("account_id", Integer, nullable=True),
    Column("live", Boolean, nullable=False),
    Column("began_at", Float, nullable=True),  # Unix seconds of the begin event, as received
    Column("ended_at", Float, nullable=True),
    Column("first_frame_at", BigInteger, nullable=True),  # capture times
    Column("last_frame_at", BigInteger, nullable=True),
    Column("cover_frame_id", String(128), nullable=True),
    Column("cover_key", Text, nullable=True),  # the blob of the cover frame's largest thumbnail
    Column("cover_content_type", String(64), nullable=True),
    Column("cover_time", BigInteger, nullable=True),
    Column("last_suggestion", String(16), nullable=True),
    Column("last_label", String(64), nullable=True),
    Column("last_source", String(64), nullable=True),
    # Provider verdicts (317) kept for frames not stored yet: while any, each new frame is checked against them.
    Column("provider_flags", Integer, nullable=False, default=0),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("domain", "name", name="uq_stream_domain_name"),
    Index("ix_streams_live", "live", "domain"),
    Index("ix_streams_updated", "updated_at"),
)

# A stream's recent frames (covers fall back on them) and every flagged frame until the review retention ends.
# A provider's own verdict (317) on a frame framewatch never stored is a row too: its image is the provider's URL.
frames = Table(
    "frames",
    metadata,
    Column("id", String(128), primary_key=True),  # the event id
    Column("domain", String(255), nullable=False),
    Column("stream", String(255), nullable=False),
    Column("app", String(255), nullable=False, default=""),
    Column("account_id", Integer, nullable=True),  # as on streams
    Column("capture_time", BigInteger, nullable=False),
    Column("source_url", Text, nullable=False),
    Column("image_key", Text, nullable=True),  # the largest thumbnail; None: only the provider's URL is known
    # A provider's verdict on a frame no screenshot of the pipeline has brought (yet): never a cover, and the
    # frame's own screenshot, when it comes, takes the verdict over.
    Column("provider_verdict", Boolean, nullable=False, default=False, server_default=false()),
    Column("image_content_type", String(64), nullable=True),
    Column("blob_keys", Text, nullable=False, default="[]"),  # JSON: every blob of the frame, removed with it
    Column("suggestion", String(16), nullable=True),  # None: not moderated
    Column("label", String(64), nullable=False, default=""),
    Column("sub_label", String(64), nullable=False, default=""),
    Column("score", Integer, nullable=False, default=0),
    Column("source", String(64), nullable=False, default=""),
    Column("flagged", Boolean, nullable=False),
    Column("received_at", Float, nullable=False),
    Column("decision", String(16), nullable=True),  # "violation" or "not_violation"
    Column("decided_by", String(128), nullable=True),
    Column("decided_at", BigInteger, nullable=True),
    Index("ix_frames_stream_time", "domain", "stream", "capture_time"),
    Index("ix_frames_flagged", "flagged", "domain", "received_at"),
    Index("ix_frames_account_flagged", "account_id", "flagged", "received_at"),
)

# Review console sign-ins: only a hash of the cookie's value is kept; every replica reads the same table.
console_sessions = Table(
    "console_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("reviewer", String(64), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
)

# One row; every change bumps it so that every replica knows to reload.
revision = Table(
    "config_revision",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("revision", BigInteger, nullable=False),
)
