"""Frames from concurrent messages, moderated together: batches under load, one at a time when idle.

The batcher also owns what protects the backend: the rate limit, bounded concurrency, the call timeout and the
circuit breaker. A batch that fails for a reason of one of its frames is moderated again frame by frame.
"""

from __future__ import annotations

import asyncio
import time

from framewatch.runtime import metrics
from schemas.messages import FrameStored, Verdict
from workers.batches import settle_alone
from workers.moderate.backends.base import BackendUnavailable, ModerationBackend
from workers.moderate.limits import CircuitBreaker, TokenBucket

Pending = tuple[FrameStored, asyncio.Future[Verdict | None]]


class Batcher:
    def __init__(
        self,
        backend: ModerationBackend,
        *,
        concurrency: int,
        timeout: float,
        bucket: TokenBucket | None,
        breaker: CircuitBreaker,
    ) -> None:
        self.backend = backend
        self.timeout = timeout
        self.bucket = bucket
        self.breaker = breaker
        self._queue: asyncio.Queue[Pending] = asyncio.Queue()
        self._slots = asyncio.Semaphore(concurrency)
        self._task: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="moderation-batcher")

    async def submit(self, frame: FrameStored) -> Verdict | None:
        future: asyncio.Future[Verdict | None] = asyncio.get_running_loop().create_future()
        await self._queue.put((frame, future))
        return await future

    async def _loop(self) -> None:
        while True:
            batch = [await self._queue.get()]
            await self._slots.acquire()
            # Whatever queued up while we waited for a slot joins this call, up to the backend's batch size.
            while len(batch) < self.backend.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            task = asyncio.create_task(self._run(batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _run(self, batch: list[Pending]) -> None:
        try:
            if self.bucket is not None:
                await self.bucket.take(len(batch))
            verdicts = await self._call([frame for frame, _ in batch])
            for (_, future), verdict in zip(batch, verdicts, strict=True):
                if not future.done():
                    future.set_result(verdict)
        except Exception as exc:
            if len(batch) > 1 and not isinstance(exc, BackendUnavailable):
                # One frame the backend could not take (a corrupt image, say) must not fail the others with it.
                async def alone(frame: FrameStored) -> Verdict | None:
                    return (await self._call([frame]))[0]

                await settle_alone(batch, alone, lambda failure: isinstance(failure, BackendUnavailable))
                return
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
        finally:
            self._slots.release()

    async def _call(self, frames: list[FrameStored]) -> list[Verdict | None]:
        """One backend call within the timeout; the breaker counts what the backend could not answer."""
        started = time.perf_counter()
        try:
            try:
                verdicts = await asyncio.wait_for(self.backend.moderate(frames), self.timeout)
            except TimeoutError:
                raise BackendUnavailable("moderation_timeout", f"no answer within {self.timeout}s") from None
        except BackendUnavailable:
            await self.breaker.failure()
            raise
        metrics.MODERATION_SECONDS.labels(self.backend.name).observe(time.perf_counter() - started)
        self.breaker.success()
        return verdicts

    async def close(self) -> None:
        for task in [self._task, *self._running]:
            if task is not None:
                task.cancel()
        self.breaker.close()
