"""The stream store on SQLite and PostgreSQL: stream state, covers that never show a flagged frame and never move
back in time (whatever is delivered again), the provider's late verdicts, account isolation, domains that change
hands, streams whose end was lost, a cap on live streams per domain, and retention."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from sqlalchemy import func, insert, select, update

from framewatch.config import tables as t
from framewatch.config.store import ConfigStore
from framewatch.streams.store import KEEP_RECENT, PRUNE_EVERY, FrameRecord, StreamRecord, StreamStore
from workers.streams.writer import BatchWriter

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
    streams = StreamStore(config.engine)
    yield streams
    await streams.close()
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
        n,
        suggestion,
        **{
            "id": f"317-{n}",
            "image_key": None,
            "image_content_type": None,
            "blob_keys": (),
            "source": "tencent",
            "provider_verdict": True,
            **extra,
        },
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


async def test_a_verdict_whose_frame_was_fetched_is_reviewable_with_it_and_never_a_cover(store: StreamStore) -> None:
    """The fetch stage stores the frame a provider judged: the verdict's row has an image, and still is a verdict."""
    await store.apply([frame(1)])
    judged = {"image_key": "a.example.com/s1/5-320.jpg", "image_content_type": "image/jpeg"}
    await store.apply([provider_verdict(5, **judged, blob_keys=("a.example.com/s1/5.jpg", judged["image_key"]))])
    assert await cover_of(store) == 1  # newer, with an image, flagged: never the cover
    [waiting] = await store.flagged(1)
    assert (waiting.id, waiting.image_key) == ("317-5", "a.example.com/s1/5-320.jpg")
    # The screenshot of that frame comes after its verdict, judged safe by the pipeline: it takes the verdict over.
    await store.apply([frame(5)])
    assert await cover_of(store) == 1
    assert [(row.id, row.suggestion, row.source) for row in await store.flagged(1)] == [
        ("a.example.com-s1-5", "Block", "tencent")
    ]


async def test_stream_state_follows_begin_end_and_frames(store: StreamStore) -> None:
    def event(live: bool, at: float, stream: str = "s1") -> StreamRecord:
        return StreamRecord("a.example.com", stream, "live", "tencent", live, at)

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
    await store.apply([StreamRecord("a.example.com", "s1", "live", "tencent", False, time.time() + 1000)])
    assert await store.sweep(time.time(), stream_retention=3600, review_retention=3600) == []
    keys = await store.sweep(time.time() + 7200, stream_retention=3600, review_retention=3600)
    assert sorted(keys) == ["a.example.com/s1/0-320.jpg", "a.example.com/s1/0.jpg"]
    assert await store.cover("a.example.com", "s1") == (False, None)
    assert await store.recent_frames(1, "a.example.com", "s1") == []


async def test_each_stream_of_a_batch_keeps_its_own_newest_frames(store: StreamStore) -> None:
    """Streams pruned in the same batch are each measured against their own newest frames: a quiet stream beside
    a busy one with newer frames loses none of its few."""
    for n in range(4 * KEEP_RECENT):
        busy = frame(1000 + n, stream="busy")
        await store.apply([busy, frame(n, stream="quiet")] if n % 4 == 0 else [busy])
    quiet = await store.recent_frames(1, "a.example.com", "quiet", limit=1000)
    assert sorted(f.capture_time - NOW for f in quiet) == list(range(0, 4 * KEEP_RECENT, 4))
    busy_frames = await store.recent_frames(1, "a.example.com", "busy", limit=1000)
    assert [f.capture_time - NOW for f in busy_frames[:KEEP_RECENT]] == list(
        range(1000 + 4 * KEEP_RECENT - 1, 1000 + 3 * KEEP_RECENT - 1, -1)
    )
    assert len(busy_frames) <= KEEP_RECENT + 4 * PRUNE_EVERY


