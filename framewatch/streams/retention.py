"""What the store forgets: silent streams stop being live, ended ones and old flagged frames go, and so does a
moved domain's history."""

from __future__ import annotations

import orjson
from sqlalchemy import delete, exists, or_, select, update

from framewatch.config import tables as t
from framewatch.streams.scope import StoreBase


class Retention(StoreBase):
    async def sweep(self, now: float, stream_retention: float, review_retention: float) -> list[str]:
        """Streams silent for longer than the silence stop being live; streams no longer live for longer than
        `stream_retention` are forgotten with their frames; flagged frames older than `review_retention` go, and
        so does everything of a domain's former owner. Returns the blob keys of the flagged frames removed, for the
        caller to delete."""
        s, f, r = t.streams.c, t.frames.c, t.rules.c
        async with self.engine.begin() as conn:
            await conn.execute(
                update(t.streams).where(s.live.is_(True), s.updated_at < now - self.silence).values(live=False)
            )
            gone = (
                await conn.execute(
                    select(s.domain, s.name, s.account_id).where(
                        s.live.is_(False), s.updated_at < now - stream_retention
                    )
                )
            ).all()
            for domain, name, account_id in gone:
                await conn.execute(
                    delete(t.frames).where(
                        f.domain == domain, f.stream == name, f.account_id == account_id, f.flagged.is_(False)
                    )
                )
                await conn.execute(delete(t.streams).where(s.domain == domain, s.name == name))
            # Not the domain's owner's (it moved, or is unbound): shown to nobody, kept by nobody.
            frames_owned = exists().where(r.domain == f.domain, r.account_id == f.account_id)
            streams_owned = exists().where(r.domain == s.domain, r.account_id == s.account_id)
            removed = or_(~frames_owned, f.flagged.is_(True) & (f.received_at < now - review_retention))
            keys = [
                key
                for (blobs,) in await conn.execute(select(f.blob_keys).where(removed, f.flagged.is_(True)))
                for key in orjson.loads(blobs)
            ]
            await conn.execute(delete(t.frames).where(removed))
            await conn.execute(delete(t.streams).where(~streams_owned))
            await conn.execute(delete(t.console_sessions).where(t.console_sessions.c.expires_at < int(now)))
        return keys
