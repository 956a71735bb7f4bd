"""What keeps a moderation backend healthy: a token bucket, and a circuit breaker that pauses consumption."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class TokenBucket:
    """At most `rate` calls per second on average, bursts up to `burst`."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate = rate
        self.capacity = burst if burst is not None else max(1.0, rate)
        self.tokens = self.capacity
        self.updated = time.monotonic()
        self._lock = asyncio.Lock()

    async def take(self, tokens: float = 1.0) -> None:
        async with self._lock:  # first come, first served
            while True:
                now = time.monotonic()
                self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
                self.updated = now
                if self.tokens >= tokens:
                    self.tokens -= tokens
                    return
                await asyncio.sleep((tokens - self.tokens) / self.rate)


class CircuitBreaker:
    """After `threshold` failures in a row, open: call `pause`, wait, call `resume` and let one try through.

    While open, the stage takes no new messages (they wait safely in the queue) instead of burning retries on a
    backend that is down. Each failed trial doubles the wait, up to `max_cooldown`.
    """

    def __init__(
        self,
        threshold: int,
        cooldown: float,
        pause: Callable[[], Awaitable[None]],
        resume: Callable[[], Awaitable[None]],
        max_cooldown: float = 300.0,
        on_change: Callable[[bool], None] = lambda is_open: None,
    ) -> None:
        self.threshold = threshold
        self.base_cooldown = cooldown
        self.cooldown = cooldown
        self.max_cooldown = max_cooldown
        self._pause, self._resume = pause, resume
        self._on_change = on_change  # told each time it opens (True) or lets a trial through (False)
        self.failures = 0
        self.open = False
        self._timer: asyncio.Task[None] | None = None

    def success(self) -> None:
        self.failures = 0
        self.cooldown = self.base_cooldown

    async def failure(self) -> None:
        self.failures += 1
        if self.failures >= self.threshold and not self.open:
            self.open = True
            self._on_change(True)
            await self._pause()
            self._timer = asyncio.create_task(self._half_open(), name="breaker-cooldown")

    async def _half_open(self) -> None:
        await asyncio.sleep(self.cooldown)
        self.cooldown = min(self.cooldown * 2, self.max_cooldown)
        self.failures = self.threshold - 1  # one more failure opens it again
        self.open = False
        self._on_change(False)
        await self._resume()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
