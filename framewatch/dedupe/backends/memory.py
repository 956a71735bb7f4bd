"""In-process window: one replica's view only, bounded in size (set REDIS_URL to share one across replicas)."""

from __future__ import annotations

import time

from framewatch.dedupe.base import Claim, DedupeStore


class MemoryDedupe(DedupeStore):
    def __init__(self, window: float, pending_ttl: float, max_entries: int = 1_000_000) -> None:
        super().__init__(window, pending_ttl)
        self.max_entries = max_entries
        # id -> (done, expires_at); insertion order is expiry order for confirmed ids, so pruning is O(expired).
        self._entries: dict[str, tuple[bool, float]] = {}

    def _prune(self, now: float) -> None:
        entries = self._entries
        while entries:
            oldest = next(iter(entries))
            if entries[oldest][1] > now and len(entries) <= self.max_entries:
                break
            del entries[oldest]

    async def claim(self, event_id: str) -> Claim:
        now = time.monotonic()
        self._prune(now)
        entry = self._entries.get(event_id)
        if entry is not None and entry[1] > now:
            return Claim.DONE if entry[0] else Claim.PENDING
        self._entries[event_id] = (False, now + self.pending_ttl)
        return Claim.NEW

    async def confirm(self, event_id: str) -> None:
        self._entries.pop(event_id, None)
        self._entries[event_id] = (True, time.monotonic() + self.window)

    async def release(self, event_id: str) -> None:
        entry = self._entries.get(event_id)
        if entry is not None and not entry[0]:
            del self._entries[event_id]

    def __len__(self) -> int:
        return len(self._entries)
