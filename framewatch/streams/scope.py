"""The stream store's shared ground: its engine, what is live, and whose a row is (the account that owned the
domain when the row arrived, while it still owns it)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from framewatch.config import tables as t
from framewatch.streams.records import DEFAULT_MAX_LIVE, DEFAULT_SILENCE
from framewatch.streams.transaction import Transactions


class StoreBase:
    """The engine and the conditions every part of the store shares: what is live, and whose a row is."""

    def __init__(
        self, engine: AsyncEngine, *, silence: float = DEFAULT_SILENCE, max_live: int = DEFAULT_MAX_LIVE
    ) -> None:
        self.engine = engine
        self.transactions = Transactions(engine)  # the writes' (a SQLite writer's thread and connection)
        self.silence = silence  # seconds without a frame or an event after which a stream is no longer live
        self.max_live = max_live  # live streams per domain

    async def close(self) -> None:
        """What the store holds beside the process's engine (which its owner closes)."""
        await self.transactions.close()

    def _live_now(self, now: float | None = None) -> Any:
        """Live: begun (or framed) and not ended, and heard from within the silence."""
        s = t.streams.c
        return and_(s.live.is_(True), s.updated_at >= (time.time() if now is None else now) - self.silence)

    def is_live(self, row: Any, now: float | None = None) -> bool:
        return bool(row.live) and row.updated_at >= (time.time() if now is None else now) - self.silence

    def _account_domains(self, account_id: int) -> Any:
        return select(t.rules.c.domain).where(t.rules.c.account_id == account_id)

    def _mine(self, table: Any, account_id: int) -> Any:
        """The account's rows: received while it owned the domain, which it still owns."""
        return and_(table.c.account_id == account_id, table.c.domain.in_(self._account_domains(account_id)))

    def _flagged_of(self, account_id: int, frame_ids: Iterable[str] | None = None) -> Any:
        """The account's flagged frames (those of these ids, when given): what its reviewers see and decide on."""
        f = t.frames.c
        mine = and_(f.flagged.is_(True), self._mine(t.frames, account_id))
        return mine if frame_ids is None else and_(f.id.in_(list(dict.fromkeys(frame_ids))), mine)
