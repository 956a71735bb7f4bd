"""The dedupe store interface. An id is claimed before publishing and confirmed after the broker's confirm.

Claim, then confirm or release: a retry that arrives while the first copy is still being published is
published too (never refused on a maybe), and an id whose publish failed is released so its retry goes through.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from enum import Enum


class Claim(Enum):
    NEW = "new"  # nobody has this id: publish it
    PENDING = "pending"  # another request is publishing it right now: publish too, at least once wins
    DONE = "done"  # published and confirmed within the window: a duplicate


class DedupeStore(ABC):
    def __init__(self, window: float, pending_ttl: float) -> None:
        self.window = window
        self.pending_ttl = pending_ttl

    @abstractmethod
    async def claim(self, event_id: str) -> Claim: ...

    @abstractmethod
    async def confirm(self, event_id: str) -> None:
        """The event is durably queued: suppress copies for the whole window."""

    @abstractmethod
    async def release(self, event_id: str) -> None:
        """Publishing failed: forget the claim so the provider's retry is published."""

    async def close(self) -> None:
        return None
