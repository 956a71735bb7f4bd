"""The delivery stage: plan the webhooks of each message, POST them signed, retry on the provider's schedule.

A message with one webhook is delivered in place; one with several is split into one message per webhook, so that
each URL succeeds, retries or dead-letters on its own. A receiver that already holds its share of the stage's slots
gets its next deliveries deferred to a short delay queue: one slow URL never stalls the others.
"""

from __future__ import annotations

import time
from collections import Counter, OrderedDict
from dataclasses import dataclass

import aiohttp
import structlog
from aio_pika.abc import AbstractIncomingMessage
from pydantic import ValidationError
from yarl import URL

from framewatch.config.live import LiveConfig
from framewatch.runtime import metrics
from framewatch.runtime.http import GuardedClient, UnsafeDestination, loggable, retry_after
from schemas.messages import CallbackReceived, FrameModerated, Webhook
from workers.deliver import plan, signing
from workers.failures import Deferred, Permanent, Transient
from workers.runtime import Output, Retries, Stage

log = structlog.get_logger("framewatch.deliver")

# How long a delivery waits when its receiver is already busy with its share of slots.
BUSY_DELAY = 1.0
# A receiver whose answers take this long on average (seconds) is slow: it is kept to half of the stage's slots.
SLOW_RECEIVER = 1.0
MAX_RECEIVERS = 10_000
# How much of a receiver's answer is read; the rest is dropped with the connection.
ANSWER_READ_LIMIT = 4096


@dataclass(frozen=True, slots=True)
class DeliverOptions:
    concurrency: int
    host_concurrency: int  # one receiver holds at most this many slots; its other deliveries wait
    timeout: float
    allow_private: bool
    # The provider's own policy by default: screenshots 5 tries 2 minutes apart, other kinds 12 tries 1 minute apart.
    screenshot_tries: int = 5
    screenshot_interval: float = 120.0
    tries: int = 12
    interval: float = 60.0

    def retries(self) -> Retries:
        return Retries(
            default=(self.interval,) * (self.tries - 1),
            by_kind={"screenshot": (self.screenshot_interval,) * (self.screenshot_tries - 1)},
            extra=(BUSY_DELAY,),
        )


class DeliverStage(Stage):
    name = "deliver"

    def __init__(self, options: DeliverOptions, config: LiveConfig) -> None:
        super().__init__(options.concurrency, options.retries())
        self.options = options
        self.config = config
        self.client = GuardedClient(
            allow_private=options.allow_private,
            connect_timeout=min(5.0, options.timeout),
            total_timeout=options.timeout,
            limit=options.concurrency,
        )
        self._busy: Counter[str] = Counter()  # receiver (host:port) -> deliveries in progress
        self._in_progress = 0
        # How long each receiver took to answer lately (moving average), for the receivers seen last.
        self._latency: OrderedDict[str, float] = OrderedDict()

    async def start(self) -> None:
        # The ingress owns the store and its schema: wait for it rather than refuse messages for want of config.
        await self.config.start(wait=True)

    async def close(self) -> None:
        await self.client.close()
        await self.config.close()
        await self.config.store.close()

    async def handle(self, message: AbstractIncomingMessage) -> list[Output]:
        try:
            if message.type == Webhook.TYPE:
                webhooks = [Webhook.model_validate_json(message.body)]
            elif message.type == FrameModerated.TYPE:
                webhooks = plan.for_moderated(FrameModerated.model_validate_json(message.body), self.config.snapshot)
            else:
                webhooks = plan.for_callback(CallbackReceived.model_validate_json(message.body), self.config.snapshot)
        except ValidationError as exc:
            raise Permanent("bad_message", str(exc).splitlines()[0]) from None
        if not webhooks:
            metrics.DELIVERIES.labels("none", "no_url").inc()
            return []
        if len(webhooks) == 1:
            await self.send(webhooks[0])
            return []
        return [Output.of(webhook, webhook.kind) for webhook in webhooks]

    async def send(self, webhook: Webhook) -> None:
        binding = self.config.snapshot.bindings.get(webhook.domain)
        if binding is None:
            raise Permanent("domain_not_bound", webhook.domain)
        receiver = _receiver(webhook.url)
        if self._busy[receiver] >= self.options.host_concurrency or (
            self._in_progress >= self.options.concurrency // 2 and not self._may_crowd(receiver)
        ):
            metrics.DELIVERIES.labels(webhook.kind, "deferred").inc()
            raise Deferred("receiver_busy", BUSY_DELAY)
        self._busy[receiver] += 1
        self._in_progress += 1
        started = time.perf_counter()
        try:
            now = int(time.time())
            body = signing.signed_body(webhook.body, binding.template.key, now)
            headers = signing.headers(binding.template.valid_webhook_secrets(now), webhook.id, now, body)
            async with self.client.request("POST", webhook.url, data=body, headers=headers) as response:
                # A few KiB at most, whatever the receiver sends: its answer body is no reason to spend memory.
                await response.content.read(ANSWER_READ_LIMIT)
                status = response.status
        except UnsafeDestination as exc:
            metrics.DELIVERIES.labels(webhook.kind, "refused").inc()
            raise Permanent(exc.reason, exc.detail) from None
        except TimeoutError:
            metrics.DELIVERIES.labels(webhook.kind, "timeout").inc()
            raise Transient("timeout", loggable(webhook.url)) from None
        except (aiohttp.ClientError, OSError) as exc:
            metrics.DELIVERIES.labels(webhook.kind, "connection_error").inc()
            raise Transient("connection_error", f"{loggable(webhook.url)}: {type(exc).__name__}") from None
        finally:
            self._busy[receiver] -= 1
            self._in_progress -= 1
            if not self._busy[receiver]:
                del self._busy[receiver]
            self._note_latency(receiver, time.perf_counter() - started)
        metrics.DELIVERY_SECONDS.observe(time.perf_counter() - started)
        if not 200 <= status < 300:
            metrics.DELIVERIES.labels(webhook.kind, f"http_{status // 100}xx").inc()
            raise Transient(f"http_{status}", loggable(webhook.url), retry_after(response))
        metrics.DELIVERIES.labels(webhook.kind, "delivered").inc()
        log.debug("delivered", url=loggable(webhook.url), kind=webhook.kind, status=status)

    def _may_crowd(self, receiver: str) -> bool:
        """Whether a receiver may take a slot in the last half: only one known to answer fast, or, while it is
        unknown, for one delivery at a time (its first answer tells). However many receivers are slow, together they
        never hold more than half the slots, and the others' deliveries keep flowing."""
        latency = self._latency.get(receiver)
        if latency is None:
            return self._busy[receiver] == 0
        return latency < SLOW_RECEIVER

    def _note_latency(self, receiver: str, seconds: float) -> None:
        previous = self._latency.pop(receiver, seconds)
        self._latency[receiver] = previous + (seconds - previous) * 0.3
        if len(self._latency) > MAX_RECEIVERS:  # bounded, whatever URLs accounts configure
            self._latency.popitem(last=False)


def _receiver(url: str) -> str:
    parsed = URL(url)
    return f"{parsed.host}:{parsed.port}"
