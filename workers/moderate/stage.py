"""The moderation stage: stored frames get a backend's verdict; the providers' own moderation callbacks carry
theirs, read by their provider's package at the ingress."""

from __future__ import annotations

import hashlib
import time

from framewatch.runtime import metrics
from framewatch.settings.moderation import ModerationSettings
from schemas.messages import CallbackReceived, FrameModerated, FrameStored
from workers.contract import Consumption, Output, Retries, Stage
from workers.failures import Permanent
from workers.moderate import CONSUMES, NAME
from workers.moderate.backends.base import ModerationBackend
from workers.moderate.batcher import Batcher
from workers.moderate.limits import CircuitBreaker, TokenBucket


class ModerateStage(Stage[FrameStored | CallbackReceived]):
    name = NAME
    consumes = CONSUMES

    def __init__(self, options: ModerationSettings, backend: ModerationBackend) -> None:
        super().__init__(options.concurrency * max(1, backend.max_batch), Retries(tuple(options.retry_delays)))
        self.options = options
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
        await self.backend.start()
        self.batcher.start()

    async def close(self) -> None:
        await self.batcher.close()
        await self.backend.close()

    def sampled(self, frame: FrameStored) -> bool:
        """Deterministic per event, so every worker and every retry decides alike."""
        if frame.domain in self.off_domains:
            return False
        every = self.options.sample_every
        return every == 1 or int.from_bytes(hashlib.blake2b(frame.id.encode(), digest_size=4).digest()) % every == 0

    async def handle(self, message: FrameStored | CallbackReceived) -> list[Output]:
        if isinstance(message, FrameStored):
            verdict = await self.batcher.submit(message) if self.sampled(message) else None
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
