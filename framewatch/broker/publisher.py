"""A publisher with confirms: many publishes in flight, each bounded in time, reconnecting on its own."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import aio_pika
import aiormq
import structlog
from aio_pika.abc import AbstractChannel, AbstractRobustConnection
from pamqp.commands import Basic

from framewatch.broker.topology import Topology
from framewatch.runtime import metrics
from framewatch.runtime.logs import redact_url

log = structlog.get_logger("framewatch.broker")


async def connect_until_up(url: str, name: str) -> AbstractRobustConnection:
    """A robust connection, retried with backoff for as long as the broker is unreachable."""
    delay = 0.5
    while True:
        try:
            return await aio_pika.connect_robust(url, client_properties={"connection_name": name})
        except (TimeoutError, OSError, aiormq.exceptions.AMQPError) as exc:
            log.warning("broker_unreachable", url=redact_url(url), error=str(exc), retry_in=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)


class PublishError(Exception):
    """The broker did not confirm the message: it must be treated as not accepted."""


class Publisher:
    """Owns one robust connection and one confirming channel.

    `publish` returns only once the broker has confirmed that the message is routed to a queue and stored;
    anything else (no connection, nack, unroutable, no answer in time) raises PublishError at once or within
    `timeout`, never later.
    """

    def __init__(
        self,
        url: str,
        topology: Topology,
        timeout: float,
    ) -> None:
        self.url = url
        self.topology = topology
        self.timeout = timeout
        self.connection: AbstractRobustConnection | None = None
        self.channel: AbstractChannel | None = None
        self._declared = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        """Connected, channel open, topology declared."""
        return (
            self._declared.is_set()
            and self.connection is not None
            and self.connection.connected.is_set()
            and self.channel is not None
            and not self.channel.is_closed
        )

    async def wait_declared(self) -> None:
        await self._declared.wait()

    def start(self) -> None:
        """Connect in the background: the process serves (and answers 503) while the broker is unreachable."""
        self._task = asyncio.create_task(self._connect_forever(), name="broker-connect")

    async def _connect_forever(self) -> None:
        connection = await connect_until_up(self.url, "framewatch")
        self.connection = connection
        connection.close_callbacks.add(self._on_lost)
        connection.reconnect_callbacks.add(self._on_reconnect)
        self.channel = await connection.channel(publisher_confirms=True, on_return_raises=False)
        await self.topology.declare(self.channel)
        self._declared.set()
        metrics.BROKER_CONNECTED.set(1)
        log.info("broker_connected", url=redact_url(self.url))

    def _on_lost(self, *_: Any) -> None:
        metrics.BROKER_CONNECTED.set(0)
        if not self._closing:  # our own close on shutdown is not worth a warning
            log.warning("broker_connection_lost")

    def _on_reconnect(self, *_: Any) -> None:
        metrics.BROKER_CONNECTED.set(1)
        log.info("broker_reconnected")

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
        """Publish to the events exchange (or `exchange`; "" is the default exchange, routing by queue name)."""
        if not self.ready:
            metrics.PUBLISH_FAILURES.labels("not_connected").inc()
            raise PublishError("broker not connected")
        assert self.channel is not None
        properties = Basic.Properties(
            content_type=content_type,
            delivery_mode=2,  # persistent
            message_id=message_id,
            timestamp=datetime.now(UTC),
            headers=dict(headers),
            message_type=message_type,
        )
        started = time.perf_counter()
        metrics.PUBLISH_IN_FLIGHT.inc()
        try:
            channel = await self.channel.get_underlay_channel()
            # aiormq bounds the wait for the confirm itself; no second timer per message.
            confirmation = await channel.basic_publish(
                body,
                exchange=self.topology.events if exchange is None else exchange,
                routing_key=routing_key,
                properties=properties,
                mandatory=True,
                timeout=self.timeout,
            )
        except TimeoutError:
            metrics.PUBLISH_FAILURES.labels("timeout").inc()
            raise PublishError(f"no confirm within {self.timeout}s") from None
        except (aiormq.exceptions.AMQPError, aio_pika.exceptions.AMQPException, ConnectionError, RuntimeError) as exc:
            metrics.PUBLISH_FAILURES.labels("error").inc()
            raise PublishError(f"{type(exc).__name__}: {exc}") from None
        finally:
            metrics.PUBLISH_IN_FLIGHT.dec()
        if not isinstance(confirmation, Basic.Ack):
            # A Basic.Return: no queue is bound for this routing key, so nothing would keep the message.
            metrics.PUBLISH_FAILURES.labels("unroutable").inc()
            raise PublishError(f"unroutable: {routing_key}")
        metrics.PUBLISH_SECONDS.observe(time.perf_counter() - started)

    async def close(self) -> None:
        self._closing = True
        if self._task and not self._task.done():
            self._task.cancel()
        if self.connection is not None:
            await self.connection.close()
        metrics.BROKER_CONNECTED.set(0)
