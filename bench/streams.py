#!/usr/bin/env python3
"""The streams stage alone: N moderated frames of 250 streams queued, then one `framewatch worker streams` drains
them into the stream store (SQLite by default, or --database postgresql://...). Prints frames per second, the
worker's CPU per frame, and how many frames became covers.

    .venv/bin/python bench/streams.py [--frames 5000] [--database URL]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _harness import ROOT, cpu_seconds, wait_port
from _pipeline import depth, reset

from framewatch.broker.publisher import Publisher
from framewatch.config.store import ConfigStore
from schemas.messages import (
    CallbackReceived,
    FrameModerated,
    FrameStored,
    Screenshot,
    StoredImage,
    Stream,
    routing_key,
)
from workers import stages

AMQP = os.environ.get("FRAMEWATCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
STREAMS = 250
PORT = 8399


def frame(n: int) -> FrameModerated:
    stream, second = f"s{n % STREAMS}", 1_700_000_000 + n // STREAMS
    url = f"http://frames.example.com/{stream}/{second}.jpg"
    callback = CallbackReceived(
        id=f"e{n}", provider="tencent", domain="bench.live", kind="screenshot", event_type=200,
        received_at=time.time(), stream=Stream(app="live", name=stream),
        screenshot=Screenshot(image_url=url, capture_time=second),
        event={"event_type": 200, "stream_id": stream, "pic_full_url": url, "app": "bench.live"},
    )  # fmt: skip
    original = StoredImage(key=f"{stream}/{second}.jpg", url=url, width=1280, height=720, bytes=30_000,
                           content_type="image/jpeg")  # fmt: skip
    thumbnail = original.model_copy(update={"key": f"{stream}/{second}-320.jpg", "width": 320, "height": 180})
    stored = FrameStored(
        id=callback.id, provider="tencent", domain="bench.live", stream_id=stream, capture_time=second,
        source_url=url, sha256="0" * 64, original=original, thumbnails=[thumbnail], callback=callback,
    )  # fmt: skip
    return FrameModerated(id=callback.id, domain="bench.live", frame=stored, moderated_at=time.time())


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=5000)
    parser.add_argument("--database", help="the stream store's URL (default: a fresh SQLite file)")
    args = parser.parse_args()
    topology = stages.topology(f"fwbench-streams-{uuid.uuid4().hex[:6]}")
    work = Path(tempfile.mkdtemp(prefix="fw-streams-"))
    database = args.database or f"sqlite:///{work}/config.db"
    store = ConfigStore(
        database.replace("sqlite://", "sqlite+aiosqlite://").replace("postgresql://", "postgresql+asyncpg://")
    )
    await store.migrate()
    await store.close()
    publisher = Publisher(AMQP, topology, timeout=10)
    publisher.start()
    await publisher.wait_declared()
    messages = [frame(n) for n in range(args.frames)]
    for start in range(0, len(messages), 256):
        await asyncio.gather(*(
            publisher.publish(m.model_dump_json().encode(), routing_key(FrameModerated.TYPE), message_id=m.id,
                              message_type=FrameModerated.TYPE, headers={"domain": m.domain, "kind": "screenshot"})
            for m in messages[start : start + 256]
        ))  # fmt: skip
    await publisher.close()
    env = {**os.environ, "FRAMEWATCH_AMQP_URL": AMQP, "FRAMEWATCH_NAMESPACE": topology.namespace,
           "FRAMEWATCH_DATABASE_URL": database, "FRAMEWATCH_LOG_LEVEL": "warning"}  # fmt: skip
    argv = [str(ROOT / ".venv" / "bin" / "framewatch"), "worker", "streams", "--port", str(PORT)]
    worker = subprocess.Popen(argv, env=env)  # noqa: ASYNC220 - started once, not awaited
    try:
        wait_port(PORT, 60)
        cpu, started = cpu_seconds(worker.pid), time.perf_counter()
        while await depth(AMQP, topology.queue("streams")) > 0:  # noqa: ASYNC110 - polling another process
            await asyncio.sleep(0.1)
        elapsed, cpu = time.perf_counter() - started, cpu_seconds(worker.pid) - cpu
        with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/metrics") as answer:  # noqa: ASYNC210 - once, at the end
            covers = next(line for line in answer.read().decode().splitlines()
                          if line.startswith("framewatch_cover_update_seconds_count"))  # fmt: skip
    finally:
        worker.terminate()
        worker.wait()
        await reset(AMQP, topology)
    print(f"streams stage, {args.frames} frames of {STREAMS} streams, {database.split(':')[0]}: "
          f"{args.frames / elapsed:.0f} frames/s, {1000 * cpu / args.frames:.2f} ms CPU per frame; "
          f"covers set {covers.split()[-1]}")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
