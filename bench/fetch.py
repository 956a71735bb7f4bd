#!/usr/bin/env python3
"""Fetch stage throughput: N screenshot events queued, a local image server, `framewatch worker fetch` draining them.

Prints frames stored per second (download, checks, two thumbnails, three blobs written and fsynced, output message
confirmed, input acknowledged), the peak memory of each worker process, and for scale the reference ceiling: what
limits_thumb's pillow+draft would do on every core of this machine with no I/O at all. Needs RabbitMQ.

    .venv/bin/python bench/fetch.py [--events 5000] [--workers 1] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import orjson
from _harness import REFERENCES, ROOT, peak_rss_mb, wait_port
from _pipeline import depth, publish, reset

from framewatch.providers.base import RawRequest
from framewatch.providers.tencent.provider import TencentProvider
from schemas.messages import CallbackReceived
from workers import stages

TENCENT = TencentProvider()

AMQP = os.environ.get("FRAMEWATCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
NAMESPACE = "fwbench-fetch"
IMAGE_PORT = 8093


def screenshots(count: int) -> Iterator[CallbackReceived]:
    now = int(time.time())
    for n in range(count):
        event = {
            "app": "bench.app", "appname": "live", "event_type": 200, "stream_id": f"s{n % 50}",
            "channel_id": f"s{n % 50}", "create_time": now + n, "file_size": 72000, "width": 1280, "height": 720,
            "pic_url": f"/frame/{n}.jpg", "pic_full_url": f"http://127.0.0.1:{IMAGE_PORT}/frame/{n}.jpg",
        }  # fmt: skip
        # What the ingress makes of it: the Tencent package's neutral message.
        raw = RawRequest("POST", "bench.app", {}, {}, "application/json", orjson.dumps(event), "bench.app")
        yield TENCENT.message(TENCENT.parse(raw), time.time())


def reference_ceiling() -> float:
    sys.path.insert(0, str(REFERENCES))
    import limits_thumb

    limits_thumb.pillow(limits_thumb.FRAMES[0], True)
    return limits_thumb.rate(lambda d: limits_thumb.pillow(d, True), seconds=2.0) * (os.cpu_count() or 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    parser.add_argument("--concurrency", type=int, default=32, help="FRAMEWATCH_FETCH_CONCURRENCY per process")
    args = parser.parse_args()
    topology = stages.topology(NAMESPACE)
    work = Path(tempfile.mkdtemp(prefix="fwbench-fetch-"))
    asyncio.run(reset(AMQP, topology))
    images = subprocess.Popen([sys.executable, str(ROOT / "bench" / "imageserver.py"), str(IMAGE_PORT)])
    workers: list[subprocess.Popen[bytes]] = []
    try:
        wait_port(IMAGE_PORT)
        asyncio.run(publish(AMQP, topology, screenshots(args.events)))
        env = {
            **os.environ,
            "FRAMEWATCH_AMQP_URL": AMQP,
            "FRAMEWATCH_NAMESPACE": NAMESPACE,
            "FRAMEWATCH_BLOB_URL": str(work / "blobs"),
            "FRAMEWATCH_FETCH_ALLOWED_HOSTS": "127.0.0.1",
            "FRAMEWATCH_FETCH_ALLOW_PRIVATE": "true",
            "FRAMEWATCH_FETCH_CONCURRENCY": str(args.concurrency),
            "FRAMEWATCH_LOG_LEVEL": "warning",
        }
        started = time.perf_counter()
        for i in range(args.workers):
            workers.append(
                subprocess.Popen(
                    [sys.executable, "-m", "framewatch", "worker", "fetch", "--port", str(8094 + i)], env=env, cwd=ROOT
                )
            )
        done, first = 0, None
        while done < args.events:
            time.sleep(0.1)
            done = asyncio.run(depth(AMQP, topology.queue("moderate")))
            if first is None and done:
                first = (time.perf_counter(), done)
            if any(w.poll() is not None for w in workers):
                raise SystemExit("a worker exited")
        elapsed = time.perf_counter() - started
        assert first is not None
        steady = (args.events - first[1]) / (time.perf_counter() - first[0])
        peaks = [peak_rss_mb(w.pid) for w in workers]
    finally:
        for proc in [*workers, images]:
            proc.terminate()
            proc.wait(20)
        asyncio.run(reset(AMQP, topology))
        shutil.rmtree(work, ignore_errors=True)
    ceiling = reference_ceiling()
    print(f"{args.events} frames stored by {args.workers} worker process(es) in {elapsed:.1f} s, start-up included")
    print(f"framewatch fetch stage   {steady:8.1f} frames/s   target 300: {steady / 300:4.2f}x (steady state)")
    print(f"reference ceiling        {ceiling:8.1f} frames/s   all cores, no I/O: {steady / ceiling:4.2f}x")
    print("peak memory per worker   " + ", ".join(f"{p:.0f} MB" for p in peaks))


if __name__ == "__main__":
    main()
