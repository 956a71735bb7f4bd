"""The delivery stage: plan the webhooks of each message, POST them signed, retry on the provider's schedule.

A message with one webhook is delivered in place; one with several is split into one message per webhook, so that
each URL succeeds, retries or dead-letters on its own. Shares of the stage's slots, each deferring what is past it
to a short delay queue (no try counted): a receiver holds at most HOST_CONCURRENCY; an account at most half of
the slots, so another account always has the other half; within an account's half, its slow receivers hold at most
half, and so do receivers never timed until their answers tell whether they are fast: an account's 40 new URLs
that answer in 4 s take a quarter of the slots, not every one. One tenant's slow or new URLs never starve another
tenant's webhooks, nor the account's own fast ones.
"""

from __future__ import annotations

import time
from collections import Counter, OrderedDict
from typing import Any

import aiohttp
import structlog
from yarl import URL

from framewatch.config.live import LiveConfig
from framewatch.config.snapshot import Template
from framewatch.runtime import metrics, tracing
from framewatch.runtime.http import GuardedClient, UnsafeDestination, loggable, retry_after
from framewatch.settings.delivery import DeliverySettings
from schemas.messages import CallbackReceived, FrameModerated, Webhook
from workers.contract import Consumption, Output, Retries, Stage
from workers.deliver import CONSUMES, NAME, plan, signing
from workers.failures import Deferred, Permanent, Transient

log = structlog.get_logger("framewatch.deliver")

# How long a delivery waits when its receiver is already busy with its share of slots.
BUSY_DELAY = 1.0
# A receiver whose answers take this long on average (seconds) is slow: with the receivers not timed yet, it is kept
# to half of its account's share of the slots.
SLOW_RECEIVER = 1.0
MAX_RECEIVERS = 10_000
# How much of a receiver's answer is read; the rest is dropped with the connection.
ANSWER_READ_LIMIT = 4096


def retries(options: DeliverySettings) -> Retries:
    return Retries(
        default=(options.interval,) * (options.tries - 1),
        by_ladder={"screenshot": (options.screenshot_interval,) * (options.screenshot_tries - 1)},
        extra=(BUSY_DELAY,),
    )


