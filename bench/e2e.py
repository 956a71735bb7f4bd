#!/usr/bin/env python3
"""End to end on this machine: `framewatch simulate` against the fleet (ingest and each worker stage as its own
process, the real RabbitMQ), optionally under a fault. Prints the simulator's report, screenshots per second
sustained, latency percentiles and the peak memory of every process; exits 1 when anything accepted was lost.

    .venv/bin/python bench/e2e.py [--streams 250] [--interval 1] [--duration 30] [--moderation none|nudenet]
                                  [--fault none|rabbitmq-restart|kill-fetch|kill-moderate|kill-deliver|platform-down]
                                  [--no-streams-stage]

Also prints the CPU each process spent per screenshot (what bench/capacity.py sizes a fleet from) and, with the
streams stage on, the covers' update latency (a frame's verdict -> the stream store names it the cover; the
listener's cover lookup adds at most 0.2 s).

Faults: rabbitmq-restart runs the fleet on a RabbitMQ node of its own (never the machine's broker), stops its app
a third of the way in and starts it 10 s later; kill-STAGE sends SIGKILL to that stage's process and starts a new
one 2 s later; platform-down makes the platform's URLs answer 503 for two minutes. No reference implementation
exists for the whole pipeline here: the targets are absolute (at least 250 screenshots/s with moderation none,
nothing lost under any fault).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).parent))
import urllib.request

from _harness import ROOT, cpu_seconds, histogram_quantile, peak_rss_mb, wait_port
from _pipeline import reset

sys.path.insert(0, str(ROOT))
from tests.rabbit import RabbitNode
from workers import stages

AMQP = os.environ.get("FRAMEWATCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
KEY = "benchKey123"
WEBHOOK_SECRET = "whsec_" + "YmVuY2gtd2ViaG9vay1zZWNyZXQtMzItYnl0ZXMhISE="  # 32 bytes, base64
DOMAIN = "bench.live"
FRAMEWATCH = [str(ROOT / ".venv" / "bin" / "framewatch")] if (ROOT / ".venv").exists() else ["framewatch"]


def config(sink_port: int) -> str:
    url = f"http://127.0.0.1:{sink_port}/hooks"
    kinds = ("snapshot", "porn_censorship", "stream_begin", "stream_end")
    urls = "".join(f'{kind}_notify_url = "{url}/{kind}"\n' for kind in kinds)
    return (
        f'account = "bench"\n[[templates]]\nname = "bench"\ncallback_key = "{KEY}"\n'
        f'webhook_secret = "{WEBHOOK_SECRET}"\n{urls}'
        f'[[rules]]\ndomain = "{DOMAIN}"\ntemplate = "bench"\n'
        f'[[detect_notify]]\ndomain = "{DOMAIN}"\nnotify_url = "{url}/violations"\n'
    )


class Fleet:
    """`framewatch ingest` and one `framewatch worker STAGE` process per stage."""

    def __init__(self, env: dict[str, str], ingest_port: int) -> None:
        self.env = env
        self.ingest_port = ingest_port
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.peaks: dict[str, float] = {}
        self.cpu: dict[str, float] = {}  # CPU seconds per process name, processes killed and restarted added up
        self.started_cpu: dict[str, float] = {}
        self.ports = {"ingest": ingest_port}

    def start(self, name: str) -> None:
        """`ingest`, a stage, or `STAGE#N` for the Nth extra process of a stage."""
        port = self.ports.setdefault(name, self.ingest_port + len(self.ports))
        stage = name.split("#")[0]
        argv = ["ingest"] if name == "ingest" else ["worker", stage, "--port", str(port)]
        env = {**os.environ, **self.env, "FRAMEWATCH_PORT": str(self.ingest_port)}
        logs = os.environ.get("FRAMEWATCH_BENCH_LOGS")  # a folder: each process's log there (to see why)
        out = open(f"{logs}/{name}.log", "ab") if logs else subprocess.DEVNULL
        self.procs[name] = subprocess.Popen([*FRAMEWATCH, *argv], env=env, stdout=out, stderr=out)
        wait_port(port, timeout=60)
        self.started_cpu[name] = cpu_seconds(self.procs[name].pid)  # start-up (imports) is not per-frame work

    def metrics(self, name: str) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.ports[name]}/metrics", timeout=5) as answer:
            return answer.read().decode()

    def kill(self, name: str) -> None:
        self._note_peak(name)
        self._note_cpu(name)
        self.procs[name].kill()
        self.procs[name].wait()

    def _note_cpu(self, name: str) -> None:
        spent = cpu_seconds(self.procs[name].pid) - self.started_cpu.get(name, 0.0)
        self.cpu[name.split("#")[0]] = self.cpu.get(name.split("#")[0], 0.0) + spent

    def _note_peak(self, name: str) -> None:
        self.peaks[name] = max(self.peaks.get(name, 0.0), peak_rss_mb(self.procs[name].pid))

    def stop(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is None:
                self._note_peak(name)
                self._note_cpu(name)
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def inject(fault: str, fleet: Fleet, at: float, node: RabbitNode | None) -> None:
    time.sleep(at)
    print(f"fault: {fault} at t={at:.0f}s", file=sys.stderr)
    if fault == "rabbitmq-restart":
        assert node is not None
        node.ctl("stop_app")
        time.sleep(10)
        node.ctl("start_app")
    elif fault.startswith("kill-"):
        stage = fault.removeprefix("kill-")
        fleet.kill(stage)
        time.sleep(2)
        fleet.start(stage)


def broker_pid() -> int | None:
    """The local RabbitMQ node's Erlang VM, whose CPU the run costs the broker."""
    found = subprocess.run(["pgrep", "-f", "beam.smp.*rabbit"], capture_output=True, text=True).stdout.split()
    return int(found[0]) if found else None


