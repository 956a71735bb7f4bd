"""Messages between stages. Every message body is JSON; `schema` lets a stage refuse what it cannot read."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

SCHEMA_VERSION = 1


class CallbackReceived(BaseModel):
    """A provider callback accepted by the ingress, exactly as received, with what the ingress learned."""

    schema_version: int = SCHEMA_VERSION
    id: str  # deterministic from the event's natural key: the same for every retry of one event
    provider: str
    domain: str
    kind: str  # screenshot, stream_begin, stream_end, recording, image_moderation, other
    event_type: int
    received_at: float  # Unix seconds
    event: dict[str, Any]  # the provider's body, every field as received

    @property
    def routing_key(self) -> str:
        return f"{self.provider}.{self.kind}"

    def headers(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
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

    schema_version: int = SCHEMA_VERSION
    id: str  # the screenshot callback's event id
    provider: str
    domain: str
    stream_id: str
    capture_time: int  # Unix seconds (the event's create_time)
    source_url: str
    sha256: str  # of the original bytes
    original: StoredImage
    thumbnails: list[StoredImage]
    callback: CallbackReceived  # carried along: the delivery stage forwards the event itself, enriched


Suggestion = Literal["Pass", "Review", "Block"]


class Verdict(BaseModel):
    """One moderation result, whoever produced it: a local model, a cloud API or the provider's own callback."""

    suggestion: Suggestion
    label: str = "Normal"
    sub_label: str = ""
    score: int = 0  # 0-100, the score of `label`
    scores: dict[str, float] = Field(default_factory=dict)  # every label the source scored
    source: str  # "tencent" for the provider's callbacks; otherwise "<backend>/<model or API version>"
    latency_ms: float = 0.0


class FrameModerated(BaseModel):
    """The moderation stage's output, what the delivery stage sends on.

    Either a stored frame with the verdict of a backend (None when moderation is off or `none`: unreviewed),
    or a provider moderation callback (317) with the verdict it carried.
    """

    schema_version: int = SCHEMA_VERSION
    id: str
    domain: str
    frame: FrameStored | None = None
    callback: CallbackReceived | None = None
    verdict: Verdict | None = None


class Webhook(BaseModel):
    """One POST to one of the platform's URLs. `body` lacks `t` and `sign`: they are added at each try."""

    schema_version: int = SCHEMA_VERSION
    id: str  # the event id: the `webhook-id` header of every try
    domain: str  # whose template key signs it
    kind: str  # what it forwards: the event kind, or "violation"
    url: str
    body: dict[str, Any]
