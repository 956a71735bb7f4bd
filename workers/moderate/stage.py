"""The moderation stage: stored frames get a backend's verdict; the providers' own moderation callbacks carry
theirs, read by their provider's package at the ingress."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time

from framewatch.config.live import LiveConfig
from framewatch.runtime import metrics
from framewatch.settings.moderation import ModerationSettings
from schemas.messages import CallbackReceived, FrameModerated, FrameStored, Verdict
from workers.contract import Consumption, Output, Retries, Stage
from workers.failures import Permanent
from workers.moderate import CONSUMES, NAME
from workers.moderate.backends.base import ModerationBackend
from workers.moderate.batcher import Batcher
from workers.moderate.limits import CircuitBreaker, TokenBucket
from workers.moderate.reuse import Reuse


class ModerateStage(Stage[FrameStored | CallbackReceived]):
    name = NAME
    consumes = CONSUMES

    def __init__(self, options: ModerationSettings, backend: ModerationBackend, config: LiveConfig) -> None:
        super().__init__(options.concurrency * max(1, backend.max_batch), Retries(tuple(options.retry_delays)))
        self.options = options
        self.config = config  # each template's sampling and reuse; until it loads, every frame goes to the model
        self.reuse = Reuse(options.reuse_distance)
        self._config_start: asyncio.Task[None] | None = None
        self.off_domains = frozenset(options.off_domains)
        rate = options.rate_limit or backend.default_rate_limit
        self.backend = backend
        self.consumption: Consumption | None = None
        self.batcher = Batcher(
            backend,
            concurrency=1 if backend.name == "nudenet" else options.concurrency,
            timeout=options.timeout,
            bucket=TokenBucket(rate) if rate else None,
            breaker=CircuitBreaker(
                options.breaker_failures,
                options.breaker_cooldown,
                pause=self._pause,
                resume=self._resume,
                on_change=metrics.BREAKER_OPEN.labels(backend.name).set,
            ),
        )

    async def _pause(self) -> None:
        if self.consumption is not None:
            await self.consumption.pause()

    async def _resume(self) -> None:
        if self.consumption is not None:
            await self.consumption.resume()

    async def start(self, consumption: Consumption) -> None:
        self.consumption = consumption  # the breaker stops this stage's intake while the backend is down
        self._config_start = asyncio.create_task(self.config.start(wait=True), name="moderate-config")
        await self.backend.start()
        self.batcher.start()

    async def close(self) -> None:
        if self._config_start is not None:
            self._config_start.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._config_start
        await self.batcher.close()
        await self.backend.close()

    def sampled(self, frame: FrameStored, every: int) -> bool:
        """One in `every` on average, deterministic per event, so every worker and every retry decides alike."""
        if frame.domain in self.off_domains:
            return False
        return every == 1 or int.from_bytes(hashlib.blake2b(frame.id.encode(), digest_size=4).digest()) % every == 0

    async def judge(self, frame: FrameStored) -> Verdict | None:
        """The frame's verdict: the model's, one carried from a near-identical earlier frame, or None (not
        sampled: unreviewed)."""
        binding = self.config.snapshot.bindings.get(frame.domain)
        every, reuse_for = self.options.sample_every, 0
        if binding is not None:
            template = binding.template
            every = max(every, template.moderation_sample_every)
            reuse_for = template.moderation_reuse_seconds
        if not self.sampled(frame, every):
            metrics.MODERATION_SKIPPED.labels("sampled_out").inc()
            return None
        carried = self.reuse.carried(frame, reuse_for)
        if carried is not None:
            metrics.MODERATION_SKIPPED.labels("reused").inc()
            return carried
        verdict = await self.batcher.submit(frame)
        self.reuse.judged(frame, verdict)
        return verdict

    async def handle(self, message: FrameStored | CallbackReceived) -> list[Output]:
        if isinstance(message, FrameStored):
            verdict = await self.judge(message)
            moderated = FrameModerated(
                id=message.id, domain=message.domain, frame=message, verdict=verdict, moderated_at=time.time()
            )
        else:  # a provider's own verdict
            verdict = message.verdict
            if verdict is None:
                raise Permanent("bad_message", f"a {message.kind} callback carries no verdict")
            moderated = FrameModerated(
                id=message.id, domain=message.domain, callback=message, verdict=verdict, moderated_at=time.time()
            )
        metrics.VERDICTS.labels(
            verdict.source if verdict else "unreviewed", verdict.suggestion if verdict else "none"
        ).inc()
        return [Output.of(moderated, moderated.kind)]
