"""One streaming cloud's callback route: read within bounds, parse, check the binding, verify, dedupe, publish with
confirm, then answer. The provider's package knows its formats and signatures; this is the same for every cloud."""

from __future__ import annotations

import asyncio
import time

import structlog
from aiohttp import web

from framewatch.broker.publisher import PublishError, Publishing
from framewatch.config.live import LiveConfig
from framewatch.dedupe.base import Claim, DedupeStore
from framewatch.providers import bounds
from framewatch.providers.base import Provider, RawRequest
from framewatch.providers.refusals import Reason, Refused
from framewatch.runtime import metrics, tracing
from ingest.refusals import refusal_response

log = structlog.get_logger("framewatch.ingest")
_OK_BODY = b'{"code":0}'


class CallbackHandler:
    def __init__(
        self,
        provider: Provider,
        config: LiveConfig,
        dedupe: DedupeStore,
        publisher: Publishing,
        *,
        body_max_bytes: int,
        body_read_timeout: float,
        clock_skew: float,
    ) -> None:
        self.provider = provider
        self.config = config
        self.dedupe = dedupe
        self.publisher = publisher
        self.body_max_bytes = body_max_bytes
        self.body_read_timeout = body_read_timeout
        self.clock_skew = clock_skew  # how far ahead of ours a frame's capture time may be
        self._accepted = metrics.CALLBACKS.labels(provider.name, "accepted", "")
        self._duplicate = metrics.CALLBACKS.labels(provider.name, "duplicate", "")
        for reason in Reason:  # every refusal's series from the start (an alert's first increase is not lost)
            metrics.CALLBACKS.labels(provider.name, "refused", reason.name)

    def add_routes(self, app: web.Application) -> None:
        # Every method: a method the cloud never uses gets the contract's JSON refusal, not aiohttp's text.
        for path in self.provider.paths:
            app.router.add_route("*", path, self._traced if tracing.enabled() else self.handle)

    async def _traced(self, request: web.Request) -> web.Response:
        # The frame's trace starts here; the queued message carries its traceparent to the stages.
        with tracing.span(
            f"callback {self.provider.name}",
            "server",
            # No parent from the request: a caller on the internet does not choose our traces.
            **{
                "http.request.method": request.method,
                "url.path": request.path,
                "framewatch.provider": self.provider.name,
            },
        ) as span:
            response = await self.handle(request)
            span.set_attribute("http.response.status_code", response.status)
            return response

    async def handle(self, request: web.Request) -> web.Response:
        try:
            return await self._handle(request)
        except Refused as refused:
            metrics.CALLBACKS.labels(self.provider.name, "refused", refused.reason.name).inc()
            log.info(
                "callback_refused",
                provider=self.provider.name,
                reason=refused.reason.name,
                detail=refused.message,
                peer=request.remote,
                domain=request.match_info.get("domain"),
            )
            tracing.current().set_error(refused.reason.name)
            return refusal_response(refused)

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await self._read(request)
        incoming = self.provider.parse(raw)
        now = time.time()
        bounds.check(incoming, now, self.clock_skew)
        binding = self.config.snapshot.bindings.get(incoming.domain)
        if binding is None or (binding.app_name and binding.app_name != incoming.app_name):
            raise Refused(Reason.DomainNotBound, f"no callback rule binds {incoming.domain!r}: callbacks are off")
        if not binding.template.valid_keys(now):
            raise Refused(Reason.NoCallbackKey, f"the template bound to {incoming.domain!r} has no CallbackKey")
        self.provider.verify(incoming, raw, binding.template, now)

        message = self.provider.message(incoming, now, binding.template.account_id)
        headers = message.headers()
        if tracing.enabled():
            tracing.current().set_attributes(
                {
                    "framewatch.event_id": message.id,
                    "framewatch.kind": message.kind,
                    "framewatch.domain": message.domain,
                }
            )
            tracing.inject(headers)
        # The window never fails a callback: a shared one that does not answer falls back on its own (Breaker).
        claim = await self.dedupe.claim(message.id)
        if claim is Claim.DONE:
            self._duplicate.inc()
            return web.Response(body=_OK_BODY, content_type="application/json")
        try:
            await self.publisher.publish(
                message.model_dump_json().encode(),
                message.routing_key,
                message_id=message.id,
                headers=headers,
            )
        except PublishError as exc:
            await self.dedupe.release(message.id)  # the retry must go through
            raise Refused(Reason.BrokerUnavailable, f"not queued, retry later: {exc}") from None
        await self.dedupe.confirm(message.id)
        self._accepted.inc()  # no log line per accepted callback: the counter and the trace say it
        return web.Response(body=_OK_BODY, content_type="application/json")

    async def _read(self, request: web.Request) -> RawRequest:
        body = b""
        if request.method not in ("GET", "HEAD"):
            body = await self._read_body(request)
        return RawRequest(
            method=request.method,
            host=request.host,
            query=request.query,
            headers=request.headers,
            content_type=request.content_type,
            body=body,
            path_domain=request.match_info.get("domain"),
        )

    async def _read_body(self, request: web.Request) -> bytes:
        cap = self.body_max_bytes
        if request.content_length is not None and request.content_length > cap:
            raise Refused(Reason.BodyTooLarge, f"body over {cap} bytes")
        try:
            if request.content.is_eof():  # the whole body came with the headers, as a callback's usually does
                return await request.read()
            async with asyncio.timeout(self.body_read_timeout):
                return await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise Refused(Reason.BodyTooLarge, f"body over {cap} bytes") from None
        except TimeoutError:
            raise Refused(Reason.BodyTimeout, f"body not received within {self.body_read_timeout}s") from None
