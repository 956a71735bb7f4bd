#!/usr/bin/env python3
"""Ingress throughput: `framewatch ingest` against the naive reference receiver, same load, same machine.

Each server is pinned to core 0 and wrk (post_unique.lua: every request a distinct signed screenshot event) to
core 1, one after the other; prints each one's rate, p99, CPU per request (its own and the RabbitMQ node's) and the
ratios. Besides bare aiohttp and the naive receiver it runs the floor (bench/floor_receiver.py): the least a receiver
that answers only once the broker confirmed can do, which shows how much of the gap to bare is the confirm's wait.
Needs RabbitMQ and wrk.

    .venv/bin/python bench/ingress.py [--seconds 8] [--connections 64] [--rounds 1] [--redis [URL]] [--tracing]

`--tracing` adds framewatch with OpenTelemetry on, exporting every callback's span by OTLP/HTTP to a collector on
loopback (bench/collector.py, on wrk's core): the cost of tracing against the same run's figure with it off.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import aio_pika

sys.path.insert(0, str(Path(__file__).parent))
from _harness import REFERENCES, ROOT, Server, cpu_seconds, pinned, require, wait_port, wrk
from e2e import broker_pid

AMQP = os.environ.get("FRAMEWATCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
NAMESPACE = "fwbench"
CONFIG = """
account = "bench"
[[templates]]
name = "bench"
callback_key = "testkey"
[[rules]]
domain = "test.app"
template = "bench"
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


ADMIN_PORT = 8092  # framewatch's admin listener: /metrics is served there, never on the callback listener


