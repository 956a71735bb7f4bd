"""In-process window: one replica's view only, bounded in size (set REDIS_URL to share one across replicas)."""

from __future__ import annotations

import time
from collections import OrderedDict

from framewatch.dedupe.base import Claim, DedupeStore


class MemoryDedupe(DedupeStore):
    def __init__(self, window: float, pending_ttl: float, max_entries: int = 1_000_000) -> None:
        super().__init__(window, pending_ttl)
        self.max_entries = max_entries
        # id -> expiry; insertion order is expiry order, so pruning touches only expired ids. OrderedDict, not
        # dict: a dict whose oldest keys keep being deleted finds its first key by skipping every deleted slot
        # before it (~80 µs per callback once a full window expires as fast as it fills); this stays O(1).
        self._done: OrderedDict[str, float] = OrderedDict()
        self._pending: OrderedDict[str, float] = OrderedDict()

    @staticmethod
    def _prune(entries: OrderedDict[str, float], now: float, limit: int) -> None:
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
        self._done[event_id] = time.monotonic() + self.window
        self._done.move_to_end(event_id)

    async def release(self, event_id: str) -> None:
        self._pending.pop(event_id, None)

    def __len__(self) -> int:
        return len(self._done) + len(self._pending)
