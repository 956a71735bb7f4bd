"""A publisher with confirms: many publishes in flight, each bounded in time, reconnecting on its own."""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, TypeVar

import aio_pika
import aiormq
import structlog
from aio_pika.abc import AbstractRobustConnection

from framewatch.broker import confirms
from framewatch.broker.confirms import ConfirmingConnection, PublishError
from framewatch.broker.nodes import Nodes, redact
from framewatch.broker.topology import Topology
from framewatch.runtime import metrics

log = structlog.get_logger("framewatch.broker")


T = TypeVar("T")
UNREACHABLE = (TimeoutError, OSError, aiormq.exceptions.AMQPError)


async def until_up(
    attempt: Callable[[str], Awaitable[T]], nodes: Nodes, retry_on: tuple[type[Exception], ...] = UNREACHABLE
) -> tuple[T, str]:
    """`attempt(url)` on each node in turn, again and again, backing off from 0.5 s to 10 s after every round,
    for as long as no node answers; the result and the node's URL."""
    delay = 0.5
    while True:
        for _ in range(len(nodes)):
            url = nodes.next()
            try:
                return await attempt(url), url
            except retry_on as exc:
                error = f"{type(exc).__name__}: {exc}"
                log.warning("broker_unreachable", url=redact(url), error=error, retry_in=delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, 10.0)


async def connect_until_up(nodes: Nodes, name: str) -> tuple[AbstractRobustConnection, str]:
    """A robust connection to the first node that answers, retried with backoff while none does."""
    return await until_up(lambda url: aio_pika.connect_robust(url, client_properties={"connection_name": name}), nodes)


async def connect_any(nodes: Nodes, name: str) -> aio_pika.abc.AbstractConnection:
    """A plain connection to the first node that answers, each tried once (one-shot commands)."""
    error: BaseException | None = None
    for _ in range(len(nodes)):
        url = nodes.next()
        try:
            return await aio_pika.connect(url, client_properties={"connection_name": name})
        except UNREACHABLE as exc:
            error = exc
            log.warning("broker_unreachable", url=redact(url), error=f"{type(exc).__name__}: {exc}")
    assert error is not None
    raise error


class Publishing(Protocol):
    """What the ingress, the stages and the console need of a publisher. `publish` returns once the broker holds
    the message (routed to a queue, stored) and raises PublishError otherwise, within its timeout. Implemented by
    `Publisher` (below, the confirming connection of broker/confirms.py), `PlainPublisher` (broker/plain.py,
    aio-pika's own publisher confirms) and the stages' in-memory transport (workers/memory.py)."""

    @property
    def ready(self) -> bool: ...

    def start(self) -> None: ...

    async def wait_declared(self) -> None: ...

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
    ) -> None: ...

    async def close(self) -> None: ...


# Read when /metrics is scraped, not updated per message; `framewatch run` has two publishers (ingress, workers).
_PUBLISHERS: weakref.WeakSet[Publisher] = weakref.WeakSet()
metrics.PUBLISH_IN_FLIGHT.set_function(lambda: sum(publisher.in_flight for publisher in _PUBLISHERS))


class Publisher:
    """Declares the topology, then publishes over one confirming connection, reconnecting on its own.

    `publish` returns only once the broker has confirmed that the message is routed to a queue and stored;
    anything else (no connection, a resource alarm, nack, unroutable, no answer in time) raises PublishError at once
    or within `timeout`, never later.
    """

    def __init__(self, urls: str, topology: Topology, timeout: float, name: str = "framewatch") -> None:
        self.nodes = Nodes(urls)
        self.topology = topology
        self.timeout = timeout
        self.name = name
        self.connection: ConfirmingConnection | None = None
        self._declared = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        _PUBLISHERS.add(self)

    @property
    def in_flight(self) -> int:
        return self.connection.in_flight if self.connection is not None else 0

    @property
    def ready(self) -> bool:
        """Connected, channel in confirm mode, topology declared, the broker not refusing publishes."""
        connection = self.connection
        return self._declared.is_set() and connection is not None and connection.is_open and not connection.blocked

    async def wait_declared(self) -> None:
        await self._declared.wait()

    def start(self) -> None:
        """Connect in the background: the process serves (and answers 503) while the broker is unreachable. The
        listeners and stages of a process share one publisher: a second start is a no-op."""
        if self._task is not None:
            return
        self._task = asyncio.create_task(self._stay_connected(), name="broker-connect")

    async def _stay_connected(self) -> None:
        connected_before = False
        while not self._closing:
            # Whatever fails, this loop must go on: publishing waits for it.
            # Every reconnect starts from the next node: a node that died is not waited for.
            connection, url = await until_up(self._open, self.nodes, retry_on=(Exception,))
            self.connection = connection
            self._declared.set()
            metrics.BROKER_CONNECTED.set(1)
            log.info("broker_reconnected" if connected_before else "broker_connected", url=redact(url))
            connected_before = True
            # Shielded: cancelling this task on close must not cancel the connection's own future, or its close()
            # takes it for closed already and never says goodbye (nor waits for the answers still due).
            reason = await asyncio.shield(connection.closed)
            metrics.BROKER_CONNECTED.set(0)
            if not self._closing:  # our own close on shutdown is not worth a warning
                log.warning("broker_connection_lost", reason=reason)

    async def _open(self, url: str) -> ConfirmingConnection:
        await self._declare(url)
        return await confirms.connect(url, self.name, timeout=self.timeout)

    async def _declare(self, url: str) -> None:
        """Exchanges and queues, on a short aio-pika connection: idempotent, and again after every reconnect
        (a broker that lost its definitions gets them back)."""
        connection = await aio_pika.connect(url, client_properties={"connection_name": f"{self.name}-declare"})
        try:
            await self.topology.declare(await connection.channel())
        finally:
            await connection.close()

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
        started = time.perf_counter()
        try:
            connection = self.connection
            if connection is None:
                raise PublishError("not_connected", "broker not connected")
            props = confirms.properties(
                content_type=content_type, message_id=message_id, headers=headers, message_type=message_type
            )
            target = self.topology.events if exchange is None else exchange
            await connection.publish(target, routing_key, props, body, message_id)
        except PublishError as exc:
            metrics.PUBLISH_FAILURES.labels(exc.reason).inc()
            raise
        metrics.PUBLISH_SECONDS.observe(time.perf_counter() - started)
        metrics.PUBLISHED_BYTES.inc(len(body))

    async def close(self) -> None:
        self._closing = True
        if self._task and not self._task.done():
            self._task.cancel()
        if self.connection is not None:
            await self.connection.close()
        metrics.BROKER_CONNECTED.set(0)