def duplicates(port: int) -> int:
    """Callbacks framewatch answered 200 as repeats of an event it already queued (0 for the naive receiver)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return 0
    found = re.search(r'framewatch_callbacks_total\{outcome="duplicate"[^}]*\} ([\d.e+]+)', text)
    return int(float(found.group(1))) if found else 0


def forget_dedupe_keys(url: str) -> None:
    """An earlier run's window would turn this run's events into repeats: wrk's scripts seed their event names
    from the clock, and two runs can draw the same."""
    import redis

    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{NAMESPACE}:dedupe:*", count=10_000))
    for start in range(0, len(keys), 10_000):
        client.delete(*keys[start : start + 10_000])
    client.close()


async def queued(name: str) -> int:
    connection = await aio_pika.connect(AMQP)
    async with connection, connection.channel() as channel:
        queue = await channel.declare_queue(name, passive=True)
        return int(queue.declaration_result.message_count or 0)


async def drop_queues(names: list[str]) -> None:
    connection = await aio_pika.connect(AMQP)
    channel = await connection.channel()
    for name in names:
        await channel.queue_delete(name)
    await connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=1, help="alternate the servers this many times")
    parser.add_argument(
        "--redis",
        nargs="?",
        const=os.environ.get("FRAMEWATCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
        help="also run framewatch with the dedupe window in Redis (the fleet setup), at this URL",
    )
    parser.add_argument(
        "--redis-frozen",
        action="store_true",
        help="also run framewatch against a Redis of its own that is frozen (SIGSTOP) for the whole run",
    )
    parser.add_argument(
        "--tracing", action="store_true", help="also run framewatch exporting its spans to a collector on loopback"
    )
    args = parser.parse_args()
    require("wrk", "apt-get install wrk")
    script = REFERENCES / "post_unique.lua"
    work = Path(tempfile.mkdtemp(prefix="fwbench-"))
    env = {
        "FRAMEWATCH_DATABASE_URL": f"sqlite:///{work}/config.db",
        "FRAMEWATCH_NAMESPACE": NAMESPACE,
        "FRAMEWATCH_PORT": "8091",
        "FRAMEWATCH_ADMIN_PORT": str(ADMIN_PORT),
        "FRAMEWATCH_LOG_LEVEL": "warning",
        "FRAMEWATCH_AMQP_URL": AMQP,
        # The shared wrk scripts sign with t one hour ahead; CSS's default validity is 600 s.
        "FRAMEWATCH_SIGN_VALIDITY": "3600",
    }
    (work / "bench.toml").write_text(CONFIG)
    framewatch = [sys.executable, "-m", "framewatch"]
    subprocess.run(
        [*framewatch, "config", "apply", str(work / "bench.toml")],
        env={**os.environ, **env},
        check=True,
        capture_output=True,
    )
    candidates = {
        # The HTTP ceiling: aiohttp parsing the JSON and answering, nothing checked or queued.
        "bare": ([sys.executable, str(REFERENCES / "limits_ingress.py"), "bare", "8092"], 8092, "/callback", {}),
        "naive": ([sys.executable, str(REFERENCES / "limits_ingress.py"), "naive", "8092"], 8092, "/callback", {}),
        # Confirm-before-answer and nothing more, over framewatch's confirming connection.
        "floor": ([sys.executable, str(ROOT / "bench" / "floor_receiver.py"), "8092"], 8092, "/callback", {}),
        "framewatch": ([*framewatch, "ingest"], 8091, "/callbacks/tencent", env),
    }
    if args.redis:
        redis_env = {**env, "FRAMEWATCH_REDIS_URL": args.redis}
        candidates["framewatch+redis"] = ([*framewatch, "ingest"], 8091, "/callbacks/tencent", redis_env)
    collector_port = free_port()
    if args.tracing:
        tracing_env = {**env, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"http://127.0.0.1:{collector_port}/v1/traces"}
        candidates["framewatch+tracing"] = ([*framewatch, "ingest"], 8091, "/callbacks/tencent", tracing_env)
        # What a fleet at this rate runs: the standard sampler variables keep 1 trace in 100.
        sampled_env = {
            **tracing_env,
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0.01",
        }
        candidates["framewatch+tracing-1%"] = ([*framewatch, "ingest"], 8091, "/callbacks/tencent", sampled_env)
    frozen_port = 0
    if args.redis_frozen:
        frozen_port = free_port()
        frozen_env = {**env, "FRAMEWATCH_REDIS_URL": f"redis://127.0.0.1:{frozen_port}/0"}
        candidates["framewatch+frozen-redis"] = ([*framewatch, "ingest"], 8091, "/callbacks/tencent", frozen_env)
    queue_of = {name: f"{NAMESPACE}.fetch" for name in candidates} | {
        "naive": "limits.naive",
        "floor": "limits.floor",
        "bare": "",
    }
    results: dict[str, list] = {name: [] for name in candidates}
    broker = broker_pid()
    shortfall = repeated = 0
    stages = ("fetch", "moderate", "deliver")
    queues = ["limits.naive", "limits.floor", *(f"{NAMESPACE}.{s}" for s in stages)]
    queues += [f"{NAMESPACE}.{s}.dead" for s in stages]
    for _ in range(args.rounds):
        for name, (argv, port, path, extra) in candidates.items():
            asyncio.run(drop_queues(queues))  # both start from empty queues: a deep quorum queue is slower
            frozen = None
            if name == "framewatch+frozen-redis":  # answers connections, never commands
                frozen = subprocess.Popen(
                    ["redis-server", "--port", str(frozen_port), "--bind", "127.0.0.1", "--save", ""],
                    cwd=work,
                    stdout=subprocess.DEVNULL,
                )
                wait_port(frozen_port)
            elif "FRAMEWATCH_REDIS_URL" in extra:
                forget_dedupe_keys(extra["FRAMEWATCH_REDIS_URL"])
            collector = None
            if name.startswith("framewatch+tracing"):
                collector = subprocess.Popen(
                    pinned(1, [sys.executable, str(ROOT / "bench" / "collector.py"), str(collector_port)]),
                    stdout=subprocess.PIPE,
                    text=True,
                )
                wait_port(collector_port)
            server = Server(argv, port, {**extra, "AMQP_URL": AMQP}, cwd=ROOT)
            time.sleep(1.5)  # let the broker connection and topology come up
            if frozen is not None:
                frozen.send_signal(signal.SIGSTOP)
            warm = wrk(f"http://127.0.0.1:{port}{path}", script, 2, args.connections)
            before = cpu_seconds(server.proc.pid), cpu_seconds(broker) if broker else 0.0
            result = wrk(f"http://127.0.0.1:{port}{path}", script, args.seconds, args.connections)
            after = cpu_seconds(server.proc.pid), cpu_seconds(broker) if broker else 0.0
            done = max(result.requests, 1)
            result = dataclasses.replace(
                result,
                cpu_us=(after[0] - before[0]) / done * 1e6,
                broker_us=(after[1] - before[1]) / done * 1e6,
            )
            results[name].append(result)
            repeats = duplicates(ADMIN_PORT) if name.startswith("framewatch") else 0
            server.stop()
            exported = ""
            if collector is not None:
                collector.terminate()
                exported = f", {collector.communicate(timeout=20)[0].split()[-1]} spans exported"
            if frozen is not None:
                frozen.send_signal(signal.SIGCONT)
                frozen.terminate()
                frozen.wait(10)
            # Every 200 must be a message in the queue, but for repeats of an event already queued (more is possible:
            # wrk drops the answers still in flight when it stops).
            answered = warm.requests - warm.errors + result.requests - result.errors
            stored = asyncio.run(queued(queue_of[name])) if queue_of[name] else answered  # bare queues nothing
            shortfall += max(0, answered - repeats - stored)
            repeated += repeats
            line = f"{name:16s} {result.rate:9.0f} req/s  p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms"
            line += f"  CPU {result.cpu_us:5.1f} µs/req, broker {result.broker_us:5.1f}"
            print(f"{line}  {answered} answered 200 ({repeats} as repeats), {stored} queued{exported}")
    asyncio.run(drop_queues(queues))
    if args.redis:
        forget_dedupe_keys(args.redis)

    def best(name: str):
        return max(results[name], key=lambda r: r.rate)

    naive = best("naive")
    header = f"{'server':24s} {'req/s':>9s} {'p50 ms':>8s} {'p99 ms':>8s} {'errors':>7s}"
    print(f"{header} {'CPU µs/req':>11s} {'broker µs/req':>14s}")
    for name in candidates:
        r = best(name)
        line = f"{name:24s} {r.rate:9.0f} {r.p50_ms:8.2f} {r.p99_ms:8.2f} {r.errors:7d}"
        print(f"{line} {r.cpu_us:11.1f} {r.broker_us:14.1f}")
    for name in candidates:
        if name not in ("naive", "bare", "floor"):
            ours = best(name)
            print(
                f"ratio ({name} / naive): rate {ours.rate / naive.rate:.2f}x, p99 {ours.p99_ms / naive.p99_ms:.2f}x "
                f"(target: rate >= 1.2x, p99 <= 1.0x)"
            )
    bare, floor, framewatch = best("bare"), best("floor"), best("framewatch")
    print(f"ratio (floor / bare aiohttp): rate {floor.rate / bare.rate:.2f}x: the most a confirmed receiver got here")
    print(f"ratio (framewatch / floor): rate {framewatch.rate / floor.rate:.2f}x")
    print(f"ratio (framewatch / bare aiohttp): rate {framewatch.rate / bare.rate:.2f}x (target: >= 0.5x)")
    if args.tracing:
        off = best("framewatch")
        for name in ("framewatch+tracing", "framewatch+tracing-1%"):
            on = best(name)
            print(f"{name} / framewatch: rate {on.rate / off.rate:.2f}x, p99 {on.p99_ms / off.p99_ms:.2f}x")
    if shortfall:
        print(f"FAILURE: {shortfall} callbacks answered 200 are not in the queue")
        sys.exit(1)
    if repeated:
        print(f"WARNING: {repeated} requests repeated an earlier event (answered without a publish): rates inflated")
    if any(best(name).errors for name in candidates):
        print("WARNING: non-2xx answers or socket errors during the run; the rates are not comparable")


if __name__ == "__main__":
    main()