def serve_moderation_api(port: int) -> None:
    """A cloud-style moderation API on loopback: reads the image, answers Pass (what a cloud API costs framewatch)."""
    from aiohttp import web

    async def moderate(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"suggestion": "Pass", "score": 3, "label": "Normal"})

    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_post("/moderate", moderate)
    web.run_app(app, host="127.0.0.1", port=port, print=None, handle_signals=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=250)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--moderation", default="none", choices=["none", "nudenet", "http"],
                        help="http: a cloud-style moderation API on loopback answering Pass")  # fmt: skip
    parser.add_argument("--report-json", type=Path, help="also write the figures here (bench/capacity.py reads it)")
    parser.add_argument("--port", type=int, default=8180, help="ingest port; the stages use the next ones")
    parser.add_argument(
        "--moderate-processes", type=int, default=1, help="moderate stage processes (a local model: one per core)"
    )
    parser.add_argument("--no-streams-stage", action="store_true", help="without the streams stage (covers)")
    parser.add_argument(
        "--fault",
        default="none",
        choices=["none", "rabbitmq-restart", "kill-fetch", "kill-moderate", "kill-deliver", "platform-down"],
    )
    args = parser.parse_args()

    namespace = f"fwbench-e2e-{uuid.uuid4().hex[:6]}"
    work = Path(tempfile.mkdtemp(prefix="fw-e2e-"))
    # A broker restart is done to a node of the run's own, never to the machine's broker.
    node = RabbitNode("fwe2e", args.port + 30) if args.fault == "rabbitmq-restart" else None
    amqp = node.url if node else AMQP
    if node:
        node.start()
    sink_port = args.port + 10
    env = {
        "FRAMEWATCH_AMQP_URL": amqp,
        "FRAMEWATCH_NAMESPACE": namespace,
        "FRAMEWATCH_DATABASE_URL": f"sqlite:///{work}/config.db",
        "FRAMEWATCH_BLOB_URL": str(work / "blobs"),
        "FRAMEWATCH_FETCH_ALLOWED_HOSTS": "127.0.0.1",
        "FRAMEWATCH_FETCH_ALLOW_PRIVATE": "true",
        "FRAMEWATCH_DELIVER_ALLOW_PRIVATE": "true",
        "FRAMEWATCH_MODERATION_BACKEND": args.moderation,
        "FRAMEWATCH_MODERATION_HTTP_URL": f"http://127.0.0.1:{args.port + 11}/moderate",
        "FRAMEWATCH_LOG_LEVEL": "warning",
    }
    (work / "bench.toml").write_text(config(sink_port))
    subprocess.run([*FRAMEWATCH, "config", "apply", str(work / "bench.toml")], env={**os.environ, **env}, check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip

    fleet = Fleet(env, args.port)
    simulate = [
        *FRAMEWATCH, "simulate", "--ingress", f"http://127.0.0.1:{args.port}", "--domain", DOMAIN, "--key", KEY,
        "--webhook-secret", WEBHOOK_SECRET,
        "--streams", str(args.streams), "--interval", str(args.interval), "--duration", str(args.duration),
        "--sink-port", str(sink_port), "--json",
    ]  # fmt: skip
    if args.fault == "platform-down":
        simulate += ["--sink-outage", f"{args.duration / 4:.0f}:120", "--drain-timeout", "300"]
    else:
        simulate += ["--drain-timeout", "120"]
    try:
        names = ("fetch", "moderate", "deliver", *(() if args.no_streams_stage else ("streams",)))
        for name in ("ingest", *names):
            fleet.start(name)
        for n in range(1, args.moderate_processes):
            fleet.start(f"moderate#{n}")
        if args.moderation == "http":
            threading.Thread(target=serve_moderation_api, args=(args.port + 11,), daemon=True).start()
        broker = node.beam() if node else broker_pid()
        broker_cpu = cpu_seconds(broker) if broker else 0.0
        sim = subprocess.Popen(simulate, env={**os.environ, **env}, stdout=subprocess.PIPE)
        if args.fault not in ("none", "platform-down"):
            threading.Thread(target=inject, args=(args.fault, fleet, args.duration / 3, node), daemon=True).start()
        out, _ = sim.communicate()
        report = orjson.loads(out.splitlines()[-1])
        broker_cpu = cpu_seconds(broker) - broker_cpu if broker else 0.0
        # Covers are written where the stream records are: the streams workers, and the processes handing them over.
        covers = "\n".join(fleet.metrics(name) for name in names) if "streams" in names else ""
    finally:
        fleet.stop()
        asyncio.run(reset(amqp, stages.topology(namespace)))
        if node:
            node.stop()
            shutil.rmtree(node.base.parent, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)

    offered = args.streams / args.interval
    print(f"\nend to end, {args.streams} streams every {args.interval:g}s ({offered:.0f} screenshots/s offered) for "
          f"{args.duration:g}s, moderation {args.moderation}, fault {args.fault}")  # fmt: skip
    for name in ("sent", "accepted", "delivered", "lost", "gave_up", "duplicates", "duplicates_with_another_webhook_id",
                 "refused", "refused_by_platform_outage"):  # fmt: skip
        print(f"  {name:<36} {report[name]}")
    print(f"  screenshots/s sustained end to end   {report['screenshots_per_s']}")
    print(f"  latency p50 / p95 / p99              {report['p50_ms']} / {report['p95_ms']} / {report['p99_ms']} ms")
    peaks = {**fleet.peaks, "simulate": report["peak_rss_mb"]}
    print("  peak memory                          " + ", ".join(f"{k} {v:.0f} MB" for k, v in peaks.items()))
    frames = max(1, report["accepted"])
    print("  CPU per screenshot                   " + ", ".join(f"{k} {1000 * v / frames:.2f} ms"
                                                              for k, v in fleet.cpu.items()))  # fmt: skip
    print(f"  RabbitMQ CPU per screenshot          {1000 * broker_cpu / frames:.2f} ms")
    if args.report_json:
        args.report_json.write_text(orjson.dumps({
            "offered": offered, "moderation": args.moderation, "accepted": report["accepted"],
            "lost": report["lost"], "sustained": report["screenshots_per_s"],
            "cpu_ms": {**{k: 1000 * v / frames for k, v in fleet.cpu.items()}, "rabbitmq": 1000 * broker_cpu / frames},
        }).decode())  # fmt: skip
    if covers:
        p50, p99 = (histogram_quantile(covers, "framewatch_cover_update_seconds", q) for q in (0.5, 0.99))
        print(f"  cover update p50 / p99 (<=)          {p50} / {p99} s (verdict -> cover in the stream store)")
    return 1 if report["lost"] or report["gave_up"] or sim.returncode else 0


if __name__ == "__main__":
    sys.exit(main())
