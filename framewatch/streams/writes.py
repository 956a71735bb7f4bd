"""The streams stage's writes: a batch of frames and stream events in one transaction, idempotent and independent
of arrival order (a stream's row locked first, then its frames, then its cover recomputed from the frames table)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    Integer,
    and_,
    bindparam,
    case,
    delete,
    func,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from framewatch.config import tables as t
from framewatch.streams.records import KEEP_RECENT, PRUNE_EVERY, Change, Cover, FrameRecord, StreamRecord
from framewatch.streams.scope import StoreBase


def _sampled(key: str, every: int) -> bool:
    return hashlib.blake2b(key.encode(), digest_size=2).digest()[0] % every == 0


_STREAM_UPSERTS: dict[str, Any] = {}


def _stream_upsert(dialect: str) -> Any:
    """The stream's row after one more frame, one statement for a batch's frames (executemany, built once per
    dialect): made if new; live on a frame newer than its end; first and last frame times, last verdict and cover
    only ever move forward, and the cover only to a safe frame (`safe`, and in capture time, then id, order). A row
    of another account (the domain moved) starts again as this account's new stream."""
    if dialect in _STREAM_UPSERTS:
        return _STREAM_UPSERTS[dialect]
    s = t.streams.c
    ct = bindparam("ct", type_=BigInteger)
    account = bindparam("account_id", type_=Integer)
    moved = or_(s.account_id.is_(None), s.account_id != account)
    newest = or_(moved, s.last_frame_at.is_(None), s.last_frame_at <= ct)
    oldest = or_(moved, s.first_frame_at.is_(None), s.first_frame_at > ct)
    becomes_cover = and_(
        bindparam("safe", type_=Boolean),
        or_(
            moved,
            s.cover_time.is_(None),
            s.cover_time < ct,
            and_(s.cover_time == ct, s.cover_frame_id < bindparam("frame_id")),
        ),
    )
    cover = {
        "cover_frame_id": bindparam("cover_frame_id"),
        "cover_key": bindparam("cover_key"),
        "cover_content_type": bindparam("cover_content_type"),
        "cover_time": bindparam("cover_time", type_=BigInteger),
    }
    last = {column: bindparam(column) for column in ("last_suggestion", "last_label", "last_source")}
    now = bindparam("now", type_=Float)
    values = {
        "domain": bindparam("domain"),
        "name": bindparam("stream"),
        "app": bindparam("app"),
        "provider": bindparam("provider"),
        "account_id": account,
        "live": True,
        "first_frame_at": ct,
        "last_frame_at": ct,
        "updated_at": now,
        **last,
        **cover,
    }
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(t.streams).values(**values)
    statement = insert.on_conflict_do_update(
        index_elements=["domain", "name"],
        set_={
            "first_frame_at": case((oldest, ct), else_=s.first_frame_at),
            "last_frame_at": case((newest, ct), else_=s.last_frame_at),
            **{column: case((newest, value), else_=s[column]) for column, value in last.items()},
            "live": case((or_(moved, s.ended_at.is_(None), s.ended_at < ct), True), else_=s.live),
            **{column: case((becomes_cover, value), (moved, None), else_=s[column]) for column, value in cover.items()},
            "app": case((bindparam("app") != "", bindparam("app")), else_=s.app),
            "began_at": case((moved, None), else_=s.began_at),
            "ended_at": case((moved, None), else_=s.ended_at),
            "provider_flags": case((moved, 0), else_=s.provider_flags),
            "provider": case((moved, bindparam("provider")), else_=s.provider),
            "account_id": account,
            "updated_at": now,
        },
    )
    _STREAM_UPSERTS[dialect] = statement
    return statement


def _stream_params(frame: FrameRecord, now: float) -> dict[str, Any]:
    safe = not frame.flagged
    return {
        "frame_id": frame.id,
        "domain": frame.domain,
        "stream": frame.stream,
        "app": frame.app,
        "provider": frame.provider,
        "ct": frame.capture_time,
        "safe": safe,
        "cover_frame_id": frame.id if safe else None,
        "cover_key": frame.image_key if safe else None,
        "cover_content_type": frame.image_content_type if safe else None,
        "cover_time": frame.capture_time if safe else None,
        "last_suggestion": frame.suggestion,
        "last_label": frame.label[:64],
        "last_source": frame.source[:64],
        "account_id": frame.account_id,
        "now": now,
    }


def _upsert(conn: Connection, table: Any) -> Any:
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


