"""Messages between stages. Every message body is JSON; `schema` lets a stage refuse what it cannot read."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

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
