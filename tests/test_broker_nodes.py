"""AMQP_URL listing several nodes: every connection tries them in turn, a node that dies is left for another, and no
URL's password reaches a log line. The nodes here are TCP relays of this test's own in front of the real broker,
so that one can die (its listener and every connection through it) while the broker lives."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import AsyncIterator

import aio_pika
import orjson
import pytest
import structlog.testing

from framewatch.broker.topology import INITIAL_GROUP_SIZE
from tests.conftest import apply_config, serve_workers, settings_from
from tests.helpers import AMQP_URL, Broker, free_port, queue_callbacks, sample, wait_until
from tests.sink import Sink
from workers import stages
from workers.stages import DECLARED


class Relay:
    """A broker node as the workers see it: a port that forwards to the real broker, until it dies."""

    def __init__(self) -> None:
        self.port = free_port()
        self.connections: set[asyncio.StreamWriter] = set()
        self.server: asyncio.Server | None = None

    async def start(self) -> Relay:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        return self

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", 5672)
        self.connections |= {writer, upstream_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

    @property
    def clients(self) -> int:
        return sum(1 for w in self.connections if not w.is_closing()) // 2

    async def die(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.connections:
            writer.transport.abort()
        await self.server.wait_closed()


@pytest.fixture
async def relays() -> AsyncIterator[list[Relay]]:
    started = [await Relay().start(), await Relay().start()]
    yield started
    for relay in started:
        with contextlib.suppress(Exception):
            await relay.die()


def url(port: int, password: str = "guest") -> str:
    return f"amqp://guest:{password}@127.0.0.1:{port}/"


async def test_a_dead_node_in_the_list_is_passed_over_and_no_password_is_logged(
    worker_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, amqp: None, broker: Broker
) -> None:
    sink = await Sink().start()
    try:
        nodes = f"{url(free_port())},{url(5672)}"  # the first answers nothing
        settings = settings_from(monkeypatch, worker_env, amqp_url=nodes, deliver_tries="3", deliver_interval="0.2")
        await apply_config(settings, _config(sink))
        with structlog.testing.capture_logs() as logs:
            async with serve_workers(settings, ["deliver"]):
                await queue_callbacks(broker.namespace, [{**sample("stream_begin"), "app": "test.app"}])
                await wait_until(lambda: len(sink.deliveries["/stream"]) == 1, timeout=15)
    finally:
        await sink.stop()
    assert "guest:guest@" not in repr(logs)
    assert any("guest:***@" in str(line.get("url", "")) for line in logs)


async def test_when_the_node_dies_the_stages_move_to_another(
    worker_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, amqp: None, broker: Broker, relays: list[Relay]
) -> None:
    sink = await Sink().start()
    try:
        nodes = ",".join(url(relay.port) for relay in relays)
        settings = settings_from(monkeypatch, worker_env, amqp_url=nodes, deliver_tries="3", deliver_interval="0.2")
        await apply_config(settings, _config(sink))
        async with serve_workers(settings, ["deliver"]) as workers:
            first = [{**sample("stream_begin"), "app": "test.app", "sequence": "before"}]
            await queue_callbacks(broker.namespace, first)
            await wait_until(lambda: len(sink.deliveries["/stream"]) == 1, timeout=15)
            consuming = next(relay for relay in relays if f":{relay.port}/" in workers.node)  # the consumers' node
            await consuming.die()
            after = [{**sample("stream_begin"), "app": "test.app", "sequence": f"after{n}"} for n in range(5)]
            await queue_callbacks(broker.namespace, after)
            # The robust connection keeps knocking on the dead node; within FAILOVER_AFTER it moves on.
            await wait_until(lambda: len(sink.deliveries["/stream"]) == 6, timeout=30)
            assert workers.ready
    finally:
        await sink.stop()


def _config(sink: Sink) -> str:
    from tests.helpers import KEY, WEBHOOK_SECRET

    return (
        f'account = "default"\n[[templates]]\nname = "main"\ncallback_key = "{KEY}"\n'
        f'webhook_secret = "{WEBHOOK_SECRET}"\nstream_begin_notify_url = "{sink.url("/stream")}"\n'
        '[[rules]]\ndomain = "test.app"\ntemplate = "main"\n'
    )


async def test_stage_queues_are_made_with_three_replicas_and_older_queues_keep_working(broker: Broker) -> None:
    """A fresh queue gets x-quorum-initial-group-size 3; a queue an earlier version made without it (the broker
    refuses a redeclaration that changes it) is declared as it was, by the topology."""
    topology = stages.topology(broker.namespace)
    connection = await aio_pika.connect_robust(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        legacy = topology.queue("deliver")
        await channel.declare_queue(legacy, durable=True, arguments=topology.queue_arguments("deliver"))
        await topology.declare(channel)
        await channel.default_exchange.publish(aio_pika.Message(b"{}"), routing_key=legacy)
        await wait_until(lambda: broker.at_least("deliver", 1), timeout=5)
    listed = subprocess.run(  # noqa: ASYNC221 - once, after the broker work is done
        ["rabbitmqctl", "list_queues", "-q", "--formatter", "json", "name", "arguments"],
        check=True, capture_output=True, text=True, timeout=60,
    ).stdout  # fmt: skip
    arguments = {queue["name"]: {k: v for k, _, v in queue["arguments"]} for queue in orjson.loads(listed)}
    assert arguments[topology.queue("fetch")]["x-quorum-initial-group-size"] == INITIAL_GROUP_SIZE
    assert "x-quorum-initial-group-size" not in arguments[legacy]


async def test_a_binding_an_earlier_release_made_is_removed_and_what_it_queued_still_passes(broker: Broker) -> None:
    """Provider verdicts went to the moderate stage before the fetch stage stored their frames: an upgraded
    deployment routes them like a new one (to fetch only), and the moderate stage still passes on one queued
    before the upgrade instead of dead-lettering it."""
    topology = stages.topology(broker.namespace)
    assert topology.retired == {"moderate": ("*.image_moderation",)}
    connection = await aio_pika.connect_robust(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        events = await channel.declare_exchange(topology.events, aio_pika.ExchangeType.TOPIC, durable=True)
        old = await topology.declare_stage_queue(channel, "moderate")
        await old.bind(events, routing_key="*.image_moderation")  # what the earlier release bound
        await topology.declare(channel)
        await events.publish(aio_pika.Message(b"{}", delivery_mode=2), routing_key="tencent.image_moderation")
        await wait_until(lambda: broker.at_least("fetch", 1), timeout=5)
    assert await broker.count("moderate") == 0
    moderate = DECLARED["moderate"]
    assert any(consumed.kinds == ("image_moderation",) and not consumed.routed for consumed in moderate)
