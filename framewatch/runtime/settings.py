"""Every setting is an environment variable FRAMEWATCH_<NAME> (or a line in `.env`)."""

from functools import cache
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

CommaList = Annotated[list[str], NoDecode]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FRAMEWATCH_", env_file=".env", extra="ignore")

    amqp_url: SecretStr = SecretStr("amqp://guest:guest@localhost:5672/")
    # Prefix of every exchange and queue, so several deployments (or test runs) can share a vhost.
    namespace: str = "framewatch"
    database_url: SecretStr = SecretStr("sqlite+aiosqlite:///./data/framewatch.db")
    blob_url: str = "./data/blobs"
    redis_url: SecretStr | None = None

    host: str = "127.0.0.1"
    port: int = 8080

    # Bound on a publisher confirm; past it the callback is answered 503 and the provider retries.
    publish_timeout: float = Field(3.0, gt=0)
    body_max_bytes: int = Field(64 * 1024, gt=0)
    # CSS signs with t = send time + 600 s; allow a little clock skew beyond that.
    sign_validity: int = 600
    clock_skew: int = 60
    # How long a template's previous key stays valid after ModifyLiveCallbackTemplate changes it.
    key_rotation_overlap: int = 3600
    # Longer than CSS's retry span (10-12 minutes), so its retries collapse into one event.
    dedupe_window: int = 15 * 60
    # Backstop for config changes that were not announced (a hand-edited database, say).
    config_reload_interval: float = Field(1.0, gt=0)
    # Graceful drain: how long SIGTERM waits for in-flight callbacks.
    shutdown_timeout: float = 15.0

    fetch_allowed_hosts: CommaList = ["*.myqcloud.com"]
    fetch_allow_private: bool = False
    deliver_allow_private: bool = False
    moderation_backend: str | None = None
    log_level: str = "info"

    @field_validator("fetch_allowed_hosts", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

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
