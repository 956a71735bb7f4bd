#!/usr/bin/env python3
"""CPU per screenshot, the whole pipeline: framewatch against the Celery pipeline a team would write instead
(bench/references/limits_pipeline.py), the same load on the same machine in one run.

Each side gets the same signed Tencent screenshot callbacks (RATE per second for DURATION seconds, from STREAMS
streams) pointing at the same frames (bench/references/frames.py, served on loopback), and delivers to the same
sink, which counts each webhook-id once. framewatch runs as operators run it (`framewatch ingest` and one
`framewatch worker STAGE` per stage, the streams stage included, moderation none) and makes the reference's
thumbnails (640x360 and 320x180); the reference runs its aiohttp ingress and its Celery prefork worker. CPU is read
from /proc for every process of a side (Celery's children included) and for the RabbitMQ node, from the first
callback until the last webhook arrived; per screenshot accepted. Prints each process's figure, whether anything
accepted was lost, and the ratio last.

    .venv/bin/python bench/pipeline.py [--rate 40] [--duration 30] [--rounds 1] [--only framewatch|reference]

Needs RabbitMQ on FRAMEWATCH_AMQP_URL and the reference's packages (`pip install -e ".[bench]"`: celery,
requests). `FRAMEWATCH_BENCH_REFERENCES=DIR` runs another copy of the reference.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).parent))
from _harness import REFERENCES, ROOT, cpu_seconds, wait_port
from _pipeline import _local_queues, reset
from e2e import FRAMEWATCH, KEY, WEBHOOK_SECRET, broker_pid, config

sys.path.insert(0, str(REFERENCES))
from frames import frames

sys.path.insert(0, str(ROOT))
from tests.helpers import sample
from workers import stages

AMQP = os.environ.get("FRAMEWATCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
DOMAIN = "bench.live"
STAGES = ("fetch", "moderate", "deliver", "streams")
FRAMES = frames(20)


@dataclass
class Sink:
    """The platform: answers 200 at once and counts each webhook-id once."""

    ids: set[str] = field(default_factory=set)
    posts: int = 0
    last: float = 0.0

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.posts += 1
        self.ids.add(request.headers.get("webhook-id", ""))
        self.last = time.monotonic()
        return web.Response(text="{}")


async def frame(request: web.Request) -> web.Response:
    return web.Response(body=FRAMES[int(request.match_info["n"]) % len(FRAMES)], content_type="image/jpeg")


def callback(n: int, streams: int, image_port: int) -> dict:
    """Screenshot n, signed as CSS signs it (t = now + 600, sign = md5(key + t))."""
    t = int(time.time()) + 600
    return {
        **sample("screenshot"),
        "app": DOMAIN,
        "stream_id": f"stream{n % streams}",
        "channel_id": f"stream{n % streams}",
        "pic_url": f"/frame/{n}.jpg",
        "pic_full_url": f"http://127.0.0.1:{image_port}/frame/{n}.jpg",
        "create_time": int(time.time()),
        "file_size": len(FRAMES[n % len(FRAMES)]),
        "t": t,
        "sign": hashlib.md5(f"{KEY}{t}".encode()).hexdigest(),
    }


async def offer(url: str, rate: int, duration: float, streams: int, image_port: int, first: int) -> tuple[int, int]:
    """Post RATE callbacks a second for DURATION seconds; (sent, accepted with 200)."""
    accepted = sent = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256)) as session:

        async def one(n: int) -> None:
            nonlocal accepted
            try:
                async with session.post(url, json=callback(n, streams, image_port)) as answer:
                    await answer.read()
                    accepted += answer.status == 200
            except aiohttp.ClientError:
                pass

        tasks = []
        started = time.monotonic()
        for n in range(int(rate * duration)):
            await asyncio.sleep(max(0.0, started + n / rate - time.monotonic()))
            tasks.append(asyncio.create_task(one(first + n)))
            sent += 1
        await asyncio.gather(*tasks)
    return sent, accepted


def tree(pid: int) -> list[int]:
    """A process and its descendants (Celery's prefork children)."""
    found = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        for child in children:
            found += tree(int(child))
    return found


def cpu_of(pids: dict[str, int]) -> dict[str, float]:
    spent: dict[str, float] = {}
    for name, pid in pids.items():
        spent[name] = sum(cpu_seconds(p) for p in tree(pid))
    return spent


class Side:
    name: str
    path: str

    def __init__(self, work: Path, port: int, sink_port: int) -> None:
        self.work = work
        self.port = port
        self.sink_port = sink_port
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self) -> None:
        raise NotImplementedError

    def pids(self) -> dict[str, int]:
        return {name: proc.pid for name, proc in self.procs.items()}

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()

    async def cleanup(self) -> None:
        pass

    def metrics_urls(self) -> list[str]:
        return []


