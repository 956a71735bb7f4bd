"""In-process window: one replica's view only, bounded in size (set REDIS_URL to share one across replicas)."""

from __future__ import annotations

import time

from framewatch.dedupe.base import Claim, DedupeStore


class MemoryDedupe(DedupeStore):
    def __init__(self, window: float, pending_ttl: float, max_entries: int = 1_000_000) -> None:
        super().__init__(window, pending_ttl)
        self.max_entries = max_entries
        # id -> expiry. Only str keys and float values: the garbage collector never walks these dicts, which
        # matters with a million ids. Insertion order is expiry order, so pruning touches only expired ids.
        self._done: dict[str, float] = {}
        self._pending: dict[str, float] = {}

    @staticmethod
    def _prune(entries: dict[str, float], now: float, limit: int) -> None:
        while entries:
            oldest = next(iter(entries))
            if entries[oldest] > now and len(entries) <= limit:
                break
            del entries[oldest]

    async def claim(self, event_id: str) -> Claim:
        now = time.monotonic()
        self._prune(self._done, now, self.max_entries)
        self._prune(self._pending, now, self.max_entries)
        if self._done.get(event_id, 0.0) > now:
            return Claim.DONE
        if self._pending.get(event_id, 0.0) > now:
            return Claim.PENDING
        self._pending[event_id] = now + self.pending_ttl
        return Claim.NEW

    async def confirm(self, event_id: str) -> None:
        self._pending.pop(event_id, None)
        self._done.pop(event_id, None)
        self._done[event_id] = time.monotonic() + self.window

    async def release(self, event_id: str) -> None:
        self._pending.pop(event_id, None)

    def __len__(self) -> int:
        return len(self._done) + len(self._pending)
