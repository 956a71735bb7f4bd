"""The publishers against the real broker: every way a publish can fail says why, in time, and the connection goes
on (or comes back) afterwards. The contract holds for framewatch's confirming connection and for aio-pika's own
publisher confirms alike (PUBLISHER=aio-pika); what only the former does (refuse at once during an alarm, start over
after nacks in a row, its heartbeat reason) is tested on it alone."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aio_pika
import orjson
import pytest
import structlog.testing

from framewatch.broker import confirms
from framewatch.broker.plain import PlainPublisher
from framewatch.broker.publisher import Publisher, PublishError, Publishing
from tests.helpers import AMQP_URL, Broker, free_port, wait_until
from tests.rabbit import RabbitNode
from workers import stages

HEADERS = {"provider": "tencent", "event_type": 200, "domain": "test.app", "schema_version": 1}


KINDS = {"confirms": Publisher, "aio-pika": PlainPublisher}


@pytest.fixture(params=list(KINDS))
def kind(request: pytest.FixtureRequest) -> type[Publisher] | type[PlainPublisher]:
    return KINDS[request.param]


@pytest.fixture
async def publisher(amqp: None, namespace: str, amqp_url: str, kind: type[Publisher]) -> AsyncIterator[Publishing]:
    publisher = kind(amqp_url, stages.topology(namespace), timeout=1.0)
    publisher.start()
    await asyncio.wait_for(publisher.wait_declared(), 15)
    yield publisher
    await publisher.close()


async def publish(
    publisher: Publishing, n: int, routing_key: str = "tencent.screenshot", *, pad: int = 0, exchange: str | None = None
) -> None:
    body = orjson.dumps({"n": n, "pad": "x" * pad})
    await publisher.publish(body, routing_key, message_id=f"m{n}", headers=HEADERS, exchange=exchange)


async def test_many_publishes_in_flight_all_land_in_order_with_their_properties(
    publisher: Publishing, broker: Broker
) -> None:
    await asyncio.gather(*(publish(publisher, n) for n in range(2000)))
    messages = await broker.take("fetch")
    assert [orjson.loads(m.body)["n"] for m in messages] == list(range(2000))
    first = messages[0]
    assert (first.message_id, first.content_type, first.delivery_mode) == ("m0", "application/json", 2)
    assert HEADERS.items() <= first.headers.items()
    assert abs(first.timestamp.timestamp() - time.time()) < 60


async def test_a_body_larger_than_a_frame_arrives_whole(publisher: Publishing, broker: Broker) -> None:
    await publish(publisher, 1, pad=600_000)  # the broker's frame_max is 128 KiB: the body spans five frames
    [message] = await broker.take("fetch")
    assert len(orjson.loads(message.body)["pad"]) == 600_000


async def test_an_unroutable_message_is_refused_and_the_next_one_goes_through(
    publisher: Publishing, broker: Broker
) -> None:
    with pytest.raises(PublishError) as refused:
        await publish(publisher, 1, routing_key="tencent.nobody-listens")
    assert refused.value.reason == "unroutable"
    await publish(publisher, 2)
    assert publisher.ready
    assert await broker.count("fetch") == 1


@contextlib.asynccontextmanager
async def full_queue(namespace: str) -> AsyncIterator[str]:
    """A quorum queue of one message that rejects publishes past it (reject-publish): the broker nacks them."""
    name = f"{namespace}.bounded"
    connection = await aio_pika.connect(AMQP_URL)
    async with connection, connection.channel() as channel:
        arguments = {"x-queue-type": "quorum", "x-max-length": 1, "x-overflow": "reject-publish"}
        await channel.declare_queue(name, durable=True, arguments=arguments)
        try:
            yield name
        finally:
            await channel.queue_delete(name)


async def test_a_full_queue_nacks_and_says_so(publisher: Publishing, namespace: str) -> None:
    async with full_queue(namespace) as name:
        refusals = []
        for n in range(4):  # a quorum queue checks its limit after each enqueue: it may hold one more
            try:
                await publish(publisher, n, routing_key=name, exchange="")
            except PublishError as exc:
                refusals.append(exc.reason)
        assert refusals and set(refusals) == {"nack"}
        await publish(publisher, 9)  # the channel goes on


@pytest.mark.parametrize("kind", [Publisher], indirect=False)
async def test_nacks_in_a_row_make_the_publisher_start_over_on_a_new_connection(
    publisher: Publisher, namespace: str
) -> None:
    """A channel nacked again and again (as RabbitMQ can do after a quorum queue's leader election) is not kept:
    after NACKS_BEFORE_REOPEN the publisher reconnects, and publishing goes on over the new connection."""
    async with full_queue(namespace) as name:
        first = publisher.connection
        with structlog.testing.capture_logs() as logs:
            for n in range(confirms.NACKS_BEFORE_REOPEN + 5):
                with contextlib.suppress(PublishError):
                    await publish(publisher, n, routing_key=name, exchange="")
                if publisher.connection is not first:
                    break
            await wait_until(lambda: publisher.ready and publisher.connection is not first, timeout=10)
        assert any("nacks in a row" in str(line.get("reason", "")) for line in logs)
        await publish(publisher, 99)  # served over the new connection


@pytest.mark.slow
async def test_a_frozen_broker_fails_the_publish_within_the_timeout_and_serves_again_after(
    own_broker: RabbitNode, publisher: Publishing, broker: Broker
) -> None:
    with own_broker.frozen():
        started = time.monotonic()
        with pytest.raises(PublishError) as refused:
            await publish(publisher, 1)
        waited = time.monotonic() - started
    assert refused.value.reason == "timeout"
    assert 0.9 < waited < 1.5  # the 1 s bound, checked by a timer every 0.1 s at most (0.25 of the timeout)
    await publish(publisher, 2)
    await asyncio.sleep(0.3)  # nothing waits: the sweep stops (an idle process wakes for nothing), the next restarts it
    with own_broker.frozen():
        started = time.monotonic()
        with pytest.raises(PublishError) as again:
            await publish(publisher, 3)
        waited = time.monotonic() - started
    assert again.value.reason == "timeout"
    assert 0.9 < waited < 1.5
    await publish(publisher, 4)
    # The broker may still store the timed-out messages once it wakes: the caller was told "not accepted", and the
    # provider's retry of it is collapsed by event id downstream. Never the other way round (told yes, not stored).
    assert await broker.count("fetch") in (2, 3, 4)


@pytest.mark.slow
@pytest.mark.parametrize("kind", [Publisher], indirect=False)
async def test_a_resource_alarm_refuses_at_once_and_lifts(
    own_broker: RabbitNode, publisher: Publisher, broker: Broker
) -> None:
    await publish(publisher, 1)
    watermark = own_broker.ctl("eval", "vm_memory_monitor:get_vm_memory_high_watermark().").strip()
    own_broker.ctl("set_vm_memory_high_watermark", "0.0000001")
    try:
        # The broker blocks publishers that publish during the alarm and tells them so.
        with pytest.raises(PublishError):
            await publish(publisher, 2)
        await wait_until(lambda: not publisher.ready, timeout=10)
        started = time.monotonic()
        with pytest.raises(PublishError) as refused:
            await publish(publisher, 3)
        assert refused.value.reason == "blocked"
        assert time.monotonic() - started < 0.1
    finally:
        own_broker.ctl("set_vm_memory_high_watermark", watermark)
    await wait_until(lambda: publisher.ready, timeout=10)
    await publish(publisher, 4)
    assert await broker.count("fetch") >= 2


@pytest.mark.slow
async def test_a_dropped_connection_fails_what_was_in_flight_and_comes_back(
    own_broker: RabbitNode, publisher: Publishing, broker: Broker
) -> None:
    await publish(publisher, 1)
    first = publisher.connection
    in_flight = [asyncio.ensure_future(publish(publisher, n)) for n in range(2, 200)]
    own_broker.ctl("close_all_connections", "test: dropped")
    outcomes = await asyncio.gather(*in_flight, return_exceptions=True)
    failures = [o for o in outcomes if isinstance(o, PublishError)]
    assert all(f.reason in ("connection_lost", "not_connected") for f in failures)
    await wait_until(lambda: publisher.ready and publisher.connection is not first, timeout=20)
    await publish(publisher, 500)
    # Every publish told "confirmed" is in the queue.
    assert await broker.count("fetch") >= 1 + (len(outcomes) - len(failures)) + 1


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("amqp://guest:wrong@127.0.0.1:5672/", "403 ACCESS_REFUSED"),
        ("amqp://guest:guest@127.0.0.1:5672/no-such-vhost", "530 NOT_ALLOWED"),
    ],
)
async def test_a_refused_connection_says_why(url: str, reason: str) -> None:
    with pytest.raises(ConnectionError, match=reason):
        await confirms.connect(url, "framewatch-test", timeout=1)


async def test_a_publisher_without_a_broker_refuses_at_once_and_is_not_ready(
    namespace: str, kind: type[Publisher]
) -> None:
    publisher = kind(f"amqp://guest:guest@127.0.0.1:{free_port()}/", stages.topology(namespace), timeout=1.0)
    publisher.start()
    try:
        await asyncio.sleep(0.3)
        assert not publisher.ready
        with pytest.raises(PublishError) as refused:
            await publish(publisher, 1)
        assert refused.value.reason == "not_connected"
    finally:
        await publisher.close()


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subject = ["-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"]
    files = ["-keyout", str(key), "-out", str(cert)]
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", *subject, *files],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
async def tls_broker(tmp_path: Path) -> AsyncIterator[tuple[int, str]]:
    """The real broker behind a TLS listener on loopback (its certificate for `localhost`, self-signed)."""
    cert, key = self_signed_certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def relay(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        broker_reader, broker_writer = await asyncio.open_connection("127.0.0.1", 5672)
        await asyncio.gather(pipe(client_reader, broker_writer), pipe(broker_reader, client_writer))

    server = await asyncio.start_server(relay, "127.0.0.1", 0, ssl=context)
    yield server.sockets[0].getsockname()[1], str(cert)
    server.close()


async def test_amqps_with_the_operators_ca_publishes_and_an_unknown_ca_is_refused(
    tls_broker: tuple[int, str], namespace: str, amqp: None, broker: Broker, kind: type[Publisher]
) -> None:
    port, ca = tls_broker
    trusted = f"amqps://guest:guest@localhost:{port}/?cafile={ca}"
    publisher = kind(trusted, stages.topology(namespace), timeout=2.0)
    publisher.start()
    try:
        # aio-pika (declaring) and the confirming connection (publishing) read the same URL and its cafile.
        await asyncio.wait_for(publisher.wait_declared(), 15)
        await publish(publisher, 1)
    finally:
        await publisher.close()
    assert await broker.count("fetch") == 1
    with pytest.raises(ssl.SSLCertVerificationError):  # the system's CAs do not know this certificate
        await confirms.connect(f"amqps://guest:guest@localhost:{port}/", "framewatch-test", timeout=1)


@pytest.mark.slow
async def test_heartbeats_keep_an_idle_connection_and_notice_a_silent_broker(
    own_broker: RabbitNode, amqp: None, namespace: str
) -> None:
    publisher = Publisher(f"{own_broker.url}?heartbeat=1", stages.topology(namespace), timeout=1.0)
    publisher.start()
    try:
        await asyncio.wait_for(publisher.wait_declared(), 15)
        first = publisher.connection
        assert first is not None
        await asyncio.sleep(3)  # idle for three heartbeat intervals: the beats keep it open
        assert publisher.connection is first and publisher.ready
        with own_broker.frozen():  # the socket stays open, nothing comes through: only heartbeats can tell
            await wait_until(lambda: first.closed.done(), timeout=5)
        assert "no frame from the broker" in first.closed.result()
        await wait_until(lambda: publisher.ready and publisher.connection is not first, timeout=20)
        await publish(publisher, 1)
    finally:
        await publisher.close()


async def test_closing_waits_for_the_answers_due_and_says_goodbye(
    amqp: None, namespace: str, amqp_url: str, broker: Broker
) -> None:
    queue = f"{namespace}.fetch"
    declaring = await aio_pika.connect(amqp_url)
    async with declaring:
        await stages.topology(namespace).declare(await declaring.channel())
    connection = await confirms.connect(amqp_url, "test-close", timeout=5)
    props = confirms.properties(content_type="application/json", message_id="m1", headers=HEADERS)
    in_flight = connection.publish("", queue, props, b"{}", "m1")
    started = time.monotonic()
    await connection.close()  # Close, then the broker's Close-Ok: no abort, no error
    assert in_flight.done() and in_flight.exception() is None  # answered before the goodbye
    assert await broker.count("fetch") == 1
    assert connection.closed.result() == "closed"
    assert time.monotonic() - started < 2  # the Close-Ok came: the 2 s abort was not needed
    with pytest.raises(PublishError) as refused:
        connection.publish("", queue, props, b"{}", "m2")
    assert refused.value.reason == "not_connected"


async def test_the_publisher_closes_its_connection_politely(amqp: None, namespace: str, amqp_url: str) -> None:
    publisher = Publisher(amqp_url, stages.topology(namespace), timeout=1.0)
    publisher.start()
    await asyncio.wait_for(publisher.wait_declared(), 15)
    connection = publisher.connection
    assert connection is not None
    await publish(publisher, 1)
    await publisher.close()
    assert connection.closed.done() and not connection.closed.cancelled()  # its own close ran, not a cancel
    assert connection.closed.result() == "closed"
