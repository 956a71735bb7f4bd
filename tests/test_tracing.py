"""One trace per frame: the real pipeline (broker, stages, a moderation API, the platform's sink) exporting to a
real OTLP/HTTP receiver on loopback, and nothing of it when the OTEL_* variables do not ask."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

from framewatch.runtime import tracing
from tests.conftest import apply_config, serve_ingress, serve_workers, settings_from
from tests.helpers import IngressProcess, post, screenshot, signed, wait_until
from tests.imageserver import ImageServer
from tests.moderation_api import RedFlagApi
from tests.otlp import OtlpReceiver, ReceivedSpan
from tests.sink import Sink
from tests.test_pipeline import pipeline_config

STAGES = ["fetch", "moderate", "deliver", "streams"]
SERVER, CLIENT, CONSUMER = 2, 3, 5  # the protocol's SpanKind values


@pytest.fixture
async def receiver() -> AsyncIterator[OtlpReceiver]:
    running = await OtlpReceiver().start()
    yield running
    await asyncio.to_thread(tracing.shutdown)  # a test's buffered spans go to this loop's receiver
    await running.stop()


@pytest.fixture
async def moderation_api() -> AsyncIterator[RedFlagApi]:
    api = await RedFlagApi().start()
    yield api
    await api.stop()


async def run_one_frame(settings, sink: Sink, frame_url: str, deliveries: int) -> None:
    await apply_config(settings, pipeline_config(sink))
    async with serve_ingress(settings) as ingress, serve_workers(settings, STAGES), aiohttp.ClientSession() as s:
        status, _ = await post(s, ingress.callbacks, signed(screenshot(1, pic_full_url=frame_url)))
        assert status == 200
        await wait_until(lambda: sum(len(d) for d in sink.deliveries.values()) >= deliveries, timeout=30)
        await asyncio.sleep(0.5)  # the streams stage's batch


def by_name(spans: list[ReceivedSpan]) -> dict[str, list[ReceivedSpan]]:
    named: dict[str, list[ReceivedSpan]] = {}
    for span in spans:
        named.setdefault(span.name, []).append(span)
    return named


async def test_one_flagged_screenshot_is_one_trace_from_callback_to_webhooks(
    pipeline_env, monkeypatch, broker, image_server: ImageServer, sink: Sink, receiver, moderation_api
) -> None:
    settings = settings_from(monkeypatch, {**pipeline_env, **receiver.env()}, **moderation_api.settings())
    assert tracing.configure("run")
    await run_one_frame(settings, sink, image_server.url("/bad/traced.jpg"), deliveries=2)
    await wait_until(lambda: any(span.name.startswith("streams") for span in receiver.spans), timeout=10)
    await asyncio.to_thread(tracing.shutdown)  # what is still buffered is exported (to this loop's receiver)

    assert receiver.content_types == {"application/x-protobuf"}
    assert {span.trace_id for span in receiver.spans} == {receiver.spans[0].trace_id}, "one frame, one trace"
    named = by_name(receiver.spans)
    [callback] = named["callback tencent"]
    [fetch] = named["fetch callback"]
    [moderate] = named["moderate frame_stored"]
    [streams] = named["streams moderated"]
    [planned] = named["deliver moderated"]  # the snapshot and the violation: one message each, split here
    split = named["deliver webhook"]
    posts = named["POST screenshot"] + named["POST violation"]
    assert callback.parent_id == "" and callback.kind == SERVER and callback.service == "framewatch-run"
    assert callback.attributes["framewatch.kind"] == "screenshot"
    assert callback.attributes["http.response.status_code"] == 200
    assert fetch.parent_id == callback.span_id and fetch.kind == CONSUMER
    assert moderate.parent_id == fetch.span_id
    assert streams.parent_id == moderate.span_id and planned.parent_id == moderate.span_id
    assert len(split) == 2 and {span.parent_id for span in split} == {planned.span_id}
    assert len(posts) == 2 and {span.parent_id for span in posts} == {span.span_id for span in split}
    assert all(span.kind == CLIENT and span.attributes["http.response.status_code"] == 200 for span in posts)
    assert all(span.attributes["framewatch.outcome"] == "done" for span in [fetch, moderate, streams, *split])
    # The moderated frame and its webhooks were handed over in the process, not through the broker.
    assert all(span.attributes["framewatch.handoff"] == "inline" for span in [streams, planned, *split])
    assert not any(span.error for span in receiver.spans)

    # The platform gets the POST span's context: its own trace of the webhook joins the frame's.
    sent = [d.headers["traceparent"].split("-") for ds in sink.deliveries.values() for d in ds]
    assert {(version, trace, parent) for version, trace, parent, _ in sent} == {
        ("00", callback.trace_id, span.span_id) for span in posts
    }
    assert all(int(flags, 16) & 1 for *_, flags in sent), "sampled"


async def test_framewatch_ingest_exports_a_refused_callback_as_a_failed_span_on_its_way_out(
    env: dict[str, str], configured, amqp, receiver: OtlpReceiver
) -> None:
    """The process as operators run it, told by the standard variables alone; spans held until it stops (a long
    batch delay) still reach the collector on SIGTERM."""
    process = IngressProcess({**env, **receiver.env(), "OTEL_BSP_SCHEDULE_DELAY": "600000"})
    try:
        await process.wait_ready()
        async with aiohttp.ClientSession() as s:
            status, answer = await post(s, f"{process.url}/callbacks/tencent", signed(screenshot(1), key="not-it"))
        await asyncio.sleep(0.3)
        assert receiver.spans == []
    finally:
        await asyncio.to_thread(process.terminate)
    [span] = receiver.spans
    assert status == 401 and answer["code"] != 0
    assert span.name == "callback tencent" and span.service == "framewatch-ingest" and span.kind == SERVER
    assert span.error and span.attributes["http.response.status_code"] == 401


async def test_off_by_default_nothing_is_exported_and_no_traceparent_is_sent(
    pipeline_env, monkeypatch, broker, image_server: ImageServer, sink: Sink, receiver, moderation_api
) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_TRACES_EXPORTER"):
        monkeypatch.delenv(name, raising=False)
    settings = settings_from(monkeypatch, pipeline_env, **moderation_api.settings())
    assert not tracing.configure("run")
    await run_one_frame(settings, sink, image_server.url("/good/untraced.jpg"), deliveries=1)
    assert not tracing.enabled() and receiver.spans == []
    assert all("traceparent" not in d.headers for ds in sink.deliveries.values() for d in ds)


@pytest.mark.parametrize(
    ("environ", "on"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, False),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, False),
    ],
)
def test_the_standard_variables_decide_whether_traces_are_exported(environ: dict[str, str], on: bool) -> None:
    assert tracing.wanted(environ) is on
