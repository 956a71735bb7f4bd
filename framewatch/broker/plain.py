"""The publisher on aio-pika's own publisher confirms (PUBLISHER=aio-pika): the mainstream client, for operators
who would rather run it than framewatch's confirming connection (broker/confirms.py).

Same promise as `Publisher`: `publish` returns once the broker confirmed the message routed and stored, and
raises PublishError otherwise within the timeout. What it costs (bench/publish.py): about six times the CPU per
confirmed publish, and during a broker's resource alarm each publish waits out its timeout (aiormq holds writes
until the broker unblocks) where the confirming connection refuses at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import aio_pika
import aiormq
import structlog
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange

from framewatch.broker.confirms import PublishError
from framewatch.broker.nodes import Nodes, redact
from framewatch.broker.publisher import until_up
from framewatch.broker.topology import Topology
from framewatch.runtime import metrics

log = structlog.get_logger("framewatch.broker")


class PlainPublisher:
    def __init__(self, urls: str, topology: Topology, timeout: float, name: str = "framewatch") -> None:
        self.nodes = Nodes(urls)
        self.topology = topology
        self.timeout = timeout
        self.name = name
        self.connection: AbstractConnection | None = None
        self._channel: AbstractChannel | None = None
        self._exchanges: dict[str, AbstractExchange] = {}
        self._declared = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        channel = self._channel
        return self._declared.is_set() and channel is not None and not channel.is_closed

    async def wait_declared(self) -> None:
        await self._declared.wait()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._stay_connected(), name="broker-connect")

    async def _stay_connected(self) -> None:
        while not self._closing:
            lost = asyncio.Event()
            opened = functools.partial(self._open, lost=lost)
            _, url = await until_up(opened, self.nodes, retry_on=(Exception,))
            self._declared.set()
            metrics.BROKER_CONNECTED.set(1)
            log.info("broker_connected", url=redact(url), client="aio-pika")
            await lost.wait()
            self._channel = None
            metrics.BROKER_CONNECTED.set(0)
            if not self._closing:
                log.warning("broker_connection_lost", client="aio-pika")

    async def _open(self, url: str, lost: asyncio.Event) -> AbstractConnection:
        connection = await aio_pika.connect(url, client_properties={"connection_name": self.name})
        connection.close_callbacks.add(lambda *_: lost.set())  # closed by either side, or the socket lost
        try:
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            events = await self.topology.declare(channel)
        except BaseException:
            await connection.close()
            raise
        self.connection, self._channel = connection, channel
        self._exchanges = {self.topology.events: events, "": channel.default_exchange}
        return connection

    async def _exchange(self, name: str) -> AbstractExchange:
        exchange = self._exchanges.get(name)
        if exchange is None:
            assert self._channel is not None
            exchange = self._exchanges[name] = await self._channel.get_exchange(name, ensure=False)
        return exchange

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
        if not self.ready:
            raise PublishError("not_connected", "broker not connected")
        message = aio_pika.Message(
            body,
            headers=dict(headers),
            content_type=content_type,
            message_id=message_id,
            type=message_type,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            timestamp=datetime.now(UTC),
        )
        target = await self._exchange(self.topology.events if exchange is None else exchange)
        try:
            confirmation = await target.publish(message, routing_key, mandatory=True, timeout=self.timeout)
        except TimeoutError:
            raise PublishError("timeout", f"no confirm within {self.timeout}s") from None
        except aio_pika.exceptions.PublishError as exc:  # returned: routed to no queue
            raise PublishError("unroutable", routing_key) from exc
        except aio_pika.exceptions.DeliveryError as exc:
            raise PublishError("nack", str(exc)) from exc
        except (aiormq.exceptions.AMQPError, ConnectionError, RuntimeError) as exc:
            raise PublishError("connection_lost", f"{type(exc).__name__}: {exc}") from exc
        if not isinstance(confirmation, aiormq.spec.Basic.Ack):
            raise PublishError("nack", type(confirmation).__name__)

    async def close(self) -> None:
        self._closing = True
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.connection is not None:
            with contextlib.suppress(Exception):
                await self.connection.close()
        metrics.BROKER_CONNECTED.set(0)
