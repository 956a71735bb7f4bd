"""One message through one stage, whatever carries it: decode, handle, publish the outputs, then settle.

The promise kept here: a message is acknowledged only once its outputs are confirmed, or once a delay queue or
the dead-letter queue holds it. A failure goes to the stage's retry ladder or, when permanent or out of tries, to
the dead letters with the reason in its headers.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import structlog
from pydantic import BaseModel, ValidationError

from framewatch.broker.dlq import ATTEMPT, DETAIL, FAILED_AT, FAILED_STAGE, REASON
from framewatch.broker.publisher import PublishError, Publishing
from framewatch.runtime import metrics, tracing
from schemas.messages import CallbackReceived
from workers.contract import LADDER, Output, Stage
from workers.failures import Deferred, Permanent, StageFailure, Transient
from workers.handoff import Handoff

log = structlog.get_logger("framewatch.worker")

# The delays a server's Retry-After is rounded up to: each delay is a queue, so the set must stay small whatever
# servers answer. Past the last one, the last one.
RETRY_AFTER_RUNGS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)


def asked_delay(seconds: float) -> float:
    return next((rung for rung in RETRY_AFTER_RUNGS if rung >= seconds), RETRY_AFTER_RUNGS[-1])


class Settling(Protocol):
    """How a transport takes a handled message's acknowledgement (RabbitMQ's gathers them: workers/acks.py)."""

    async def ack(self, message: Any) -> None: ...

    def settled(self, message: Any) -> None: ...


class Received(Protocol):
    """A message as a transport hands it over (aio-pika's incoming message is one)."""

    body: bytes
    type: str | None
    message_id: str | None
    content_type: str | None

    @property
    def headers(self) -> Mapping[str, Any]: ...

    async def ack(self) -> None: ...

    async def nack(self, requeue: bool = True) -> None: ...


def attempt_of(message: Received) -> int:
    value = (message.headers or {}).get(ATTEMPT, 1)
    return int(value) if isinstance(value, int | str) and str(value).isdigit() else 1


class Decoder:
    """Turns a message into the model its stage declared, or refuses it as `bad_message`."""

    def __init__(self, stage: Stage[Any]) -> None:
        self.stage_name = stage.name
        self.models: dict[str, type[BaseModel]] = {}
        self.callback_kinds: frozenset[str] = frozenset()
        for consumed in stage.consumes:
            if consumed.model is CallbackReceived:
                self.callback_kinds = self.callback_kinds | set(consumed.kinds)
            self.models[consumed.message_type] = consumed.model

    def decode(self, message: Received) -> BaseModel:
        # Callbacks come from the ingress without an AMQP type; every pipeline message carries its model's TYPE.
        message_type = message.type or CallbackReceived.TYPE
        model = self.models.get(message_type)
        if model is None:
            raise Permanent("bad_message", f"the {self.stage_name} stage does not take {message_type!r} messages")
        try:
            decoded = model.model_validate_json(message.body)
        except ValidationError as exc:
            raise Permanent("bad_message", str(exc).splitlines()[0]) from None
        if isinstance(decoded, CallbackReceived) and decoded.kind not in self.callback_kinds:
            raise Permanent("bad_message", f"a {decoded.kind} callback is not for the {self.stage_name} stage")
        return decoded


class Processor:
    """Runs messages through one stage and settles each: ack, delay queue, dead letters or back to the queue."""

    def __init__(
        self,
        stage: Stage[Any],
        publisher: Publishing,
        dead_letters: str,
        retry_queue: Callable[[float], Awaitable[str]],
        handoff: Handoff | None = None,
        acks: Settling | None = None,
    ) -> None:
        self.stage = stage
        self.acks = acks  # acknowledgements gathered by the transport; None: each sent at once
        self.publisher = publisher
        self.handoff = handoff  # the stages of this process that take the outputs; None: all through the broker
        # The stage's own work is bounded here: a message whose outputs are being handled in-process holds no slot.
        self.slots = asyncio.Semaphore(stage.concurrency)
        self.dead_letters = dead_letters  # the exchange
        self.retry_queue = retry_queue  # the delay queue for a delay, declared on first use
        self.decoder = Decoder(stage)
        metrics.preset_stage(stage.name)
        # The stage's own series, looked up once instead of at every message.
        self._queue_wait = metrics.STAGE_QUEUE_WAIT.labels(stage.name)
        self._in_flight = metrics.STAGE_IN_FLIGHT.labels(stage.name)
        self._seconds = metrics.STAGE_SECONDS.labels(stage.name)
        self._outcomes = {
            outcome: metrics.STAGE_MESSAGES.labels(stage.name, outcome) for outcome in metrics.STAGE_OUTCOMES
        }

    async def __call__(self, message: Received) -> None:
        published = getattr(message, "timestamp", None)  # aio-pika's: whole seconds, set by our publishers
        if published is not None:
            self._queue_wait.observe(max(0.0, time.time() - published.timestamp()))
        self._in_flight.inc()
        started = time.perf_counter()
        try:
            with structlog.contextvars.bound_contextvars(event_id=message.message_id, stage=self.stage.name):
                if tracing.enabled():
                    outcome = await self._traced(message)
                else:
                    outcome = await self._process(message)
        finally:
            self._in_flight.dec()
        self._outcomes[outcome].inc()
        self._seconds.observe(time.perf_counter() - started)

    async def _traced(self, message: Received) -> str:
        # A child of the span that published the message: the frame's trace goes on through this stage.
        with tracing.span(
            f"{self.stage.name} {message.type or CallbackReceived.TYPE}",
            "consumer",
            message.headers or {},
            **{
                "messaging.system": "rabbitmq",
                "messaging.operation.type": "process",
                "messaging.message.id": message.message_id,
                "framewatch.stage": self.stage.name,
                "framewatch.attempt": attempt_of(message),
            },
        ) as span:
            outcome = await self._process(message)
            span.set_attribute("framewatch.outcome", outcome)
            if outcome == "dead":
                span.set_error("dead-lettered")
            return outcome

    async def _process(self, message: Received) -> str:
        attempt = attempt_of(message)
        try:
            try:
                async with self.slots:
                    outputs = await self.stage.handle(self.decoder.decode(message))
                if len(outputs) == 1:  # the common case, without a task per output
                    await self._send(outputs[0])
                else:
                    await asyncio.gather(*(self._send(output) for output in outputs))
            except (StageFailure, PublishError):
                raise
            except Exception as exc:  # a bug or an unforeseen error: retried like a transient one, never dropped
                log.exception("stage_error")
                raise Transient("unexpected_error", f"{type(exc).__name__}: {exc}") from exc
            await self._ack(message)
            return "done"
        except Deferred as deferred:
            await self._retry(message, deferred.delay, attempt)
            return "deferred"
        except Transient as failure:
            delays = self.stage.retries.delays((message.headers or {}).get(LADDER))
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
            if self.acks is not None:
                self.acks.settled(message)
            with contextlib.suppress(Exception):
                await message.nack(requeue=True)
            return "requeued"

    async def _send(self, output: Output) -> None:
        if self.handoff is not None:
            await self.handoff.send(output)
            return
        await self.publisher.publish(
            output.body,
            output.routing_key,
            message_id=output.message_id,
            message_type=output.message_type,
            headers=tracing.inject(output.headers),
        )

    async def _republish(self, message: Received, exchange: str, routing_key: str, headers: dict) -> None:
        await self.publisher.publish(
            message.body,
            routing_key,
            message_id=message.message_id or "",
            message_type=message.type,
            headers=headers,
            content_type=message.content_type or "application/json",
            exchange=exchange,
        )
        await self._ack(message)

    async def _ack(self, message: Received) -> None:
        if self.acks is None:
            await message.ack()
        else:
            await self.acks.ack(message)

    async def _retry(self, message: Received, delay: float, attempt: int) -> None:
        headers = dict(message.headers or {})
        headers[ATTEMPT] = attempt
        await self._republish(message, "", await self.retry_queue(delay), headers)

    async def _dead_letter(self, message: Received, failure: StageFailure, attempt: int) -> None:
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
        await self._republish(message, self.dead_letters, self.stage.name, headers)
