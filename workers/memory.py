"""An in-memory transport for the stages: the same topics, delay ladders and dead letters as the RabbitMQ topology,
on a clock of its own, so a stage's logic is tested in milliseconds.

    broker = MemoryBroker(stages.topology("test"))
    broker.run(FetchStage(...), DeliverStage(...))
    await broker.publish(callback_json, "tencent.screenshot", message_id="e1", headers={"kind": "screenshot"})
    await broker.drain()          # until every queue is empty, delays included (their time is skipped)
    broker.dead_letters("fetch")  # what was refused, with the reason in its headers

It is a publisher too (`Publishing`): a stage's outputs go through the same routing as at the ingress. It makes no
promise about durability or redelivery: every test about delivery guarantees, failover and the fleet runs on the
real broker.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import re
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from framewatch.broker.confirms import PublishError
from framewatch.broker.topology import Topology
from workers.contract import Stage
from workers.processing import Processor


@dataclass(slots=True)
class MemoryMessage:
    """A message in a queue: what a transport hands to the processor."""

    body: bytes
    routing_key: str
    message_id: str | None
    type: str | None
    content_type: str | None
    headers: dict[str, Any] = field(default_factory=dict)
    settled: str = ""  # "ack" or "nack" once the processor settled it

    async def ack(self) -> None:
        self.settled = "ack"

    async def nack(self, requeue: bool = True) -> None:
        self.settled = "nack" if requeue else "reject"


def _pattern(binding: str) -> re.Pattern[str]:
    """An AMQP topic binding as a regular expression: `*` one word, `#` zero or more."""
    words = [r"[^.]+" if word == "*" else r".*" if word == "#" else re.escape(word) for word in binding.split(".")]
    return re.compile(r"\.".join(words) + r"\Z")


class _Consumption:
    def __init__(self) -> None:
        self.paused = False

    async def pause(self) -> None:
        self.paused = True

    async def resume(self) -> None:
        self.paused = False


class MemoryBroker:
    """Queues per stage, routed from the topology's bindings; `run` attaches stages, `drain` runs them dry."""

    def __init__(self, topology: Topology) -> None:
        self.topology = topology
        self.now = 0.0  # the broker's own clock, in seconds: delays pass when `drain` skips to them
        self._bindings = [(stage, _pattern(key)) for stage, keys in topology.bindings.items() for key in keys]
        self._queues: dict[str, deque[MemoryMessage]] = defaultdict(deque)
        self._dead: dict[str, list[MemoryMessage]] = defaultdict(list)
        self._delayed: list[tuple[float, int, str, MemoryMessage]] = []  # (due, order, stage, message)
        self._order = itertools.count()
        self._stages: dict[str, tuple[Stage[Any], Processor, _Consumption]] = {}
        self._in_flight: dict[str, set[asyncio.Task[None]]] = defaultdict(set)
        self._delay_names: dict[str, tuple[str, float]] = {}  # delay queue -> (its stage, its delay)
        self._unstarted: list[tuple[Stage[Any], _Consumption]] = []
        self.refuse_publishes: PublishError | None = None  # set to make every publish fail like a broker that won't

    # The publisher's interface
    ready = True

    def start(self) -> None:
        """Nothing to connect."""

    async def wait_declared(self) -> None:
        """Nothing to declare."""

    async def publish(
        self,
        body: bytes,
        routing_key: str,
        *,
        message_id: str,
        headers: Mapping[str, Any],
        content_type: str = "application/json",
        message_type: str | None = None,
        exchange: str | None = None,
    ) -> None:
        if self.refuse_publishes is not None:
            raise self.refuse_publishes
        message = MemoryMessage(body, routing_key, message_id, message_type, content_type, dict(headers))
        if exchange is None or exchange == self.topology.events:
            stages = [stage for stage, pattern in self._bindings if pattern.match(routing_key)]
            if not stages:  # the confirming publisher refuses what no queue takes: so does this one
                raise PublishError("unroutable", routing_key)
            for stage in stages:
                self._queues[stage].append(_copy(message))
        elif exchange == self.topology.dead_letters:
            self._dead[routing_key].append(message)
        elif exchange == "":  # a delay queue: back to its stage once the delay has passed
            stage, delay = self._delay_names[routing_key]
            heapq.heappush(self._delayed, (self.now + delay, next(self._order), stage, message))
        else:
            raise PublishError("unroutable", f"no exchange {exchange!r}")

    async def close(self) -> None:
        for stage, _, _ in self._stages.values():
            await stage.close()

    # The test's side
    def run(self, *stages: Stage[Any]) -> None:
        """Consume each stage's queue from now on (its `start` runs at the first drain)."""
        for stage in stages:
            consumption = _Consumption()
            processor = Processor(stage, self, self.topology.dead_letters, self._delay_queue(stage.name))
            self._stages[stage.name] = (stage, processor, consumption)
            self._unstarted.append((stage, consumption))

    async def drain(self, max_steps: int = 100_000) -> None:
        """Run the stages until nothing is queued, in flight or waiting out a delay (whose time is skipped). A
        paused stage's queue waits; drain returns with it full."""
        while self._unstarted:
            stage, consumption = self._unstarted.pop(0)
            await stage.start(consumption)
        for _ in range(max_steps):
            started = self._start_ready()
            in_flight = {task for tasks in self._in_flight.values() for task in tasks}
            if in_flight:
                await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                continue
            if started:
                continue
            if self._delayed and self._any_runnable_after_delay():
                due, _, stage, message = heapq.heappop(self._delayed)
                self.now = max(self.now, due)
                self._queues[stage].append(message)
                continue
            return
        raise RuntimeError(f"the stages did not settle in {max_steps} steps")

    def put(self, stage: str, body: bytes, *, message_id: str, headers: Mapping[str, Any]) -> None:
        """A message already in a stage's queue, whatever routed it there (an earlier release's bindings)."""
        self._queues[stage].append(MemoryMessage(body, "", message_id, None, "application/json", dict(headers)))

    def queued(self, stage: str) -> list[MemoryMessage]:
        return list(self._queues[stage])

    def dead_letters(self, stage: str) -> list[MemoryMessage]:
        return list(self._dead[stage])

    def delayed(self, stage: str) -> list[tuple[float, MemoryMessage]]:
        return [(due - self.now, message) for due, _, name, message in sorted(self._delayed) if name == stage]

    def paused(self, stage: str) -> bool:
        return self._stages[stage][2].paused

    # Inside
    def _delay_queue(self, stage: str) -> Callable[[float], Awaitable[str]]:
        async def retry_queue(delay: float) -> str:
            name = self.topology.retry_queue(stage, delay)
            self._delay_names[name] = (stage, delay)
            return name

        return retry_queue

    def _start_ready(self) -> bool:
        started = False
        for name, (stage, processor, consumption) in self._stages.items():
            queue, tasks = self._queues[name], self._in_flight[name]
            while queue and not consumption.paused and len(tasks) < stage.concurrency:
                message = queue.popleft()
                task = asyncio.create_task(self._settle(name, processor, message))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                started = True
        return started

    async def _settle(self, stage: str, processor: Processor, message: MemoryMessage) -> None:
        await processor(message)
        if message.settled == "nack":  # given back (the broker refused an output): it goes round again
            message.settled = ""
            self._queues[stage].append(message)

    def _any_runnable_after_delay(self) -> bool:
        return any(not self._stages[name][2].paused for _, _, name, _ in self._delayed if name in self._stages)


def _copy(message: MemoryMessage) -> MemoryMessage:
    return MemoryMessage(
        message.body, message.routing_key, message.message_id, message.type, message.content_type, dict(message.headers)
    )
