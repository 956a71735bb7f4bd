"""The moderation stage: stored frames get a backend's verdict; provider moderation callbacks (317) carry theirs."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from aio_pika.abc import AbstractIncomingMessage
from pydantic import ValidationError

from framewatch.broker.topology import MODERATED
from framewatch.runtime import metrics
from framewatch.runtime.settings import Settings
from schemas.messages import CallbackReceived, FrameModerated, FrameStored, Verdict
from framewatch.providers.tencent.events import ImageModerationEvent
from workers.failures import Permanent
from workers.moderate.backends.base import ModerationBackend
from workers.moderate.batcher import Batcher
from workers.moderate.limits import CircuitBreaker, TokenBucket
from workers.runtime import Output, Stage

# Tencent IMS's documented default quota.
IMS_RATE = 100.0


def provider_verdict(event: ImageModerationEvent) -> Verdict:
    """A 317 callback's own verdict, in the one verdict schema."""
    suggestion = event.suggestion if event.suggestion in ("Pass", "Review", "Block") else "Review"
    scores = {}
    for result in getattr(event, "labelResults", None) or []:
        if isinstance(result, dict) and "Label" in result:
            scores[str(result["Label"])] = float(result.get("Score") or 0)
    return Verdict(
        suggestion=suggestion,
        label=event.label or "Normal",
        sub_label=getattr(event, "subLabel", None) or "",
        score=round(max(event.score, default=0)),
        scores=scores,
        source="tencent",
    )


class ModerateStage(Stage):
    name = "moderate"

    def __init__(self, settings: Settings, backend: ModerationBackend) -> None:
        super().__init__(settings.moderation_concurrency * max(1, backend.max_batch))
        self.settings = settings
        self.backend = backend
        rate = settings.moderation_rate_limit or (IMS_RATE if backend.name == "tencent-ims" else None)
        self.batcher = Batcher(
            backend,
            concurrency=1 if backend.name == "nudenet" else settings.moderation_concurrency,
            timeout=settings.moderation_timeout,
            bucket=TokenBucket(rate) if rate else None,
            breaker=CircuitBreaker(
                settings.moderation_breaker_failures,
                settings.moderation_breaker_cooldown,
                pause=self._pause,
                resume=self._resume,
            ),
        )

    async def _pause(self) -> None:
        if self.runner is not None:
            await self.runner.pause()

    async def _resume(self) -> None:
        if self.runner is not None:
            await self.runner.resume()

    def retry_delays(self, message: AbstractIncomingMessage) -> Sequence[float]:
        return self.settings.moderation_retry_delays

    def ladder(self) -> set[float]:
        return set(self.settings.moderation_retry_delays)

    async def start(self) -> None:
        await self.backend.start()
        self.batcher.start()

    async def close(self) -> None:
        await self.batcher.close()
        await self.backend.close()

    def sampled(self, frame: FrameStored) -> bool:
        """Deterministic per event, so every worker and every retry decides alike."""
        if frame.domain in self.settings.moderation_off_domains:
            return False
        every = self.settings.moderation_sample_every
        return every == 1 or int.from_bytes(hashlib.blake2b(frame.id.encode(), digest_size=4).digest()) % every == 0

    async def handle(self, message: AbstractIncomingMessage) -> list[Output]:
        try:
            if message.type == "frame_stored":
                frame = FrameStored.model_validate_json(message.body)
                verdict = await self.batcher.submit(frame) if self.sampled(frame) else None
                moderated = FrameModerated(id=frame.id, domain=frame.domain, frame=frame, verdict=verdict)
            else:
                callback = CallbackReceived.model_validate_json(message.body)
                verdict = provider_verdict(ImageModerationEvent.model_validate(callback.event))
                moderated = FrameModerated(id=callback.id, domain=callback.domain, callback=callback, verdict=verdict)
        except ValidationError as exc:
            raise Permanent("bad_message", str(exc).splitlines()[0]) from None
        metrics.VERDICTS.labels(
            verdict.source if verdict else "unreviewed", verdict.suggestion if verdict else "none"
        ).inc()
        return [moderated_output(moderated)]


def moderated_output(moderated: FrameModerated) -> Output:
    """A moderated frame or verdict, on its way to the deliver stage."""
    return Output(
        MODERATED,
        moderated.model_dump_json().encode(),
        message_id=moderated.id,
        message_type="moderated",
        headers={"domain": moderated.domain},
    )
