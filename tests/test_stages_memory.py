"""The stages' logic on the in-memory transport: the same stages `framewatch worker` builds, the same routing,
ladders and dead letters as the RabbitMQ topology, on the transport's own clock (a 155 s ladder passes at once).
Real HTTP on loopback for the sources, the moderation API and the platform; a real SQLite config store. What is
about delivery guarantees, failover and the fleet runs on the real broker (test_pipeline.py and the others)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from framewatch.broker.dlq import ATTEMPT, REASON
from framewatch.config.apply import apply, load
from framewatch.providers.base import RawRequest
from framewatch.providers.tencent.provider import TencentProvider
from framewatch.resources import Resources
from framewatch.settings import Settings
from tests.conftest import settings_from
from tests.helpers import sample, screenshot
from tests.imageserver import ImageServer
from tests.sink import Sink
from tests.test_pipeline import FakeModerationApi, pipeline_config
from workers import stages
from workers.memory import MemoryBroker
from workers.service import build_stage

T0 = int(time.time()) - 60  # a capture time the ingress finds plausible


def accepted(body: dict[str, Any], domain: str = "test.app") -> tuple[bytes, str, str, dict[str, Any]]:
    """A Tencent callback as the ingress publishes it: body, routing key, event id, headers."""
    provider = TencentProvider()
    raw = RawRequest("POST", domain, {}, {}, "application/json", json.dumps(body).encode(), domain)
    message = provider.message(provider.parse(raw), time.time())
    return message.model_dump_json().encode(), message.routing_key, message.id, message.headers()


async def publish(broker: MemoryBroker, body: dict[str, Any]) -> str:
    data, key, event_id, headers = accepted(body)
    await broker.publish(data, key, message_id=event_id, headers=headers)
    return event_id


class Pipeline:
    """Stages built as `framewatch worker` builds them, over a process's resources, on an in-memory broker."""

    def __init__(self, settings: Settings) -> None:
        self.resources = Resources(settings, stages.topology(settings.broker.namespace), change_feed=False)
        self.broker = MemoryBroker(self.resources.topology)

    async def configure(self, toml: str, folder: Path) -> None:
        store = self.resources.config_store
        await store.migrate()
        path = folder / "config.toml"
        path.write_text(toml)
        await apply(store, load(path), key_overlap=3600, allow_private_urls=True)

    def run(self, *names: str) -> None:
        self.broker.run(*(build_stage(name, self.resources) for name in names))

    async def close(self) -> None:
        await self.broker.close()
        await self.resources.close()


@pytest.fixture
async def pipeline(request: pytest.FixtureRequest, pipeline_env: dict[str, str], monkeypatch) -> AsyncIterator[Any]:
    made: list[Pipeline] = []

    def make(**extra: str) -> Pipeline:
        made.append(Pipeline(settings_from(monkeypatch, pipeline_env, **extra)))
        return made[-1]

    yield make
    for built in made:
        await built.close()


async def test_screenshots_go_fetch_moderate_deliver_and_fan_out_to_the_streams_queue(
    pipeline: Any, image_server: ImageServer, sink: Sink, tmp_path: Path
) -> None:
    api = await FakeModerationApi().start()
    try:
        line = pipeline(**api.settings())
        await line.configure(pipeline_config(sink), tmp_path)
        line.run("fetch", "moderate", "deliver")
        ids = [
            await publish(line.broker, screenshot(n, pic_full_url=image_server.url(f"/good/m{n}.jpg")))
            for n in range(5)
        ]
        await line.broker.drain()
    finally:
        await api.stop()
    assert {d.headers["webhook-id"] for d in sink.deliveries["/snapshot"]} == set(ids)
    assert api.calls == 5
    # Every moderated frame is also routed to the streams stage's queue (not running here): the topic bindings.
    queued = line.broker.queued("streams")
    assert sorted(orjson.loads(m.body)["id"] for m in queued) == sorted(ids)
    assert all(m.type == "moderated" for m in queued)
    for stage in ("fetch", "moderate", "deliver"):
        assert line.broker.dead_letters(stage) == []


