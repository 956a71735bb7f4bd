"""Covers and live streams through the real pipeline: ingress, fetch, moderation by an API that flags chosen frames,
delivery and the streams stage, on the real broker. A flagged frame never becomes a cover, a late frame never moves
a cover back, a later provider verdict gives the cover back to the previous safe frame within a second."""

from __future__ import annotations

import io
import time
from typing import Any

import aiohttp
import pytest
from PIL import Image, ImageChops, ImageStat
from prometheus_client import REGISTRY

from framewatch.admin import accounts
from framewatch.blobs import factory as blob_factory
from framewatch.config.store import ConfigStore
from framewatch.settings import Settings
from tests.conftest import apply_config, s3_env, serve_ingress, serve_workers, settings_from
from tests.helpers import Broker, post, sample, screenshot, signed, wait_until
from tests.imageserver import ImageServer, jpeg
from tests.moderation_api import RedFlagApi
from tests.sink import Sink
from tests.test_pipeline import pipeline_config

STAGES = ["fetch", "moderate", "deliver", "streams"]
T0 = 1_700_000_000


@pytest.fixture
def covers_env(pipeline_env: dict[str, str]) -> dict[str, str]:
    return {**pipeline_env, "FRAMEWATCH_MODERATION_OFF_DOMAINS": "5000.myqcloud.com"}


def shot(image_server: ImageServer, n: int, kind: str = "good", stream: str = "s1", domain: str = "test.app") -> dict:
    """Screenshot n of a stream, captured at T0 + n."""
    return signed(
        screenshot(
            n, domain, stream_id=stream, pic_full_url=image_server.url(f"/{kind}/{stream}-{n}.jpg"), create_time=T0 + n
        )
    )


class Covers:
    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base

    async def get(self, stream: str, domain: str = "test.app", **headers: str) -> tuple[int, Any, bytes]:
        async with self.session.get(f"{self.base}/covers/{domain}/{stream}.jpg", headers=headers) as response:
            return response.status, response.headers.copy(), await response.read()

    async def shows(self, stream: str, name: str, domain: str = "test.app") -> bool:
        """Whether the cover is the largest thumbnail of the frame the image server made for `name`."""
        status, _, data = await self.get(stream, domain)
        return status == 200 and same_picture(data, jpeg(name))


def same_picture(thumbnail: bytes, original: bytes | None) -> bool:
    """A 320x180 thumbnail close to the original frame scaled down (JPEG re-encoding changes a few values)."""
    image = Image.open(io.BytesIO(thumbnail)).convert("RGB")
    if image.size != (320, 180) or original is None:
        return False
    expected = Image.open(io.BytesIO(original)).convert("RGB").resize((320, 180))
    return sum(ImageStat.Stat(ImageChops.difference(image, expected)).mean) / 3 < 12


async def token_for(settings: Settings, account: str = "default") -> str:
    store = ConfigStore(settings.database_url.get_secret_value())
    try:
        return await accounts.issue_token(store, account, replace=True)
    finally:
        await store.close()


async def online(session: aiohttp.ClientSession, admin_url: str, token: str, **params: Any) -> dict[str, Any]:
    query = {"Action": "DescribeLiveStreamOnlineList", **params}
    async with session.get(f"{admin_url}/api", params=query, headers={"Authorization": f"Bearer {token}"}) as answer:
        assert answer.status == 200, await answer.text()
        return await answer.json()


