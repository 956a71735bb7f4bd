"""`framewatch simulate` against a running pipeline (separate processes, real broker): its report, its exit status,
and the faults it proves the pipeline survives: a refused domain, the platform down, a stage killed with SIGKILL."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from framewatch.simulate import run
from framewatch.simulate.provider import Event, Options
from tests.conftest import apply_config
from tests.helpers import KEY, WEBHOOK_SECRET, IngressProcess, WorkerProcess, free_port
from tests.rabbit import RabbitNode


class RunProcess(IngressProcess):
    """`framewatch run`: the ingress and every stage in one process."""

    command = ("run",)


@dataclass
class Simulator:
    ingress: str
    sink_port: int

    async def run(self, *args: str, domain: str = "test.app", key: str = KEY) -> tuple[int, dict[str, Any]]:
        """Runs to the end; (exit status, the --json report)."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "framewatch", "simulate", "--ingress", self.ingress, "--domain", domain, "--key", key),
            *("--sink-port", str(self.sink_port), "--webhook-secret", WEBHOOK_SECRET, "--json", "--quiet", *args),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "FRAMEWATCH_LOG_LEVEL": "warning"},
        )
        out, err = await asyncio.wait_for(proc.communicate(), timeout=240)
        assert out, err.decode()
        return int(proc.returncode or 0), orjson.loads(out.splitlines()[-1])


def config(sink_port: int) -> str:
    url = f"http://127.0.0.1:{sink_port}/hooks"
    return f"""
account = "default"
[[templates]]
name = "main"
callback_key = "{KEY}"
webhook_secret = "{WEBHOOK_SECRET}"
snapshot_notify_url = "{url}/snapshot"
porn_censorship_notify_url = "{url}/moderation"
stream_begin_notify_url = "{url}/stream"
stream_end_notify_url = "{url}/stream"
record_notify_url = "{url}/record"
[[rules]]
domain = "test.app"
template = "main"
[[rules]]
domain = "ali.example.com"
template = "main"
[[detect_notify]]
domain = "test.app"
notify_url = "{url}/violations"
"""


@pytest.fixture
def fleet_env(worker_env: dict[str, str]) -> dict[str, str]:
    return {
        **worker_env,
        "FRAMEWATCH_MODERATION_BACKEND": "none",
        "FRAMEWATCH_DELIVER_INTERVAL": "0.5",
        "FRAMEWATCH_DELIVER_SCREENSHOT_INTERVAL": "0.5",
        "FRAMEWATCH_DELIVER_TRIES": "40",
        "FRAMEWATCH_DELIVER_SCREENSHOT_TRIES": "40",
    }


@pytest.fixture
async def simulator(settings, amqp: None) -> AsyncIterator[Simulator]:
    sink_port = free_port()
    await apply_config(settings, config(sink_port))
    yield Simulator("", sink_port)


@pytest.fixture
async def against_run(fleet_env, simulator: Simulator) -> AsyncIterator[Simulator]:
    """The simulator pointed at `framewatch run` (every stage in one process), stopped afterwards."""
    pipeline = RunProcess(fleet_env)
    try:
        await pipeline.wait_ready()
        simulator.ingress = pipeline.url
        yield simulator
    finally:
        pipeline.terminate()


async def test_every_accepted_event_is_delivered_once(against_run: Simulator) -> None:
    status, report = await against_run.run(
        "--streams", "8", "--interval", "0.5", "--duration", "4", "--moderation-every", "3"
    )
    assert status == 0, report
    # 8 streams x 8 screenshots, a begin and an end each, and a provider moderation event per 3 screenshots.
    assert (report["screenshots"], report["sent"]) == (64, 64 + 16 + 16)
    assert report["accepted"] == report["sent"] == report["delivered"]
    assert report["images_served"] == 64 + 16  # every screenshot, and each frame a provider verdict judged
    assert (report["lost"], report["gave_up"], report["bad_signatures"], report["duplicates"]) == (0, 0, 0, 0)
    assert 0 < report["p50_ms"] <= report["p95_ms"] <= report["p99_ms"]


async def test_refused_callbacks_are_retried_then_reported(against_run: Simulator) -> None:
    status, report = await against_run.run(
        *("--streams", "2", "--interval", "1", "--duration", "1", "--retry-scale", "0.001"),
        domain="unbound.example.com",
    )
    assert status == 1
    assert report["accepted"] == 0 and report["gave_up"] == report["sent"] == 6
    # The provider's policy: a screenshot is tried 6 times, every other event 13 times.
    assert report["refused"] == {"DomainNotBound": 2 * 6 + 4 * 13}


