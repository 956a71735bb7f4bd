"""The fetch stage against a real image server on loopback, the real broker and a real blob directory."""

from __future__ import annotations

import hashlib
import io
import shutil
from pathlib import Path

import aiohttp
import orjson
from PIL import Image

from framewatch.blobs import factory as blob_factory
from framewatch.settings import Settings
from schemas.messages import FrameStored
from tests.conftest import s3_env, serve_workers, settings_from
from tests.helpers import Broker, WorkerProcess, migrate_store, queue_callbacks, run_cli, screenshot, wait_until
from tests.imageserver import ImageServer, jpeg


async def stored_frames(broker: Broker, expected: int, timeout: float = 20) -> list[FrameStored]:
    """Wait for `expected` frame-stored messages on the moderate queue and take them."""
    await wait_until(lambda: broker.at_least("moderate", expected), timeout=timeout)
    return [FrameStored.model_validate_json(m.body) for m in await broker.take("moderate")]


def dead_letters(env: dict[str, str]) -> dict[str, str]:
    """`framewatch dlq list fetch`: event id -> reason."""
    result = run_cli("dlq", "list", "fetch", env=env)
    assert result.returncode == 0, result.stderr
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    return {row[0]: row[2].split(" ")[0] for row in rows}


async def test_screenshots_are_downloaded_thumbnailed_and_stored(
    worker_settings: Settings, broker: Broker, image_server: ImageServer
) -> None:
    events = [screenshot(n, pic_full_url=image_server.url(f"/good/frame{n}.jpg")) for n in range(3)]
    events.append(screenshot(3, pic_full_url=image_server.url("/png/frame3.png"), width=640, height=480))
    events.append(screenshot(4, pic_full_url=image_server.url("/redirect/frame4.jpg")))
    async with serve_workers(worker_settings, ["fetch"]):
        ids = await queue_callbacks(broker.namespace, events)
        frames = {frame.id: frame for frame in await stored_frames(broker, len(events))}

    assert set(frames) == set(ids)
    root = Path(worker_settings.blobs.url)
    for n, event_id in enumerate(ids):
        frame = frames[event_id]
        original = (root / frame.original.key).read_bytes()
        assert hashlib.sha256(original).hexdigest() == frame.sha256
        assert frame.original.bytes == len(original)
        assert frame.capture_time == events[n]["create_time"] and frame.stream_id == "your_streamid"
        assert frame.callback.event["pic_full_url"] == events[n]["pic_full_url"]
        assert [(t.width, t.height) for t in frame.thumbnails] == (
            [(240, 180), (120, 90)] if n == 3 else [(320, 180), (160, 90)]
        )
        for thumb in frame.thumbnails:
            data = (root / thumb.key).read_bytes()
            assert Image.open(io.BytesIO(data)).size == (thumb.width, thumb.height)
            assert thumb.url == f"http://frames.example.com/blobs/{thumb.key}"
    assert frames[ids[0]].original.key.startswith("test.app/your_streamid/2023/11/14/1700000000-")
    assert frames[ids[4]].sha256 == hashlib.sha256(jpeg("frame4.jpg")).hexdigest()  # followed the redirect
    assert not list(root.rglob(".tmp-*"))


async def test_bad_sources_are_dead_lettered_with_their_reason(
    worker_settings: Settings, worker_env: dict[str, str], broker: Broker, image_server: ImageServer
) -> None:
    cases = {
        "/missing/a.jpg": "http_404",
        "/error/b.jpg": "http_500",  # transient: retried through the ladder first
        "/slow/c.jpg": "timeout",
        "/huge/d.jpg": "too_large",
        "/endless/e.jpg": "too_large",
        "/truncated/f.jpg": "corrupt_image",
        "/text/g.jpg": "not_an_image",
        "/bomb/h.png": "too_many_pixels",
        "/redirect-loop/i.jpg": "too_many_redirects",
        "/redirect-metadata/j.jpg": "unsafe_address",  # a redirect to the cloud metadata address
    }
    events = [screenshot(n, pic_full_url=image_server.url(path)) for n, path in enumerate(cases)]
    events.append(screenshot(99, pic_full_url=image_server.url("/good/ok.jpg"), file_size=50_000_000))
    async with serve_workers(worker_settings, ["fetch"]):
        ids = await queue_callbacks(broker.namespace, events)
        await wait_until(lambda: broker.at_least("fetch.dead", len(events)), timeout=30)
        assert await broker.count("moderate") == 0

    reasons = dead_letters(worker_env)
    assert reasons == dict(zip(ids, [*cases.values(), "too_large"], strict=True))
    assert image_server.hits["error/b.jpg"] == 3  # the first try and the two retries of the ladder
    assert image_server.hits["missing/a.jpg"] == 1  # permanent: never retried
    assert image_server.hits["good/ok.jpg"] == 0  # announced as larger than the cap: not even downloaded


