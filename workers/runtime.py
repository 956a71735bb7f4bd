"""The one worker loop every stage runs in.

A stage turns one message into effects and output messages. The runtime owns everything around that: it consumes
the stage's quorum queue with a bounded prefetch, publishes the outputs with confirms, and acknowledges only then.
A failure goes to a delay queue (the stage's retry ladder) or, when permanent or out of tries, to the stage's
dead-letter queue with the reason in its headers. A message is never acknowledged before one of those holds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import structlog
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue, AbstractRobustConnection

from framewatch.broker.dlq import ATTEMPT, DETAIL, FAILED_AT, FAILED_STAGE, REASON
from framewatch.broker.publisher import Publisher, PublishError
from framewatch.broker.topology import Topology
from framewatch.runtime import metrics
from schemas.messages import SCHEMA_VERSION, routing_key
from workers.failures import Deferred, Permanent, StageFailure, Transient

log = structlog.get_logger("framewatch.worker")


class PipelineMessage(Protocol):
    TYPE: ClassVar[str]
    id: str
    domain: str

    def model_dump_json(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Output:
    """A message a stage wants published once its effects are durable."""

    routing_key: str
    body: bytes
    message_id: str
    message_type: str
    headers: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, message: PipelineMessage, kind: str) -> Output:
        """A pipeline message on its routing key; `kind` picks the next stage's retry ladder."""
        return cls(
            routing_key(message.TYPE),
            message.model_dump_json().encode(),
            message_id=message.id,
            message_type=message.TYPE,
            headers={"domain": message.domain, "kind": kind, "schema_version": SCHEMA_VERSION},
        )


@dataclass(frozen=True, slots=True)
class Retries:
    """A stage's retry ladders: the delays between tries for each message kind (its `kind` header), else the
    default; a ladder's length is the number of retries. `extra`: delays the stage asks for outside its ladders."""

    default: tuple[float, ...]
    by_kind: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    extra: tuple[float, ...] = ()

    def delays(self, kind: object) -> tuple[float, ...]:
        return self.by_kind.get(kind, self.default) if isinstance(kind, str) else self.default

    def ladder(self) -> set[float]:
        """Every delay the stage may ask for, declared as delay queues at start."""
        return {*self.default, *(delay for ladder in self.by_kind.values() for delay in ladder), *self.extra}


class Stage(ABC):
    name: ClassVar[str]

    def __init__(self, concurrency: int, retries: Retries) -> None:
        self.concurrency = concurrency
        self.retries = retries
        self.runner: StageRunner | None = None  # set by the runner; lets a stage pause its own consumption

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Open clients and pools."""

    @abstractmethod
    async def handle(self, message: AbstractIncomingMessage) -> list[Output]:
        """Do the stage's work; raise a StageFailure subclass when it cannot."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Close what `start` opened."""


def attempt_of(message: AbstractIncomingMessage) -> int:
    value = (message.headers or {}).get(ATTEMPT, 1)
    return int(value) if isinstance(value, int | str) and str(value).isdigit() else 1


# The delays a server's Retry-After is rounded up to: each delay is a queue, so the set must stay small whatever
# servers answer. Past the last one, the last one.
RETRY_AFTER_RUNGS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)


def asked_delay(seconds: float) -> float:
    return next((rung for rung in RETRY_AFTER_RUNGS if rung >= seconds), RETRY_AFTER_RUNGS[-1])


