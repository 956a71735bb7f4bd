"""Helpers of the worker benchmarks: empty a namespace's queues, queue callbacks as the ingress would, read depths."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import aio_pika

from framewatch.broker.publisher import Publisher
from framewatch.broker.topology import STAGES, Topology
from framewatch.schemas.messages import CallbackReceived


async def reset(amqp: str, topology: Topology, retry_delays: dict[str, tuple[float, ...]] | None = None) -> None:
    """Delete every stage and dead-letter queue of the namespace, and the given delay queues of each stage."""
    connection = await aio_pika.connect(amqp)
    async with connection, connection.channel() as channel:
        for stage in STAGES:
            await channel.queue_delete(topology.queue(stage))
            await channel.queue_delete(topology.dead_queue(stage))
            for delay in (retry_delays or {}).get(stage, ()):
                await channel.queue_delete(topology.retry_queue(stage, delay))


async def publish(amqp: str, topology: Topology, messages: Iterable[CallbackReceived], in_flight: int = 256) -> None:
    """Publish accepted callbacks, many confirms in flight at once."""
    publisher = Publisher(amqp, topology, timeout=10)
    publisher.start()
    await publisher.wait_declared()

    async def one(message: CallbackReceived) -> None:
        await publisher.publish(
            message.model_dump_json().encode(), message.routing_key, message_id=message.id, headers=message.headers()
        )

    batch: list[CallbackReceived] = []
    for message in messages:
        batch.append(message)
        if len(batch) == in_flight:
            await asyncio.gather(*map(one, batch))
            batch = []
    await asyncio.gather(*map(one, batch))
    await publisher.close()


async def depth(amqp: str, queue: str) -> int:
    connection = await aio_pika.connect(amqp)
    async with connection, connection.channel() as channel:
        declared = await channel.declare_queue(queue, passive=True)
        return int(declared.declaration_result.message_count or 0)
