"""What the covers route, the admin API and the console read of the store, always within one account."""

from __future__ import annotations

from typing import Any

from sqlalchemy import exists, func, select

from framewatch.config import tables as t
from framewatch.streams.records import Cover
from framewatch.streams.scope import StoreBase


class Queries(StoreBase):
    async def cover(self, domain: str, stream: str) -> tuple[bool, Cover | None]:
        """(whether the stream is known, its cover)."""
        known, _, cover = await self.cover_state(domain, stream)
        return known, cover

    async def cover_state(self, domain: str, stream: str) -> tuple[bool, bool, Cover | None]:
        """(whether the stream is known, whether it is live, its cover): the stream as its domain's owner has it."""
        s, r = t.streams.c, t.rules.c
        owned = exists().where(r.domain == s.domain, r.account_id == s.account_id)
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(
                        s.live, s.updated_at, s.cover_frame_id, s.cover_key, s.cover_content_type, s.cover_time
                    ).where(s.domain == domain, s.name == stream, owned)
                )
            ).first()
        if row is None:
            return False, False, None
        cover = (
            None
            if row.cover_frame_id is None
            else Cover(row.cover_frame_id, row.cover_key, row.cover_content_type, row.cover_time)
        )
        return True, self.is_live(row), cover

    async def domains(self, account_id: int) -> list[str]:
        async with self.engine.connect() as conn:
            return list(await conn.scalars(self._account_domains(account_id).order_by(t.rules.c.domain)))

    async def streams(
        self,
        account_id: int,
        *,
        domain: str | None = None,
        app: str | None = None,
        name: str | None = None,
        live_only: bool = True,
        changed_since: float | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> tuple[int, list[Any]]:
        """(how many match, one page of them), the account's domains only, in domain, app and name order."""
        s = t.streams.c
        conditions = [self._mine(t.streams, account_id)]
        if live_only:
            conditions.append(self._live_now())
        if domain:
            conditions.append(s.domain == domain)
        if app:
            conditions.append(s.app == app)
        if name:
            conditions.append(s.name == name)
        if changed_since is not None:
            conditions.append(s.updated_at > changed_since)
        async with self.engine.connect() as conn:
            total = int(await conn.scalar(select(func.count()).select_from(t.streams).where(*conditions)) or 0)
            rows = (
                await conn.execute(
                    select(t.streams).where(*conditions).order_by(s.domain, s.app, s.name).offset(offset).limit(limit)
                )
            ).all()
        return total, rows

    async def recent_frames(self, account_id: int, domain: str, stream: str, limit: int = 12) -> list[Any]:
        f = t.frames.c
        async with self.engine.connect() as conn:
            return (
                await conn.execute(
                    select(t.frames)
                    .where(self._mine(t.frames, account_id), f.domain == domain, f.stream == stream)
                    .order_by(f.capture_time.desc())
                    .limit(limit)
                )
            ).all()

    async def frame(self, account_id: int, frame_id: str) -> Any:
        f = t.frames.c
        async with self.engine.connect() as conn:
            query = select(t.frames).where(f.id == frame_id, self._mine(t.frames, account_id))
            return (await conn.execute(query)).first()

    async def filter_values(self, account_id: int) -> dict[str, list[str]]:
        """The labels and sources the account's flagged frames carry, for the queue's filters."""
        f = t.frames.c
        mine = self._flagged_of(account_id)
        async with self.engine.connect() as conn:
            labels = list(await conn.scalars(select(f.label).where(mine).distinct().order_by(f.label)))
            sources = list(await conn.scalars(select(f.source).where(mine).distinct().order_by(f.source)))
        return {"labels": labels, "sources": sources}

    async def quality(self, account_id: int) -> list[Any]:
        """Per label and source: flags confirmed, dismissed and still pending."""
        f = t.frames.c
        async with self.engine.connect() as conn:
            query = (
                select(f.label, f.source, f.decision, func.count().label("count"))
                .where(self._flagged_of(account_id))
                .group_by(f.label, f.source, f.decision)
                .order_by(f.label, f.source)
            )
            return (await conn.execute(query)).all()
