"""One simulation: streams for a while, every callback through to acceptance, every delivery waited for, a report."""

from __future__ import annotations

import asyncio
import resource
import sys
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from framewatch.providers import registry
from framewatch.simulate.platform import Platform
from framewatch.simulate.provider import Event, Options


@dataclass
class Plan:
    streams: int
    interval: float
    duration: float
    moderation_every: int = 20  # every Nth screenshot of a stream is also flagged by the provider (0: never)
    drain_timeout: float = 60.0  # stop waiting for deliveries after this long without one
    image_host: str = "127.0.0.1"
    image_port: int = 0
    sink_host: str = "127.0.0.1"
    sink_port: int | None = None
    sink_outage: tuple[float, float] | None = None
    progress: bool = True


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


class Simulation:
    def __init__(self, options: Options, plan: Plan) -> None:
        self.options = options
        self.plan = plan
        self.provider = registry.simulator(options.provider)(options)
        self.platform = (
            Platform(options.key, options.webhook_secret, plan.sink_outage) if plan.sink_port is not None else None
        )
        self.started = 0.0
        self._runners: list[web.AppRunner] = []

    async def _serve(self, app: web.Application, host: str, port: int) -> int:
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runners.append(runner)
        return int(runner.addresses[0][1])

    async def run(self) -> dict[str, Any]:
        image_port = await self._serve(self.provider.app(), self.plan.image_host, self.plan.image_port)
        if not self.options.image_base_url:
            self.options.image_base_url = f"http://127.0.0.1:{image_port}"
        if self.platform is not None:
            assert self.plan.sink_port is not None
            await self._serve(self.platform.app(), self.plan.sink_host, self.plan.sink_port)
        await self.provider.open()
        progress = asyncio.create_task(self._progress())
        try:
            self.started = time.monotonic()
            if self.platform is not None:
                self.platform.started = self.started
            await asyncio.gather(*(self._stream(n) for n in range(self.plan.streams)))
            await self.provider.drain()
            await self._wait_for_deliveries()
        finally:
            progress.cancel()
            await self.provider.close()
            for runner in self._runners:
                await runner.cleanup()
        return self.report()

    async def _stream(self, n: int) -> None:
        """One stream: begin, a screenshot every interval (staggered across streams), end."""
        name = f"sim{n:04d}"
        provider = self.provider
        provider.send(provider.stream_event(name, begin=True))
        offset = self.plan.interval * n / max(1, self.plan.streams)
        count = 0
        while True:
            at = offset + count * self.plan.interval
            if at >= self.plan.duration:  # not (started + at) - started: that rounds below `at` near a power of 2
                break
            due = self.started + at
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            count += 1
            frame = await provider.periodic(name)
            provider.send(frame)
            if self.plan.moderation_every and count % self.plan.moderation_every == 0:
                flagged = provider.moderation(name, frame)
                if flagged is not None:
                    provider.send(flagged)
        provider.send(provider.stream_event(name, begin=False))

    def _accepted(self) -> list[Event]:
        return [event for event in self.provider.events.values() if event.accepted]

    async def _wait_for_deliveries(self) -> None:
        if self.platform is None:
            return
        last_count, last_progress = -1, time.monotonic()
        while True:
            missing = sum(1 for event in self._accepted() if event.key not in self.platform.first_delivery)
            if missing == 0:
                return
            delivered = len(self.platform.first_delivery)
            if delivered != last_count:
                last_count, last_progress = delivered, time.monotonic()
            elif time.monotonic() - last_progress > self.plan.drain_timeout:
                return
            await asyncio.sleep(0.2)

    async def _progress(self) -> None:
        if not self.plan.progress:
            return
        tty = sys.stderr.isatty()
        while True:
            await asyncio.sleep(1.0 if tty else 5.0)
            report = self.report()
            line = (
                f"t={time.monotonic() - self.started:6.1f}s sent={report['sent']} accepted={report['accepted']} "
                f"delivered={report['delivered']} in_flight={self.provider.in_flight} "
                f"refused={sum(report['refused'].values())}"
            )
            print(("\r" + line) if tty else line, end="" if tty else "\n", file=sys.stderr, flush=True)

    def _sustained(self, arrivals: list[float]) -> float:
        """Screenshots delivered per second while the streams run, past the first tenth (start-up): the rate the
        pipeline keeps up with. Equal to the offered rate when it keeps pace, lower when a backlog grows."""
        start = self.started + 0.1 * self.plan.duration
        end = self.started + self.plan.duration
        if not self.started or time.monotonic() < end:
            return _rate(arrivals, self.started)
        return round(sum(start <= at < end for at in arrivals) / (end - start), 1)

    def report(self) -> dict[str, Any]:
        events = list(self.provider.events.values())
        usage = resource.getrusage(resource.RUSAGE_SELF)
        accepted = [event for event in events if event.accepted]
        report: dict[str, Any] = {
            "sent": len(events),
            "screenshots": sum(event.screenshot for event in events),
            "attempts": self.provider.attempts,
            "accepted": len(accepted),
            "gave_up": sum(event.gave_up for event in events),
            "refused": dict(self.provider.refused),
            "images_served": self.provider.image_hits,
            "delivered": None,
            "lost": None,
            "duplicates": None,
            "p50_ms": None,
            "p95_ms": None,
            "p99_ms": None,
            "throughput_per_s": None,
            "duration_s": round(time.monotonic() - self.started, 3) if self.started else 0.0,
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),  # the simulator's own share of the machine
        }
        if self.platform is None:
            return report
        arrived = self.platform.first_delivery
        latencies = [(arrived[e.key] - e.first_sent) * 1000 for e in events if e.key in arrived]
        delivered = len(latencies)
        report.update(
            delivered=delivered,
            lost=sum(1 for event in accepted if event.key not in arrived),
            lost_by_event_type=dict(
                # The cloud's own event type where it has one (Tencent's), else what the event's key starts with.
                Counter(
                    str(event.body.get("event_type", event.key.split(":", 1)[0]))
                    for event in accepted
                    if event.key not in arrived
                )
            ),
            duplicates=self.platform.duplicates,
            duplicates_with_another_webhook_id=self.platform.mismatched_ids,
            bad_signatures=self.platform.bad_signatures,
            refused_by_platform_outage=self.platform.refused_during_outage,
            p50_ms=_round(percentile(latencies, 0.50)),
            p95_ms=_round(percentile(latencies, 0.95)),
            p99_ms=_round(percentile(latencies, 0.99)),
            throughput_per_s=_rate([arrived[e.key] for e in events if e.key in arrived], self.started),
            screenshots_per_s=self._sustained([arrived[e.key] for e in events if e.screenshot and e.key in arrived]),
        )
        return report


def _rate(arrivals: list[float], started: float) -> float:
    """Deliveries per second from the start to the last one: what the pipeline sustained end to end."""
    last = max(arrivals, default=started)
    return round(len(arrivals) / (last - started), 1) if last > started else 0.0


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def failed(report: dict[str, Any]) -> bool:
    """Anything the platform should have received and did not, or a delivery it could not trust."""
    return bool(
        report["lost"]
        or report["gave_up"]
        or report.get("bad_signatures")
        or report.get("duplicates_with_another_webhook_id")
    )
