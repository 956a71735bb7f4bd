#!/usr/bin/env python3
"""Admin calls per second through the official Tencent SDK's signing (TC3-HMAC-SHA256 verified, key looked up and
opened, the action run), against `framewatch ingest` pinned to core 0 with the SDK's callers on core 1; and the cost
of verifying one signature alone, in process. No shared reference exists for an admin plane: the second figure says
how much of a call's cost is the signature.

    .venv/bin/python bench/admin_sdk.py [--seconds 8] [--threads 8]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _harness import ROOT, Server

AMQP = os.environ.get("FRAMEWATCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


def sdk_rate(endpoint: str, key_id: str, secret: str, seconds: float, threads: int) -> tuple[float, int]:
    from tencentcloud.common import credential
    from tencentcloud.common.profile.client_profile import ClientProfile
    from tencentcloud.common.profile.http_profile import HttpProfile
    from tencentcloud.live.v20180801 import live_client, models

    done = [0] * threads
    stop = time.monotonic() + seconds

    def caller(n: int) -> None:
        http = HttpProfile(protocol="http", endpoint=endpoint, keepAlive=True)
        client = live_client.LiveClient(credential.Credential(key_id, secret), "", ClientProfile(httpProfile=http))
        while time.monotonic() < stop:
            client.DescribeLiveCallbackTemplates(models.DescribeLiveCallbackTemplatesRequest())
            done[n] += 1

    workers = [threading.Thread(target=caller, args=(n,)) for n in range(threads)]
    started = time.monotonic()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(done) / (time.monotonic() - started), sum(done)


def verification_cost(iterations: int = 20_000) -> float:
    """Microseconds of CPU to check one TC3 signature (canonical request, key chain, HMACs), in process."""
    from aiohttp.test_utils import make_mocked_request

    from framewatch.providers.tencent.cloud_api import signature

    body = b"{}"
    headers = {"Content-Type": "application/json", "Host": "127.0.0.1:8090"}
    request = make_mocked_request("POST", "/", headers=headers)
    started = time.process_time()
    for _ in range(iterations):
        signature(request, body, "content-type;host", "1700000000", "live", "s" * 40, "127.0.0.1:8090")
    return (time.process_time() - started) / iterations * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fwbench-admin-"))
    env = {
        **os.environ,
        "FRAMEWATCH_AMQP_URL": AMQP,
        "FRAMEWATCH_NAMESPACE": "fwbench-admin",
        "FRAMEWATCH_DATABASE_URL": f"sqlite:///{work}/config.db",
        "FRAMEWATCH_LOG_LEVEL": "warning",
        "FRAMEWATCH_PORT": "8093",
        "FRAMEWATCH_ADMIN_PORT": "8094",
    }
    framewatch = [sys.executable, "-m", "framewatch"]
    subprocess.run([*framewatch, "accounts", "create", "bench"], env=env, check=True, capture_output=True, cwd=ROOT)
    created = subprocess.run(
        [*framewatch, "accounts", "keys", "create", "bench"], env=env, check=True, capture_output=True, text=True
    )
    key_id, secret = created.stdout.strip().splitlines()[-1].split(" ")
    server = Server([*framewatch, "ingest"], 8094, {k: v for k, v in env.items() if k.startswith("FRAMEWATCH_")})
    try:
        time.sleep(1.0)
        os.sched_setaffinity(0, {1})  # the SDK's callers on the other core
        rate, calls = sdk_rate("127.0.0.1:8094", key_id, secret, args.seconds, args.threads)
    finally:
        server.stop()
    cost = verification_cost()
    print(f"admin calls through the Tencent SDK (DescribeLiveCallbackTemplates): {rate:8.1f}/s ({calls} calls)")
    print(f"TC3 signature verification alone, in process:                       {cost:8.1f} µs CPU per call")


if __name__ == "__main__":
    main()
