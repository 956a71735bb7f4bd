"""What a signed request's one-time part (Alibaba's nonce, a Tencent signature) was first used for, within its window.

In Redis when set, so that every replica agrees; always in this process too, so that what was accepted while Redis
did not answer stays refused once it answers again (and is written there then, for the other replicas).
"""

from __future__ import annotations

import time
from collections import OrderedDict

import structlog
from redis.asyncio import Redis

log = structlog.get_logger("framewatch.admin")

# The value remembered first, or nothing (and then `value` is remembered, for `window` seconds).
_FIRST = """
local first = redis.call('GET', KEYS[1])
if first then return first end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return false
"""


class FirstUses:
    def __init__(self, redis: Redis | None, prefix: str, window: int, max_items: int = 200_000) -> None:
        self.redis = redis
        self.prefix = prefix
        self.window = window
        self.max_items = max_items  # bounded memory, however many requests come
        self._seen: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._unsynced: OrderedDict[str, str] = OrderedDict()  # accepted while Redis did not answer
        self._script = redis.register_script(_FIRST) if redis is not None else None

    async def first(self, key: str, value: str) -> str | None:
        """The value `key` was first used with, or None: then this is its first use, remembered with `value`."""
        now = time.monotonic()
        self._expire(now)
        if self._unsynced:
            await self._sync()
        seen = self._seen.get(key)
        if seen is not None:
            return seen[0]
        first = await self._shared(key, value)
        self._seen[key] = (value if first is None else first, now)
        while len(self._seen) > self.max_items:
            self._seen.popitem(last=False)
        return first

    async def _shared(self, key: str, value: str) -> str | None:
        if self._script is None:
            return None
        try:
            first = await self._script(keys=[self.prefix + key], args=[value, self.window])
        except Exception as exc:  # Redis down: this replica's memory still refuses what it saw
            log.warning("replay_store_unavailable", store=self.prefix, error=type(exc).__name__)
            self._unsynced[key] = value
            while len(self._unsynced) > self.max_items:
                self._unsynced.popitem(last=False)
            return None
        return None if first is None else first.decode(errors="replace")

    async def _sync(self) -> None:
        """What this replica accepted while Redis was away, written there once it answers again."""
        assert self._script is not None
        try:
            while self._unsynced:
                key, value = next(iter(self._unsynced.items()))
                await self._script(keys=[self.prefix + key], args=[value, self.window])
                del self._unsynced[key]
        except Exception as exc:  # still away: kept for the next call
            log.warning("replay_store_unavailable", store=self.prefix, error=type(exc).__name__)

    def _expire(self, now: float) -> None:
        while self._seen and next(iter(self._seen.values()))[1] < now - self.window:
            self._seen.popitem(last=False)

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()
