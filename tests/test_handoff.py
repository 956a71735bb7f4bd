"""A moderated frame handed to the deliver and streams stages in the process that stored it: one broker hop per
screenshot when everything works, the stages' queues when anything does not, nothing lost either way. Real
broker, real HTTP on loopback, a real `framewatch worker` process killed with SIGKILL."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from prometheus_client import REGISTRY

from framewatch.resources import Resources
from framewatch.settings import Settings
from tests.conftest import apply_config, serve_ingress, serve_workers, settings_from
from tests.helpers import (
    KEY,
    WEBHOOK_SECRET,
    Broker,
    WorkerProcess,
    post,
    queue_callbacks,
    screenshot,
    signed,
    wait_until,
)
from tests.imageserver import ImageServer
from tests.sink import Sink
from workers import service, stages
from workers.service import Workers, build_stage


def config(sink: Sink) -> str:
    return f"""
account = "default"
[[templates]]
name = "main"
callback_key = "{KEY}"
webhook_secret = "{WEBHOOK_SECRET}"
snapshot_notify_url = "{sink.url("/snapshot")}"
[[rules]]
domain = "test.app"
template = "main"
"""


async def covered(settings: Settings, stream: str = "your_streamid") -> str | None:
    """The frame id of the stream's cover in the stream store, if it has one."""
    resources = Resources(settings, stages.topology(settings.broker.namespace), change_feed=False)
    try:
        _, cover = await resources.streams.cover("test.app", stream)
        return cover.frame_id if cover else None
    finally:
        await resources.close()


def handed(stage: str, way: str) -> float:
    return REGISTRY.get_sample_value("framewatch_handoffs_total", {"stage": stage, "way": way}) or 0.0


@pytest.fixture
async def configured(pipeline_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, sink: Sink) -> Settings:
    settings = settings_from(monkeypatch, pipeline_env)
    await apply_config(settings, config(sink))
    return settings


async def test_a_fetch_worker_alone_delivers_and_records_each_screenshot_itself(
    configured: Settings, broker: Broker, image_server: ImageServer, sink: Sink
) -> None:
    """Only the fetch stage runs: the webhooks arrive and the stream has its cover, and the deliver and streams
    queues, which nobody consumes, never held a message: the callback was the screenshot's only broker hop."""
    before = handed("deliver", "inline"), handed("streams", "inline")
    bodies = [signed(screenshot(n, pic_full_url=image_server.url(f"/good/h{n}.jpg"))) for n in range(5)]
    async with serve_ingress(configured) as ingress, serve_workers(configured, ["fetch"]) as workers:
        await wait_until(lambda: len(workers.handoff.stages) == 2, timeout=15)
        async with aiohttp.ClientSession() as session:
            for body in bodies:
                assert (await post(session, ingress.callbacks, body))[0] == 200
        await wait_until(lambda: len(sink.deliveries["/snapshot"]) == 5, timeout=30)
    ids = {delivery.headers["webhook-id"] for delivery in sink.deliveries["/snapshot"]}
    assert len(ids) == 5
    assert await covered(configured) in ids
    assert await broker.count("deliver") == 0 and await broker.count("streams") == 0
    assert handed("deliver", "inline") - before[0] == 5 and handed("streams", "inline") - before[1] == 5


async def test_a_failing_receiver_gets_its_webhooks_through_the_deliver_queue(
    configured: Settings, broker: Broker, image_server: ImageServer, sink: Sink
) -> None:
    """The receiver answers 503: each webhook goes to the deliver queue (the stream record is made all the same),
    and a deliver worker sends it once the receiver is back, under the same webhook-id."""
    sink.status["/snapshot"] = 503
    events = [screenshot(n, pic_full_url=image_server.url(f"/good/f{n}.jpg")) for n in range(3)]
    async with serve_workers(configured, ["fetch"]) as workers:
        await wait_until(lambda: len(workers.handoff.stages) == 2, timeout=15)
        ids = set(await queue_callbacks(broker.namespace, events))
        await wait_until(lambda: broker.at_least("deliver", 3), timeout=30)
        await wait_until(lambda: broker.at_most("fetch", 0), timeout=10)
    assert sink.hits["/snapshot"] == 3 and not sink.deliveries["/snapshot"]  # tried in-process once each
    assert await broker.count("streams") == 0  # the store took them in-process
    del sink.status["/snapshot"]
    async with serve_workers(configured, ["deliver"]):
        await wait_until(lambda: len(sink.deliveries["/snapshot"]) == 3, timeout=30)
    assert {delivery.headers["webhook-id"] for delivery in sink.deliveries["/snapshot"]} == ids
    assert await broker.count("deliver.dead") == 0