class StageRunner:
    """Runs one stage: consumes its queue, keeps its promises about acknowledgement."""

    def __init__(
        self, stage: Stage, connection: AbstractRobustConnection, publisher: Publisher, topology: Topology
    ) -> None:
        self.stage = stage
        self.connection = connection
        self.publisher = publisher
        self.topology = topology
        self.channel: AbstractChannel | None = None
        self.queue: AbstractQueue | None = None
        self._consumer_tag: str | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        self._retry_queues: dict[float, str] = {}
        stage.runner = self
        metrics.preset_stage(stage.name)

    @property
    def consuming(self) -> bool:
        return self._consumer_tag is not None

    async def start(self) -> None:
        await self.stage.start()
        await self.attach(self.connection)
        log.info("stage_started", stage=self.stage.name, concurrency=self.stage.concurrency)

    async def attach(self, connection: AbstractRobustConnection) -> None:
        """Consume over this connection (at start, and when the process moves to another broker node); messages
        taken over a previous connection and not acknowledged are redelivered by the broker."""
        self.connection = connection
        self._consumer_tag = None
        self._retry_queues.clear()
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=self.stage.concurrency)
        await self.topology.declare(channel)
        for delay in self.stage.retries.ladder():
            await self._declare_retry(channel, delay)
        self.channel = channel
        # Declared (same arguments as the topology), not merely looked up: the robust channel restores the
        # consumers of the queues it declared, and only those, after the broker comes back.
        name = self.stage.name
        self.queue = await self.topology.declare_stage_queue(channel, name)
        await self.resume()

    async def resume(self) -> None:
        if self._consumer_tag is None and self.queue is not None:
            self._consumer_tag = await self.queue.consume(self._on_message)

    async def pause(self) -> None:
        """Stop taking new messages (a circuit breaker is open); what is in hand finishes."""
        if self._consumer_tag is not None and self.queue is not None:
            tag, self._consumer_tag = self._consumer_tag, None
            await self.queue.cancel(tag)

    async def stop(self, timeout: float) -> None:
        """Graceful drain: take nothing new, let what is in hand finish, then close."""
        with contextlib.suppress(Exception):
            await self.pause()
        if self._in_flight:
            await asyncio.wait(set(self._in_flight), timeout=timeout)
        for task in set(self._in_flight):  # past the drain timeout: unacked, so the broker redelivers them
            task.cancel()
        if self.channel is not None:
            with contextlib.suppress(Exception):
                await self.channel.close()
        await self.stage.close()

    async def _declare_retry(self, channel: AbstractChannel, delay: float) -> str:
        name = await self.topology.declare_retry(channel, self.stage.name, delay)
        self._retry_queues[delay] = name
        return name

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._in_flight.add(task)
        metrics.STAGE_IN_FLIGHT.labels(self.stage.name).inc()
        started = time.perf_counter()
        try:
            with structlog.contextvars.bound_contextvars(event_id=message.message_id, stage=self.stage.name):
                outcome = await self._process(message)
        finally:
            self._in_flight.discard(task)
            metrics.STAGE_IN_FLIGHT.labels(self.stage.name).dec()
        metrics.STAGE_MESSAGES.labels(self.stage.name, outcome).inc()
        metrics.STAGE_SECONDS.labels(self.stage.name).observe(time.perf_counter() - started)

    async def _process(self, message: AbstractIncomingMessage) -> str:
        attempt = attempt_of(message)
        try:
            try:
                outputs = await self.stage.handle(message)
                await asyncio.gather(*(self._publish(output) for output in outputs))
            except (StageFailure, PublishError):
                raise
            except Exception as exc:  # a bug or an unforeseen error: retried like a transient one, never dropped
                log.exception("stage_error")
                raise Transient("unexpected_error", f"{type(exc).__name__}: {exc}") from exc
            await message.ack()
            return "done"
        except Deferred as deferred:
            await self._retry(message, deferred.delay, attempt)
            return "deferred"
        except Transient as failure:
            delays = self.stage.retries.delays((message.headers or {}).get("kind"))
            if attempt > len(delays):
                await self._dead_letter(message, failure, attempt)
                return "dead"
            delay = delays[attempt - 1]
            if failure.retry_after and failure.retry_after > delay:
                delay = asked_delay(failure.retry_after)
            log.info("retry_scheduled", reason=failure.reason, detail=failure.detail, attempt=attempt, delay=delay)
            await self._retry(message, delay, attempt + 1)
            return "retried"
        except Permanent as failure:
            await self._dead_letter(message, failure, attempt)
            return "dead"
        except PublishError as exc:
            # The broker would not take our output (or the retry): give the message back so it is tried again.
            log.warning("requeue", error=str(exc))
            await asyncio.sleep(1.0)
            with contextlib.suppress(Exception):
                await message.nack(requeue=True)
            return "requeued"

    async def _publish(self, output: Output) -> None:
        await self.publisher.publish(
            output.body,
            output.routing_key,
            message_id=output.message_id,
            message_type=output.message_type,
            headers=output.headers,
        )

    async def _republish(
        self, message: AbstractIncomingMessage, exchange: str, routing_key: str, headers: dict
    ) -> None:
        await self.publisher.publish(
            message.body,
            routing_key,
            message_id=message.message_id or "",
            message_type=message.type,
            headers=headers,
            content_type=message.content_type or "application/json",
            exchange=exchange,
        )
        await message.ack()

    async def _retry(self, message: AbstractIncomingMessage, delay: float, attempt: int) -> None:
        queue = self._retry_queues.get(delay)
        if queue is None:  # a delay off the ladder (Retry-After): declare its queue on first use
            assert self.channel is not None
            queue = await self._declare_retry(self.channel, delay)
        headers = dict(message.headers or {})
        headers[ATTEMPT] = attempt
        await self._republish(message, "", queue, headers)

    async def _dead_letter(self, message: AbstractIncomingMessage, failure: StageFailure, attempt: int) -> None:
        log.warning("dead_lettered", reason=failure.reason, detail=failure.detail, attempt=attempt)
        metrics.DEAD_LETTERS.labels(self.stage.name, failure.reason).inc()
        headers = dict(message.headers or {})
        headers.update(
            {
                ATTEMPT: attempt,
                REASON: failure.reason,
                DETAIL: failure.detail[:500],
                FAILED_STAGE: self.stage.name,
                FAILED_AT: int(time.time()),
            }
        )
        await self._republish(message, self.topology.dead_letters, self.stage.name, headers)
