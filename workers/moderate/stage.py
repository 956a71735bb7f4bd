"""The moderation stage: stored frames get a backend's verdict; the providers' own moderation callbacks carry
theirs, read by their provider's package at the ingress."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from aio_pika.abc import AbstractIncomingMessage
from pydantic import ValidationError

from framewatch.runtime import metrics
from schemas.messages import CallbackReceived, FrameModerated, FrameStored
from workers.failures import Permanent
from workers.moderate.backends.base import ModerationBackend
from workers.moderate.batcher import Batcher
from workers.moderate.limits import CircuitBreaker, TokenBucket
from workers.runtime import Output, Retries, Stage


@dataclass(frozen=True, slots=True)
class ModerateOptions:
    concurrency: int  # backend calls at once
    timeout: float
    retry_delays: tuple[float, ...]
    rate_limit: float | None  # calls per second to the backend (token bucket)
    breaker_failures: int  # failures in a row that open the circuit breaker
    breaker_cooldown: float  # its first pause, doubling on each failed trial
    sample_every: int = 1  # moderate every Nth frame only
    off_domains: frozenset[str] = frozenset()  # never moderated


class ModerateStage(Stage):
    name = "moderate"

    def __init__(self, options: ModerateOptions, backend: ModerationBackend) -> None:
        super().__init__(options.concurrency * max(1, backend.max_batch), Retries(options.retry_delays))
        self.options = options
        self.backend = backend
        self.batcher = Batcher(
            backend,
            concurrency=1 if backend.name == "nudenet" else options.concurrency,
            timeout=options.timeout,
            bucket=TokenBucket(options.rate_limit) if options.rate_limit else None,
            breaker=CircuitBreaker(
                options.breaker_failures, options.breaker_cooldown, pause=self._pause, resume=self._resume
            ),
        )

    async def _pause(self) -> None:
        if self.runner is not None:
            await self.runner.pause()

    async def _resume(self) -> None:
        if self.runner is not None:
            await self.runner.resume()

    async def start(self) -> None:
        await self.backend.start()
        self.batcher.start()

    async def close(self) -> None:
        await self.batcher.close()
        await self.backend.close()

    def sampled(self, frame: FrameStored) -> bool:
        """Deterministic per event, so every worker and every retry decides alike."""
        if frame.domain in self.options.off_domains:
            return False
        every = self.options.sample_every
        return every == 1 or int.from_bytes(hashlib.blake2b(frame.id.encode(), digest_size=4).digest()) % every == 0

    async def handle(self, message: AbstractIncomingMessage) -> list[Output]:
        try:
            if message.type == FrameStored.TYPE:
                frame = FrameStored.model_validate_json(message.body)
                verdict = await self.batcher.submit(frame) if self.sampled(frame) else None
                moderated = FrameModerated(
                    id=frame.id, domain=frame.domain, frame=frame, verdict=verdict, moderated_at=time.time()
                )
            else:  # a provider's own verdict
                callback = CallbackReceived.model_validate_json(message.body)
                verdict = callback.verdict
                if verdict is None:
                    raise Permanent("bad_message", f"a {callback.kind} callback carries no verdict")
                moderated = FrameModerated(
                    id=callback.id, domain=callback.domain, callback=callback, verdict=verdict, moderated_at=time.time()
                )
        except ValidationError as exc:
            raise Permanent("bad_message", str(exc).splitlines()[0]) from None
        metrics.VERDICTS.labels(
            verdict.source if verdict else "unreviewed", verdict.suggestion if verdict else "none"
        ).inc()
        return [Output.of(moderated, moderated.kind)]