async def test_frames_as_old_as_the_last_kept_one_stay_with_it(store: StreamStore) -> None:
    """A stream keeps its KEEP_RECENT newest frames and every frame captured at the same second as the last of
    them; only strictly older unflagged frames go."""
    tied = [frame(n, capture_time=NOW + max(n, 15)) for n in range(KEEP_RECENT + 10)]  # 16 share NOW + 15
    older = [frame(100 + n, id=f"older-{n}", capture_time=NOW + n) for n in range(10)]
    await store.apply(tied + older)
    kept = await store.recent_frames(1, "a.example.com", "s1", limit=1000)
    assert sorted(f.id for f in kept) == sorted(f.id for f in tied)


async def test_the_streams_stage_sweeps_expired_flagged_frames_with_their_blobs(
    database_url: str, store: StreamStore, tmp_path
) -> None:
    from framewatch.blobs.backends.local import LocalBlobStore
    from framewatch.blobs.base import Blob
    from framewatch.settings.streams import StreamsSettings
    from workers.streams.stage import StreamsStage

    blobs = LocalBlobStore(tmp_path / "blobs", "http://frames.example.com")
    flagged, safe = frame(1, "Block"), frame(2)
    for key in (*flagged.blob_keys, *safe.blob_keys):
        await blobs.put(Blob(key, b"jpeg", "image/jpeg"))
    await store.apply([flagged, safe])
    options = StreamsSettings(concurrency=1, retry_delays=[1.0], stream_retention=3600, review_retention=0.5)
    config_store = ConfigStore(database_url)
    stage = StreamsStage(options, store, config_store, blobs)
    try:
        assert await stage.sweep() == 0  # not expired yet
        await asyncio.sleep(0.6)
        assert await stage.sweep() == 2
        assert await store.flagged(1, pending_only=False) == []
        assert not blobs.path(flagged.blob_keys[0]).exists() and not blobs.path(flagged.blob_keys[1]).exists()
        assert all(blobs.path(key).exists() for key in safe.blob_keys)  # the platform's frames are not ours to remove
    finally:
        await config_store.close()


def with_store(store: StreamStore, **options: float) -> StreamStore:
    return StreamStore(store.engine, **options)  # type: ignore[arg-type]


async def test_a_flagged_frame_is_never_the_cover_again_whatever_arrives_later(store: StreamStore) -> None:
    await store.apply([frame(1), frame(2)])
    assert await cover_of(store) == 2
    await store.apply([provider_verdict(2)])  # the provider's 317 flags frame 2
    assert await cover_of(store) == 1
    # Frame 2's message delivered again (after the dedupe window, a stage retry, a replayed dead letter), with
    # the Pass its moderation gave before the 317: the store says it is flagged.
    await store.apply([frame(2)])
    assert await cover_of(store) == 1
    await store.apply([frame(2), frame(1)])  # in one batch with others, in any order
    assert await cover_of(store) == 1
    await store.apply([provider_verdict(2, "Pass")])  # an older or milder verdict changes nothing
    await store.apply([frame(2)])
    assert await cover_of(store) == 1
    # A reviewer's decision leaves it flagged, and a redelivery after it too.
    await store.decide(1, ["a.example.com-s1-2"], "not_violation", "alice")
    await store.apply([frame(2)])
    assert await cover_of(store) == 1
    # A frame the pipeline's moderation flagged, delivered again with another verdict (a model that changed).
    await store.apply([frame(3, "Block")])
    await store.apply([frame(3, "Pass")])
    assert await cover_of(store) == 1
    await store.apply([frame(4)])
    assert await cover_of(store) == 4


