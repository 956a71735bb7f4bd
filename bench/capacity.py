#!/usr/bin/env python3
"""Size a fleet from measured figures: runs `bench/e2e.py` (every stage its own process, the real RabbitMQ) with
moderation off, with a cloud-style API and with the local model, reads the CPU each process and the broker spent
per screenshot (start-up excluded), and prints, for 1k, 10k and 50k screenshots per second, the cores and replicas
of each stage and the broker's.

    .venv/bin/python bench/capacity.py [--rate 60] [--model-rate 30] [--duration 30]

Beside them, in the same run: the Celery reference pipeline (bench/pipeline.py's, moderation none) on the same
load, CPU per screenshot per process; and the day's machine speed, the rate of the bare aiohttp server
(bench/references/limits_ingress.py bare) on one core under wrk, so that figures of different days can be compared.

Replicas: one Python process uses one core, and a stage is planned at 70% of its cores so that it absorbs bursts
and a node's loss. The local model runs one process per core (FRAMEWATCH_MODERATION_THREADS=1).
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import orjson
from _harness import REFERENCES, Server, require, wrk

HERE = Path(__file__).parent
RATES = (1_000, 10_000, 50_000)
TARGET_UTILISATION = 0.7
STAGES = ("ingest", "fetch", "moderate", "deliver", "streams", "rabbitmq")
# One quorum queue has one leader: past roughly this many messages per second it is the bottleneck, whatever the
# cluster's size (RabbitMQ's own guidance for quorum queues; see README). Every screenshot crosses each stage queue.
QUEUE_CEILING = 20_000
BROKER_NODE_CORES = 8


def measure(moderation: str, rate: int, duration: float) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        argv = [sys.executable, str(HERE / "e2e.py"), "--streams", str(rate), "--duration", str(duration),
                "--moderation", moderation, "--report-json", out.name]  # fmt: skip
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        return orjson.loads(Path(out.name).read_bytes())


def reference(rate: int, duration: float) -> dict[str, float]:
    """The Celery reference pipeline on the same load: CPU ms per screenshot of its worker, ingress and the broker."""
    argv = [sys.executable, str(HERE / "pipeline.py"), "--only", "reference", "--rate", str(rate),
            "--duration", str(duration), "--streams", str(rate)]  # fmt: skip
    out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    line = next(line for line in out.splitlines() if line.startswith("reference ") and "CPU ms" in line)
    figures = line.split("CPU ms per screenshot: ", 1)[1].split(";")[0]
    return {name: float(ms) for name, ms in (part.rsplit(" ", 1) for part in figures.split(", "))}


def machine_speed(seconds: int = 5) -> float:
    """Requests per second the bare aiohttp server answers on core 0, wrk on core 1: the day's yardstick."""
    require("wrk", "apt-get install wrk")
    server = Server([sys.executable, str(REFERENCES / "limits_ingress.py"), "bare", "8092"], 8092)
    try:
        time.sleep(1)
        wrk("http://127.0.0.1:8092/callback", REFERENCES / "post_unique.lua", 2, 64)  # warm
        return wrk("http://127.0.0.1:8092/callback", REFERENCES / "post_unique.lua", seconds, 64).rate
    finally:
        server.stop()


def plan(cpu_ms: dict[str, float], rate: int) -> dict[str, tuple[float, int]]:
    """Cores and replicas per part at `rate` screenshots/s."""
    planned = {}
    for part in STAGES:
        cores = rate * cpu_ms.get(part, 0.0) / 1000 / TARGET_UTILISATION
        if part == "rabbitmq":  # nodes of BROKER_NODE_CORES, at least three (a quorum survives one node's loss)
            planned[part] = (cores, max(3, math.ceil(cores / BROKER_NODE_CORES)))
        else:
            planned[part] = (cores, max(2 if part == "ingest" else 1, math.ceil(cores)))
    return planned


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, default=60, help="screenshots/s offered while measuring")
    parser.add_argument("--model-rate", type=int, default=30, help="the same with the local model")
    parser.add_argument("--duration", type=float, default=30.0)
    args = parser.parse_args()
    speed = machine_speed()
    runs = {
        "off": measure("none", args.rate, args.duration),
        "cloud API": measure("http", args.rate, args.duration),
        "local model": measure("nudenet", args.model_rate, args.duration),
    }
    celery = reference(args.rate, args.duration)
    print(f"Machine speed today: the bare aiohttp server answers {speed:,.0f} req/s on one core")
    print("CPU per screenshot, measured (ms):")
    print("  " + "moderation".ljust(13) + "".join(part.rjust(10) for part in STAGES) + "   lost")
    for mode, run in runs.items():
        print("  " + mode.ljust(13) + "".join(f"{run['cpu_ms'].get(p, 0):10.2f}" for p in STAGES) + f"   {run['lost']}")
    total_off = sum(runs["off"]["cpu_ms"].get(p, 0) for p in STAGES)
    print(
        "  the Celery reference, same load, moderation none: "
        + ", ".join(f"{name} {ms:.2f}" for name, ms in celery.items())
        + f"; total {sum(celery.values()):.2f} against framewatch's {total_off:.2f} "
        f"({total_off / sum(celery.values()):.2f}x; its thumbnails are 640x360 + 320x180, framewatch's here the "
        "default 320x180 + 160x90: the like-for-like ratio is bench/pipeline.py's)"
    )
    print(
        f"\nPlan at {TARGET_UTILISATION:.0%} of each stage's cores: cores (replicas; RabbitMQ: nodes of "
        f"{BROKER_NODE_CORES} cores; its figure is one node's, followers' replication is not in it)"
    )
    print("| screenshots/s | moderation | " + " | ".join(STAGES) + " | total cores |")
    print("|---|---|" + "---|" * (len(STAGES) + 1))
    for rate in RATES:
        for mode, run in runs.items():
            planned = plan(run["cpu_ms"], rate)
            cells = [f"{cores:.1f} ({replicas})" for cores, replicas in planned.values()]
            total = sum(cores for cores, _ in planned.values())
            print(f"| {rate:,} | {mode} | " + " | ".join(cells) + f" | {total:.0f} |")
    print(
        f"\nEach stage queue carries every screenshot: past ~{QUEUE_CEILING:,}/s a single quorum queue's leader "
        "is the limit; shard by domain into several namespaces (FRAMEWATCH_NAMESPACE) of one cluster."
    )
    return 0 if all(run["lost"] == 0 for run in runs.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