class Framewatch(Side):
    name = "framewatch"
    path = "/callbacks/tencent"

    def start(self) -> None:
        self.namespace = f"fwbench-pipe-{uuid.uuid4().hex[:6]}"
        self.env = {
            **os.environ,
            "FRAMEWATCH_AMQP_URL": AMQP,
            "FRAMEWATCH_NAMESPACE": self.namespace,
            "FRAMEWATCH_DATABASE_URL": f"sqlite:///{self.work}/config.db",
            "FRAMEWATCH_BLOB_URL": str(self.work / "blobs"),
            "FRAMEWATCH_FETCH_ALLOWED_HOSTS": "127.0.0.1",
            "FRAMEWATCH_FETCH_ALLOW_PRIVATE": "true",
            "FRAMEWATCH_DELIVER_ALLOW_PRIVATE": "true",
            "FRAMEWATCH_MODERATION_BACKEND": "none",
            "FRAMEWATCH_THUMBNAIL_SIZES": "640x360,320x180",  # the reference's
            "FRAMEWATCH_LOG_LEVEL": "warning",
            "FRAMEWATCH_PORT": str(self.port),
            "FRAMEWATCH_ADMIN_PORT": str(self.port + 10),
        }
        (self.work / "bench.toml").write_text(config(self.sink_port))
        subprocess.run([*FRAMEWATCH, "config", "apply", str(self.work / "bench.toml")], env=self.env, check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        self.procs["ingest"] = subprocess.Popen([*FRAMEWATCH, "ingest"], env=self.env)
        wait_port(self.port, timeout=60)
        for offset, stage in enumerate(STAGES, start=1):
            port = self.port + offset
            self.procs[stage] = subprocess.Popen([*FRAMEWATCH, "worker", stage, "--port", str(port)], env=self.env)
            wait_port(port, timeout=60)

    def metrics_urls(self) -> list[str]:
        ports = [self.port + 10] + [self.port + offset for offset in range(1, len(STAGES) + 1)]
        return [f"http://127.0.0.1:{port}/metrics" for port in ports]

    async def cleanup(self) -> None:
        await reset(AMQP, stages.topology(self.namespace))


class Reference(Side):
    name = "reference"
    path = "/callback"

    def start(self) -> None:
        script = str(REFERENCES / "limits_pipeline.py")
        env = {
            **os.environ,
            "AMQP_URL": AMQP,
            "CALLBACK_KEY": KEY,
            "BLOB_DIR": str(self.work / "reference-blobs"),
            "NOTIFY_URL": f"http://127.0.0.1:{self.sink_port}/hooks/reference",
            "WEBHOOK_SECRET": WEBHOOK_SECRET,
        }
        self.procs["worker"] = subprocess.Popen([sys.executable, script, "worker"], env=env, cwd=self.work)
        self.procs["ingress"] = subprocess.Popen([sys.executable, script, "ingress", "--port", str(self.port)],
                                                 env=env, cwd=self.work)  # fmt: skip
        wait_port(self.port, timeout=60)
        time.sleep(3)  # the worker's consumers

    async def cleanup(self) -> None:
        await _drop([q for q in _local_queues("limits") if q.startswith("limits.")])


async def _drop(names: list[str]) -> None:
    import aio_pika

    connection = await aio_pika.connect(AMQP)
    async with connection, connection.channel() as channel:
        for name in {"limits.fetch", "limits.deliver", *names}:
            await channel.queue_delete(name)


PUBLISHED = ("framewatch_publish_seconds_count", "framewatch_published_bytes_total")


async def published(urls: list[str]) -> tuple[float, float]:
    """(messages, body bytes) the broker confirmed to these processes, from their /metrics."""
    totals = [0.0, 0.0]
    async with aiohttp.ClientSession() as session:
        for url in urls:
            async with session.get(url) as answer:
                for line in (await answer.text()).splitlines():
                    name, _, value = line.partition(" ")
                    if name in PUBLISHED:
                        totals[PUBLISHED.index(name)] += float(value)
    return totals[0], totals[1]


async def run_side(side: Side, args: argparse.Namespace, image_port: int, sink: Sink, first: int) -> dict:
    await asyncio.to_thread(side.start)  # the loop goes on serving frames and the sink meanwhile
    broker = broker_pid()
    try:
        await asyncio.sleep(2)
        before, broker_before = cpu_of(side.pids()), cpu_seconds(broker) if broker else 0.0
        delivered_before = len(sink.ids)
        published_before = await published(side.metrics_urls())
        url = f"http://127.0.0.1:{side.port}{side.path}"
        sent, accepted = await offer(url, args.rate, args.duration, args.streams, image_port, first)
        deadline = time.monotonic() + 120
        while len(sink.ids) - delivered_before < accepted and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.2)
        after, broker_after = cpu_of(side.pids()), cpu_seconds(broker) if broker else 0.0
        published_after = await published(side.metrics_urls())
    finally:
        await asyncio.to_thread(side.stop)
        await side.cleanup()
    delivered = len(sink.ids) - delivered_before
    per = {name: 1000 * (after[name] - before[name]) / max(1, accepted) for name in after}
    per["rabbitmq"] = 1000 * (broker_after - broker_before) / max(1, accepted)
    messages, size = (after - before for after, before in zip(published_after, published_before, strict=True))
    broker_load = (messages / max(1, accepted), size / max(1, accepted)) if side.metrics_urls() else None
    return {"sent": sent, "accepted": accepted, "delivered": delivered, "cpu_ms": per, "published": broker_load}


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, default=40, help="screenshots per second offered")
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--streams", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=1, help="alternate the two sides this many times")
    parser.add_argument("--only", choices=["framewatch", "reference"])
    parser.add_argument("--port", type=int, default=8400, help="the ingress port; the stages use the next ones")
    args = parser.parse_args()

    image_app, sink = web.Application(), Sink()
    image_app.router.add_get("/frame/{n:\\d+}.jpg", frame)
    sink_app = web.Application()
    sink_app.router.add_post("/{tail:.*}", sink.handle)
    runners = []
    image_port, sink_port = args.port + 20, args.port + 21
    for app, port in ((image_app, image_port), (sink_app, sink_port)):
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        runners.append(runner)

    work = Path(tempfile.mkdtemp(prefix="fw-pipeline-"))
    kinds = [Framewatch, Reference] if args.only is None else [Framewatch if args.only == "framewatch" else Reference]
    results: dict[str, list[dict]] = {kind.name: [] for kind in kinds}
    lost = 0
    try:
        for round_ in range(args.rounds):
            for kind in kinds:
                folder = work / f"{kind.name}-{round_}"
                folder.mkdir()
                side = kind(folder, args.port, sink_port)
                first = (round_ * len(kinds) + kinds.index(kind)) * 1_000_000  # every callback distinct
                result = await run_side(side, args, image_port, sink, first)
                results[kind.name].append(result)
                lost += max(0, result["accepted"] - result["delivered"])
                figures = ", ".join(f"{name} {ms:.2f}" for name, ms in result["cpu_ms"].items())
                total = sum(result["cpu_ms"].values())
                counts = f"sent {result['sent']}, accepted {result['accepted']}, delivered {result['delivered']}"
                print(f"{kind.name:10s} {counts}; CPU ms per screenshot: {figures}; total {total:.2f}", flush=True)
                if result["published"]:
                    messages, size = result["published"]
                    print(
                        f"{'':10s} published to the broker per screenshot: {messages:.2f} messages, {size:,.0f} bytes"
                    )
    finally:
        for runner in runners:
            await runner.cleanup()
        shutil.rmtree(work, ignore_errors=True)

    def best(name: str) -> float:
        return min(sum(result["cpu_ms"].values()) for result in results[name])

    print(f"\n{args.rate} screenshots/s for {args.duration:g}s, moderation none, thumbnails 640x360 + 320x180")
    for name in results:
        print(f"{name:10s} {best(name):6.2f} ms CPU per screenshot (all its processes and the RabbitMQ node, best run)")
    if len(results) == 2:
        print(f"ratio (framewatch / reference): {best('framewatch') / best('reference'):.2f}x (target: <= 0.5x)")
    if lost:
        print(f"FAILURE: {lost} accepted screenshots were not delivered")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
