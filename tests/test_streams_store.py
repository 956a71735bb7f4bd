"""The stream store on SQLite and PostgreSQL: stream state, covers that never show a flagged frame and never move
back in time, the provider's late verdicts, account isolation and retention."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import insert

from framewatch.config import tables as t
from framewatch.config.store import ConfigStore
from framewatch.streams.store import KEEP_RECENT, PRUNE_EVERY, FrameRecord, StreamEvent, StreamStore

NOW = int(time.time())


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[StreamStore]:
    config = ConfigStore(database_url)
    await config.migrate()
    async with config.engine.begin() as conn:
        for account, domain in ((1, "a.example.com"), (2, "b.example.com")):
            await conn.execute(insert(t.accounts).values(id=account, name=f"acct{account}", created_at=NOW))
            await conn.execute(
                insert(t.templates).values(id=account, account_id=account, name="main", created_at=NOW, updated_at=NOW)
            )
            await conn.execute(
                insert(t.rules).values(account_id=account, domain=domain, template_id=account, created_at=NOW)
            )
    yield StreamStore(config.engine)
    await config.close()


def frame(
    n: int, suggestion: str | None = "Pass", *, stream: str = "s1", domain: str = "a.example.com", **extra: object
) -> FrameRecord:
    values: dict = {
        "id": f"{domain}-{stream}-{n}",
        "domain": domain,
        "stream": stream,
        "app": "live",
        "provider": "tencent",
        "capture_time": NOW + n,
        "source_url": f"https://cos.example.com/{stream}/{n}.jpg",
        "image_key": f"{domain}/{stream}/{n}-320.jpg",
        "image_content_type": "image/jpeg",
        "blob_keys": (f"{domain}/{stream}/{n}.jpg", f"{domain}/{stream}/{n}-320.jpg"),
        "suggestion": suggestion,
        "label": "Normal" if suggestion in (None, "Pass") else "Porn",
        "score": 0 if suggestion in (None, "Pass") else 91,
        "source": "nudenet/3",
        **extra,
    }
    return FrameRecord(**values)


def provider_verdict(n: int, suggestion: str = "Block", **extra: object) -> FrameRecord:
    return frame(
        n, suggestion, id=f"317-{n}", image_key=None, image_content_type=None, blob_keys=(), source="tencent", **extra
    )


async def cover_of(store: StreamStore, stream: str = "s1", domain: str = "a.example.com") -> int | None:
    _, cover = await store.cover(domain, stream)
    return None if cover is None else cover.capture_time - NOW


async def test_the_cover_is_the_newest_safe_frame_whatever_the_order(store: StreamStore) -> None:
    assert await store.cover("a.example.com", "s1") == (False, None)
    await store.apply([frame(2)])
    assert await cover_of(store) == 2
    await store.apply([frame(1)])  # late: never moves the cover back in time
    assert await cover_of(store) == 2
    await store.apply([frame(3, "Block")])  # flagged: never a cover
    assert await cover_of(store) == 2
    await store.apply([frame(5, "Review"), frame(4), frame(6, None)])  # unmoderated: safe by definition
    assert await cover_of(store) == 6
    await store.apply([frame(6, None), frame(2)])  # retries change nothing
    assert await cover_of(store) == 6
    _, cover = await store.cover("a.example.com", "s1")
    assert cover is not None and cover.key == "a.example.com/s1/6-320.jpg" and cover.etag.startswith('"')


async def test_a_later_provider_verdict_gives_the_cover_back_to_the_previous_safe_frame(store: StreamStore) -> None:
    await store.apply([frame(1), frame(2)])
    change = await store.apply([provider_verdict(2)])  # the provider flags the frame on show, by its capture time
    assert await cover_of(store) == 1
    assert change.covers[("a.example.com", "s1")].capture_time == NOW + 1
    queue = await store.flagged(1)
    assert [(row.id, row.source, row.suggestion) for row in queue] == [("a.example.com-s1-2", "tencent", "Block")]
    # A verdict that came before its frame: the frame is flagged when it arrives, and one item waits for review.
    await store.apply([provider_verdict(9, source_url="https://cos.example.com/s1/9.jpg")])
    await store.apply([frame(9)])
    assert await cover_of(store) == 1
    assert sorted(row.id for row in await store.flagged(1)) == ["a.example.com-s1-2", "a.example.com-s1-9"]
    # A verdict on a frame never stored here waits for review with the provider's image URL.
    await store.apply([provider_verdict(20, source_url="https://cos.example.com/porn/20.jpg")])
    unseen = (await store.flagged(1))[0]
    assert (unseen.id, unseen.image_key, unseen.source_url) == ("317-20", None, "https://cos.example.com/porn/20.jpg")


async def test_stream_state_follows_begin_end_and_frames(store: StreamStore) -> None:
    def event(live: bool, at: float, stream: str = "s1") -> StreamEvent:
        return StreamEvent("a.example.com", stream, "live", "tencent", live, at)

    await store.apply([event(True, NOW)])
    assert [row.name for row in (await store.streams(1))[1]] == ["s1"]
    await store.apply([event(False, NOW + 10)])
    assert (await store.streams(1))[0] == 0
    await store.apply([event(True, NOW + 5)])  # a begin older than the end: a retry, changes nothing
    assert (await store.streams(1))[0] == 0
    await store.apply([frame(8)])  # a late frame from before the end does not revive it
    assert (await store.streams(1))[0] == 0
    await store.apply([frame(20, stream="s2")])  # live on its first screenshot, no begin event needed
    total, rows = await store.streams(1)
    assert total == 1 and rows[0].name == "s2" and rows[0].last_suggestion == "Pass"
    await store.apply([event(True, NOW + 30)])  # pushed again
    assert (await store.streams(1))[0] == 2


async def test_an_account_sees_only_its_own_domains(store: StreamStore) -> None:
    await store.apply([frame(1, "Block"), frame(2, "Block", domain="b.example.com")])
    assert [row.domain for row in (await store.streams(1))[1]] == ["a.example.com"]
    assert [row.domain for row in await store.flagged(2)] == ["b.example.com"]
    decided = await store.decide(2, ["a.example.com-s1-1", "b.example.com-s1-2"], "violation", "bob")
    assert [row.id for row in decided] == ["b.example.com-s1-2"]  # another account's frame is not touched
    assert [row.decision for row in await store.flagged(1, pending_only=False)] == [None]
    assert await store.frame(1, "b.example.com-s1-2") is None
    quality = [(row.label, row.source, row.decision, row.count) for row in await store.quality(2)]
    assert quality == [("Porn", "nudenet/3", "violation", 1)]


async def test_recent_frames_are_bounded_and_retention_removes_the_rest(store: StreamStore) -> None:
    await store.apply([frame(0, "Block")])
    for n in range(1, 4 * KEEP_RECENT):
        await store.apply([frame(n)])
    frames = await store.recent_frames(1, "a.example.com", "s1", limit=1000)
    newest = [f.capture_time - NOW for f in frames[:KEEP_RECENT]]
    assert newest == list(range(4 * KEEP_RECENT - 1, 3 * KEEP_RECENT - 1, -1))  # the newest are all kept
    assert len(frames) <= KEEP_RECENT + 4 * PRUNE_EVERY
    assert frames[-1].capture_time == NOW and frames[-1].flagged  # the flagged one stays for review, whatever its age
    await store.apply([StreamEvent("a.example.com", "s1", "live", "tencent", False, time.time() + 1000)])
    assert await store.sweep(time.time(), stream_retention=3600, review_retention=3600) == []
    keys = await store.sweep(time.time() + 7200, stream_retention=3600, review_retention=3600)
    assert sorted(keys) == ["a.example.com/s1/0-320.jpg", "a.example.com/s1/0.jpg"]
    assert await store.cover("a.example.com", "s1") == (False, None)
    assert await store.recent_frames(1, "a.example.com", "s1") == []


async def test_the_streams_stage_sweeps_expired_flagged_frames_with_their_blobs(
    database_url: str, store: StreamStore, tmp_path
) -> None:
    from framewatch.blobs.backends.local import LocalBlobStore
    from framewatch.blobs.base import Blob
    from workers.streams.stage import StreamsOptions, StreamsStage

    blobs = LocalBlobStore(tmp_path / "blobs", "http://frames.example.com")
    flagged, safe = frame(1, "Block"), frame(2)
    for key in (*flagged.blob_keys, *safe.blob_keys):
        await blobs.put(Blob(key, b"jpeg", "image/jpeg"))
    await store.apply([flagged, safe])
    options = StreamsOptions(
        concurrency=1,
        retry_delays=(1.0,),
        stream_retention=3600,
        review_retention=0.5,
        silence=600,
        max_live_per_domain=100,
    )
    stage = StreamsStage(options, ConfigStore(database_url), blobs)
    try:
        assert await stage.sweep() == 0  # not expired yet
        await asyncio.sleep(0.6)
        assert await stage.sweep() == 2
        assert await store.flagged(1, pending_only=False) == []
        assert not blobs.path(flagged.blob_keys[0]).exists() and not blobs.path(flagged.blob_keys[1]).exists()
        assert all(blobs.path(key).exists() for key in safe.blob_keys)  # the platform's frames are not ours to remove
    finally:
        await stage.config_store.close()
