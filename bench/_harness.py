"""Helpers the benchmarks share: locate the references, start pinned servers, run wrk and read its numbers."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The reference implementations every figure is a ratio against; FRAMEWATCH_BENCH_REFERENCES points elsewhere.
REFERENCES = Path(os.environ.get("FRAMEWATCH_BENCH_REFERENCES", ROOT / "bench" / "references"))


def require(tool: str, hint: str) -> str:
    path = shutil.which(tool)
    if path is None:
        sys.exit(f"{tool} not found: {hint}")
    return path


def pinned(core: int, argv: list[str]) -> list[str]:
    """Pin to one core when taskset exists and the machine has that core."""
    if shutil.which("taskset") and (os.cpu_count() or 1) > core:
        return ["taskset", "-c", str(core), *argv]
    return argv


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"nothing listens on port {port} after {timeout}s")


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class WrkResult:
    rate: float
    p99_ms: float
    errors: int
    requests: int
    p50_ms: float = 0.0
    cpu_us: float = 0.0  # the server's CPU per request, when the bench measured it
    broker_us: float = 0.0  # the RabbitMQ node's, likewise


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has spent so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def histogram_quantile(metrics_text: str, name: str, q: float) -> float | None:
    """The q-quantile of a Prometheus histogram in exposition text, read off its cumulative buckets (the upper
    bound of the bucket holding it). The same bucket in several series (label sets, or the texts of several
    processes one after the other) is summed: the quantile of them all."""
    counts: dict[float, float] = {}
    for line in metrics_text.splitlines():
        if line.startswith(f"{name}_bucket{{"):
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            key = float("inf") if bound == "+Inf" else float(bound)
            counts[key] = counts.get(key, 0.0) + float(line.rsplit(" ", 1)[1])
    buckets = sorted(counts.items())
    if not buckets or buckets[-1][1] == 0:
        return None
    total = buckets[-1][1]
    return next(bound for bound, count in buckets if count >= q * total)


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(url: str, script: Path, seconds: int, connections: int, core: int = 1) -> WrkResult:
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url]
    out = subprocess.run(pinned(core, argv), capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = int(non2xx.group(1)) if non2xx else 0
    if socket_errors:
        errors += sum(int(g) for g in socket_errors.groups())
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    return WrkResult(rate, _ms(*p99.groups()), errors, requests, _ms(*p50.groups()))


class Server:
    """A server process pinned to one core, stopped with SIGTERM."""

    def __init__(self, argv: list[str], port: int, env: dict[str, str] | None = None, cwd: Path | None = None):
        self.proc = subprocess.Popen(
            pinned(0, argv),
            env={**os.environ, **(env or {})},
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        wait_port(port)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
