"""POST /callbacks/tencent[/{domain}]: authenticate, parse, dedupe, publish with confirm, then answer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import orjson
import structlog
from aiohttp import web

from framewatch.broker.publisher import Publisher, PublishError
from framewatch.config.live import LiveConfig
from framewatch.dedupe.base import Claim, DedupeStore
from ingest import signature
from ingest.refusals import Reason, Refused
from framewatch.runtime import metrics
from framewatch.runtime.logs import Occasionally
from framewatch.runtime.settings import Settings
from schemas.messages import CallbackReceived
from framewatch.providers.tencent.events import PROVIDER, InvalidEvent, TencentEvent, event_id, parse_event

log = structlog.get_logger("ingest")
_OK_BODY = b'{"code":0}'
T = TypeVar("T")
_JSON_TYPES = frozenset({"application/json", "text/json"})


class CallbackHandler:
    def __init__(self, settings: Settings, config: LiveConfig, dedupe: DedupeStore, publisher: Publisher) -> None:
        self.settings = settings
        self.config = config
        self.dedupe = dedupe
        self.publisher = publisher
        self._accepted = metrics.CALLBACKS.labels(PROVIDER, "accepted", "")
        self._duplicate = metrics.CALLBACKS.labels(PROVIDER, "duplicate", "")
        self._dedupe_warnings = Occasionally()

    async def handle(self, request: web.Request) -> web.Response:
        try:
            return await self._handle(request)
        except Refused as refused:
            metrics.CALLBACKS.labels(PROVIDER, "refused", refused.reason.name).inc()
            log.info(
                "callback_refused",
                reason=refused.reason.name,
                detail=refused.message,
                peer=request.remote,
                domain=request.match_info.get("domain"),
            )
            return refused.response()

    async def _handle(self, request: web.Request) -> web.Response:
        body, event = await self._read(request)
        domain = self._domain(event, request.match_info.get("domain"))
        binding = self.config.snapshot.bindings.get(domain)
        if binding is None or (binding.app_name and binding.app_name != event.appname):
            raise Refused(Reason.DomainNotBound, f"no callback rule binds {domain!r}: callbacks are off")
        now = time.time()
        signature.verify(event, binding.template, now, self.settings.sign_validity, self.settings.clock_skew)

        # Built from values the ingress produced or validated: no need to validate them a second time.
        message = CallbackReceived.model_construct(
            id=event_id(event, domain),
            provider=PROVIDER,
            domain=domain,
            kind=event.kind,
            event_type=event.event_type,
            received_at=now,
            event=body,
        )
        claim = await self._dedupe(self.dedupe.claim, message.id, Claim.NEW)
        if claim is Claim.DONE:
            self._duplicate.inc()
            return web.Response(body=_OK_BODY, content_type="application/json")
        try:
            await self.publisher.publish(
                message.model_dump_json().encode(),
                message.routing_key,
                message_id=message.id,
                headers=message.headers(),
            )
        except PublishError as exc:
            await self._dedupe(self.dedupe.release, message.id, None)  # the retry must go through
            raise Refused(Reason.BrokerUnavailable, f"not queued, retry later: {exc}") from None
        await self._dedupe(self.dedupe.confirm, message.id, None)
        self._accepted.inc()
        log.debug("callback_accepted", event_id=message.id, domain=domain, kind=message.kind)
        return web.Response(body=_OK_BODY, content_type="application/json")

    async def _read(self, request: web.Request) -> tuple[dict[str, object], TencentEvent]:
        if request.content_type not in _JSON_TYPES and not request.content_type.endswith("+json"):
            raise Refused(Reason.UnsupportedMediaType, f"expected application/json, got {request.content_type!r}")
        cap = self.settings.body_max_bytes
        if request.content_length is not None and request.content_length > cap:
            raise Refused(Reason.BodyTooLarge, f"body over {cap} bytes")
        # No timer when the whole body came with the headers, as a callback's usually does.
        deadline = None if request.content.is_eof() else self.settings.body_read_timeout
        try:
            async with asyncio.timeout(deadline):
                raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise Refused(Reason.BodyTooLarge, f"body over {cap} bytes") from None
        except TimeoutError:
            raise Refused(Reason.BodyTimeout, f"body not received within {self.settings.body_read_timeout}s") from None
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise Refused(Reason.InvalidJson, f"body is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise Refused(Reason.InvalidEvent, "body must be a JSON object")
        try:
            return body, parse_event(body)
        except InvalidEvent as exc:
            raise Refused(Reason.InvalidEvent, str(exc)) from None

    @staticmethod
    def _domain(event: TencentEvent, from_path: str | None) -> str:
        in_body = event.domain.strip().lower() if event.domain else None
        in_path = from_path.strip().lower() if from_path else None
        if in_body and in_path and in_body != in_path:
            raise Refused(Reason.DomainMismatch, f"the body's domain {in_body!r} is not the path's {in_path!r}")
        domain = in_body or in_path
        if not domain:
            raise Refused(Reason.MissingDomain, "no app or domain in the body: post to /callbacks/tencent/{domain}")
        return domain

    async def _dedupe(self, call: Callable[[str], Awaitable[T]], event_id: str, fallback: T) -> T:
        """The window is an optimisation: if its store fails, carry on as for a new id (a duplicate is harmless,
        a refusal or a loss is not). An unreleased claim expires by itself after pending_ttl."""
        try:
            return await call(event_id)
        except Exception as exc:
            metrics.DEDUPE_ERRORS.inc()
            if (left_out := self._dedupe_warnings.due()) is not None:  # Redis down: not a line per callback
                log.warning("dedupe_unavailable", error=str(exc), event_id=event_id, left_out=left_out)
            return fallback