async def test_a_receiver_slower_than_the_handoff_timeout_is_then_left_to_the_deliver_stage(
    pipeline_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, broker: Broker, image_server: ImageServer
) -> None:
    """The first webhook to a receiver that takes 1.5 s is given up after HANDOFF_TIMEOUT and queued; the
    receiver is then known to be slow, and the next ones are queued without being tried: the fetch worker's
    messages are not held by it."""
    sink = await Sink(delay=1.5).start()
    try:
        settings = settings_from(monkeypatch, pipeline_env, handoff_timeout="0.3")
        await apply_config(settings, config(sink))
        async with serve_workers(settings, ["fetch"]) as workers:
            await wait_until(lambda: len(workers.handoff.stages) == 2, timeout=15)
            await queue_callbacks(broker.namespace, [screenshot(0, pic_full_url=image_server.url("/good/s0.jpg"))])
            await wait_until(lambda: broker.at_least("deliver", 1), timeout=30)
            events = [screenshot(n, pic_full_url=image_server.url(f"/good/s{n}.jpg")) for n in range(1, 4)]
            await queue_callbacks(broker.namespace, events)
            await wait_until(lambda: broker.at_least("deliver", 4), timeout=30)
        assert sink.hits["/snapshot"] == 1
        async with serve_workers(settings, ["deliver"]):
            await wait_until(lambda: len(sink.deliveries["/snapshot"]) >= 4, timeout=30)
    finally:
        await sink.stop()


async def test_a_stream_store_slower_than_the_handoff_timeout_leaves_the_frames_to_the_streams_queue(
    pipeline_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, broker: Broker, image_server: ImageServer
) -> None:
    sink = await Sink().start()
    try:
        settings = settings_from(monkeypatch, pipeline_env, handoff_timeout="0.3", streams_batch_wait="2")
        await apply_config(settings, config(sink))
        events = [screenshot(n, pic_full_url=image_server.url(f"/good/t{n}.jpg")) for n in range(3)]
        async with serve_workers(settings, ["fetch"]) as workers:
            await wait_until(lambda: len(workers.handoff.stages) == 2, timeout=15)
            ids = await queue_callbacks(broker.namespace, events)
            await wait_until(lambda: broker.at_least("streams", 3), timeout=30)
        assert len(sink.deliveries["/snapshot"]) == 3  # the webhooks did not wait for the store
        settings = settings_from(monkeypatch, pipeline_env)  # a streams worker with the usual batches
        async with serve_workers(settings, ["streams"]):
            await wait_until(lambda: broker.at_most("streams", 0), timeout=30)
            await wait_until(lambda: covered(settings), timeout=10)
        assert await covered(settings) in ids
    finally:
        await sink.stop()


async def test_a_worker_stopped_with_frames_in_hand_records_them_before_its_stream_stage_closes(
    configured: Settings, broker: Broker, image_server: ImageServer, sink: Sink
) -> None:
    """Stopped while its fetch stage is downloading, a process that also consumes the streams stage (idle, its
    queue empty) keeps that stage open until the frames in hand are recorded: none is left to the streams queue
    by a store that closed under it, and each callback is acknowledged."""
    events = [screenshot(n, pic_full_url=image_server.url(f"/paced/d{n}.jpg")) for n in range(3)]
    async with serve_workers(configured, ["fetch", "streams"]) as workers:
        await wait_until(lambda: len(workers.handoff.stages) == 2, timeout=15)
        ids = await queue_callbacks(broker.namespace, events)
        await wait_until(lambda: sum(image_server.hits[f"paced/d{n}.jpg"] for n in range(3)) == 3, timeout=30)
    assert len(sink.deliveries["/snapshot"]) == 3
    assert await covered(configured) in ids
    assert await broker.count("streams") == 0 and await broker.count("fetch") == 0


