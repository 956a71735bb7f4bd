"""The moderate stage: which backend judges frames, how hard it may be pushed, and which frames it sees."""

from typing import Literal

from pydantic import Field, SecretStr, field_validator

from framewatch.settings.base import CommaList, Delays, Group, group, split


class HttpBackendSettings(Group):
    """MODERATION_BACKEND=http: an HTTP moderation API of the operator's."""

    model_config = group("MODERATION_HTTP_")

    url: str | None = None
    token: SecretStr | None = None
    suggestion_field: str = "suggestion"  # dotted paths into the API's JSON answer
    score_field: str = "score"
    label_field: str = "label"


class ModerationSettings(Group):
    model_config = group("MODERATION_")

    # nudenet, http, tencent-ims or none; unset: nudenet when its extra is installed, otherwise none.
    backend: Literal["nudenet", "http", "tencent-ims", "none"] | None = None
    review_threshold: float = Field(50.0, ge=0, le=100)
    block_threshold: float = Field(80.0, ge=0, le=100)
    # Calls per second to the backend (token bucket); unset: the backend's own default (Tencent IMS's quota).
    rate_limit: float | None = Field(None, gt=0)
    concurrency: int = Field(8, gt=0)
    timeout: float = Field(10.0, gt=0)
    retry_delays: Delays = [5, 30, 120, 600, 3600]
    # Failures in a row that open the circuit breaker, and its first pause (doubling on each failed trial).
    breaker_failures: int = Field(5, gt=0)
    breaker_cooldown: float = Field(30.0, gt=0)
    threads: int | None = Field(None, gt=0)  # the local model's threads; unset: every core
    # Moderate every Nth frame only (1: all); domains listed in MODERATION_OFF_DOMAINS are never moderated.
    sample_every: int = Field(1, ge=1)
    off_domains: CommaList = []
    # Templates with moderation reuse on: how many of the 64 bits of two frames' difference hashes may differ for
    # the later frame to carry the earlier one's verdict (bench/reuse.py measures what each value misses).
    reuse_distance: int = Field(4, ge=0, le=16)
    # http and tencent-ims: send the image bytes ("content") or its URL ("url", needs URLs the API can reach).
    send: Literal["content", "url"] = "content"
    http: HttpBackendSettings = Field(default_factory=HttpBackendSettings)

    _split = field_validator("retry_delays", "off_domains", mode="before")(split)
