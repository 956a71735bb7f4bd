"""What an outsider can make a worker spend: a receiver's huge answer and a burst of decompression bombs cost a
real worker process (`framewatch worker ...`) bounded memory, measured as its peak resident set (VmHWM)."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from PIL import Image

from tests.conftest import apply_config, settings_from
from tests.helpers import (
    KEY,
    WEBHOOK_SECRET,
    Broker,
    WorkerProcess,
    free_port,
    migrate_store,
    queue_callbacks,
    sample,
    wait_until,
)
from tests.imageserver import ImageServer

MB = 1024 * 1024


def peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


class HugeAnswers:
    """A receiver that answers 200 and then streams a body of `size` bytes (or until the client hangs up)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.port = free_port()
        self.hits = 0
        self._runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        self.hits += 1
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/octet-stream"})
        response.content_length = self.size
        await response.prepare(request)
        chunk = b"x" * MB
        try:
            for _ in range(self.size // MB):
                await response.write(chunk)
        except (ConnectionError, RuntimeError):
            pass  # the worker stopped reading: what it should do
        return response

    async def __aenter__(self) -> HugeAnswers:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self.handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


@pytest.fixture
async def worker_settings_env(worker_env: dict[str, str]) -> AsyncIterator[dict[str, str]]:
    yield {**worker_env, "FRAMEWATCH_DELIVER_TRIES": "2", "FRAMEWATCH_DELIVER_INTERVAL": "0.2"}


async def test_a_receiver_answering_a_huge_body_costs_the_deliver_worker_no_memory(
    worker_settings_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, amqp: None, broker: Broker
) -> None:
    async with HugeAnswers(400 * MB) as receiver:
        settings = settings_from(monkeypatch, worker_settings_env)
        url = f"http://127.0.0.1:{receiver.port}/stream"
        await apply_config(
            settings,
            f'account = "default"\n[[templates]]\nname = "main"\ncallback_key = "{KEY}"\n'
            f'webhook_secret = "{WEBHOOK_SECRET}"\nstream_begin_notify_url = "{url}"\n'
            '[[rules]]\ndomain = "test.app"\ntemplate = "main"\n',
        )
        worker = WorkerProcess(worker_settings_env, "deliver")
        try:
            await worker.wait_ready()
            before = peak_rss(worker.proc.pid)
            events = [{**sample("stream_begin"), "app": "test.app", "sequence": str(n)} for n in range(4)]
            await queue_callbacks(broker.namespace, events)
            await wait_until(lambda: receiver.hits >= 4, timeout=20)
            await wait_until(lambda: broker.at_most("deliver", 0), timeout=20)
            grown = peak_rss(worker.proc.pid) - before
        finally:
            worker.terminate()
    assert receiver.hits == 4  # each answered 200 once: delivered, not retried
    assert await broker.count("deliver.dead") == 0
    assert grown < 40 * MB, f"the worker grew by {grown / MB:.0f} MB for 4 answers of 400 MB"


def png_bomb(width: int, height: int) -> bytes:
    """A few kilobytes that unpack to width x height RGB pixels."""
    out = io.BytesIO()
    Image.new("RGB", (width, height), (12, 34, 56)).save(out, "PNG", optimize=True)
    return out.getvalue()


def webp_bomb(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (12, 34, 56)).save(out, "WEBP", lossless=True)
    return out.getvalue()


async def test_a_burst_of_decompression_bombs_costs_the_fetch_worker_bounded_memory(
    worker_env: dict[str, str], amqp: None, broker: Broker
) -> None:
    """Images that declare up to the pixel cap decode one large image at a time; past the cap, never."""
    env = {**worker_env, "FRAMEWATCH_FETCH_MAX_BYTES": str(4 * MB), "FRAMEWATCH_MODERATION_BACKEND": "none"}
    bombs = {
        "under.png": png_bomb(4000, 4000),  # 16 Mpx: at the default cap, decoded (one at a time)
        "under.webp": webp_bomb(4000, 3900),
        "over.png": png_bomb(6000, 6000),  # 36 Mpx: over the cap, refused from its header
    }
    server = await ImageServer().start()
    try:
        server.files.update(bombs)
        await migrate_store(env)
        worker = WorkerProcess(env, "fetch")
        try:
            await worker.wait_ready()
            before = peak_rss(worker.proc.pid)
            events = [
                {
                    **sample("screenshot"),
                    "app": "test.app",
                    "pic_url": f"/{n}/{name}",
                    "pic_full_url": server.url(f"/file/{name}"),
                    "file_size": None,
                    "create_time": 1_700_000_000 + n,
                }
                for n in range(4)
                for name in bombs
            ]
            await queue_callbacks(broker.namespace, events)
            # Every frame handled: the ones under the cap passed on, the others dead-lettered (a message being
            # decoded is not in the queue's count, so the outputs are what is waited for).
            await wait_until(lambda: broker.at_least("deliver", 8), timeout=90)
            await wait_until(lambda: broker.at_least("fetch.dead", 4), timeout=30)
            grown = peak_rss(worker.proc.pid) - before
        finally:
            worker.terminate()
    finally:
        await server.close()
    assert await broker.count("deliver") == 8  # the frames under the cap were thumbnailed and passed on
    assert await broker.count("fetch.dead") == 4  # the ones over it refused, permanently
    assert grown < 300 * MB, f"the worker grew by {grown / MB:.0f} MB for a burst of 12 bombs"
