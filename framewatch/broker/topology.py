"""Exchanges, queues and bindings, declared idempotently by every process at start.

Events go to one topic exchange with routing key `<provider>.<kind>`; each stage has a durable quorum queue,
so events queue up safely before any worker exists, and a dead-letter queue beside it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue

# Poison messages that crash a worker again and again are dead-lettered by the broker after this many deliveries.
DELIVERY_LIMIT = 20
# Replicas of each stage queue on a fresh cluster: three survive one node's loss and keep a majority; more only
# cost every write another copy.
INITIAL_GROUP_SIZE = 3


@dataclass(frozen=True)
class Topology:
    """Names and declarations of one deployment's exchanges and queues. `bindings`: each stage's routing keys,
    derived from what the stages consume (workers/stages.py builds the deployment's topology); a topology without
    them names things but cannot declare them."""

    namespace: str = "framewatch"
    bindings: Mapping[str, tuple[str, ...]] = field(default_factory=dict, hash=False, compare=False)
    # Keys a stage's queue was bound to by an earlier release: removed at declare (unbinding is idempotent).
    retired: Mapping[str, tuple[str, ...]] = field(default_factory=dict, hash=False, compare=False)

    @property
    def stages(self) -> tuple[str, ...]:
        return tuple(self.bindings)

    @property
    def events(self) -> str:
        return f"{self.namespace}.events"

    @property
    def dead_letters(self) -> str:
        return f"{self.namespace}.dead-letters"

    @property
    def config_changes(self) -> str:
        """Fanout exchange: every process binds its own queue and reloads its config on each message."""
        return f"{self.namespace}.config-changes"

    def queue(self, stage: str) -> str:
        return f"{self.namespace}.{stage}"

    def dead_queue(self, stage: str) -> str:
        return f"{self.namespace}.{stage}.dead"

    def retry_queue(self, stage: str, delay: float) -> str:
        return f"{self.namespace}.{stage}.retry.{round(delay * 1000)}ms"

    def queue_arguments(self, stage: str) -> dict[str, object]:
        return {
            "x-queue-type": "quorum",
            "x-delivery-limit": DELIVERY_LIMIT,
            "x-dead-letter-exchange": self.dead_letters,
            "x-dead-letter-routing-key": stage,
            # At-least-once dead-lettering: the broker keeps a message until the dead-letter queue confirms it.
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        }

    async def declare(self, channel: AbstractChannel) -> AbstractExchange:
        """Declare everything; returns the events exchange."""
        if not self.bindings:
            raise ValueError("a topology without the stages' bindings would route events nowhere")
        events = await channel.declare_exchange(self.events, aio_pika.ExchangeType.TOPIC, durable=True)
        dead = await channel.declare_exchange(self.dead_letters, aio_pika.ExchangeType.DIRECT, durable=True)
        for stage, keys in self.bindings.items():
            queue = await self.declare_stage_queue(channel, stage)
            for key in keys:
                await queue.bind(events, routing_key=key)
            for key in self.retired.get(stage, ()):
                await queue.unbind(events, routing_key=key)
            dead_queue = await channel.declare_queue(
                self.dead_queue(stage), durable=True, arguments={"x-queue-type": "quorum"}
            )
            await dead_queue.bind(dead, routing_key=stage)
        return events

    async def declare_stage_queue(self, channel: AbstractChannel, stage: str) -> AbstractQueue:
        """A stage's queue, replicated on INITIAL_GROUP_SIZE nodes when this declaration makes it. A queue made
        before the group size was set keeps its arguments (the broker refuses a redeclaration that changes them):
        the refusal closes the channel, which is reopened, and the queue declared as it was."""
        arguments = self.queue_arguments(stage)
        replicated = {**arguments, "x-quorum-initial-group-size": INITIAL_GROUP_SIZE}
        try:
            return await channel.declare_queue(self.queue(stage), durable=True, arguments=replicated)
        except aio_pika.exceptions.ChannelPreconditionFailed:
            await channel.reopen()
            return await channel.declare_queue(self.queue(stage), durable=True, arguments=arguments)

    async def declare_retry(self, channel: AbstractChannel, stage: str, delay: float) -> str:
        """A delay queue: messages wait `delay` seconds in it, then the broker dead-letters them back to the stage.

        One queue per delay keeps expiry in order (a quorum queue expires messages at its head only).
        """
        name = self.retry_queue(stage, delay)
        await channel.declare_queue(
            name,
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                "x-message-ttl": round(delay * 1000),
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": self.queue(stage),
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
            },
        )
        return name