class Writes(StoreBase):
    async def apply(self, items: Sequence[FrameRecord | StreamRecord]) -> Change:
        return await self.transactions.run(lambda conn: self._apply(conn, items))

    def _apply(self, conn: Connection, items: Sequence[FrameRecord | StreamRecord]) -> Change:
        """One transaction for a batch. The common case costs four statements for the whole batch: the domains'
        owners, the frames' rows, their streams' upserts (times, state and cover only move forward) and a look at the
        streams' covers. Rows are written in one order, so replicas writing together do not deadlock."""
        owned, refused = self._owned(conn, items)
        frames = sorted(
            (item for item in owned if isinstance(item, FrameRecord) and not item.provider_verdict),
            key=lambda frame: (frame.domain, frame.stream, frame.capture_time, frame.id),
        )
        others = sorted(
            (item for item in owned if not (isinstance(item, FrameRecord) and not item.provider_verdict)),
            key=lambda item: (item.domain, item.stream),
        )
        by_stream: dict[tuple[str, str], list[FrameRecord]] = {}
        for frame in frames:
            by_stream.setdefault((frame.domain, frame.stream), []).append(frame)
        recheck: set[tuple[str, str]] = set()
        covers: dict[tuple[str, str], Cover | None] = {}
        if frames:
            insert_frames = _upsert(conn, t.frames).on_conflict_do_nothing(index_elements=["id"])
            conn.execute(insert_frames, [_frame_values(frame) for frame in frames])
        for item in others:
            if isinstance(item, StreamRecord):
                self._stream_event(conn, item)
            else:  # a provider's verdict (317): the cover is recomputed from the frames
                self._provider_verdict(conn, item)
                recheck.add((item.domain, item.stream))
        if frames:
            now = time.time()
            conn.execute(_stream_upsert(conn.dialect.name), [_stream_params(frame, now) for frame in frames])
            for row in self._stream_rows(conn, list(by_stream)):
                key = (row.domain, row.name)
                if row.provider_flags:  # verdicts that came before their frames: these may be among them
                    for frame in by_stream[key]:
                        if self._adopt_earlier_verdict(conn, frame):
                            recheck.add(key)
                if key not in recheck and row.cover_frame_id in {frame.id for frame in by_stream[key]}:
                    covers[key] = Cover(row.cover_frame_id, row.cover_key, row.cover_content_type, row.cover_time)
            # The store, not the message in hand, says what was flagged: a frame's message delivered again (a
            # redelivery, a retry, a replayed dead letter) after a 317 or a reviewer flagged it carries its old
            # Pass. Read now, with the streams' rows locked by the upsert, so a concurrent flag is seen or waits.
            for key in self._flagged_covers(conn, covers):
                del covers[key]
                recheck.add(key)
            sampled = [  # about one frame in PRUNE_EVERY prunes its stream
                (domain, stream, stream_frames[0].account_id)
                for (domain, stream), stream_frames in by_stream.items()
                if any(_sampled(frame.id, PRUNE_EVERY) for frame in stream_frames)
            ]
            if sampled:
                self._prune(conn, sampled)
        owners = {(item.domain, item.stream): item.account_id for item in owned}
        for key in sorted(recheck):
            covers[key] = self._recompute_cover(conn, *key, owners[key])
        return Change(covers, refused)

    def _owned(
        self, conn: Connection, items: Sequence[FrameRecord | StreamRecord]
    ) -> tuple[list[FrameRecord | StreamRecord], dict[str, int]]:
        """The items that are still their domain's owner's, each with its owner named; and what was refused: items
        of a domain now unbound or bound to another account, and those that would start a live stream past the
        domain's cap."""
        domains = sorted({item.domain for item in items})
        owner_of: dict[str, int] = {}
        for start in range(0, len(domains), 200):
            chunk = domains[start : start + 200]
            query = select(t.rules.c.domain, t.rules.c.account_id).where(t.rules.c.domain.in_(chunk))
            owner_of.update({row.domain: int(row.account_id) for row in conn.execute(query)})
        refused: dict[str, int] = {}
        owned: list[FrameRecord | StreamRecord] = []
        for item in items:
            owner = owner_of.get(item.domain)
            if owner is None or (item.account_id is not None and item.account_id != owner):
                refused["domain_moved"] = refused.get("domain_moved", 0) + 1
                continue
            owned.append(item if item.account_id is not None else replace(item, account_id=owner))
        return self._within_cap(conn, owned, refused), refused

    def _within_cap(
        self, conn: Connection, items: list[FrameRecord | StreamRecord], refused: dict[str, int]
    ) -> list[FrameRecord | StreamRecord]:
        """One key holder cannot grow the stream tables without bound: a new stream of a domain that already has
        `max_live` live ones is refused, its items with it. One look at the batch's streams; counts only for
        domains that would get a new one."""
        keys = sorted({(item.domain, item.stream) for item in items})
        known = {(row.domain, row.name): row.account_id for row in self._stream_rows(conn, keys)}
        new: dict[str, list[tuple[str, str]]] = {}
        for item in items:
            key = (item.domain, item.stream)
            if known.get(key, -1) != item.account_id and key not in new.get(item.domain, []):
                new.setdefault(item.domain, []).append(key)
        over: set[tuple[str, str]] = set()
        for domain, streams in new.items():
            live = conn.scalar(
                select(func.count()).select_from(t.streams).where(t.streams.c.domain == domain, self._live_now())
            )
            room = max(0, self.max_live - int(live or 0))
            over.update(streams[room:])
        if not over:
            return items
        kept = [item for item in items if (item.domain, item.stream) not in over]
        refused["live_stream_cap"] = refused.get("live_stream_cap", 0) + len(items) - len(kept)
        return kept

    def _flagged_covers(self, conn: Connection, covers: dict[tuple[str, str], Cover | None]) -> list[tuple[str, str]]:
        """The streams whose new cover is a frame the frames table holds as flagged."""
        by_frame = {cover.frame_id: key for key, cover in covers.items() if cover is not None}
        flagged: list[tuple[str, str]] = []
        ids = list(by_frame)
        for start in range(0, len(ids), 200):  # bounded IN lists
            query = select(t.frames.c.id).where(t.frames.c.id.in_(ids[start : start + 200]), t.frames.c.flagged)
            flagged.extend(by_frame[frame_id] for frame_id in conn.scalars(query))
        return flagged

    def _stream_rows(self, conn: Connection, keys: list[tuple[str, str]]) -> list[Any]:
        s = t.streams.c
        rows = []
        for start in range(0, len(keys), 200):  # bounded IN lists
            chunk = keys[start : start + 200]
            query = select(
                s.domain,
                s.name,
                s.account_id,
                s.cover_frame_id,
                s.cover_key,
                s.cover_content_type,
                s.cover_time,
                s.provider_flags,
            ).where(tuple_(s.domain, s.name).in_(chunk))
            rows.extend((conn.execute(query)).all())
        return rows

    def _ensure_stream(self, conn: Connection, item: FrameRecord | StreamRecord) -> None:
        """The stream's row, made if new; a row of another account (the domain moved) starts again as this one's."""
        s = t.streams.c
        fresh = {
            "app": item.app,
            "provider": item.provider,
            "account_id": item.account_id,
            "live": False,
            "began_at": None,
            "ended_at": None,
            "first_frame_at": None,
            "last_frame_at": None,
            "cover_frame_id": None,
            "cover_key": None,
            "cover_content_type": None,
            "cover_time": None,
            "last_suggestion": None,
            "last_label": None,
            "last_source": None,
            "provider_flags": 0,
        }
        statement = _upsert(conn, t.streams).values(
            domain=item.domain, name=item.stream, updated_at=time.time(), **fresh
        )
        moved = or_(s.account_id.is_(None), s.account_id != item.account_id)
        conn.execute(
            statement.on_conflict_do_update(
                index_elements=["domain", "name"],
                set_={
                    "updated_at": time.time(),
                    **{column: case((moved, value), else_=s[column]) for column, value in fresh.items()},
                },
            )
        )

    def _stream_event(self, conn: Connection, event: StreamRecord) -> None:
        self._ensure_stream(conn, event)
        s = t.streams.c
        where = and_(s.domain == event.domain, s.name == event.stream)
        if event.live:  # a begin newer than the last end revives the stream
            conn.execute(
                update(t.streams)
                .where(where, or_(s.ended_at.is_(None), s.ended_at < event.at))
                .values(live=True, began_at=event.at, app=event.app or s.app)
            )
        else:  # an end newer than the last begin (a retried old end changes nothing)
            conn.execute(
                update(t.streams)
                .where(where, or_(s.began_at.is_(None), s.began_at <= event.at))
                .values(live=False, ended_at=event.at)
            )

    def _adopt_earlier_verdict(self, conn: Connection, frame: FrameRecord) -> bool:
        """A provider's verdict that came before this frame names it by its URL or its capture time: the frame
        takes the verdict (and its place in the review queue). Returns whether there was one."""
        f = t.frames.c
        earlier = (
            conn.execute(
                select(t.frames).where(
                    f.domain == frame.domain,
                    f.stream == frame.stream,
                    f.account_id == frame.account_id,
                    f.provider_verdict.is_(True),
                    or_(f.source_url == frame.source_url, f.capture_time == frame.capture_time),
                )
            )
        ).first()
        if earlier is None:
            return False
        if not frame.flagged:
            verdict = ("suggestion", "label", "sub_label", "score", "source", "decision", "decided_by", "decided_at")
            conn.execute(
                update(t.frames)
                .where(f.id == frame.id)
                .values(flagged=True, **{column: getattr(earlier, column) for column in verdict})
            )
        conn.execute(delete(t.frames).where(f.id == earlier.id))
        s = t.streams.c
        conn.execute(
            update(t.streams)
            .where(s.domain == frame.domain, s.name == frame.stream)
            .values(provider_flags=s.provider_flags - 1)
        )
        return True

    def _provider_verdict(self, conn: Connection, verdict: FrameRecord) -> None:
        """A provider's own verdict (317): it flags the stored frame it names, else it is kept as its own row."""
        self._ensure_stream(conn, verdict)
        f = t.frames.c
        named = and_(
            f.domain == verdict.domain,
            f.stream == verdict.stream,
            f.account_id == verdict.account_id,
            f.provider_verdict.is_(False),
            or_(f.source_url == verdict.source_url, f.capture_time == verdict.capture_time),
        )
        if not verdict.flagged:
            return  # a Pass from the provider changes nothing
        flagged = conn.execute(
            update(t.frames)
            .where(named, f.flagged.is_(False))
            .values(
                flagged=True,
                suggestion=verdict.suggestion,
                label=verdict.label,
                sub_label=verdict.sub_label,
                score=verdict.score,
                source=verdict.source,
            )
        )
        if flagged.rowcount:
            return
        if conn.scalar(select(func.count()).select_from(t.frames).where(named)):
            return  # already flagged by the pipeline's own moderation: one item to review
        statement = _upsert(conn, t.frames).values(**_frame_values(verdict))
        added = conn.execute(statement.on_conflict_do_nothing(index_elements=["id"]))
        if added.rowcount:
            s = t.streams.c
            conn.execute(
                update(t.streams)
                .where(s.domain == verdict.domain, s.name == verdict.stream)
                .values(provider_flags=s.provider_flags + 1)
            )

    def _recompute_cover(self, conn: Connection, domain: str, stream: str, account_id: int | None) -> Cover | None:
        f = t.frames.c
        newest = (
            conn.execute(
                select(f.id, f.image_key, f.image_content_type, f.capture_time)
                .where(
                    f.domain == domain,
                    f.stream == stream,
                    f.account_id == account_id,
                    f.flagged.is_(False),
                    f.image_key.is_not(None),
                    f.provider_verdict.is_(False),
                )
                .order_by(f.capture_time.desc(), f.id.desc())
                .limit(1)
            )
        ).first()
        cover = (
            None
            if newest is None
            else Cover(newest.id, newest.image_key, newest.image_content_type, newest.capture_time)
        )
        s = t.streams.c
        conn.execute(
            update(t.streams)
            .where(s.domain == domain, s.name == stream)
            .values(
                cover_frame_id=cover and cover.frame_id,
                cover_key=cover and cover.key,
                cover_content_type=cover and cover.content_type,
                cover_time=cover and cover.capture_time,
            )
        )
        return cover

    def _prune(self, conn: Connection, streams: list[tuple[str, str, int | None]]) -> None:
        """Unflagged frames past each stream's newest KEEP_RECENT leave the table (their blobs are the platform's):
        one statement for the batch's sampled streams. rank(), not row_number(): frames as old as the
        KEEP_RECENTth newest share its place and stay."""
        f = t.frames.c
        for start in range(0, len(streams), 200):  # bounded IN lists
            ranked = (
                select(
                    f.id,
                    func.rank()
                    .over(partition_by=(f.domain, f.stream, f.account_id), order_by=f.capture_time.desc())
                    .label("place"),
                )
                .where(tuple_(f.domain, f.stream, f.account_id).in_(streams[start : start + 200]), f.flagged.is_(False))
                .subquery()
            )
            conn.execute(delete(t.frames).where(f.id.in_(select(ranked.c.id).where(ranked.c.place > KEEP_RECENT))))


def _frame_values(frame: FrameRecord) -> dict[str, Any]:
    return {
        "id": frame.id,
        "domain": frame.domain,
        "stream": frame.stream,
        "app": frame.app,
        "account_id": frame.account_id,
        "capture_time": frame.capture_time,
        "source_url": frame.source_url,
        "image_key": frame.image_key,
        "image_content_type": frame.image_content_type,
        "blob_keys": orjson.dumps(list(frame.blob_keys)).decode(),
        "suggestion": frame.suggestion,
        "label": frame.label[:64],
        "sub_label": frame.sub_label[:64],
        "score": frame.score,
        "source": frame.source[:64],
        "flagged": frame.flagged,
        "received_at": frame.received_at,
        "provider_verdict": frame.provider_verdict,
    }
