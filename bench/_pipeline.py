"""Helpers of the worker benchmarks: empty a namespace's queues, queue callbacks as the ingress would, read depths."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Iterable

import aio_pika

from framewatch.broker.publisher import Publisher
from framewatch.broker.topology import Topology
from schemas.messages import CallbackReceived
from workers import stages


def _local_queues(namespace: str) -> list[str]:
    """Every queue of the namespace (delay queues included) when the broker is local; none otherwise."""
    if shutil.which("rabbitmqctl") is None:
        return []
    listed = subprocess.run(
        ["rabbitmqctl", "list_queues", "name", "-q", "--no-table-headers"], capture_output=True, text=True, timeout=60
    )
    return [name for name in listed.stdout.split() if name.startswith(namespace + ".")]


async def reset(amqp: str, topology: Topology) -> None:
    """Delete the namespace's queues (all of them: idle quorum queues left behind load the broker) and exchanges."""
    names = {topology.queue(stage) for stage in stages.NAMES} | {topology.dead_queue(stage) for stage in stages.NAMES}
    names |= set(_local_queues(topology.namespace))
    connection = await aio_pika.connect(amqp)
    async with connection, connection.channel() as channel:
        for name in sorted(names):
            await channel.queue_delete(name)
        for exchange in (topology.events, topology.dead_letters, topology.config_changes):
            await channel.exchange_delete(exchange)


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