async def test_covers_never_show_a_flagged_frame_and_never_go_back_in_time(
    covers_env: dict[str, str],
    monkeypatch,
    broker: Broker,
    image_server: ImageServer,
    moderation_api: RedFlagApi,
    sink: Sink,
) -> None:
    settings = settings_from(monkeypatch, covers_env, **moderation_api.settings())
    await apply_config(settings, pipeline_config(sink))
    token = await token_for(settings)
    async with serve_ingress(settings) as ingress, serve_workers(settings, STAGES), aiohttp.ClientSession() as s:
        covers = Covers(s, ingress.url)
        status, _, body = await covers.get("s1")
        assert status == 404 and b"StreamNotFound" in body

        for n in (1, 2):
            assert (await post(s, ingress.callbacks, shot(image_server, n)))[0] == 200
        await wait_until(lambda: covers.shows("s1", "s1-2.jpg"), timeout=20)
        status, headers, _ = await covers.get("s1")
        etag = headers["ETag"]
        assert REGISTRY.get_sample_value("framewatch_cover_update_seconds_count") >= 1  # measured, verdict->cover
        assert headers["Cache-Control"] == "public, max-age=1" and headers["Content-Type"] == "image/jpeg"
        assert (await covers.get("s1", **{"If-None-Match": etag}))[0] == 304

        # A flagged frame, newer: never a cover. A late frame, older: never moves the cover back.
        assert (await post(s, ingress.callbacks, shot(image_server, 3, "bad")))[0] == 200
        assert (await post(s, ingress.callbacks, shot(image_server, 0)))[0] == 200
        await wait_until(lambda: len(sink.deliveries["/snapshot"]) == 4, timeout=20)
        await wait_until(lambda: len(sink.deliveries["/violations"]) == 1, timeout=10)

        async def recorded() -> bool:  # the stream store committed the flagged frame (a batch waits for company)
            [stream] = (await online(s, ingress.admin_url, token))["OnlineInfo"]
            return stream["LastVerdict"] == "Block"

        await wait_until(recorded, timeout=10)
        assert (await covers.get("s1", **{"If-None-Match": etag}))[0] == 304

        listed = await online(s, ingress.admin_url, token)
        [stream] = listed["OnlineInfo"]
        assert (stream["StreamName"], stream["DomainName"], stream["LastVerdict"]) == ("s1", "test.app", "Block")
        assert stream["CoverUrl"] == f"http://127.0.0.1:{settings.port}/covers/test.app/s1.jpg"
        assert stream["LastFrameTime"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(T0 + 3))

        # The provider's own verdict (317) on the frame on show: the previous safe frame within a second.
        verdict = signed(
            {
                **sample("moderation"),
                "app": "test.app",
                "streamId": "s1",
                "channelId": "s1",
                "screenshotTime": T0 + 2,
                "img": image_server.url("/good/s1-2.jpg"),  # the frame it judged, fetched and thumbnailed again
            }
        )
        assert (await post(s, ingress.callbacks, verdict))[0] == 200
        started = time.monotonic()
        await wait_until(lambda: covers.shows("s1", "s1-1.jpg"), timeout=5, interval=0.02)
        assert time.monotonic() - started < 1.0
        await wait_until(lambda: len(sink.deliveries["/moderation"]) == 1, timeout=10)
        [forwarded] = sink.deliveries["/moderation"]
        assert forwarded.body["framewatch"]["verdict"]["source"] == "tencent"
        assert [(t["width"], t["height"]) for t in forwarded.body["framewatch"]["thumbnails"]] == [
            (320, 180),
            (160, 90),
        ]

        # The stream ends: it leaves the list; its cover stays served until the stream is forgotten.
        end = signed({**sample("stream_end"), "app": "test.app", "stream_id": "s1", "channel_id": "s1"})
        assert (await post(s, ingress.callbacks, end))[0] == 200
        await wait_until(lambda: _online_count(s, ingress.admin_url, token, 0), timeout=10)
        assert (await covers.get("s1"))[0] == 200

        # Moderation off for a domain: every frame is safe by definition, a red one included.
        assert (await post(s, ingress.callbacks, shot(image_server, 5, "bad", "s2", "5000.myqcloud.com")))[0] == 200
        await wait_until(lambda: _cover_status(covers, "s2", "5000.myqcloud.com", 200), timeout=20)
    assert sink.bad_signatures == 0


async def _online_count(session: aiohttp.ClientSession, admin_url: str, token: str, count: int) -> bool:
    return (await online(session, admin_url, token))["TotalNum"] == count


async def _cover_status(covers: Covers, stream: str, domain: str, status: int) -> bool:
    return (await covers.get(stream, domain))[0] == status


async def test_with_an_s3_store_the_cover_is_also_a_stable_object_key(
    covers_env: dict[str, str],
    monkeypatch,
    broker: Broker,
    image_server: ImageServer,
    moderation_api: RedFlagApi,
    sink: Sink,
    s3_server: str,
) -> None:
    # moto keeps buckets per process: a bucket of its own
    env = s3_env(covers_env, s3_server, "s3://cover-frames/live")
    settings = settings_from(monkeypatch, env, **moderation_api.settings())
    await apply_config(settings, pipeline_config(sink))
    store = blob_factory.create(settings)
    await store.start()
    await store.client.create_bucket(Bucket="cover-frames")

    async def stable_key_holds(name: str) -> bool:
        try:
            data = await store.get("covers/test.app/s1.jpg")
        except KeyError:
            return False
        return same_picture(data, jpeg(name))

    try:
        running = serve_ingress(settings)
        async with running as ingress, serve_workers(settings, STAGES), aiohttp.ClientSession() as s:
            for n, kind in ((1, "good"), (2, "good"), (3, "bad")):
                assert (await post(s, ingress.callbacks, shot(image_server, n, kind)))[0] == 200
            await wait_until(lambda: len(sink.deliveries["/violations"]) == 1, timeout=20)
            await wait_until(lambda: stable_key_holds("s1-2.jpg"), timeout=10)
            covers = Covers(s, ingress.url)
            assert await covers.shows("s1", "s1-2.jpg")  # the listener serves the same picture
            head = await store.client.head_object(Bucket="cover-frames", Key="live/covers/test.app/s1.jpg")
            assert head["ContentType"] == "image/jpeg" and head["CacheControl"] == "public, max-age=1"
            verdict = signed(
                {
                    **sample("moderation"),
                    "app": "test.app",
                    "streamId": "s1",
                    "channelId": "s1",
                    "screenshotTime": T0 + 2,
                }
            )
            assert (await post(s, ingress.callbacks, verdict))[0] == 200
            await wait_until(lambda: stable_key_holds("s1-1.jpg"), timeout=5)
    finally:
        await store.close()
