"""Per-account call limits: at most N calls in any one-second window, shared by every replica through Redis."""

from __future__ import annotations

import time
import uuid
from collections import defaultdict, deque

import structlog
from redis.asyncio import Redis

log = structlog.get_logger("framewatch.admin")


class LocalLimiter:
    """A sliding log per key, in this process: exact, for a single replica."""

    def __init__(self) -> None:
        self.calls: defaultdict[str, deque[float]] = defaultdict(deque)

    async def allow(self, key: str, limit: int) -> bool:
        now = time.monotonic()
        calls = self.calls[key]
        while calls and calls[0] <= now - 1.0:
            calls.popleft()
        if len(calls) >= limit:
            return False
        calls.append(now)
        return True


# A sliding log in a sorted set, with the Redis server's clock so that replicas with skewed clocks agree.
_SLIDING_LOG = """
local now = redis.call('TIME')
local micros = tonumber(now[1]) * 1000000 + tonumber(now[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], 0, micros - 1000000)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], micros, ARGV[2])
redis.call('PEXPIRE', KEYS[1], 1000)
return 1
"""


class RedisLimiter:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis  # the process's admin-side client: closed with its other resources
        self.prefix = f"{prefix}:throttle:"
        self._script = self.redis.register_script(_SLIDING_LOG)
        self._fallback = LocalLimiter()

    async def allow(self, key: str, limit: int) -> bool:
        try:
            return bool(await self._script(keys=[self.prefix + key], args=[limit, uuid.uuid4().hex]))
        except Exception as exc:  # Redis down: limit per replica rather than refuse every operator
            log.warning("throttle_redis_unavailable", error=str(exc))
            return await self._fallback.allow(key, limit)


Limiter = LocalLimiter | RedisLimiter


def create(redis: Redis | None, namespace: str) -> Limiter:
    return RedisLimiter(redis, namespace) if redis is not None else LocalLimiter()
