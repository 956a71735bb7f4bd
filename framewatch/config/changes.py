"""Config change announcements: a fanout exchange every process listens on, so a change is live everywhere at once.

The announcement carries no configuration, only "reload now": a process that misses one (broker down, just
starting) still converges through LiveConfig's periodic poll.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import aio_pika
import orjson
import structlog
from aio_pika.abc import AbstractExchange, AbstractIncomingMessage, AbstractRobustConnection

from framewatch.broker.nodes import Nodes
from framewatch.broker.publisher import connect_any, connect_until_up
from framewatch.broker.topology import Topology

log = structlog.get_logger("framewatch.config")


class ChangeFeed:
    def __init__(self, amqp_url: str, topology: Topology) -> None:
        self.amqp_url = amqp_url
        self.topology = topology
        self.connection: AbstractRobustConnection | None = None
        self.exchange: AbstractExchange | None = None
        self._task: asyncio.Task[None] | None = None

    def listen(self, on_change: Callable[[], None]) -> None:
        """Call `on_change` on every announcement (and on every reconnection: announcements may have been missed)."""
        self._task = asyncio.create_task(self._listen(on_change), name="config-changes")

    async def _listen(self, on_change: Callable[[], None]) -> None:
        self.connection, _ = await connect_until_up(Nodes(self.amqp_url), "framewatch-config")
        self.connection.reconnect_callbacks.add(lambda *_: on_change())
        channel = await self.connection.channel()
        self.exchange = await self._declare(channel)
        # Server-named, exclusive: one queue per process, gone with its connection; the robust channel redeclares it.
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(self.exchange)

        async def on_message(_: AbstractIncomingMessage) -> None:
            on_change()

        await queue.consume(on_message, no_ack=True)
        on_change()  # anything announced while this process was connecting

    async def _declare(self, channel: aio_pika.abc.AbstractChannel) -> AbstractExchange:
        return await channel.declare_exchange(self.topology.config_changes, aio_pika.ExchangeType.FANOUT, durable=True)

    async def announce(self, revision: int) -> None:
        """Best effort: a process that does not hear it reloads on its next poll."""
        try:
            if self.exchange is None:  # a one-shot caller (the CLI) that does not listen
                nodes = Nodes(self.amqp_url)
                async with asyncio.timeout(3 * len(nodes)):
                    connection = await connect_any(nodes, "framewatch-announce")
                    async with connection:
                        exchange = await self._declare(await connection.channel())
                        await exchange.publish(self._message(revision), routing_key="")
                return
            await self.exchange.publish(self._message(revision), routing_key="", timeout=3)
        except Exception as exc:  # the change is committed; replicas converge by polling
            log.warning("config_change_not_announced", revision=revision, error=str(exc))

    @staticmethod
    def _message(revision: int) -> aio_pika.Message:
        return aio_pika.Message(orjson.dumps({"revision": revision}), content_type="application/json")

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self.connection:
            await self.connection.close()