class DeliverStage(Stage[Webhook | FrameModerated | CallbackReceived]):
    name = NAME
    consumes = CONSUMES
    inline = True

    def __init__(self, options: DeliverySettings, config: LiveConfig) -> None:
        super().__init__(options.concurrency, retries(options))
        self.options = options
        self.config = config
        self.client = GuardedClient(
            allow_private=options.allow_private,
            connect_timeout=min(5.0, options.timeout),
            total_timeout=options.timeout,
            limit=options.concurrency,
        )
        self._busy: Counter[str] = Counter()  # receiver (host:port) -> deliveries in progress
        self._account_busy: Counter[int] = Counter()  # account -> deliveries in progress
        self._account_pools: Counter[tuple[int, str]] = Counter()  # (account, "slow" or "new") -> of those
        # How long each receiver took to answer lately (moving average), for the receivers seen last.
        self._latency: OrderedDict[str, float] = OrderedDict()

    async def start(self, consumption: Consumption) -> None:
        # The ingress owns the store and its schema: wait for it rather than refuse messages for want of config.
        await self.config.start(wait=True)

    async def close(self) -> None:
        await self.client.close()  # the live config is the process's: closed with its other resources

    async def handle(self, message: Webhook | FrameModerated | CallbackReceived) -> list[Output]:
        return await self._handle(message, inline=False)

    async def handle_inline(self, message: Webhook | FrameModerated | CallbackReceived) -> list[Output]:
        """In the process that made the message: declines a receiver known to be slow, whose answer would hold
        that process's message; the deliver stage's own consumers take it."""
        return await self._handle(message, inline=True)

    async def _handle(self, message: Webhook | FrameModerated | CallbackReceived, inline: bool) -> list[Output]:
        if isinstance(message, Webhook):
            webhooks = [message]
        elif isinstance(message, FrameModerated):
            webhooks = plan.for_moderated(message, self.config.snapshot)
        else:
            webhooks = plan.for_callback(message, self.config.snapshot)
        if not isinstance(message, Webhook):
            received_at = plan.received_at(message)
            for webhook in webhooks:
                webhook.received_at = received_at
        if not webhooks:
            metrics.DELIVERIES.labels("none", "no_url").inc()
            return []
        if len(webhooks) == 1:
            await self.send(webhooks[0], inline=inline)
            return []
        return [Output.of(webhook, webhook.kind) for webhook in webhooks]

    async def send(self, webhook: Webhook, inline: bool = False) -> None:
        binding = self.config.snapshot.bindings.get(webhook.domain)
        if binding is None:
            raise Permanent("domain_not_bound", webhook.domain)
        receiver = _receiver(webhook.url)
        account = binding.template.account_id
        share = max(1, self.options.concurrency // 2)
        pool = self._pool(receiver)
        if inline and pool == "slow":
            raise Deferred("receiver_slow", BUSY_DELAY)
        if self._busy[receiver] >= self.options.host_concurrency:
            metrics.DELIVERIES.labels(webhook.kind, "deferred").inc()
            raise Deferred("receiver_busy", BUSY_DELAY)
        if self._account_busy[account] >= share or not self._pool_has_room(account, pool, receiver, share):
            metrics.DELIVERIES.labels(webhook.kind, "deferred").inc()
            raise Deferred("account_busy", BUSY_DELAY)
        self._busy[receiver] += 1
        self._account_busy[account] += 1
        if pool != "fast":
            self._account_pools[(account, pool)] += 1
        started = time.perf_counter()
        answered_within = SLOW_RECEIVER  # a POST given up before its answer (a handoff's timeout) counts as slow
        try:
            if tracing.enabled():
                status, answer = await self._traced_post(webhook, binding.template)
            else:
                status, answer = await self._post(webhook, binding.template)
            answered_within = 0.0
        except UnsafeDestination as exc:
            metrics.DELIVERIES.labels(webhook.kind, "refused").inc()
            raise Permanent(exc.reason, exc.detail) from None
        except TimeoutError:
            metrics.DELIVERIES.labels(webhook.kind, "timeout").inc()
            raise Transient("timeout", loggable(webhook.url)) from None
        except (aiohttp.ClientError, OSError) as exc:
            answered_within = 0.0  # refused or reset: an answer of sorts, as fast as it came
            metrics.DELIVERIES.labels(webhook.kind, "connection_error").inc()
            raise Transient("connection_error", f"{loggable(webhook.url)}: {type(exc).__name__}") from None
        finally:
            _release(self._busy, receiver)
            _release(self._account_busy, account)
            if pool != "fast":
                _release(self._account_pools, (account, pool))
            self._note_latency(receiver, max(time.perf_counter() - started, answered_within))
        metrics.DELIVERY_SECONDS.observe(time.perf_counter() - started)
        if not 200 <= status < 300:
            metrics.DELIVERIES.labels(webhook.kind, f"http_{status // 100}xx").inc()
            raise Transient(f"http_{status}", loggable(webhook.url), retry_after(answer))
        metrics.DELIVERIES.labels(webhook.kind, "delivered").inc()
        if webhook.received_at is not None:
            metrics.END_TO_END.labels(webhook.kind).observe(max(0.0, time.time() - webhook.received_at))
        log.debug("delivered", url=loggable(webhook.url), kind=webhook.kind, status=status)

    async def _post(self, webhook: Webhook, template: Template) -> tuple[int, aiohttp.ClientResponse]:
        now = int(time.time())
        body = signing.signed_body(webhook.body, template.key, now)
        headers = tracing.inject(signing.headers(template.valid_webhook_secrets(now), webhook.id, now, body))
        async with self.client.request("POST", webhook.url, data=body, headers=headers) as response:
            # A few KiB at most, whatever the receiver sends: its answer body is no reason to spend memory.
            await response.content.read(ANSWER_READ_LIMIT)
            return response.status, response

    async def _traced_post(self, webhook: Webhook, template: Template) -> tuple[int, aiohttp.ClientResponse]:
        # The receiver gets this span's traceparent: its own trace of the webhook joins the frame's.
        parsed = URL(webhook.url)
        with tracing.span(
            f"POST {webhook.kind}",
            "client",
            **{
                "http.request.method": "POST",
                "server.address": parsed.host,
                "server.port": parsed.port,
                "url.full": loggable(webhook.url),
                "framewatch.webhook_id": webhook.id,
                "framewatch.webhook_kind": webhook.kind,
            },
        ) as span:
            status, response = await self._post(webhook, template)
            span.set_attribute("http.response.status_code", status)
            if not 200 <= status < 300:
                span.set_error(f"http_{status}")
            return status, response

    def _pool(self, receiver: str) -> str:
        """ "fast" (answers lately in under SLOW_RECEIVER), "slow", or "new" (never timed)."""
        latency = self._latency.get(receiver)
        if latency is None:
            return "new"
        return "fast" if latency < SLOW_RECEIVER else "slow"

    def _pool_has_room(self, account: int, pool: str, receiver: str, share: int) -> bool:
        if pool == "slow":
            return self._account_pools[(account, "slow")] < max(1, share // 2)
        if pool == "new":  # until their answers tell, new receivers share half of the account's share
            return self._account_pools[(account, "new")] < max(1, share // 2)
        return True

    def _note_latency(self, receiver: str, seconds: float) -> None:
        previous = self._latency.pop(receiver, seconds)
        self._latency[receiver] = previous + (seconds - previous) * 0.3
        if len(self._latency) > MAX_RECEIVERS:  # bounded, whatever URLs accounts configure
            self._latency.popitem(last=False)


def _release(counter: Counter[Any], key: Any) -> None:
    counter[key] -= 1
    if counter[key] <= 0:
        del counter[key]


def _receiver(url: str) -> str:
    parsed = URL(url)
    return f"{parsed.host}:{parsed.port}"
