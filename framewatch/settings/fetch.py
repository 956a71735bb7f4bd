"""The fetch stage: which screenshot URLs it downloads, within what bounds, and the thumbnails it makes."""

from typing import Literal

from pydantic import Field, field_validator

from framewatch.settings.base import CommaList, Delays, Group, group, split


class ThumbnailSettings(Group):
    model_config = group("THUMBNAIL_")

    sizes: CommaList = ["320x180", "160x90"]
    format: Literal["jpeg", "webp"] = "jpeg"
    quality: int = Field(80, ge=1, le=100)

    _split = field_validator("sizes", mode="before")(split)

    @field_validator("sizes")
    @classmethod
    def _sizes(cls, value: list[str]) -> list[str]:
        for size in value:
            width, _, height = size.partition("x")
            if not (width.isdigit() and height.isdigit() and int(width) > 0 and int(height) > 0):
                raise ValueError(f"thumbnail size {size!r} is not WIDTHxHEIGHT")
        return value

    def boxes(self) -> list[tuple[int, int]]:
        return [(int(w), int(h)) for w, _, h in (size.partition("x") for size in self.sizes)]


class FetchSettings(Group):
    model_config = group("FETCH_")

    # The clouds' own storage: Tencent COS (*.myqcloud.com) and Alibaba OSS (*.aliyuncs.com).
    allowed_hosts: CommaList = ["*.myqcloud.com", "*.aliyuncs.com"]
    allow_private: bool = False
    concurrency: int = Field(32, gt=0)
    max_bytes: int = Field(10 * 1024 * 1024, gt=0)
    # Decompression bombs: a header announcing more pixels than this is refused before any decoding (a 4K frame is
    # 8.3M). JPEGs decode at reduced scale whatever they announce; PNG and WebP have no such mode and decode in full,
    # so past 4M pixels at most FETCH_LARGE_DECODES of them decode at once.
    max_pixels: int = Field(16_000_000, gt=0)
    large_decodes: int = Field(1, gt=0)
    # JPEG frames up to this size are thumbnailed on the event loop: for them the thread handoff costs more than
    # the work (a 640x360 JPEG takes about half a millisecond). Larger ones go to a thread per core.
    inline_bytes: int = Field(64 * 1024, ge=0)
    max_redirects: int = Field(3, ge=0)
    connect_timeout: float = Field(5.0, gt=0)
    timeout: float = Field(30.0, gt=0)
    # The delayed-retry ladder for transient failures; past its end the message is dead-lettered.
    retry_delays: Delays = [5, 30, 120, 600, 3600]
    thumbnails: ThumbnailSettings = Field(default_factory=ThumbnailSettings)

    _split = field_validator("allowed_hosts", "retry_delays", mode="before")(split)
