#!/usr/bin/env python3
"""Deliveries per second to local sinks, and whether slow receivers among fast ones hold the fast ones back.

Eight push domains, each bound to a template whose stream URLs point at its own receiver (its own port). N stream
events are queued, spread evenly over the domains, and `framewatch worker deliver` drains them:
  all fast     every receiver answers at once
  K slow       K receivers (1 and --slow, 4 by default) answer after 5 s (within the delivery timeout)
Prints the fast receivers' deliveries per second in each run and the ratio to the first (target: about 1.0).
Needs RabbitMQ.

    .venv/bin/python bench/deliver.py [--events 4000] [--slow 4]
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _harness import ROOT, wait_port
from _pipeline import depth, publish, reset

from schemas.messages import CallbackReceived
from workers import stages

AMQP = os.environ.get("FRAMEWATCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
NAMESPACE = "fwbench-deliver"
PORTS = [8101, 8102, 8103, 8104, 8105, 8107, 8108, 8109]


def config() -> str:
    parts = ['account = "bench"']
    for n, port in enumerate(PORTS):
        url = f"http://127.0.0.1:{port}/stream"
        parts.append(f'[[templates]]\nname = "t{n}"\ncallback_key = "benchKey{n}"\nstream_begin_notify_url = "{url}"')
        parts.append(f'[[rules]]\ndomain = "d{n}.bench"\ntemplate = "t{n}"')
    return "\n".join(parts) + "\n"


def stream_begins(count: int) -> Iterator[CallbackReceived]:
    """Stream events spread evenly over the domains."""
    for n in range(count):
        domain = f"d{n % len(PORTS)}.bench"
        event = {"app": domain, "event_type": 1, "stream_id": f"s{n}", "sequence": str(n), "appname": "live"}
        yield CallbackReceived(id=f"deliver{n:08d}", provider="tencent", domain=domain, kind="stream_begin",
                               event_type=1, received_at=time.time(), event=event)  # fmt: skip


def run(events: int, slow: int, slow_delay: float, env: dict[str, str]) -> float:
    """Fast receivers' deliveries per second: time until every fast event is delivered (the queue only holds slow)."""
    topology = stages.topology(NAMESPACE)
    asyncio.run(reset(AMQP, topology))
    slow_ports = ",".join(map(str, PORTS[len(PORTS) - slow :])) if slow else ""
    sinks = subprocess.Popen([sys.executable, str(ROOT / "bench" / "sinks.py"), slow_ports, str(slow_delay),
                              *map(str, PORTS)])  # fmt: skip
    worker = None
    try:
        for port in PORTS:
            wait_port(port)
        asyncio.run(publish(AMQP, topology, stream_begins(events)))
        slow_share = events * slow // len(PORTS)
        started = time.perf_counter()
        worker = subprocess.Popen([sys.executable, "-m", "framewatch", "worker", "deliver", "--port", "8106"],
                                  env=env, cwd=ROOT)  # fmt: skip
        while asyncio.run(depth(AMQP, topology.queue("deliver"))) > slow_share:
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
    finally:
        for proc in [p for p in (worker, sinks) if p is not None]:
            proc.terminate()
            proc.wait(20)
        asyncio.run(reset(AMQP, topology))
    return (events - slow_share) / elapsed


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=4000)
    parser.add_argument("--slow", type=int, default=4, help="slow receivers in the last run (of 8)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fwbench-deliver-"))
    env = {
        **os.environ,
        "FRAMEWATCH_AMQP_URL": AMQP,
        "FRAMEWATCH_NAMESPACE": NAMESPACE,
        "FRAMEWATCH_DATABASE_URL": f"sqlite:///{work}/config.db",
        "FRAMEWATCH_DELIVER_ALLOW_PRIVATE": "true",
        "FRAMEWATCH_LOG_LEVEL": "error",
    }
    (work / "bench.toml").write_text(config())
    subprocess.run([sys.executable, "-m", "framewatch", "config", "apply", str(work / "bench.toml")], env=env,
                   check=True, cwd=ROOT, capture_output=True)  # fmt: skip
    fast = run(args.events, 0, 0.0, env)
    print(f"all receivers fast          {fast:8.1f} deliveries/s")
    for slow in sorted({1, args.slow}):
        rate = run(args.events, slow, 5.0, env)
        print(f"{slow} of 8 receivers slow (5 s) {rate:8.1f} deliveries/s to the fast ones   {rate / fast:4.2f}x")


if __name__ == "__main__":
    main()
