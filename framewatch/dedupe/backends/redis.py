"""Window shared by every replica through Redis: SET NX for the claim, a longer SET once confirmed."""

from __future__ import annotations

from redis.asyncio import Redis

from framewatch.dedupe.base import Claim, DedupeStore

_PENDING, _DONE = b"p", b"d"
# Delete the claim only if it is still pending: a confirmed copy from another replica must survive.
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


class RedisDedupe(DedupeStore):
    def __init__(self, url: str, window: float, pending_ttl: float, prefix: str) -> None:
        super().__init__(window, pending_ttl)
        self.redis = Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self.prefix = f"{prefix}:dedupe:"
        self._release = self.redis.register_script(_RELEASE)

    async def claim(self, event_id: str) -> Claim:
        key = self.prefix + event_id
        if await self.redis.set(key, _PENDING, nx=True, px=int(self.pending_ttl * 1000)):
            return Claim.NEW
        state = await self.redis.get(key)
        if state == _DONE:
            return Claim.DONE
        return Claim.PENDING if state == _PENDING else await self.claim(event_id)

    async def confirm(self, event_id: str) -> None:
        await self.redis.set(self.prefix + event_id, _DONE, px=int(self.window * 1000))

    async def release(self, event_id: str) -> None:
        await self._release(keys=[self.prefix + event_id], args=[_PENDING])

    async def close(self) -> None:
        await self.redis.aclose()
