"""Dead letters: list them, replay them into their stage, or purge them (`framewatch dlq ...`)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import aio_pika
import orjson
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from framewatch.broker.nodes import Nodes
from framewatch.broker.publisher import connect_any
from framewatch.broker.topology import Topology

# Headers the worker runtime sets on a retried or dead-lettered message; a replay removes them.
ATTEMPT = "x-framewatch-attempt"
REASON = "x-framewatch-reason"
DETAIL = "x-framewatch-detail"
FAILED_STAGE = "x-framewatch-stage"
FAILED_AT = "x-framewatch-failed-at"
FAILURE_HEADERS = (ATTEMPT, REASON, DETAIL, FAILED_STAGE, FAILED_AT)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    event_id: str
    source_url: str  # the screenshot's URL, or the webhook's URL; "-" when the message has none
    reason: str
    detail: str
    attempts: int
    domain: str = ""  # whose message it is (the review console shows an account its own domains' only)

    def line(self) -> str:
        detail = f" ({self.detail})" if self.detail else ""
        return f"{self.event_id}\t{self.source_url}\t{self.reason}{detail}\tattempts={self.attempts}"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def describe(message: AbstractIncomingMessage) -> DeadLetter:
    headers = message.headers or {}
    reason = headers.get(REASON)
    if reason is None:  # dead-lettered by the broker itself: the delivery limit (a crash loop), usually
        reason = headers.get("x-first-death-reason", "unknown")
    try:
        body = orjson.loads(message.body)
    except orjson.JSONDecodeError:
        body = {}
    source = (
        (body.get("event") or {}).get("pic_full_url")  # a screenshot callback
        or body.get("source_url")  # a stored frame
        or (body.get("frame") or {}).get("source_url")  # a moderated frame
        or body.get("url")  # a webhook
        or "-"
    )
    attempts = headers.get(ATTEMPT) or headers.get("x-delivery-count") or 1
    return DeadLetter(
        event_id=message.message_id or "-",
        source_url=str(source),
        reason=_text(reason),
        detail=_text(headers.get(DETAIL, "")),
        attempts=int(attempts) if str(attempts).isdigit() else 1,
        domain=_text(headers.get("domain", "")),
    )


class DeadLetters:
    """The stages' dead-letter queues: each call opens one connection, whatever number of stages it reads."""

    def __init__(self, urls: str, topology: Topology) -> None:
        self.nodes = Nodes(urls)
        self.topology = topology

    @contextlib.asynccontextmanager
    async def _channel(self) -> AsyncIterator[AbstractChannel]:
        connection = await connect_any(self.nodes, "framewatch-dlq")
        try:
            channel = await connection.channel(publisher_confirms=True)
            await self.topology.declare(channel)
            yield channel
        finally:
            await connection.close()

    async def _take(
        self, channel: AbstractChannel, stage: str, limit: int | None = None
    ) -> AsyncIterator[AbstractIncomingMessage]:
        """Every message now in the stage's dead-letter queue (or the first `limit`), each unacknowledged until the
        caller says otherwise."""
        queue = await channel.get_queue(self.topology.dead_queue(stage))
        taken = 0
        while limit is None or taken < limit:
            taken += 1
            message = await queue.get(no_ack=False, fail=False)
            if message is None:
                return
            yield message

    async def list(self, stages: Sequence[str], limit: int | None = None) -> dict[str, list[DeadLetter]]:
        """Looks without taking: the messages go back to their queues when the channel closes unacknowledged."""
        async with self._channel() as channel:
            return {
                stage: [describe(message) async for message in self._take(channel, stage, limit)] for stage in stages
            }

    async def replay(
        self, stage: str, event_ids: set[str] | None = None, limit: int | None = None, domains: set[str] | None = None
    ) -> int:
        """Republish a stage's dead letters (all, or those ids; of those domains only, when given) to the stage with
        a fresh try count; returns how many."""
        replayed = 0
        async with self._channel() as channel:
            async for message in self._take(channel, stage, limit):
                if (event_ids is not None and message.message_id not in event_ids) or (
                    domains is not None and describe(message).domain not in domains
                ):
                    continue  # left unacknowledged: back in the queue when the channel closes
                headers = {k: v for k, v in (message.headers or {}).items() if k not in FAILURE_HEADERS}
                await channel.default_exchange.publish(
                    aio_pika.Message(
                        message.body,
                        headers=headers,
                        content_type=message.content_type,
                        message_id=message.message_id,
                        type=message.type,
                        timestamp=message.timestamp,
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    ),
                    routing_key=self.topology.queue(stage),
                    mandatory=True,
                )  # confirmed before the dead letter is acknowledged
                await message.ack()
                replayed += 1
        return replayed

    async def purge(self, stage: str) -> int:
        async with self._channel() as channel:
            queue = await channel.get_queue(self.topology.dead_queue(stage))
            result = await queue.purge()
            return int(result.message_count or 0)