async def test_ssrf_attempts_are_refused(
    worker_env: dict[str, str], monkeypatch, broker: Broker, image_server: ImageServer
) -> None:
    worker_env = {**worker_env, "FRAMEWATCH_FETCH_ALLOW_PRIVATE": "false"}
    settings = settings_from(monkeypatch, worker_env)
    cases = {
        "http://169.254.169.254/latest/meta-data/iam": "unsafe_address",
        image_server.url("/good/x.jpg"): "unsafe_address",  # loopback without the flag
        image_server.url("/good/y.jpg", host="localhost"): "unsafe_address",  # a name that resolves to loopback
        "http://10.1.2.3/frame.jpg": "unsafe_address",
        # IPv6 forms that embed an IPv4 address reach that address: 6to4, NAT64 and Teredo.
        f"http://[2002:7f00:1::1]:{image_server.port}/good/a.jpg": "unsafe_address",
        "http://[2002:a9fe:a9fe::1]/latest/meta-data/": "unsafe_address",
        f"http://[64:ff9b::7f00:1]:{image_server.port}/good/b.jpg": "unsafe_address",
        "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/frame.jpg": "unsafe_address",
        "http://evil.example.com/frame.jpg": "host_not_allowed",
        "ftp://img.myqcloud.com/frame.jpg": "unsupported_scheme",
    }
    events = [screenshot(n, pic_full_url=url) for n, url in enumerate(cases)]
    async with serve_workers(settings, ["fetch"]):
        ids = await queue_callbacks(broker.namespace, events)
        await wait_until(lambda: broker.at_least("fetch.dead", len(events)), timeout=20)
    assert dead_letters(worker_env) == dict(zip(ids, cases.values(), strict=True))
    assert sum(image_server.hits.values()) == 0  # nothing ever reached the loopback server


async def test_a_source_failing_twice_is_stored_after_the_retries(
    worker_settings: Settings, broker: Broker, image_server: ImageServer
) -> None:
    image_server.fail_first["f.jpg"] = 2
    async with serve_workers(worker_settings, ["fetch"]):
        [event_id] = await queue_callbacks(
            broker.namespace, [screenshot(1, pic_full_url=image_server.url("/flaky/f.jpg"))]
        )
        [frame] = await stored_frames(broker, 1)
    assert frame.id == event_id
    assert image_server.hits["flaky/f.jpg"] == 3
    assert await broker.count("fetch.dead") == 0


async def test_dlq_replay_brings_a_fixed_message_through_and_purge_empties(
    worker_settings: Settings, worker_env: dict[str, str], broker: Broker, image_server: ImageServer
) -> None:
    image_server.missing.add("late.jpg")
    events = [
        screenshot(1, pic_full_url=image_server.url("/good/late.jpg")),
        screenshot(2, pic_full_url=image_server.url("/text/never.jpg")),
    ]
    async with serve_workers(worker_settings, ["fetch"]):
        late, never = await queue_callbacks(broker.namespace, events)
        await wait_until(lambda: broker.at_least("fetch.dead", 2), timeout=20)
        listing = run_cli("dlq", "list", "fetch", env=worker_env).stdout
        assert f"{late}\t{image_server.url('/good/late.jpg')}\thttp_404" in listing
        assert await broker.count("fetch.dead") == 2  # listing does not take them

        image_server.missing.discard("late.jpg")  # the source is fixed
        replay = run_cli("dlq", "replay", "fetch", late, env=worker_env)
        assert replay.returncode == 0 and "replayed 1" in replay.stdout
        [frame] = await stored_frames(broker, 1)
        assert frame.id == late
    assert dead_letters(worker_env) == {never: "not_an_image"}
    purge = run_cli("dlq", "purge", "fetch", env=worker_env)
    assert "purged 1" in purge.stdout
    assert await broker.count("fetch.dead") == 0