async def test_a_stream_whose_end_never_comes_stops_being_live_after_the_silence(store: StreamStore) -> None:
    quiet = with_store(store, silence=1.0)
    await quiet.apply([frame(1), StreamRecord("a.example.com", "s2", "live", "tencent", True, time.time())])
    total, _ = await quiet.streams(1)
    assert total == 2
    assert (await quiet.cover_state("a.example.com", "s1"))[1] is True
    await asyncio.sleep(1.2)  # no frame, no event: a lost end, or a made-up stream id
    assert (await quiet.streams(1))[0] == 0
    assert (await quiet.cover_state("a.example.com", "s1"))[1] is False
    await quiet.apply([frame(2)])  # pushing again makes it live again
    assert [row.name for row in (await quiet.streams(1))[1]] == ["s1"]
    # The sweep writes what the silence says, and retention then really deletes the silent stream.
    await asyncio.sleep(1.2)
    assert await quiet.sweep(time.time(), stream_retention=3600, review_retention=3600) == []
    assert (await quiet.streams(1, live_only=False))[0] == 2
    await quiet.sweep(time.time() + 7200, stream_retention=3600, review_retention=3600)
    assert (await quiet.streams(1, live_only=False))[0] == 0
    assert await quiet.recent_frames(1, "a.example.com", "s1") == []


async def test_one_key_holder_cannot_grow_the_stream_tables_without_bound(store: StreamStore) -> None:
    capped = with_store(store, max_live=3)
    change = await capped.apply([frame(n, stream=f"s{n}") for n in range(5)])
    assert change.refused == {"live_stream_cap": 2}
    assert (await capped.streams(1, live_only=False))[0] == 3
    assert (await capped.apply([frame(10, stream="s0")])).refused == {}  # a known stream's frames still count
    change = await capped.apply([StreamRecord("a.example.com", "s9", "live", "tencent", True, time.time())])
    assert change.refused == {"live_stream_cap": 1}  # a begin of a new one as well
    assert (await capped.apply([frame(1, stream="s1", domain="b.example.com")])).refused == {}  # per domain
    await capped.apply([StreamRecord("a.example.com", "s0", "live", "tencent", False, time.time() + 60)])
    assert (await capped.apply([frame(20, stream="s9")])).refused == {}  # an ended stream made room


async def move(store: StreamStore, domain: str, account_id: int) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(update(t.rules).where(t.rules.c.domain == domain).values(account_id=account_id))


async def test_a_domain_that_moves_hands_over_none_of_its_history(store: StreamStore) -> None:
    await store.apply([frame(1), frame(2, "Block"), frame(3)])
    await store.decide(1, ["a.example.com-s1-2"], "violation", "alice")
    assert (await store.streams(1))[0] == 1 and len(await store.flagged(1, pending_only=False)) == 1
    await move(store, "a.example.com", 2)
    # The new owner sees nothing of it: streams, frames, flagged images, reviewers, counts, covers.
    assert (await store.streams(2, live_only=False))[0] == 0
    assert await store.flagged(2, pending_only=False) == [] and await store.quality(2) == []
    assert await store.frame(2, "a.example.com-s1-2") is None
    assert await store.recent_frames(2, "a.example.com", "s1") == []
    assert await store.cover("a.example.com", "s1") == (False, None)  # the public cover is the owner's
    # The former owner no longer owns the domain: its history there is dropped, not kept.
    assert (await store.streams(1, live_only=False))[0] == 0 and await store.flagged(1, pending_only=False) == []
    # The new owner's own frames start the stream afresh.
    await store.apply([frame(4, account_id=2)])
    [row] = (await store.streams(2))[1]
    assert (row.first_frame_at, row.account_id) == (NOW + 4, 2)
    assert await cover_of(store) == 4
    # The sweep removes what was the former owner's, flagged blobs included; the new owner's stays.
    keys = await store.sweep(time.time(), stream_retention=3600, review_retention=3600)
    assert sorted(keys) == ["a.example.com/s1/2-320.jpg", "a.example.com/s1/2.jpg"]
    assert [f.id for f in await store.recent_frames(2, "a.example.com", "s1")] == ["a.example.com-s1-4"]


