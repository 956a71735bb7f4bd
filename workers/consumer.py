"""The RabbitMQ side of a stage: consumes its quorum queue with a bounded prefetch and hands each message to the
stage's processor (workers/processing.py), which settles it."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import structlog
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue, AbstractRobustConnection

from framewatch.broker.publisher import Publishing
from framewatch.broker.topology import Topology
from framewatch.runtime import metrics
from workers import handoff
from workers.acks import Acks
from workers.contract import Stage
from workers.processing import Processor

log = structlog.get_logger("framewatch.worker")

# How often each worker reads its stage's queue depth, consumers and dead letters from the broker (for /metrics):
# one passive declare of two queues, cheap for the broker at any fleet size a scrape interval would justify.
QUEUE_POLL = 10.0


class StageConsumer:
    """Runs one stage over a broker connection; also the stage's pause/resume handle."""

    def __init__(
        self,
        stage: Stage[Any],
        connection: AbstractRobustConnection,
        publisher: Publishing,
        topology: Topology,
        handing: handoff.Handoff | None = None,
    ) -> None:
        self.stage = stage
        self.connection = connection
        self.topology = topology
        self.acks = Acks()
        self.processor = Processor(stage, publisher, topology.dead_letters, self._retry_queue, handing, self.acks)
        # Messages whose outputs are handled in this process hold no slot of the stage meanwhile: room for them.
        self.prefetch = stage.concurrency + (handoff.WINDOW if handing is not None else 0)
        self.channel: AbstractChannel | None = None
        self.queue: AbstractQueue | None = None
        self._consumer_tag: str | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        self._retry_queues: dict[float, str] = {}
        self._watch: asyncio.Task[None] | None = None

    @property
    def consuming(self) -> bool:
        return self._consumer_tag is not None

    async def start(self) -> None:
        await self.stage.start(self)
        await self.attach(self.connection)
        self._watch = asyncio.create_task(self._watch_queues(), name=f"{self.stage.name}-queue-watch")
        log.info("stage_started", stage=self.stage.name, concurrency=self.stage.concurrency)

    async def attach(self, connection: AbstractRobustConnection) -> None:
        """Consume over this connection (at start, and when the process moves to another broker node); messages
        taken over a previous connection and not acknowledged are redelivered by the broker."""
        self.connection = connection
        self._consumer_tag = None
        self._retry_queues.clear()
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=self.prefetch)
        await self.topology.declare(channel)
        self.channel = channel
        for delay in self.stage.retries.every_delay():
            await self._retry_queue(delay)
        # Declared (same arguments as the topology), not merely looked up: the robust channel restores the
        # consumers of the queues it declared, and only those, after the broker comes back.
        self.queue = await self.topology.declare_stage_queue(channel, self.stage.name)
        await self.resume()

    async def resume(self) -> None:
        if self._consumer_tag is None and self.queue is not None:
            self._consumer_tag = await self.queue.consume(self._on_message)

    async def pause(self) -> None:
        """Stop taking new messages (a circuit breaker is open); what is in hand finishes."""
        if self._consumer_tag is not None and self.queue is not None:
            tag, self._consumer_tag = self._consumer_tag, None
            await self.queue.cancel(tag)

    async def drain(self, timeout: float) -> None:
        """Take nothing new and let what is in hand finish. The stage stays open (its owner closes it): the
        process's other stages may still be handing it messages."""
        if self._watch is not None:
            self._watch.cancel()
        with contextlib.suppress(Exception):
            await self.pause()
        if self._in_flight:
            await asyncio.wait(set(self._in_flight), timeout=timeout)
        for task in set(self._in_flight):  # past the drain timeout: unacked, so the broker redelivers them
            task.cancel()
        await self.acks.flush()  # what finished is acknowledged before the channel closes, not redelivered
        if self.channel is not None:
            with contextlib.suppress(Exception):
                await self.channel.close()

    async def _watch_queues(self, every: float = QUEUE_POLL) -> None:
        """The stage queue's depth and consumers and its dead letters, as the broker counts them."""
        stage = self.stage.name
        while True:
            try:
                channel = await self.connection.channel()
                async with channel:
                    while True:
                        queue = await channel.declare_queue(self.topology.queue(stage), passive=True)
                        dead = await channel.declare_queue(self.topology.dead_queue(stage), passive=True)
                        metrics.QUEUE_MESSAGES.labels(stage).set(queue.declaration_result.message_count or 0)
                        metrics.QUEUE_CONSUMERS.labels(stage).set(queue.declaration_result.consumer_count or 0)
                        metrics.DEAD_LETTER_MESSAGES.labels(stage).set(dead.declaration_result.message_count or 0)
                        await asyncio.sleep(every)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the broker is away: the gauges keep their last reading, the probes say why
                log.debug("queue_watch_failed", error=str(exc))
                await asyncio.sleep(every)

    async def _retry_queue(self, delay: float) -> str:
        """The delay queue for `delay`; one off the ladder (Retry-After) is declared on first use."""
        name = self._retry_queues.get(delay)
        if name is None:
            assert self.channel is not None
            name = await self.topology.declare_retry(self.channel, self.stage.name, delay)
            self._retry_queues[delay] = name
        return name

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._in_flight.add(task)
        try:
            await self.processor(message)
        finally:
            self._in_flight.discard(task)
