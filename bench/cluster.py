#!/usr/bin/env python3
"""A broker node's death under load, proved on a three-node RabbitMQ cluster of its own (never the machine's broker):
nodes fwc1..fwc3@localhost on AMQP ports 5701-5703, data under a temporary folder. framewatch (ingest and one process
per stage) gets the three URLs in AMQP_URL; `framewatch simulate` offers load; a third of the way in, the node the
ingress publishes to is killed with SIGKILL; it is started again (and rejoins) two thirds of the way in.

Prints the simulator's report (nothing lost, nothing given up, every accepted callback delivered) and how long the
ingress was not ready (it answers 503 then, and the simulator retries as the cloud does). Exits 1 on any loss.

    .venv/bin/python bench/cluster.py [--streams 30] [--interval 1] [--duration 60]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).parent))
from e2e import FRAMEWATCH, KEY, WEBHOOK_SECRET, config

sys.path.insert(0, str(Path(__file__).parent.parent))
from tests.rabbit import RabbitNode

NODES = ("fwc1", "fwc2", "fwc3")
AMQP_PORT = {name: 5701 + i for i, name in enumerate(NODES)}
DOMAIN = "bench.live"


def url(name: str) -> str:
    return f"amqp://guest:guest@127.0.0.1:{AMQP_PORT[name]}/"


def connected_ports(log: Path) -> list[int]:
    """The AMQP ports of the nodes a process's log says it connected to, in order."""
    lines = log.read_text(errors="replace").splitlines()
    return [int(port) for line in lines if "broker_connected" in line for port in re.findall(r":(57\d\d)/", line)]


def watch_readiness(port: int, stop: threading.Event, spans: list[list[float]]) -> None:
    """Records when the ingress is not ready (broker connection lost: callbacks are answered 503)."""
    down_since: float | None = None
    while not stop.is_set():
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as answer:
                ready = answer.status == 200
        except OSError:
            ready = False
        now = time.monotonic()
        if not ready and down_since is None:
            down_since = now
        elif ready and down_since is not None:
            spans.append([down_since, now])
            down_since = None
        time.sleep(0.05)
    if down_since is not None:
        spans.append([down_since, time.monotonic()])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=30)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--port", type=int, default=8280, help="ingest port; the stages use the next ones")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="fw-cluster-"))
    os.chmod(work, 0o755)
    nodes = {name: RabbitNode(name, AMQP_PORT[name], work) for name in NODES}
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        started = time.monotonic()
        for node in nodes.values():
            node.start()
        for node in list(nodes.values())[1:]:
            node.ctl("stop_app")
            node.ctl("join_cluster", nodes["fwc1"].full)
            node.ctl("start_app")
        print(f"cluster of {len(nodes)} up in {time.monotonic() - started:.0f}s", file=sys.stderr)

        env = {
            **os.environ,
            "FRAMEWATCH_AMQP_URL": ",".join(url(name) for name in NODES),
            "FRAMEWATCH_NAMESPACE": f"fwcluster-{uuid.uuid4().hex[:6]}",
            "FRAMEWATCH_DATABASE_URL": f"sqlite:///{work}/config.db",
            "FRAMEWATCH_BLOB_URL": str(work / "blobs"),
            "FRAMEWATCH_FETCH_ALLOWED_HOSTS": "127.0.0.1",
            "FRAMEWATCH_FETCH_ALLOW_PRIVATE": "true",
            "FRAMEWATCH_DELIVER_ALLOW_PRIVATE": "true",
            "FRAMEWATCH_MODERATION_BACKEND": "none",
            "FRAMEWATCH_PORT": str(args.port),
            "FRAMEWATCH_ADMIN_PORT": str(args.port + 9),
            "FRAMEWATCH_LOG_LEVEL": "info",
        }
        sink_port = args.port + 10
        (work / "bench.toml").write_text(config(sink_port))
        subprocess.run([*FRAMEWATCH, "config", "apply", str(work / "bench.toml")], env=env, check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        logs = {}
        for offset, name in enumerate(("ingest", "fetch", "moderate", "deliver", "streams")):
            argv = ["ingest"] if name == "ingest" else ["worker", name, "--port", str(args.port + offset)]
            logs[name] = open(work / f"{name}.log", "wb")
            procs[name] = subprocess.Popen([*FRAMEWATCH, *argv], env=env, stdout=logs[name], stderr=logs[name])
        deadline = time.monotonic() + 60
        while not (ports := connected_ports(work / "ingest.log")):
            if time.monotonic() > deadline:
                raise SystemExit("the ingress never connected")
            time.sleep(0.2)
        port = ports[-1]
        victim = next(node for node in nodes.values() if AMQP_PORT[node.name] == port)

        spans: list[list[float]] = []
        stop = threading.Event()
        watcher = threading.Thread(target=watch_readiness, args=(args.port, stop, spans), daemon=True)
        simulate = [
            *FRAMEWATCH, "simulate", "--ingress", f"http://127.0.0.1:{args.port}", "--domain", DOMAIN, "--key", KEY,
            "--webhook-secret", WEBHOOK_SECRET, "--streams", str(args.streams), "--interval", str(args.interval),
            "--duration", str(args.duration), "--sink-port", str(sink_port), "--json", "--drain-timeout", "180",
        ]  # fmt: skip
        sim = subprocess.Popen(simulate, env=env, stdout=subprocess.PIPE)
        watcher.start()
        time.sleep(args.duration / 3)
        killed_at = time.monotonic()
        victim.kill()
        print(f"SIGKILL {victim.full} (the ingress's node) at t={args.duration / 3:.0f}s", file=sys.stderr)
        time.sleep(args.duration / 3)
        victim.start()  # its data folder remembers the cluster: it rejoins
        members = nodes["fwc1" if victim.name != "fwc1" else "fwc2"].ctl("cluster_status", "--formatter", "json")
        running = orjson.loads(members)["running_nodes"]
        print(f"{victim.full} back; running nodes: {', '.join(sorted(running))}", file=sys.stderr)
        out, _ = sim.communicate()
        stop.set()
        watcher.join()
        report = orjson.loads(out.splitlines()[-1])
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        for node in nodes.values():
            node.stop()
        shutil.rmtree(work, ignore_errors=True)

    not_ready = [round(end - start, 1) for start, end in spans if end >= killed_at]
    print(f"\nthree-node cluster, {args.streams} streams every {args.interval:g}s for {args.duration:g}s; SIGKILL of "
          f"the ingress's node at a third, back at two thirds")  # fmt: skip
    for name in ("sent", "accepted", "delivered", "lost", "gave_up", "duplicates", "refused"):
        print(f"  {name:<28} {report[name]}")
    print(f"  ingress not ready (503) for  {not_ready or [0]} s after the kill")
    print(f"  latency p50 / p95 / p99      {report['p50_ms']} / {report['p95_ms']} / {report['p99_ms']} ms")
    print(f"  rejoined                     {sorted(running)}")
    return 1 if report["lost"] or report["gave_up"] or sim.returncode or len(running) != len(NODES) else 0


if __name__ == "__main__":
    sys.exit(main())
