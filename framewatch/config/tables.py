"""The config store's tables (SQLAlchemy Core). Alembic migrations under `migrations/` create them."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

# The URL columns of a callback template, one per event kind, as the seeds name them (snake_case).
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
    # One domain, one template (seeds 000-002): the domain is unique across every account.
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

# One row; every change bumps it so that every replica knows to reload.
revision = Table(
    "config_revision",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("revision", BigInteger, nullable=False),
)
