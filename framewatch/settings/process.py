"""Every setting of a framewatch process, grouped by concern; each group is what its stage or listener takes.

Every setting is an environment variable FRAMEWATCH_<NAME> (or a line in `.env`); the names are the documented
ones whatever group a setting sits in (docs/operations.md lists them)."""

from functools import cache

from pydantic import Field, SecretStr, field_validator

from framewatch.settings.base import Group
from framewatch.settings.blobs import BlobSettings
from framewatch.settings.broker import BrokerSettings
from framewatch.settings.console import ConsoleSettings
from framewatch.settings.delivery import DeliverySettings
from framewatch.settings.fetch import FetchSettings
from framewatch.settings.handoff import HandoffSettings
from framewatch.settings.ingress import IngressSettings
from framewatch.settings.moderation import ModerationSettings
from framewatch.settings.streams import StreamsSettings
from framewatch.settings.tencent import TencentSettings


class Settings(Group):
    database_url: SecretStr = SecretStr("sqlite+aiosqlite:///./data/framewatch.db")
    redis_url: SecretStr | None = None

    # The callback listener: what the streaming clouds reach (public).
    host: str = "127.0.0.1"
    port: int = 8080
    # Where the platform reaches the callback listener (CoverUrl in DescribeLiveStreamOnlineList); unset:
    # http://HOST:PORT.
    public_url: str | None = None
    # The admin listener: admin API, cloud-compatible API, review console (internal: never expose it publicly).
    admin_host: str = "127.0.0.1"
    admin_port: int = 8090
    # Serve the admin listener over HTTPS with this certificate chain and key (PEM files). Plain HTTP is for a
    # trusted network only: the cloud APIs' signatures do not cover every header, and tokens travel in the clear.
    admin_tls_cert: str | None = None
    admin_tls_key: str | None = None
    # Worker processes serve /healthz, /readyz and /metrics on this port.
    worker_port: int = 8081

    # Encrypts the API key pairs' secrets at rest (a Fernet key: 32 random bytes, url-safe base64). Unset: a key file
    # made with mode 0600 beside the SQLite database on first use. Every replica of a fleet needs the same one.
    master_key: SecretStr | None = None
    # Backstop for config changes that were not announced (a hand-edited database, say).
    config_reload_interval: float = Field(15.0, gt=0)
    # Graceful drain: how long SIGTERM waits for in-flight callbacks and messages.
    shutdown_timeout: float = 15.0
    log_level: str = "info"

    broker: BrokerSettings = Field(default_factory=BrokerSettings)
    ingress: IngressSettings = Field(default_factory=IngressSettings)
    blobs: BlobSettings = Field(default_factory=BlobSettings)
    fetch: FetchSettings = Field(default_factory=FetchSettings)
    handoff: HandoffSettings = Field(default_factory=HandoffSettings)
    moderation: ModerationSettings = Field(default_factory=ModerationSettings)
    tencent: TencentSettings = Field(default_factory=TencentSettings)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    streams: StreamsSettings = Field(default_factory=StreamsSettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)

    @field_validator("database_url", mode="before")
    @classmethod
    def _async_driver(cls, value: object) -> object:
        """Accept the plain URLs operators write (`postgresql://`, `sqlite:///`) and pick the async driver."""
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        if isinstance(raw, str):
            for plain, driver in (
                ("postgresql://", "postgresql+asyncpg://"),
                ("postgres://", "postgresql+asyncpg://"),
                ("sqlite://", "sqlite+aiosqlite://"),
            ):
                if raw.startswith(plain):
                    return driver + raw[len(plain) :]
        return value


@cache
def get_settings() -> Settings:
    return Settings()