async def test_alibaba_every_accepted_event_is_delivered_once(against_run: Simulator) -> None:
    status, report = await against_run.run(
        *("--provider", "alibaba", "--streams", "4", "--interval", "0.5", "--duration", "2", "--moderation-every", "2"),
        domain="ali.example.com",
    )
    assert status == 0, report
    # 4 streams x 4 recording callbacks (POST), a review result per 2 of them (POST), and a publish and
    # publish_done each (GET).
    assert report["sent"] == 4 * 4 + 4 * 2 + 8 and report["screenshots"] == 0
    assert report["accepted"] == report["sent"] == report["delivered"]
    assert (report["lost"], report["gave_up"], report["bad_signatures"], report["duplicates"]) == (0, 0, 0, 0)


async def test_alibaba_refused_callbacks_are_retried_as_alibaba_does(against_run: Simulator) -> None:
    status, report = await against_run.run(
        *("--provider", "alibaba", "--streams", "2", "--interval", "1", "--duration", "1", "--retry-scale", "0.01"),
        domain="unbound.example.com",
    )
    assert status == 1
    assert report["accepted"] == 0 and report["gave_up"] == report["sent"] == 6
    # Alibaba's policy: every callback is tried 6 times (5 retries 1 s apart).
    assert report["refused"] == {"DomainNotBound": 6 * 6}


@pytest.mark.parametrize("started", [100.0, 2047.00001, 4095.9])  # seconds since boot: just short of a power of 2
async def test_a_run_sends_what_its_plan_says_whatever_the_clock_reads(
    monkeypatch: pytest.MonkeyPatch, started: float
) -> None:
    """Two streams, one screenshot a second for a second: a begin, one recording and an end each, also when the
    monotonic clock (the machine's uptime) reads just below a power of two, where `(started + 1) - started`
    rounds below 1."""
    shift = started - time.monotonic()
    monkeypatch.setattr(run.time, "monotonic", lambda real=time.monotonic: real() + shift)
    options = Options("http://127.0.0.1:1", "ali.example.com", KEY, "http://127.0.0.1:1", provider="alibaba")
    simulation = run.Simulation(options, run.Plan(streams=2, interval=1.0, duration=1.0, moderation_every=0))
    sent: list[Event] = []
    monkeypatch.setattr(simulation.provider, "send", sent.append)
    simulation.started = started
    await asyncio.gather(*(simulation._stream(n) for n in range(2)))
    assert sorted(event.key.split(":")[0] for event in sent) == [
        "publish",
        "publish",
        "publish_done",
        "publish_done",
        "record",
        "record",
    ]


async def test_the_platform_down_delays_but_loses_nothing(against_run: Simulator) -> None:
    status, report = await against_run.run(
        "--streams", "4", "--interval", "0.5", "--duration", "3", "--sink-outage", "0:5"
    )
    assert status == 0, report
    assert report["refused_by_platform_outage"] > 0
    assert report["delivered"] == report["sent"] and report["lost"] == 0
    assert report["p50_ms"] > 2000  # held back by the outage, delivered after it


@pytest.mark.parametrize("stage", ["fetch", "moderate", "deliver"])
async def test_a_stage_killed_mid_run_loses_nothing(fleet_env, simulator: Simulator, stage: str) -> None:
    """SIGKILL one stage's process under load, start it again: every event arrives, repeats keep their webhook-id."""
    others = [s for s in ("fetch", "moderate", "deliver") if s != stage]
    ingress = IngressProcess(fleet_env)
    workers = [WorkerProcess(fleet_env, *others)]
    victim = WorkerProcess(fleet_env, stage)
    try:
        await asyncio.gather(ingress.wait_ready(), workers[0].wait_ready(), victim.wait_ready())
        simulator.ingress = ingress.url
        run = asyncio.create_task(
            simulator.run("--streams", "20", "--interval", "0.5", "--duration", "6", "--drain-timeout", "20")
        )
        await asyncio.sleep(3)
        victim.kill()
        await asyncio.sleep(1)
        victim = WorkerProcess(fleet_env, stage)
        status, report = await run
    finally:
        for process in (ingress, *workers, victim):
            process.terminate()
    assert status == 0, report
    assert report["delivered"] == report["sent"] == report["accepted"] and report["lost"] == 0
    assert report["duplicates_with_another_webhook_id"] == 0


@pytest.mark.slow
async def test_rabbitmq_restarted_mid_run_loses_nothing(own_broker: RabbitNode, against_run: Simulator) -> None:
    """The broker stops under load: the ingress answers 503, the provider retries; workers resume on their own."""
    run = asyncio.create_task(
        against_run.run("--streams", "10", "--interval", "0.5", "--duration", "10", "--drain-timeout", "30")
    )
    await asyncio.sleep(3)
    own_broker.ctl("stop_app")
    try:
        await asyncio.sleep(3)
    finally:
        own_broker.ctl("start_app")
        own_broker.ctl("await_startup")
    status, report = await run
    assert report["refused"].get("BrokerUnavailable", 0) > 0  # the outage was felt
    assert status == 0, report
    assert report["delivered"] == report["sent"] == report["accepted"] and report["lost"] == 0