async def test_a_provider_verdict_has_its_frame_stored_when_it_downloads_and_goes_on_without_it_otherwise(
    pipeline: Any, image_server: ImageServer, sink: Sink, tmp_path: Path
) -> None:
    """A 317 goes to the fetch stage: the judged frame is stored and thumbnailed once, the verdict goes straight to
    delivery (never moderated again); a frame that does not download costs one try and delays nothing."""
    line = pipeline()
    await line.configure(pipeline_config(sink), tmp_path)
    line.run("fetch", "deliver")
    judged = {**sample("moderation"), "app": "test.app", "streamId": "s1", "channelId": "s1"}
    stored = await publish(line.broker, {**judged, "img": image_server.url("/good/j1.jpg"), "screenshotTime": T0})
    missing = await publish(
        line.broker, {**judged, "img": image_server.url("/missing/j2.jpg"), "screenshotTime": T0 + 1}
    )
    await line.broker.drain()
    forwarded = {d.headers["webhook-id"]: d.body["framewatch"] for d in sink.deliveries["/moderation"]}
    assert set(forwarded) == {stored, missing}
    assert [(t["width"], t["height"]) for t in forwarded[stored]["thumbnails"]] == [(320, 180), (160, 90)]
    assert forwarded[stored]["verdict"]["source"] == "tencent" and "image" not in forwarded[missing]
    violations = {d.body["framewatch"]["event_id"]: d.body["framewatch"] for d in sink.deliveries["/violations"]}
    assert violations[stored]["thumbnails"] and "thumbnails" not in violations[missing]
    assert (image_server.hits["good/j1.jpg"], image_server.hits["missing/j2.jpg"]) == (1, 1)
    assert line.broker.queued("moderate") == [] and line.broker.dead_letters("fetch") == []
    assert sorted(orjson.loads(m.body)["id"] for m in line.broker.queued("streams")) == sorted([stored, missing])


async def test_a_verdict_an_earlier_release_queued_for_moderation_is_passed_on(
    pipeline: Any, sink: Sink, tmp_path: Path
) -> None:
    line = pipeline()
    await line.configure(pipeline_config(sink), tmp_path)
    line.run("moderate", "deliver")
    body, _, event_id, headers = accepted({**sample("moderation"), "app": "test.app"})
    line.broker.put("moderate", body, message_id=event_id, headers=headers)
    await line.broker.drain()
    assert [d.headers["webhook-id"] for d in sink.deliveries["/moderation"]] == [event_id]
    assert line.broker.dead_letters("moderate") == []


async def test_what_a_stage_did_not_declare_is_refused_by_the_transport_as_bad_message(
    pipeline: Any, image_server: ImageServer
) -> None:
    line = pipeline()
    await line.resources.config_store.migrate()  # the streams stage waits for the ingress's schema
    line.run("fetch", "streams")
    await line.broker.publish(b"{not json", "tencent.screenshot", message_id="garbled", headers={})
    good, key, _, headers = accepted(screenshot(1, pic_full_url=image_server.url("/good/x.jpg")))
    await line.broker.publish(good, key, message_id="typed", headers=headers, message_type="webhook")
    # A stream event whose body lost its stream: decodes, but is not the streams stage's to take.
    begin = accepted({**sample("stream_begin"), "app": "test.app"})[0]
    broken = orjson.loads(begin)
    broken["stream"] = None
    await line.broker.publish(orjson.dumps(broken), "tencent.stream_begin", message_id="streamless", headers={})
    await line.broker.drain()
    dead = {m.message_id: m.headers for m in line.broker.dead_letters("fetch") + line.broker.dead_letters("streams")}
    assert set(dead) == {"garbled", "typed", "streamless"}
    assert {headers[REASON] for headers in dead.values()} == {"bad_message"}
    assert image_server.hits["good/x.jpg"] == 0  # refused before the stage was asked