async def test_output_is_valid_json_with_the_event_id_as_message_id(
    worker_settings: Settings, broker: Broker, image_server: ImageServer
) -> None:
    async with serve_workers(worker_settings, ["fetch"]):
        [event_id] = await queue_callbacks(
            broker.namespace, [screenshot(7, pic_full_url=image_server.url("/good/z.jpg"))]
        )
        await wait_until(lambda: broker.at_least("moderate", 1), timeout=20)
        [message] = await broker.take("moderate")
    assert message.message_id == event_id
    assert message.type == "frame_stored"
    assert orjson.loads(message.body)["original"]["content_type"] == "image/jpeg"


async def test_s3_blob_store_against_a_real_s3_server(
    worker_env: dict[str, str], monkeypatch, broker: Broker, image_server: ImageServer, s3_server: str
) -> None:
    settings = settings_from(monkeypatch, s3_env(worker_env, s3_server, "s3://frames/live"))
    store = blob_factory.create(settings)
    await store.start()
    try:
        await store.client.create_bucket(Bucket="frames")
        async with serve_workers(settings, ["fetch"]):
            events = [screenshot(n, pic_full_url=image_server.url(f"/good/s3-{n}.jpg")) for n in range(3)]
            await queue_callbacks(broker.namespace, events)
            frames = await stored_frames(broker, 3)
        listed = await store.client.list_objects_v2(Bucket="frames", Prefix="live/")
        assert len(listed["Contents"]) == 9  # each original and its two thumbnails
        async with aiohttp.ClientSession() as session:
            for frame in frames:
                assert await store.get(frame.original.key) == jpeg(f"s3-{frame.capture_time - 1_700_000_000}.jpg")
                # Presigned URLs: the platform fetches the thumbnail without credentials.
                async with session.get(frame.thumbnails[0].url) as response:
                    assert response.status == 200
                    assert Image.open(io.BytesIO(await response.read())).size == (320, 180)
    finally:
        await store.close()


async def test_a_worker_killed_mid_batch_stores_every_frame_exactly_once(
    worker_env: dict[str, str], broker: Broker, image_server: ImageServer
) -> None:
    count = 300
    # Paced downloads: however fast the machine, the worker still has frames in hand when it is killed.
    events = [screenshot(n, pic_full_url=image_server.url(f"/paced/k{n}.jpg")) for n in range(count)]
    ids = set(await queue_callbacks(broker.namespace, events))
    await migrate_store(worker_env)
    worker = WorkerProcess(worker_env, "fetch")
    await wait_until(lambda: broker.at_least("moderate", 40), timeout=30)
    worker.kill()  # SIGKILL: no drain, messages in hand are unacknowledged
    assert await broker.count("moderate") < count
    worker = WorkerProcess(worker_env, "fetch")
    try:
        await wait_until(lambda: broker.at_least("moderate", count), timeout=60)
        await wait_until(lambda: broker.at_most("fetch", 0), timeout=30)
    finally:
        assert worker.terminate() == 0  # SIGTERM: drains and exits cleanly
    messages = await broker.take("moderate")
    assert {m.message_id for m in messages} == ids
    root = Path(worker_env["FRAMEWATCH_BLOB_URL"])
    originals = [p for p in root.rglob("*.jpg") if "_" not in p.name.rsplit("-", 1)[1]]
    assert len(originals) == count  # one file per frame: a redelivered frame lands on its own key again
    for path in originals:  # and every file whole: writes land by rename (a kill leaves only .tmp- files behind)
        assert hashlib.sha256(path.read_bytes()).hexdigest()[:20] == path.stem.rsplit("-", 1)[1]
    assert await broker.count("fetch.dead") == 0


async def test_frames_are_stored_after_the_blob_directory_is_recreated(
    worker_settings: Settings, broker: Broker, image_server: ImageServer
) -> None:
    """A remount or a cleanup removes folders the worker wrote before: the next frames of the same stream (same
    folder) are stored all the same, without a restart."""
    root = Path(worker_settings.blobs.url)
    async with serve_workers(worker_settings, ["fetch"]):
        await queue_callbacks(broker.namespace, [screenshot(0, pic_full_url=image_server.url("/good/r0.jpg"))])
        [first] = await stored_frames(broker, 1)
        shutil.rmtree(root)
        await queue_callbacks(broker.namespace, [screenshot(1, pic_full_url=image_server.url("/good/r1.jpg"))])
        [second] = await stored_frames(broker, 1)
    assert (root / second.original.key).parent == (root / first.original.key).parent  # the same folder, made again
    assert (root / second.original.key).read_bytes() == jpeg("r1.jpg")
    assert await broker.count("fetch.dead") == 0
