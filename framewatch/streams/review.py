"""The review queue: an account's flagged frames, and its reviewers' decisions on them."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select, update

from framewatch.config import tables as t
from framewatch.streams.records import DECISIONS
from framewatch.streams.scope import StoreBase


class Review(StoreBase):
    async def flagged(
        self,
        account_id: int,
        *,
        domain: str | None = None,
        stream: str | None = None,
        label: str | None = None,
        source: str | None = None,
        min_score: int | None = None,
        pending_only: bool = True,
        limit: int = 100,
    ) -> list[Any]:
        """The review queue: flagged frames, newest first."""
        f = t.frames.c
        conditions = [self._flagged_of(account_id)]
        for column, value in ((f.domain, domain), (f.stream, stream), (f.label, label), (f.source, source)):
            if value:
                conditions.append(column == value)
        if min_score is not None:
            conditions.append(f.score >= min_score)
        if pending_only:
            conditions.append(f.decision.is_(None))
        async with self.engine.connect() as conn:
            query = select(t.frames).where(*conditions).order_by(f.received_at.desc(), f.id).limit(limit)
            return (await conn.execute(query)).all()

    async def flagged_frames(self, account_id: int, frame_ids: Iterable[str]) -> list[Any]:
        """Those of these frames that are the account's and flagged (what a reviewer may decide on)."""
        async with self.engine.connect() as conn:
            return (await conn.execute(select(t.frames).where(self._flagged_of(account_id, frame_ids)))).all()

    async def decide(
        self, account_id: int, frame_ids: Iterable[str], decision: str, reviewer: str, at: int | None = None
    ) -> list[Any]:
        """Records a reviewer's decision on the account's flagged frames; returns the frames decided."""
        if decision not in DECISIONS:
            raise ValueError(f"decision must be one of {DECISIONS}")
        mine = self._flagged_of(account_id, frame_ids)
        async with self.engine.begin() as conn:
            await conn.execute(
                update(t.frames)
                .where(mine)
                .values(decision=decision, decided_by=reviewer, decided_at=int(time.time()) if at is None else at)
            )
            return (await conn.execute(select(t.frames).where(mine))).all()
