"""Messages between stages, the same whichever cloud sent the callback. Every body is JSON; `schema_version` lets a
stage refuse what it cannot read; the AMQP `type` of a message is its class's `TYPE`.

Imports nothing else of the project: this is the contract between the ingress and every worker stage.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field

SCHEMA_VERSION = 1

# What a callback is about, whichever cloud sent it: it decides the stage that takes it and the template URL
# it is forwarded to.
Kind = Literal[
    "screenshot",
    "stream_begin",
    "stream_end",
    "recording",
    "recording_status",
    "recording_exception",
    "image_moderation",
    "audio_moderation",
    "push_exception",
    "other",
]

Suggestion = Literal["Pass", "Review", "Block"]


class Verdict(BaseModel):
    """One moderation result, whoever produced it: a local model, a cloud API or the provider's own callback."""

    suggestion: Suggestion
    label: str = "Normal"
    sub_label: str = ""
    score: int = 0  # 0-100, the score of `label`
    scores: dict[str, float] = Field(default_factory=dict)  # every label the source scored
    source: str  # the provider's name for its own callbacks; otherwise "<backend>/<model or API version>"
    latency_ms: float = 0.0
    # Set when no model judged this frame: the verdict is the one of that earlier frame of the stream, which this
    # one is near-identical to (the template's moderation reuse).
    reused_from: str | None = None


class Stream(BaseModel):
    """The live stream an event is about."""

    app: str = ""  # the app name (push path)
    name: str


class Screenshot(BaseModel):
    """A frame the provider captured and stored: where to download it and what it announced about it."""

    image_url: str
    capture_time: int  # Unix seconds
    file_size: int | None = None
    width: int | None = None
    height: int | None = None


class CallbackReceived(BaseModel):
    """A provider callback accepted by the ingress: the provider's body as received, and what it means."""

    TYPE: ClassVar[str] = "callback"

    schema_version: int = SCHEMA_VERSION
    id: str  # deterministic from the event's natural key: the same for every retry of one event
    provider: str
    domain: str
    # The account whose callback rule bound the domain when the ingress accepted it: the data is that account's.
    # None in messages of versions before it was carried (the streams stage then takes the domain's owner).
    account_id: int | None = None
    kind: Kind
    event_type: int | str  # the provider's own name for the event, for people reading it
    received_at: float  # Unix seconds
    stream: Stream | None = None
    screenshot: Screenshot | None = None  # kind "screenshot": the frame stored; "image_moderation": the frame judged
    verdict: Verdict | None = None  # kind "image_moderation": the provider's own verdict
    event: dict[str, Any]  # the provider's body, every field as received

    @property
    def routing_key(self) -> str:
        return f"{self.provider}.{self.kind}"

    def headers(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "kind": self.kind,
            "event_type": self.event_type,
            "domain": self.domain,
            "schema_version": self.schema_version,
        }


class StoredImage(BaseModel):
    """One image in the blob store: the original frame or a thumbnail."""

    key: str
    url: str
    width: int
    height: int
    bytes: int
    content_type: str


class FrameStored(BaseModel):
    """The fetch stage's output: a screenshot downloaded, checked, thumbnailed and stored."""

    TYPE: ClassVar[str] = "frame_stored"

    schema_version: int = SCHEMA_VERSION
    id: str  # the screenshot callback's event id
    provider: str
    domain: str
    stream_id: str
    capture_time: int  # Unix seconds
    source_url: str
    sha256: str  # of the original bytes
    original: StoredImage
    thumbnails: list[StoredImage]
    callback: CallbackReceived  # carried along: the delivery stage forwards the event itself, enriched
    phash: str | None = None  # the smallest thumbnail's difference hash (16 hex digits), for moderation reuse


class FrameModerated(BaseModel):
    """The moderation stage's output, what the delivery stage sends on.

    Either a stored frame with the verdict of a backend (None when moderation is off or `none`: unreviewed),
    or a provider moderation callback with the verdict it carried, and the judged frame when it was stored.
    """

    TYPE: ClassVar[str] = "moderated"

    schema_version: int = SCHEMA_VERSION
    id: str
    domain: str
    frame: FrameStored | None = None
    callback: CallbackReceived | None = None
    verdict: Verdict | None = None
    moderated_at: float | None = None  # Unix seconds: when the verdict was known (covers' latency is counted from it)

    @property
    def kind(self) -> Kind:
        return "image_moderation" if self.callback is not None else "screenshot"


class Webhook(BaseModel):
    """One POST to one of the platform's URLs. `body` lacks `t` and `sign`: they are added at each try."""

    TYPE: ClassVar[str] = "webhook"

    schema_version: int = SCHEMA_VERSION
    id: str  # the `webhook-id` header of every try: unique per webhook, stable across its retries
    domain: str  # whose template key signs it
    kind: str  # what it forwards: the event kind, or "violation"
    url: str
    body: dict[str, Any]
    received_at: float | None = None  # Unix seconds: when the ingress accepted the callback it comes from


# The routing key of each pipeline message on the events exchange (callbacks use `<provider>.<kind>`).
def routing_key(message_type: str) -> str:
    return f"pipeline.{message_type}"
