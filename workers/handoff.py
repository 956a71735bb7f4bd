"""Outputs handed to the next stages in the same process, the broker taking only what they could not finish.

Through the broker, a screenshot's FrameModerated is one publish that the broker copies into two replicated quorum
queues (deliver, streams); each copy is consumed, decoded from the JSON the last stage encoded, and acknowledged,
and the deliver stage's webhook may be one more. Handed over in-process, the webhook is POSTed and the stream
record committed by the process that stored the frame, and the input message is acknowledged after that.

The promise is the broker's own: the input stays unacknowledged until each output's effect is durable (the
receiver answered 2xx, the store committed) or the output is confirmed in the queue of the stage that did not
finish it; a process that dies meanwhile has its input redelivered. Whatever fails, declines (a receiver known to
be slow) or takes longer than HANDOFF_TIMEOUT goes to that stage's queue, where its retries, delays and dead
letters apply; the broker also keeps taking every stage that is not handed messages here.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog

from framewatch.broker.publisher import Publishing
from framewatch.broker.topology import Topology
from framewatch.runtime import metrics, tracing
from workers.contract import Output, Stage

log = structlog.get_logger("framewatch.worker")

# Messages a stage may hold, beyond its own concurrency, while what it emitted is being handled in-process: a
# stream store's batch gathers frames for up to STREAMS_BATCH_WAIT, and the stage's slots are not held meanwhile.
WINDOW = 256


class Handoff:
    """Sends a stage's outputs on: to the stages of this process that take them, else through the broker."""

    def __init__(self, publisher: Publishing, topology: Topology, timeout: float) -> None:
        self.publisher = publisher
        self.topology = topology
        self.timeout = timeout
        self.stages: dict[str, Stage[Any]] = {}  # those started: until then, the broker takes their messages
        self._targets: dict[str, tuple[str, ...]] = {}

    def add(self, stage: Stage[Any]) -> None:
        """Hand this (started) stage its messages made in this process from now on."""
        if not stage.inline:
            raise ValueError(f"the {stage.name} stage takes its messages from its queue only")
        metrics.preset_handoff(stage.name)
        self.stages[stage.name] = stage

    def targets(self, routing_key: str) -> tuple[str, ...]:
        """The stages whose queues the broker would copy a message with this key into (pipeline keys are exact)."""
        found = self._targets.get(routing_key)
        if found is None:
            found = tuple(name for name, keys in self.topology.bindings.items() if routing_key in keys)
            self._targets[routing_key] = found
        return found

    async def send(self, output: Output) -> None:
        """Done once every stage the output is for handled it here, or holds it in its queue (confirmed)."""
        targets = self.targets(output.routing_key)
        local = [name for name in targets if name in self.stages] if output.model is not None else []
        if not local:
            await self._publish(output)  # the broker routes it, one publish whatever number of queues
            return
        handled = await asyncio.gather(*(self._run(name, output) for name in local))
        missed = [name for name, done in zip(local, handled, strict=True) if not done]
        missed += [name for name in targets if name not in self.stages]
        if missed:
            await asyncio.gather(*(self._publish(output, self.topology.queue(name)) for name in missed))

    async def _run(self, name: str, output: Output) -> bool:
        stage = self.stages[name]
        started = time.perf_counter()
        attributes = {"framewatch.stage": name, "messaging.message.id": output.message_id}
        with (
            structlog.contextvars.bound_contextvars(stage=name),
            tracing.span(f"{name} {output.message_type}", "internal", **attributes) as span,
        ):
            try:
                async with asyncio.timeout(self.timeout):
                    outputs = await stage.handle_inline(output.model)
            except Exception as exc:  # a failure, a refusal, the timeout: the stage's queue takes it from here
                reason = getattr(exc, "reason", None) or type(exc).__name__
                log.info("handed_to_broker", to_stage=name, reason=reason)
                metrics.HANDOFFS.labels(name, "broker").inc()
                span.set_attributes({"framewatch.handoff": "broker", "framewatch.outcome": "handed_to_broker"})
                return False
            span.set_attributes({"framewatch.handoff": "inline", "framewatch.outcome": "done"})
            metrics.HANDOFFS.labels(name, "inline").inc()
            metrics.STAGE_MESSAGES.labels(name, "done").inc()
            metrics.STAGE_SECONDS.labels(name).observe(time.perf_counter() - started)
            # What the stage emitted goes on the same way, its spans children of this one; their failures are
            # theirs (this stage's part is done).
            if outputs:
                await asyncio.gather(*(self.send(onward) for onward in outputs))
        return True

    async def _publish(self, output: Output, queue: str | None = None) -> None:
        """To the events exchange, or (`queue`) to one stage's queue only: the others already handled it."""
        await self.publisher.publish(
            output.body,
            queue or output.routing_key,
            message_id=output.message_id,
            message_type=output.message_type,
            headers=tracing.inject(dict(output.headers)),
            exchange="" if queue else None,
        )


class Unconsumed:
    """The consumption handle of a stage that is only handed messages here: nothing to pause, the broker keeps
    its queue for the processes that consume it."""

    async def pause(self) -> None:
        pass

    async def resume(self) -> None:
        pass
