"""What a streaming cloud's package gives framewatch: its callbacks read, verified and made provider-neutral, and
what goes back to the platform in that cloud's format.

The ingress does the public work around a provider (bounded body read, binding lookup, dedupe, confirmed publish,
answers); a provider fills in `parse` and `verify`, and may
format its own violation reports. Workers only ever see `schemas.messages`.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import orjson

from framewatch.config.snapshot import Template
from framewatch.providers.refusals import Reason, Refused
from framewatch.settings import Settings
from schemas.messages import CallbackReceived, FrameStored, Kind, Screenshot, Stream, Verdict

if TYPE_CHECKING:
    from aiohttp import web
    from redis.asyncio import Redis

    from framewatch.admin.api import AdminApi


# Not frozen: both are made once per callback and never changed after, and a frozen dataclass pays an
# object.__setattr__ per field on every construction.
@dataclass(slots=True)
class RawRequest:
    """One callback request as the ingress received it (the body already read within its bounds)."""

    method: str
    host: str  # the Host header, as the provider addressed us
    query: Mapping[str, str]
    headers: Mapping[str, str]
    content_type: str
    body: bytes
    path_domain: str | None = None  # /callbacks/<provider>/{domain}


@dataclass(slots=True)
class Incoming:
    """A callback as its provider's package understood it, before authentication."""

    domain: str  # the push domain whose callback rule decides
    app_name: str | None  # matched against a rule's app name
    kind: Kind
    event_type: int | str
    body: dict[str, Any]  # forwarded as received (a GET's query parameters)
    natural_key: tuple[str, ...]  # what stays the same across the provider's retries of this event
    stream: Stream | None = None
    screenshot: Screenshot | None = None
    verdict: Verdict | None = None
    auth: Any = None  # what `verify` needs, in the provider's own terms


# Deeper than any callback a cloud sends, far shallower than what a stage's JSON parser or serializer can carry
# (pydantic stops near 200 levels): accepted means every stage can carry it.
MAX_DEPTH = 32


def json_object(raw: bytes) -> dict[str, Any]:
    """A callback body: a JSON object no deeper than MAX_DEPTH. Refused with the reason otherwise."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Refused(Reason.InvalidJson, f"body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise Refused(Reason.InvalidEvent, "body must be a JSON object")
    if raw.count(b"{") + raw.count(b"[") <= MAX_DEPTH:  # no more openings than levels allowed: shallow enough
        return body
    level: list[Any] = [body]
    for _ in range(MAX_DEPTH):  # breadth first, one level a turn: no recursion, bounded work
        level = [
            child
            for container in level
            for child in (container.values() if isinstance(container, dict) else container)
            if isinstance(child, dict | list)
        ]
        if not level:
            return body
    raise Refused(Reason.InvalidEvent, f"body nested deeper than {MAX_DEPTH} levels")


# CSS's category codes in a 317 `type` array, for verdicts of other sources.
LABEL_CODES = {"Porn": 1, "Sexy": 1, "Terror": 2, "Polity": 3, "Ad": 4, "Illegal": 5, "Abuse": 6}


class Provider(ABC):
    name: ClassVar[str]
    # The ingress serves every method on these paths and lets `parse` refuse the ones the provider never sends.
    paths: ClassVar[tuple[str, ...]]

    @classmethod
    @abstractmethod
    def from_settings(cls, settings: Settings) -> Provider:
        """The provider with the operator's options for it."""

    @abstractmethod
    def parse(self, request: RawRequest) -> Incoming:
        """Read the callback; raise `Refused` with the reason when it is not one this provider sends."""

    @abstractmethod
    def verify(self, incoming: Incoming, request: RawRequest, template: Template, now: float) -> None:
        """Raise `Refused` unless the callback is signed with one of the template's valid keys, in its window."""

    def violation(self, frame: FrameStored, verdict: Verdict, now: int) -> dict[str, Any]:
        """The body the domain's detect notify URL receives for a frame a moderation backend flagged: an
        event_type 317 body as CSS reports the frames its own moderation flags, whatever the cloud
        (docs/protocols/tencent.md §5)."""
        event = frame.callback.event
        stream = frame.callback.stream
        return {
            "event_type": 317,
            "streamId": frame.stream_id,
            "channelId": event.get("channel_id") or frame.stream_id,
            "img": frame.original.url,
            "type": [LABEL_CODES.get(verdict.label, 0)],
            "score": [verdict.score],
            "suggestion": verdict.suggestion,
            "label": verdict.label,
            "subLabel": verdict.sub_label,
            "screenshotTime": frame.capture_time,
            "sendTime": now,
            "app": frame.domain,
            "appname": stream.app if stream else "",
            "stream_param": event.get("stream_param", ""),
        }

    def event_id(self, incoming: Incoming) -> str:
        """Deterministic from the natural key (never a signature), so the provider's retries collapse."""
        key = "\x1f".join((self.name, incoming.domain, str(incoming.event_type), *incoming.natural_key))
        return hashlib.blake2b(key.encode(), digest_size=16).hexdigest()

    def message(self, incoming: Incoming, now: float, account_id: int | None = None) -> CallbackReceived:
        """The provider-neutral pipeline message. Validated all the same: pydantic's validating constructor costs
        less than its Python-level `model_construct`, and a provider's slip fails here, not in every stage."""
        return CallbackReceived(
            id=self.event_id(incoming),
            provider=self.name,
            domain=incoming.domain,
            account_id=account_id,
            kind=incoming.kind,
            event_type=incoming.event_type,
            received_at=now,
            stream=incoming.stream,
            screenshot=incoming.screenshot,
            verdict=incoming.verdict,
            event=incoming.body,
        )


class CloudApiDialect(Protocol):
    """A cloud's own API at `/` on the admin listener (its package's cloud_api.py, `DIALECT`): the same actions
    as `/api`, with that cloud's signatures, parameters, envelope and error codes, so its SDKs work unmodified.
    `redis`: where signatures and nonces already used are remembered fleet-wide (None: in this process)."""

    def __init__(self, api: AdminApi, redis: Redis | None, namespace: str) -> None: ...

    async def claims(self, request: web.Request) -> bool:
        """Whether the request is this cloud's (what its SDKs always send)."""
        ...

    async def handle(self, request: web.Request) -> web.Response: ...
