"""Test helpers: signing provider bodies, running the ingress for real, reading what reached the broker."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp

SAMPLES = Path(__file__).resolve().parent / "samples" / "tencent"  # the documents' bodies: samples/README.md
AMQP_URL = os.environ.get("FRAMEWATCH_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
REDIS_URL = os.environ.get("FRAMEWATCH_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_URL = os.environ.get("FRAMEWATCH_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
KEY = "testKey123"
# The test templates' Standard Webhooks secret (32 bytes, base64): what a receiver is given to verify deliveries.
WEBHOOK_SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()


def sample(name: str) -> dict[str, Any]:
    return json.loads((SAMPLES / f"{name}.json").read_text())


def signed(body: dict[str, Any], key: str = KEY, t: int | None = None) -> dict[str, Any]:
    """The body re-signed as CSS would: t = now + 600, sign = md5(key + t)."""
    t = int(time.time()) + 600 if t is None else t
    return {**body, "t": t, "sign": hashlib.md5(f"{key}{t}".encode()).hexdigest()}


def screenshot(n: int, domain: str = "test.app", **extra: Any) -> dict[str, Any]:
    """A distinct screenshot event number n."""
    return {
        **sample("screenshot"),
        "app": domain,
        "pic_url": f"/s/{n}.jpg",
        "pic_full_url": f"http://img.myqcloud.com/s/{n}.jpg",
        "create_time": 1_700_000_000 + n,
        **extra,
    }


_issued_ports: set[int] = set()


def free_port() -> int:
    """A free port below the kernel's ephemeral range (32768 and up), never handed out twice in a run: a port
    the kernel picked with bind(0) can be taken by any outgoing connection (a child's own, to the broker) before
    the child binds it, and the child then fails to start."""
    while True:
        port = random.randrange(20000, 32000)
        if port in _issued_ports:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _issued_ports.add(port)
        return port


async def post(session: aiohttp.ClientSession, url: str, body: Any, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    headers = kwargs.pop("headers", {"Content-Type": "application/json"})
    async with session.post(url, data=data, headers=headers, **kwargs) as response:
        return response.status, await response.json(content_type=None)


async def partial_post(
    base_url: str, path: str, headers: str, length: int, part: bytes
) -> tuple[int, dict[str, Any], float]:
    """POSTs headers announcing `length` bytes, sends only `part` of the body, then waits for the answer:
    (status, JSON body, seconds from the partial send to the answer's headers). A client that trickles or stalls."""
    host, port = base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"POST {path} HTTP/1.1\r\nHost: x\r\n{headers}Content-Length: {length}\r\n\r\n".encode() + part)
    started = time.monotonic()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
    waited = time.monotonic() - started
    size = int(next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))[15:])
    payload = await reader.readexactly(size)
    writer.close()
    return int(head.split(b" ")[1]), json.loads(payload), waited


async def metric(session: aiohttp.ClientSession, base_url: str, sample_line_prefix: str) -> float:
    """The value of one sample on /metrics (0 when absent). In-process tests share one registry: compare deltas."""
    async with session.get(f"{base_url}/metrics") as response:
        for line in (await response.text()).splitlines():
            if line.startswith(sample_line_prefix + " "):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


async def wait_until(predicate, timeout: float = 10.0, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


async def ready(url: str) -> bool:
    try:
        async with aiohttp.ClientSession() as session, session.get(f"{url}/readyz") as response:
            return response.status == 200
    except aiohttp.ClientError:
        return False


class Broker:
    """Reads the queues of one test's namespace, each time on a fresh connection (tests restart the broker)."""

    def __init__(self, namespace: str, url: str = AMQP_URL) -> None:
        self.namespace = namespace
        self.url = url

    async def count(self, stage: str) -> int:
        connection = await aio_pika.connect(self.url)
        async with connection, connection.channel() as channel:
            queue = await channel.declare_queue(f"{self.namespace}.{stage}", passive=True)
            return int(queue.declaration_result.message_count or 0)

    async def at_least(self, stage: str, n: int) -> bool:
        return await self.count(stage) >= n

    async def at_most(self, stage: str, n: int) -> bool:
        return await self.count(stage) <= n

    async def take(self, stage: str) -> list[aio_pika.abc.AbstractIncomingMessage]:
        """Every message now in the stage's queue, removed."""
        messages = []
        connection = await aio_pika.connect(self.url)
        async with connection, connection.channel() as channel:
            queue = await channel.declare_queue(f"{self.namespace}.{stage}", passive=True)
            while (message := await queue.get(no_ack=True, fail=False)) is not None:
                messages.append(message)
        return messages


class IngressProcess:
    """`framewatch ingest` as a separate process, as operators run it."""

    command: tuple[str, ...] = ("ingest",)
    port_variable = "FRAMEWATCH_PORT"

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.admin_port = free_port()
        self.admin_url = f"http://127.0.0.1:{self.admin_port}"
        ports = {self.port_variable: str(self.port), "FRAMEWATCH_ADMIN_PORT": str(self.admin_port)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "framewatch", *self.command, *args],
            env={**os.environ, **env, **ports},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )

    async def wait_ready(self, timeout: float = 30.0) -> None:
        """Ready, or an error that carries what the process printed (it exited, or never became ready)."""

        async def up() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"exited with {self.proc.returncode} before ready:\n{self.output()}")
            return await ready(self.url)

        try:
            await wait_until(up, timeout=timeout, interval=0.1)
        except AssertionError as error:
            if self.proc.poll() is None:
                self.kill()
                raise AssertionError(f"{error}; the process printed:\n{self.output()}") from None
            raise

    def terminate(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)

    def output(self) -> str:
        return self.proc.stdout.read().decode() if self.proc.stdout else ""


async def migrate_store(env: dict[str, str]) -> None:
    """Give the config store its schema, as the ingress does before the workers of a deployment start (a worker
    that finds none waits HANDED_START_WAIT for it before consuming)."""
    from framewatch.config.store import ConfigStore
    from framewatch.settings import Settings

    store = ConfigStore(Settings(database_url=env["FRAMEWATCH_DATABASE_URL"]).database_url.get_secret_value())
    try:
        await store.migrate()
    finally:
        await store.close()


class WorkerProcess(IngressProcess):
    """`framewatch worker STAGE...` as a separate process."""

    command = ("worker",)
    port_variable = "FRAMEWATCH_WORKER_PORT"


async def queue_callbacks(namespace: str, events: list[dict[str, Any]], domain: str = "test.app") -> list[str]:
    """Publish Tencent events as the ingress would have accepted them; returns their event ids."""
    from framewatch.broker.publisher import Publisher
    from framewatch.providers.base import RawRequest
    from framewatch.providers.tencent.provider import TencentProvider
    from workers import stages

    provider = TencentProvider()
    publisher = Publisher(AMQP_URL, stages.topology(namespace), timeout=5)
    publisher.start()
    await publisher.wait_declared()
    ids = []
    try:
        for body in events:
            raw = RawRequest("POST", domain, {}, {}, "application/json", json.dumps(body).encode(), domain)
            message = provider.message(provider.parse(raw), time.time())
            await publisher.publish(
                message.model_dump_json().encode(),
                message.routing_key,
                message_id=message.id,
                headers=message.headers(),
            )
            ids.append(message.id)
    finally:
        await publisher.close()
    return ids


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "framewatch", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
