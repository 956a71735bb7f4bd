"""A shared window that never makes a callback wait on a Redis that does not answer.

Every call to the shared store has a short deadline. The first failure opens the breaker: for a cooldown every
call goes to the in-process window instead (the ingress keeps answering at its own pace; repeats within one replica
still collapse), then one call tries the shared store again (the others keep to the local window meanwhile) and
closes the breaker if it answers. Said in a metric and in one log line per change, not one per callback.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog

from framewatch.dedupe.base import Claim, DedupeStore
from framewatch.runtime import metrics

log = structlog.get_logger("framewatch.dedupe")
T = TypeVar("T")


class Breaker(DedupeStore):
    def __init__(self, shared: DedupeStore, local: DedupeStore, timeout: float, cooldown: float = 1.0) -> None:
        super().__init__(shared.window, shared.pending_ttl)
        self.shared = shared
        self.local = local
        self.timeout = timeout
        self.cooldown = cooldown
        self._open_until: float | None = None  # monotonic time; None: closed

    @property
    def open(self) -> bool:
        return self._open_until is not None

    async def _call(self, shared: Callable[[], Awaitable[T]], local: Callable[[], Awaitable[T]]) -> T:
        if self._open_until is not None:
            if time.monotonic() < self._open_until:
                return await local()
            # This call is the trial: every other call keeps to the local window until it has an answer.
            self._open_until = time.monotonic() + self.cooldown
        try:
            async with asyncio.timeout(self.timeout):
                result = await shared()
        except Exception as exc:
            metrics.DEDUPE_ERRORS.inc()
            if self._open_until is None:
                metrics.DEDUPE_FALLBACK.set(1)
                log.warning("dedupe_fallback", error=type(exc).__name__, cooldown=self.cooldown)
            self._open_until = time.monotonic() + self.cooldown
            return await local()
        if self._open_until is not None:
            self._open_until = None
            metrics.DEDUPE_FALLBACK.set(0)
            log.info("dedupe_shared_again")
        return result

    async def claim(self, event_id: str) -> Claim:
        return await self._call(lambda: self.shared.claim(event_id), lambda: self.local.claim(event_id))

    async def confirm(self, event_id: str) -> None:
        await self._call(lambda: self.shared.confirm(event_id), lambda: self.local.confirm(event_id))

    async def release(self, event_id: str) -> None:
        await self._call(lambda: self.shared.release(event_id), lambda: self.local.release(event_id))

    async def close(self) -> None:
        await self.shared.close()
        await self.local.close()
