"""The callback listener's checks: body bounds, signatures' time windows, key rotation, the dedupe window."""

from pydantic import Field

from framewatch.settings.base import Group


class IngressSettings(Group):
    body_max_bytes: int = Field(64 * 1024, gt=0)
    # A body that has not arrived in this time is refused (408): a trickling client must not hold a handler.
    body_read_timeout: float = Field(10.0, gt=0)
    # CSS signs with t = send time + 600 s; allow a little clock skew beyond that.
    sign_validity: int = 600
    clock_skew: int = 60
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