async def test_items_in_flight_when_a_domain_moves_stay_their_first_owners(store: StreamStore) -> None:
    # The other order: the domain moves while account 1's frames are still on their way through the pipeline.
    in_flight = [frame(1, "Block", account_id=1), frame(2, account_id=1), provider_verdict(3, account_id=1)]
    await move(store, "a.example.com", 2)
    change = await store.apply(in_flight)
    assert change.refused == {"domain_moved": 3}
    assert (await store.streams(2, live_only=False))[0] == 0 and await store.flagged(2) == []
    assert await store.cover("a.example.com", "s1") == (False, None)
    # Moved back, the first owner does not get what the second one received in between.
    await store.apply([frame(5, "Block", account_id=2)])
    await move(store, "a.example.com", 1)
    assert await store.flagged(1) == [] and (await store.streams(1, live_only=False))[0] == 0
    # A message of a version that did not carry its owner is the domain's owner's at the time it is written.
    await store.apply([replace(frame(6), account_id=None)])
    assert [row.account_id for row in (await store.streams(1))[1]] == [1]


async def test_a_domain_nobody_binds_keeps_nothing(store: StreamStore) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(t.rules.delete().where(t.rules.c.domain == "b.example.com"))
    change = await store.apply([frame(1, domain="b.example.com")])
    assert change.refused == {"domain_moved": 1}


async def test_a_writer_closed_mid_batch_leaves_its_messages_unsettled_not_waiting() -> None:
    """Closed while a batch is being written, the writer does not leave that batch's messages waiting for an
    answer that will never come: they end unsettled at once (the broker redelivers them), as the ones not yet
    batched do."""
    started, never = asyncio.Event(), asyncio.Event()

    async def write(items: list[int]) -> None:
        started.set()
        await never.wait()

    writer = BatchWriter(write, max_items=10, max_wait=0.0, systemic=lambda exc: True)
    writer.start()
    in_batch = asyncio.create_task(writer.submit(1))
    await asyncio.wait_for(started.wait(), 5)
    waiting = asyncio.create_task(writer.submit(2))
    await asyncio.sleep(0)
    await writer.close()
    for task in (in_batch, waiting):
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 1)


async def test_replicas_writing_one_store_together_lose_nothing(store: StreamStore) -> None:
    """Two streams stages (on SQLite, each with its own writer connection and thread) writing the same streams at
    once: every frame lands and each stream's cover is its newest frame."""
    other = with_store(store)
    try:
        batches = [[frame(n, stream=f"s{n % 4}") for n in range(first, first + 10)] for first in range(0, 200, 10)]
        await asyncio.gather(*((store if i % 2 else other).apply(batch) for i, batch in enumerate(batches)))
        for s in range(4):
            assert await cover_of(store, f"s{s}") == 196 + s
        async with store.engine.connect() as conn:
            stored = await conn.scalar(select(func.count()).select_from(t.frames))
        assert 4 * KEEP_RECENT <= stored < 200  # every stream pruned to about its newest, none below them
    finally:
        await other.close()


async def test_a_write_waits_for_another_writer_without_holding_up_the_readers(tmp_path) -> None:
    """On SQLite a batch that finds another process's write lock waits for it (the busy timeout) in its own
    thread: the event loop goes on serving covers meanwhile, and the batch lands once the lock is gone."""
    database = tmp_path / "config.db"
    config = ConfigStore(f"sqlite+aiosqlite:///{database}")
    await config.migrate()
    async with config.engine.begin() as conn:
        await conn.execute(insert(t.accounts).values(id=1, name="acct1", created_at=NOW))
        await conn.execute(insert(t.templates).values(id=1, account_id=1, name="main", created_at=NOW, updated_at=NOW))
        await conn.execute(insert(t.rules).values(account_id=1, domain="a.example.com", template_id=1, created_at=NOW))
    store = StreamStore(config.engine)
    await store.apply([frame(1)])
    other_process = sqlite3.connect(database, isolation_level=None)
    try:
        other_process.execute("BEGIN IMMEDIATE")
        write = asyncio.ensure_future(store.apply([frame(2)]))
        for _ in range(5):  # the loop answers while the write waits
            assert await asyncio.wait_for(cover_of(store), 0.5) == 1
            await asyncio.sleep(0.1)
        assert not write.done()
        other_process.execute("COMMIT")
        await asyncio.wait_for(write, 5)
        assert await cover_of(store) == 2
    finally:
        other_process.close()
        await store.close()
        await config.close()