async def test_a_worker_killed_while_its_webhook_is_in_flight_loses_nothing(
    configured: Settings, pipeline_env: dict[str, str], broker: Broker, image_server: ImageServer, sink: Sink
) -> None:
    """The callback is acknowledged only once the webhook was answered: killed before that, the worker's callback
    goes back to the fetch queue, and the next worker delivers it."""
    env = {**pipeline_env, "FRAMEWATCH_HANDOFF_TIMEOUT": "30"}
    sink.delay = 30.0
    [event_id] = await queue_callbacks(broker.namespace, [screenshot(0, pic_full_url=image_server.url("/good/k.jpg"))])
    worker = WorkerProcess(env, "fetch")
    try:
        await wait_until(lambda: sink.hits["/snapshot"] >= 1, timeout=30)
        worker.kill()  # SIGKILL, the POST in flight
        await wait_until(lambda: broker.at_least("fetch", 1), timeout=10)  # unacknowledged: back in the queue
        sink.delay = 0.0
        worker = WorkerProcess(env, "fetch")
        await wait_until(lambda: len(sink.deliveries["/snapshot"]) >= 1, timeout=30)
    finally:
        worker.terminate()
    assert {delivery.headers["webhook-id"] for delivery in sink.deliveries["/snapshot"]} == {event_id}
    assert await broker.count("deliver") == 0 and await broker.count("fetch.dead") == 0


async def test_with_no_handoff_stages_every_hop_goes_through_the_broker(
    pipeline_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, broker: Broker, image_server: ImageServer
) -> None:
    sink = await Sink().start()
    try:
        settings = settings_from(monkeypatch, pipeline_env, handoff_stages="")
        await apply_config(settings, config(sink))
        async with serve_workers(settings, ["fetch"]) as workers:
            assert workers.handed == []
            await queue_callbacks(broker.namespace, [screenshot(0, pic_full_url=image_server.url("/good/b.jpg"))])
            await wait_until(lambda: broker.at_least("deliver", 1), timeout=30)
            await wait_until(lambda: broker.at_least("streams", 1), timeout=30)
        await asyncio.sleep(0.2)
        assert sink.hits["/snapshot"] == 0
    finally:
        await sink.stop()


async def test_a_fetch_worker_up_before_the_config_store_has_its_schema_consumes_after_a_short_wait(
    pipeline_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, broker: Broker, image_server: ImageServer
) -> None:
    """Started before the ingress migrated the store: the handed stages cannot start, the fetch stage consumes
    after HANDED_START_WAIT all the same and its outputs go through the broker."""
    monkeypatch.setattr(service, "HANDED_START_WAIT", 1.0)
    settings = settings_from(monkeypatch, pipeline_env)
    async with serve_workers(settings, ["fetch"], migrated=False) as workers:
        assert workers.handoff.stages == {}  # neither deliver nor streams could start
        await queue_callbacks(broker.namespace, [screenshot(0, pic_full_url=image_server.url("/good/u.jpg"))])
        await wait_until(lambda: broker.at_least("deliver", 1), timeout=30)
        await wait_until(lambda: broker.at_least("streams", 1), timeout=30)


@pytest.mark.parametrize("named", ["moderate", "covers"])
def test_handoff_stages_name_only_stages_that_can_be_handed_messages(
    pipeline_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, named: str
) -> None:
    settings = settings_from(monkeypatch, pipeline_env, handoff_stages=named)
    resources = Resources(settings, stages.topology(settings.broker.namespace), change_feed=False)
    with pytest.raises(ValueError, match="HANDOFF_STAGES"):
        Workers(resources, [build_stage("fetch", resources)])
