"""Every setting is an environment variable FRAMEWATCH_<NAME> (or a line in `.env`)."""

from functools import cache
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

CommaList = Annotated[list[str], NoDecode]
Delays = Annotated[list[float], NoDecode]  # seconds, comma-separated: "5,30,120"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FRAMEWATCH_", env_file=".env", extra="ignore")

    amqp_url: SecretStr = SecretStr("amqp://guest:guest@localhost:5672/")
    # Prefix of every exchange and queue, so several deployments (or test runs) can share a vhost.
    namespace: str = "framewatch"
    database_url: SecretStr = SecretStr("sqlite+aiosqlite:///./data/framewatch.db")
    blob_url: str = "./data/blobs"
    redis_url: SecretStr | None = None

    # The callback listener: what the streaming clouds reach (public).
    host: str = "127.0.0.1"
    port: int = 8080
    # The admin listener: admin API, cloud-compatible API, review console (internal: never expose it publicly).
    admin_host: str = "127.0.0.1"
    admin_port: int = 8090
    # Serve the admin listener over HTTPS with this certificate chain and key (PEM files). Plain HTTP is for a
    # trusted network only: the cloud APIs' signatures do not cover every header, and tokens travel in the clear.
    admin_tls_cert: str | None = None
    admin_tls_key: str | None = None

    # Bound on a publisher confirm; past it the callback is answered 503 and the provider retries.
    publish_timeout: float = Field(3.0, gt=0)
    body_max_bytes: int = Field(64 * 1024, gt=0)
    # A body that has not arrived in this time is refused (408): a trickling client must not hold a handler.
    body_read_timeout: float = Field(10.0, gt=0)
    # CSS signs with t = send time + 600 s; allow a little clock skew beyond that.
    sign_validity: int = 600
    clock_skew: int = 60
    # Encrypts the API key pairs' secrets at rest (a Fernet key: 32 random bytes, url-safe base64). Unset: a key file
    # made with mode 0600 beside the SQLite database on first use. Every replica of a fleet needs the same one.
    master_key: SecretStr | None = None
    # Alibaba signs ALI-LIVE-TIMESTAMP: how far from now it may be, either way.
    alibaba_timestamp_window: int = Field(300, gt=0)
    # The host of the callback URL Alibaba signs POSTed callbacks with; unset: the Host header of the request
    # (set it when a proxy in front rewrites Host).
    alibaba_callback_host: str | None = None
    # How long a template's previous key stays valid after ModifyLiveCallbackTemplate changes it.
    key_rotation_overlap: int = 3600
    # How long a callback waits for the shared dedupe window (Redis) before the in-process one serves instead.
    redis_timeout: float = Field(0.25, gt=0)
    # Longer than CSS's retry span (10-12 minutes), so its retries collapse into one event.
    dedupe_window: int = 15 * 60
    # Backstop for config changes that were not announced (a hand-edited database, say).
    config_reload_interval: float = Field(15.0, gt=0)
    # Graceful drain: how long SIGTERM waits for in-flight callbacks.
    shutdown_timeout: float = 15.0

    # Worker processes serve /healthz, /readyz and /metrics on this port.
    worker_port: int = 8081

    fetch_allowed_hosts: CommaList = ["*.myqcloud.com"]
    fetch_allow_private: bool = False
    fetch_concurrency: int = Field(32, gt=0)
    fetch_max_bytes: int = Field(10 * 1024 * 1024, gt=0)
    # Decompression bombs: a header announcing more pixels than this is refused before any decoding (a 4K frame is
    # 8.3M). JPEGs decode at reduced scale whatever they announce; PNG and WebP have no such mode and decode in full,
    # so past 4M pixels at most FETCH_LARGE_DECODES of them decode at once.
    fetch_max_pixels: int = Field(16_000_000, gt=0)
    fetch_large_decodes: int = Field(1, gt=0)
    # JPEG frames up to this size are thumbnailed on the event loop: for them the thread handoff costs more than
    # the work (a 640x360 JPEG takes about half a millisecond). Larger ones go to a thread per core.
    fetch_inline_bytes: int = Field(64 * 1024, ge=0)
    fetch_max_redirects: int = Field(3, ge=0)
    fetch_connect_timeout: float = Field(5.0, gt=0)
    fetch_timeout: float = Field(30.0, gt=0)
    # The delayed-retry ladder for transient failures; past its end the message is dead-lettered.
    fetch_retry_delays: Delays = [5, 30, 120, 600, 3600]
    thumbnail_sizes: CommaList = ["320x180", "160x90"]
    thumbnail_format: Literal["jpeg", "webp"] = "jpeg"
    thumbnail_quality: int = Field(80, ge=1, le=100)

    # Where delivered image URLs point. Unset: presigned URLs for S3, the ingress's /blobs/ for a directory.
    blob_public_url: str | None = None
    blob_presign_expiry: int = 7 * 24 * 3600
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"

    deliver_allow_private: bool = False
    deliver_concurrency: int = Field(64, gt=0)
    # One slow receiver holds at most this many of the stage's slots; its other deliveries wait in a delay queue.
    deliver_host_concurrency: int = Field(16, gt=0)
    deliver_timeout: float = Field(10.0, gt=0)
    # The provider's own policy by default: screenshots 5 tries 2 minutes apart, other kinds 12 tries 1 minute apart.
    deliver_screenshot_tries: int = Field(5, ge=1)
    deliver_screenshot_interval: float = Field(120.0, gt=0)
    deliver_tries: int = Field(12, ge=1)
    deliver_interval: float = Field(60.0, gt=0)
    # nudenet, http, tencent-ims or none; unset: nudenet when its extra is installed, otherwise none.
    moderation_backend: Literal["nudenet", "http", "tencent-ims", "none"] | None = None
    moderation_review_threshold: float = Field(50.0, ge=0, le=100)
    moderation_block_threshold: float = Field(80.0, ge=0, le=100)
    # Calls per second to the backend (token bucket); unset: 100 for tencent-ims (its default quota), else none.
    moderation_rate_limit: float | None = Field(None, gt=0)
    moderation_concurrency: int = Field(8, gt=0)
    moderation_timeout: float = Field(10.0, gt=0)
    moderation_retry_delays: Delays = [5, 30, 120, 600, 3600]
    # Failures in a row that open the circuit breaker, and its first pause (doubling on each failed trial).
    moderation_breaker_failures: int = Field(5, gt=0)
    moderation_breaker_cooldown: float = Field(30.0, gt=0)
    moderation_threads: int | None = Field(None, gt=0)  # the local model's threads; unset: every core
    # Moderate every Nth frame only (1: all); domains listed in MODERATION_OFF_DOMAINS are never moderated.
    moderation_sample_every: int = Field(1, ge=1)
    moderation_off_domains: CommaList = []
    # http and tencent-ims: send the image bytes ("content") or its URL ("url", needs URLs the API can reach).
    moderation_send: Literal["content", "url"] = "content"
    moderation_http_url: str | None = None
    moderation_http_token: SecretStr | None = None
    moderation_http_suggestion_field: str = "suggestion"  # dotted paths into the API's JSON answer
    moderation_http_score_field: str = "score"
    moderation_http_label_field: str = "label"
    tencent_secret_id: SecretStr | None = None
    tencent_secret_key: SecretStr | None = None
    tencent_region: str = "ap-guangzhou"
    tencent_ims_endpoint: str = "https://ims.tencentcloudapi.com"
    tencent_ims_biz_type: str | None = None
    # The streams stage: how long an ended stream is remembered, and how long flagged frames and reviewers'
    # decisions are kept (then removed with their blobs).
    stream_retention: float = Field(24 * 3600, gt=0)
    review_retention: float = Field(30 * 24 * 3600, gt=0)
    # A live stream from which no frame and no event came for this long is no longer live (its end was lost, or the
    # stream id was made up): the online list, the console's wall and the covers' X-Stream-Live say so.
    stream_silence: float = Field(600.0, gt=0)
    # Live streams one push domain may have at once: frames and events of further new streams are refused (counted
    # in framewatch_streams_refused_total), so one key holder cannot grow the stream tables without bound.
    streams_max_live_per_domain: int = Field(10_000, gt=0)
    streams_concurrency: int = Field(256, gt=0)
    streams_retry_delays: Delays = [1, 5, 30, 120, 600]
    # Where the platform reaches the callback listener (CoverUrl in DescribeLiveStreamOnlineList); unset:
    # http://HOST:PORT. Covers' Cache-Control max-age: a CDN in front re-validates them this often (ETag).
    public_url: str | None = None
    cover_max_age: int = Field(1, ge=0)
    # Review console sessions: how long a sign-in lasts, and whether its cookie is sent over HTTPS only (set it
    # when a TLS proxy serves the console; unset, the cookie is Secure when the request came over HTTPS).
    console_session_ttl: int = Field(12 * 3600, gt=0)
    console_secure_cookie: bool | None = None
    # Where browsers reach the console, as scheme://host[:port] (https://review.example.com behind a TLS proxy): the
    # Origin every form must carry. Unset: the scheme and Host of the request as framewatch received it.
    console_public_origin: str | None = None
    log_level: str = "info"

    @field_validator(
        "fetch_allowed_hosts",
        "thumbnail_sizes",
        "fetch_retry_delays",
        "moderation_retry_delays",
        "moderation_off_domains",
        "streams_retry_delays",
        mode="before",
    )
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("thumbnail_sizes")
    @classmethod
    def _sizes(cls, value: list[str]) -> list[str]:
        for size in value:
            width, _, height = size.partition("x")
            if not (width.isdigit() and height.isdigit() and int(width) > 0 and int(height) > 0):
                raise ValueError(f"thumbnail size {size!r} is not WIDTHxHEIGHT")
        return value

    def thumbnail_boxes(self) -> list[tuple[int, int]]:
        return [(int(w), int(h)) for w, _, h in (size.partition("x") for size in self.thumbnail_sizes)]

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