async def test_a_source_that_keeps_failing_climbs_the_whole_ladder_on_the_transport_clock(
    pipeline: Any, image_server: ImageServer
) -> None:
    line = pipeline(fetch_retry_delays="5,30,120")
    line.run("fetch")
    await publish(line.broker, screenshot(1, pic_full_url=image_server.url("/error/down.jpg")))
    await line.broker.drain()
    [dead] = line.broker.dead_letters("fetch")
    assert dead.headers[REASON] == "http_500"
    assert dead.headers[ATTEMPT] == 4  # the first try and three retries
    assert image_server.hits["error/down.jpg"] == 4
    assert line.broker.now == 155  # 5 + 30 + 120 seconds, on the transport's clock


async def test_a_flaky_source_succeeds_on_its_second_retry(pipeline: Any, image_server: ImageServer) -> None:
    line = pipeline(fetch_retry_delays="5,30,120")
    line.run("fetch")
    image_server.fail_first["twice.jpg"] = 2
    event_id = await publish(line.broker, screenshot(1, pic_full_url=image_server.url("/flaky/twice.jpg")))
    await line.broker.drain()
    # Moderation is off in these settings: the stored frame goes straight to delivery, one hop less.
    [stored] = line.broker.queued("deliver")
    assert (stored.message_id, stored.type) == (event_id, "moderated")
    assert line.broker.queued("moderate") == []
    assert line.broker.now == 35 and line.broker.dead_letters("fetch") == []


async def test_an_open_breaker_pauses_the_moderate_stage_and_its_queue_waits_for_the_backend(
    pipeline: Any, image_server: ImageServer, sink: Sink, tmp_path: Path
) -> None:
    api = await FakeModerationApi().start()
    api.up = False
    try:
        line = pipeline(
            **api.settings(),
            moderation_breaker_failures="2",
            moderation_breaker_cooldown="0.05",
            moderation_concurrency="1",
            moderation_retry_delays="1,1,1,1,1,1,1,1",
        )
        await line.configure(pipeline_config(sink), tmp_path)
        line.run("fetch", "moderate", "deliver")
        ids = [
            await publish(line.broker, screenshot(n, pic_full_url=image_server.url(f"/good/b{n}.jpg")))
            for n in range(6)
        ]
        await line.broker.drain()
        assert line.broker.paused("moderate")  # the breaker stopped the stage's own intake
        waiting = len(line.broker.queued("moderate")) + len(line.broker.delayed("moderate"))
        assert waiting == 6 and api.calls == 2  # no call burnt while open
        api.up = True
        await until_resumed(line.broker)
        await line.broker.drain()
    finally:
        await api.stop()
    assert {d.headers["webhook-id"] for d in sink.deliveries["/snapshot"]} == set(ids)
    assert line.broker.dead_letters("moderate") == []


async def until_resumed(broker: MemoryBroker) -> None:
    for _ in range(100):
        if not broker.paused("moderate"):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the breaker never let a trial through")


async def test_a_busy_receiver_defers_deliveries_without_spending_their_tries(pipeline: Any, tmp_path: Path) -> None:
    sink = await Sink(delay=0.05).start()
    try:
        # One try each and no retry: any failure counted would dead-letter at once.
        line = pipeline(deliver_host_concurrency="1", deliver_tries="1")
        await line.configure(pipeline_config(sink), tmp_path)
        line.run("deliver")
        events = [{**sample("stream_begin"), "app": "test.app", "sequence": str(n)} for n in range(5)]
        ids = [await publish(line.broker, event) for event in events]
        await line.broker.drain()
    finally:
        await sink.stop()
    assert sorted(d.headers["webhook-id"] for d in sink.deliveries["/stream"]) == sorted(ids)
    assert line.broker.dead_letters("deliver") == []
    assert line.broker.now >= 1.0  # the others waited in the short delay queue while one was in hand
