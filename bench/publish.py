#!/usr/bin/env python3
"""CPU per confirmed publish: framewatch's Publisher (broker/confirms.py) against aio-pika's confirmed publish, the
path bench/references/limits_publish.py measures. Same process, same persistent body, the same quorum queue through
the default exchange, the same number in flight; CPU of this process only (the broker's is the same work for both).

    .venv/bin/python bench/publish.py [--messages 20000] [--in-flight 512] [--rounds 3]

Prints µs of CPU and messages/s per publish path, and the ratio last: the figure that keeps the hand-built
connection on the ingress's hot path (its docstring).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable

import aio_pika
import orjson
from _pipeline import reset

from framewatch.broker.publisher import Publisher
from workers import stages

AMQP = os.environ.get("FRAMEWATCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
BODY = orjson.dumps({"app": "test.app", "appname": "live", "stream_id": "s", "create_time": 1622599925,
                     "event_type": 200, "pic_url": "/s/1.jpg", "pic_full_url": "http://img.myqcloud.com/s/1.jpg",
                     "width": 1280, "height": 720, "file_size": 30670})  # fmt: skip
HEADERS = {"provider": "tencent", "kind": "screenshot", "event_type": 200, "domain": "test.app", "schema_version": 1}


async def measure(publish: Callable[[int], Awaitable[None]], n: int, window: int) -> tuple[float, float]:
    """(µs of CPU per publish, publishes per second)."""
    gate = asyncio.Semaphore(window)

    async def one(i: int) -> None:
        async with gate:
            await publish(i)

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return (time.process_time() - cpu) / n * 1e6, n / (time.perf_counter() - wall)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--in-flight", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    queue = f"fwbench-publish-{uuid.uuid4().hex[:6]}"
    connection = await aio_pika.connect(AMQP)
    channel = await connection.channel(publisher_confirms=True)
    target = await channel.declare_queue(queue, durable=True, arguments={"x-queue-type": "quorum"})
    publisher = Publisher(AMQP, stages.topology(queue), timeout=10)
    publisher.start()
    await publisher.wait_declared()

    async def ours(i: int) -> None:
        await publisher.publish(BODY, queue, message_id=f"m{i}", headers=HEADERS, exchange="")

    async def aio_pikas(i: int) -> None:
        message = aio_pika.Message(
            BODY, delivery_mode=aio_pika.DeliveryMode.PERSISTENT, content_type="application/json",
            message_id=f"m{i}", headers=HEADERS,
        )  # fmt: skip
        await channel.default_exchange.publish(message, routing_key=queue)

    best: dict[str, tuple[float, float]] = {}
    try:
        for _ in range(args.rounds):
            for name, path in (("aio-pika", aio_pikas), ("framewatch", ours)):
                cpu, rate = await measure(path, args.messages, args.in_flight)
                print(f"{name:<11} {cpu:7.1f} µs CPU per publish  {rate:8.0f} confirmed/s")
                if name not in best or cpu < best[name][0]:
                    best[name] = (cpu, rate)
                await target.purge()
    finally:
        await publisher.close()
        await channel.queue_delete(queue)
        await connection.close()
        await reset(AMQP, stages.topology(queue))  # the namespace's exchanges and queues the publisher declared
    ratio = best["framewatch"][0] / best["aio-pika"][0]
    print(f"best of {args.rounds}: aio-pika {best['aio-pika'][0]:.1f} µs, framewatch {best['framewatch'][0]:.1f} µs "
          f"of CPU per confirmed publish: ratio {ratio:.2f}x")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
