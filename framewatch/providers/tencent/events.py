"""Tencent CSS callback events (docs/protocols/tencent.md §3-5), parsed leniently where its documents disagree."""

from __future__ import annotations

import hashlib
from enum import IntEnum
from typing import Any

import orjson
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator


class EventType(IntEnum):
    STREAM_END = 0
    STREAM_BEGIN = 1
    RECORDING = 100
    SCREENSHOT = 200
    RELAY = 314
    AUDIO_MODERATION = 315
    IMAGE_MODERATION = 317
    PUSH_ERROR = 321
    RECORDING_STATUS = 332
    RECORDING_EXCEPTION = 341


# Documented without t/sign: accepted unsigned only where the template says so.
UNSIGNED_TYPES = frozenset({EventType.RELAY, EventType.PUSH_ERROR, EventType.RECORDING_STATUS})


# Beyond this no time is plausible (the year 2242): a stage computing a date from it must never fail.
UNIX_TIME_LIMIT = 2**33
# Event types are small numbers; a larger one is refused rather than carried through every stage.
EVENT_TYPE_LIMIT = 2**31


class TencentEvent(BaseModel):
    """Fields every CSS event may carry. Unknown fields are kept: events are forwarded as received."""

    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True, frozen=True)

    event_type: int = Field(ge=0, lt=EVENT_TYPE_LIMIT)
    # Older documents send it as a string; lax mode turns "1622600525" into an int.
    t: int | None = Field(None, lt=UNIX_TIME_LIMIT)
    sign: str | None = None
    app: str | None = None
    appname: str | None = None
    appid: int | None = None
    stream_param: str | None = None

    @property
    def domain(self) -> str | None:
        """The push domain: `app`, or `domain` in the push-error event (321)."""
        return self.app or (self.model_extra or {}).get("domain") or None

    def natural_key(self) -> tuple[str, ...]:
        """What identifies this event across the provider's retries: the whole body but t and sign."""
        body = self.model_dump(exclude={"t", "sign"}, exclude_none=True)
        return ("body", hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest())

    def embedded(self, name: str) -> Any:
        """Decode one of the JSON-text fields (`msg`, `source_urls`, `record_detail`); the raw value if not JSON."""
        value = (self.model_extra or {}).get(name)
        if isinstance(value, str):
            try:
                return orjson.loads(value)
            except orjson.JSONDecodeError:
                return value
        return value


class ScreenshotEvent(TencentEvent):
    stream_id: str
    channel_id: str | None = None
    create_time: int = Field(ge=0, lt=UNIX_TIME_LIMIT)
    file_size: int | None = None
    width: int | None = None
    height: int | None = None
    pic_url: str
    pic_full_url: str = Field(min_length=1)
    task_id: str | None = None

    def natural_key(self) -> tuple[str, ...]:
        # The download URL too: a forged callback that reuses a captured (t, sign) with a predictable pic_url and
        # another URL must not make the genuine one a duplicate. The provider's retries carry the same URL.
        return (self.stream_id, self.pic_url, str(self.create_time), self.pic_full_url)


class StreamEvent(TencentEvent):
    """Stream push began (1) or ended (0); one push session shares one `sequence`."""

    stream_id: str
    channel_id: str | None = None
    sequence: str
    event_time: int | None = None
    node: str | None = None
    user_ip: str | None = None
    errcode: int | None = None
    errmsg: str | None = None
    push_duration: str | None = None
    set_id: int | None = None
    width: int | None = None
    height: int | None = None

    def natural_key(self) -> tuple[str, ...]:
        return (self.sequence, str(self.event_type))


class RecordingEvent(TencentEvent):
    file_id: str = Field(min_length=1)
    stream_id: str | None = None
    channel_id: str | None = None
    video_url: str | None = None
    file_format: str | None = None
    start_time: int | None = None
    end_time: int | None = None
    duration: int | None = None
    file_size: int | None = None
    task_id: str | None = None

    def natural_key(self) -> tuple[str, ...]:
        return (self.file_id,)


class ImageModerationEvent(TencentEvent):
    """The provider's own moderation verdict for one suspicious frame (317). Every sample spells score `socre`."""

    streamId: str | None = None
    channelId: str | None = None
    img: str = Field(min_length=1)
    type: list[int] = []
    score: list[float] = Field(default=[], validation_alias=AliasChoices("score", "socre"))
    suggestion: str | None = None
    label: str | None = None
    subLabel: str | None = None
    labelResults: list[dict[str, Any]] | None = None
    objectResults: list[dict[str, Any]] | None = None
    ocrResults: list[dict[str, Any]] | None = None
    libResults: list[dict[str, Any]] | None = None
    ocrMsg: str | None = None
    screenshotTime: int | None = None
    sendTime: int | None = None

    @field_validator("type", "score", mode="before")
    @classmethod
    def _scalar_to_list(cls, value: Any) -> Any:
        if value is None:
            return []
        return value if isinstance(value, list) else [value]

    def natural_key(self) -> tuple[str, ...]:
        return (self.img, str(self.sendTime))


_MODELS: dict[int, type[TencentEvent]] = {
    EventType.SCREENSHOT: ScreenshotEvent,
    EventType.STREAM_BEGIN: StreamEvent,
    EventType.STREAM_END: StreamEvent,
    EventType.RECORDING: RecordingEvent,
    EventType.IMAGE_MODERATION: ImageModerationEvent,
}
_EVENT_TYPE = TypeAdapter(int)


class InvalidEvent(ValueError):
    """The body is JSON but not a CSS event this gateway can accept; the message says which field and why."""


def parse_event(body: dict[str, Any]) -> TencentEvent:
    """Pick the model by `event_type` and validate; unknown types are kept whole as generic events."""
    if "event_type" not in body:
        raise InvalidEvent("event_type: field required")
    try:
        event_type = _EVENT_TYPE.validate_python(body["event_type"])
        return _MODELS.get(event_type, TencentEvent).model_validate(body)
    except ValidationError as exc:
        raise InvalidEvent(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"]) or "event_type"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {first['msg']}{more}"
