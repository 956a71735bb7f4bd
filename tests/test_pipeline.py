"""Moderation and delivery, and the whole pipeline: real broker, real model, fake APIs and sinks on loopback."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import REGISTRY
from standardwebhooks.webhooks import Webhook as StandardWebhook
from standardwebhooks.webhooks import WebhookVerificationError
from svix.webhooks import Webhook as SvixWebhook
from svix.webhooks import WebhookVerificationError as SvixVerificationError
from tencentcloud.common.sign import Sign

from framewatch.providers.base import MAX_DEPTH
from tests.conftest import apply_config, serve_ingress, serve_workers, settings_from
from tests.helpers import (
    KEY,
    WEBHOOK_SECRET,
    Broker,
    free_port,
    post,
    queue_callbacks,
    run_cli,
    sample,
    screenshot,
    signed,
    wait_until,
)
from tests.imageserver import ImageServer
from tests.moderation_api import LoopbackModerationApi
from tests.sink import Sink


def pipeline_config(sink: Sink) -> str:
    return f"""
account = "default"
[[templates]]
name = "main"
callback_key = "{KEY}"
webhook_secret = "{WEBHOOK_SECRET}"
snapshot_notify_url = "{sink.url("/snapshot")}"
porn_censorship_notify_url = "{sink.url("/moderation")}"
stream_begin_notify_url = "{sink.url("/stream")}"
stream_end_notify_url = "{sink.url("/stream")}"
[[rules]]
domain = "test.app"
template = "main"
[[rules]]
domain = "5000.myqcloud.com"
template = "main"
[[detect_notify]]
domain = "test.app"
notify_url = "{sink.url("/violations")}"
[[detect_notify]]
domain = "5000.myqcloud.com"
notify_url = "{sink.url("/violations")}"
"""


class FakeModerationApi(LoopbackModerationApi):
    """Block for frames whose bytes hash odd, Pass otherwise; can be switched off."""

    up = True

    async def answer(self, image: bytes) -> web.Response:
        if not self.up:
            return web.Response(status=503, headers={"Retry-After": "0"})
        score = 95 if hashlib.sha256(image).digest()[0] % 2 else 10
        return web.json_response({"result": {"score": score, "label": "Porn" if score > 50 else "Normal"}})


@pytest.mark.parametrize("publisher", ["confirms", "aio-pika"])
async def test_a_screenshot_goes_through_every_stage_to_the_platform(
    pipeline_env: dict[str, str], monkeypatch, broker: Broker, image_server: ImageServer, sink: Sink, publisher: str
) -> None:
    """With either publisher (PUBLISHER): the ingress's and the stages' outputs go through the one the process
    built."""
    api = await FakeModerationApi().start()
    settings = settings_from(monkeypatch, pipeline_env, publisher=publisher, **api.settings())
    await apply_config(settings, pipeline_config(sink))
    bodies = [signed(screenshot(n, pic_full_url=image_server.url(f"/good/e2e{n}.jpg"))) for n in range(6)]
    try:
        stages = ["fetch", "moderate", "deliver"]
        queued, handed = ["fetch", "moderate"], ["deliver"]
        async with serve_ingress(settings) as ingress, serve_workers(settings, stages), aiohttp.ClientSession() as s:
            for body in bodies:
                assert (await post(s, ingress.callbacks, body))[0] == 200
            await wait_until(lambda: len(sink.deliveries["/snapshot"]) == 6, timeout=30)
            await asyncio.sleep(0.3)
    finally:
        await api.stop()
    snapshots = {d.body["pic_full_url"]: d for d in sink.deliveries["/snapshot"]}
    assert set(snapshots) == {b["pic_full_url"] for b in bodies}
    blocked = [d for d in snapshots.values() if d.body["framewatch"]["verdict"]["suggestion"] == "Block"]
    violations = sink.deliveries["/violations"]
    assert 0 < len(blocked) < 6 and len(violations) == len(blocked)
    for delivery in snapshots.values():
        extra = delivery.body["framewatch"]
        assert delivery.headers["webhook-id"] == extra["event_id"]
        assert [(t["width"], t["height"]) for t in extra["thumbnails"]] == [(320, 180), (160, 90)]
        assert extra["verdict"]["source"] == "http/127.0.0.1"
        assert delivery.body["stream_id"] == "your_streamid"  # the provider's fields, as received
    violation = violations[0].body
    assert violation["event_type"] == 317 and violation["suggestion"] == "Block" and violation["label"] == "Porn"
    assert violation["streamId"] == "your_streamid" and violation["app"] == "test.app"
    assert violation["framewatch"]["source"] == "http/127.0.0.1" and violation["framewatch"]["thumbnails"]
    assert sink.bad_signatures == 0
    # What the dashboard shows of it: callback to webhook, each stage's queue wait, the broker's counts. The
    # moderated frames were handed to deliver and streams in-process: they waited in no queue.
    sample = REGISTRY.get_sample_value
    assert sample("framewatch_end_to_end_seconds_count", {"kind": "screenshot"}) >= 6
    assert all(sample("framewatch_stage_queue_wait_seconds_count", {"stage": stage}) >= 6 for stage in queued)
    assert all(sample("framewatch_handoffs_total", {"stage": stage, "way": "inline"}) >= 6 for stage in handed)
    assert all(sample("framewatch_queue_consumers", {"stage": stage}) >= 1 for stage in stages)
    assert sample("framewatch_dead_letter_messages", {"stage": "deliver"}) == 0


async def test_stream_events_are_forwarded_as_received(
    pipeline_env: dict[str, str], monkeypatch, broker: Broker, sink: Sink
) -> None:
    settings = settings_from(monkeypatch, pipeline_env)
    await apply_config(settings, pipeline_config(sink))
    begin = {**sample("stream_begin"), "app": "test.app"}
    async with serve_workers(settings, ["deliver"]):
        [event_id] = await queue_callbacks(broker.namespace, [begin])
        await wait_until(lambda: len(sink.deliveries["/stream"]) == 1, timeout=10)
    [delivery] = sink.deliveries["/stream"]
    assert delivery.headers["webhook-id"] == event_id
    assert {k: v for k, v in delivery.body.items() if k not in ("t", "sign", "framewatch")} == {
        k: v for k, v in begin.items() if k not in ("t", "sign")
    }


async def test_a_provider_violation_reaches_the_detect_url_within_a_second(
    pipeline_env: dict[str, str], monkeypatch, broker: Broker, sink: Sink
) -> None:
    settings = settings_from(monkeypatch, pipeline_env)
    await apply_config(settings, pipeline_config(sink))
    body = signed(sample("moderation"))
    async with serve_ingress(settings) as ingress, serve_workers(settings, ["fetch", "deliver"]):
        async with aiohttp.ClientSession() as session:
            started = time.monotonic()
            assert (await post(session, ingress.callbacks, body))[0] == 200
        await wait_until(lambda: sink.deliveries["/violations"] and sink.deliveries["/moderation"], timeout=5)
    [violation] = sink.deliveries["/violations"]
    [moderation] = sink.deliveries["/moderation"]
    # Two webhooks, two ids: a receiver keeping webhook-id as its idempotency key keeps both.
    assert violation.headers["webhook-id"] != moderation.headers["webhook-id"]
    assert violation.at - started < 1.0
    assert violation.body["suggestion"] == "Block" and violation.body["img"] == body["img"]
    assert violation.body["framewatch"]["source"] == "tencent"
    assert sink.deliveries["/moderation"][0].body["framewatch"]["verdict"]["score"] == 99


async def test_a_sink_answering_500_forever_is_dead_lettered_after_the_configured_tries(
    pipeline_env: dict[str, str], monkeypatch, broker: Broker, sink: Sink
) -> None:
    settings = settings_from(monkeypatch, pipeline_env)
    await apply_config(settings, pipeline_config(sink))
    sink.status["/stream"] = 500
    async with serve_workers(settings, ["deliver"]):
        [event_id] = await queue_callbacks(broker.namespace, [{**sample("stream_begin"), "app": "test.app"}])
        await wait_until(lambda: broker.at_least("deliver.dead", 1), timeout=10)
    assert sink.hits["/stream"] == 3
    listing = run_cli("dlq", "list", "deliver", env=pipeline_env).stdout
    assert listing.startswith(f"{event_id}\t-\thttp_500")


async def test_a_sink_down_for_a_while_gets_everything_when_it_returns(
    pipeline_env: dict[str, str], monkeypatch, broker: Broker
) -> None:
    sink = Sink()  # not started: connection refused
    settings = settings_from(monkeypatch, pipeline_env, deliver_tries="50")
    await apply_config(settings, pipeline_config(sink))
    events = [{**sample("stream_begin"), "app": "test.app", "sequence": str(n)} for n in range(20)]
    async with serve_workers(settings, ["deliver"]):
        ids = await queue_callbacks(broker.namespace, events)
        await asyncio.sleep(1.5)
        await sink.start()
        try:
            await wait_until(lambda: len(sink.deliveries["/stream"]) >= 20, timeout=20)
        finally:
            await sink.stop()
    assert {d.headers["webhook-id"] for d in sink.deliveries["/stream"]} == set(ids)
    assert await broker.count("deliver.dead") == 0


async def test_a_moderation_api_down_pauses_consumption_and_loses_nothing(
    pipeline_env: dict[str, str], monkeypatch, broker: Broker, image_server: ImageServer, sink: Sink
) -> None:
    api = await FakeModerationApi().start()
    api.up = False
    settings = settings_from(
        monkeypatch,
        pipeline_env,
        moderation_backend="http",
        moderation_http_url=api.url,
        moderation_http_score_field="result.score",
        moderation_breaker_failures="2",
        moderation_breaker_cooldown="0.5",
        moderation_retry_delays="0.2,0.2,0.2,0.2,0.2,0.2,0.2,0.2,0.2,0.2,0.2,0.2,0.2,0.2,0.2,0.2,0.2,0.2,0.2,0.2",
        moderation_concurrency="1",
    )
    await apply_config(settings, pipeline_config(sink))
    events = [screenshot(n, pic_full_url=image_server.url(f"/good/down{n}.jpg")) for n in range(8)]
    try:
        async with serve_workers(settings, ["fetch", "moderate", "deliver"]) as workers:
            await queue_callbacks(broker.namespace, events)
            moderate = next(r for r in workers.consumers if r.stage.name == "moderate")
            await wait_until(lambda: not moderate.consuming, timeout=10)  # the breaker opened
            assert REGISTRY.get_sample_value("framewatch_moderation_breaker_open", {"backend": "http"}) == 1
            calls_while_down = api.calls
            await asyncio.sleep(0.3)
            assert api.calls == calls_while_down  # paused: no calls burnt while open
            api.up = True
            await wait_until(lambda: len(sink.deliveries["/snapshot"]) == 8, timeout=30)
            assert moderate.consuming
            assert REGISTRY.get_sample_value("framewatch_moderation_breaker_open", {"backend": "http"}) == 0
    finally:
        await api.stop()
    assert all(d.body["framewatch"]["verdict"] for d in sink.deliveries["/snapshot"])
    assert await broker.count("moderate.dead") == 0


def tc3_expected(secret_id: str, secret_key: str, request: web.Request, payload: bytes) -> str:
    """TC3-HMAC-SHA256 as Tencent Cloud documents it: the request canonicalised here, the key chain and HMAC by the
    official SDK's `Sign.sign_tc3`, never by framewatch's signer."""
    timestamp = int(request.headers["X-TC-Timestamp"])
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    canonical = (
        f"POST\n/\n\ncontent-type:{request.headers['Content-Type']}\nhost:{request.headers['Host']}\n"
        f"x-tc-action:{request.headers['X-TC-Action'].lower()}\n\ncontent-type;host;x-tc-action\n"
        + hashlib.sha256(payload).hexdigest()
    )
    scope = f"{date}/ims/tc3_request"
    to_sign = f"TC3-HMAC-SHA256\n{timestamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    signature = Sign.sign_tc3(secret_key, date, "ims", to_sign)  # the official SDK's own signing step
    headers = "content-type;host;x-tc-action"
    return f"TC3-HMAC-SHA256 Credential={secret_id}/{scope}, SignedHeaders={headers}, Signature={signature}"


async def test_tencent_ims_requests_are_tc3_signed_and_throttled_answers_retried(
    pipeline_env: dict[str, str], monkeypatch, broker: Broker, image_server: ImageServer, sink: Sink
) -> None:
    seen: list[dict] = []
    rejected = []

    async def ims(request: web.Request) -> web.Response:
        payload = await request.read()
        if request.headers.get("Authorization") != tc3_expected("AKIDtest", "secret-key-1", request, payload):
            rejected.append(request.headers.get("Authorization"))
            return web.json_response({"Response": {"Error": {"Code": "AuthFailure.SignatureFailure"}}})
        body = await request.json()
        seen.append(body)
        if len(seen) == 1:
            return web.json_response({"Response": {"Error": {"Code": "RequestLimitExceeded"}, "RequestId": "r1"}})
        return web.json_response(
            {"Response": {"Suggestion": "Review", "Label": "Sexy", "SubLabel": "SexyBehavior", "Score": 72,
                          "LabelResults": [{"Label": "Sexy", "Score": 72}], "RequestId": "r2"}}
        )  # fmt: skip

    app = web.Application()
    app.router.add_post("/", ims)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    settings = settings_from(
        monkeypatch,
        pipeline_env,
        moderation_backend="tencent-ims",
        tencent_secret_id="AKIDtest",
        tencent_secret_key="secret-key-1",
        tencent_ims_endpoint=f"http://127.0.0.1:{port}",
    )
    await apply_config(settings, pipeline_config(sink))
    try:
        async with serve_workers(settings, ["fetch", "moderate", "deliver"]):
            await queue_callbacks(broker.namespace, [screenshot(1, pic_full_url=image_server.url("/good/ims.jpg"))])
            await wait_until(lambda: sink.deliveries["/violations"], timeout=20)
    finally:
        await runner.cleanup()
    assert not rejected and len(seen) == 2  # throttled once, retried, both correctly signed
    assert seen[1]["FileContent"] and seen[1]["DataId"]
    verdict = sink.deliveries["/snapshot"][0].body["framewatch"]["verdict"]
    assert verdict["suggestion"] == "Review" and verdict["source"] == "tencent-ims/2020-12-29"
    assert sink.deliveries["/violations"][0].body["subLabel"] == "SexyBehavior"


async def test_the_local_model_gives_a_fixed_image_a_fixed_verdict(tmp_path: Path) -> None:
    from framewatch.blobs.backends.local import LocalBlobStore
    from framewatch.blobs.base import Blob
    from schemas.messages import CallbackReceived, FrameStored, StoredImage
    from tests.imageserver import jpeg
    from workers.fetch.images import process
    from workers.moderate.backends.nudenet import NudeNetBackend
    from workers.moderate.thresholds import Thresholds

    store = LocalBlobStore(tmp_path, "http://x")
    frame = process(jpeg("fixed.jpg"), [(320, 180)], 10**8)
    await store.put(Blob("t.jpg", frame.thumbnails[0].data, "image/jpeg"))
    thumb = StoredImage(key="t.jpg", url="http://x/t.jpg", width=320, height=180, bytes=1, content_type="image/jpeg")
    stored = FrameStored(
        id="e1", provider="tencent", domain="d", stream_id="s", capture_time=1, source_url="u", sha256="0",
        original=thumb, thumbnails=[thumb],
        callback=CallbackReceived(id="e1", provider="tencent", domain="d", kind="screenshot", event_type=200,
                                  received_at=0, event={}),
    )  # fmt: skip
    backend = NudeNetBackend(store, Thresholds(), threads=1)
    await backend.start()
    try:
        first, second = await backend.moderate([stored]), await backend.moderate([stored, stored])
    finally:
        await backend.close()
    assert first[0] is not None and first[0].suggestion == "Pass"  # a drawing of boxes and text: nothing exposed
    assert first[0].source.startswith("nudenet/320n")
    assert [v.scores for v in second if v] == [first[0].scores] * 2  # batched or not, the same answer


async def test_a_frame_the_model_cannot_take_fails_alone_not_its_batch(tmp_path: Path) -> None:
    """The real model batches frames that queue up together; one whose blob is gone fails only itself."""
    from framewatch.blobs.backends.local import LocalBlobStore
    from framewatch.blobs.base import Blob
    from schemas.messages import CallbackReceived, FrameStored, StoredImage
    from tests.imageserver import jpeg
    from workers.failures import Permanent
    from workers.fetch.images import process
    from workers.moderate.backends.nudenet import NudeNetBackend
    from workers.moderate.batcher import Batcher
    from workers.moderate.limits import CircuitBreaker
    from workers.moderate.thresholds import Thresholds

    store = LocalBlobStore(tmp_path, "http://x")
    await store.put(Blob("t.jpg", process(jpeg("fixed.jpg"), [(320, 180)], 10**8).thumbnails[0].data, "image/jpeg"))

    def stored(n: int, key: str = "t.jpg") -> FrameStored:
        thumb = StoredImage(key=key, url=f"http://x/{key}", width=320, height=180, bytes=1, content_type="image/jpeg")
        callback = CallbackReceived(
            id=f"e{n}", provider="tencent", domain="d", kind="screenshot", event_type=200, received_at=0, event={}
        )
        return FrameStored(
            id=f"e{n}", provider="tencent", domain="d", stream_id="s", capture_time=1, source_url="u", sha256="0",
            original=thumb, thumbnails=[thumb], callback=callback,
        )  # fmt: skip

    backend = NudeNetBackend(store, Thresholds(), threads=1)
    await backend.start()
    calls: list[int] = []
    moderate = backend.moderate

    async def counted(frames: list[FrameStored]) -> list:
        calls.append(len(frames))
        return await moderate(frames)

    backend.moderate = counted  # type: ignore[method-assign]

    async def nothing() -> None:
        pass

    breaker = CircuitBreaker(5, 30, pause=nothing, resume=nothing)
    batcher = Batcher(backend, concurrency=1, timeout=30, bucket=None, breaker=breaker)
    batcher.start()
    try:
        frames = [stored(n) for n in range(6)] + [stored(6, "gone.jpg")]
        results = await asyncio.gather(*(batcher.submit(f) for f in frames), return_exceptions=True)
    finally:
        await batcher.close()
        await backend.close()
    assert calls[0] == 7  # one batch first, then each frame on its own
    assert [r.suggestion for r in results[:6]] == ["Pass"] * 6  # type: ignore[union-attr]
    assert isinstance(results[6], Permanent) and results[6].reason == "image_missing"


async def test_while_the_webhook_secret_changes_both_signatures_are_sent(
    pipeline_env: dict[str, str], monkeypatch, broker: Broker, sink: Sink
) -> None:
    """Receivers verify with the official library and either secret until they switch (KEY_ROTATION_OVERLAP)."""
    settings = settings_from(monkeypatch, pipeline_env)
    await apply_config(settings, pipeline_config(sink))
    new = "whsec_" + base64.b64encode(b"\x01" * 32).decode()
    await apply_config(settings, pipeline_config(sink).replace(WEBHOOK_SECRET, new))
    async with serve_workers(settings, ["deliver"]):
        await queue_callbacks(broker.namespace, [{**sample("stream_begin"), "app": "test.app"}])
        await wait_until(lambda: len(sink.deliveries["/stream"]) == 1, timeout=10)
    [delivery] = sink.deliveries["/stream"]
    assert len(delivery.headers["webhook-signature"].split(" ")) == 2
    for secret in (new, WEBHOOK_SECRET):
        assert StandardWebhook(secret).verify(delivery.raw, delivery.headers)["framewatch"]["provider"] == "tencent"
        # Svix's verifier, which many receivers already run, takes the same secret as it is (it raises otherwise).
        SvixWebhook(secret).verify(delivery.raw, delivery.headers)
    stranger = "whsec_" + base64.b64encode(b"\x02" * 32).decode()
    with pytest.raises(WebhookVerificationError):
        StandardWebhook(stranger).verify(delivery.raw, delivery.headers)
    with pytest.raises(SvixVerificationError):
        SvixWebhook(stranger).verify(delivery.raw, delivery.headers)


async def test_the_deepest_body_the_ingress_accepts_is_carried_to_the_platform(
    pipeline_env: dict[str, str], monkeypatch, broker: Broker, sink: Sink
) -> None:
    """Whatever the ingress answers 200 for, every stage carries: a body nested as deep as it accepts arrives."""
    settings = settings_from(monkeypatch, pipeline_env)
    await apply_config(settings, pipeline_config(sink))
    value: object = "bottom"
    for _ in range(MAX_DEPTH - 1):
        value = {"x": value}
    body = signed({**sample("stream_begin"), "app": "test.app", "extra": value})
    async with serve_ingress(settings) as ingress, serve_workers(settings, ["deliver"]):
        async with aiohttp.ClientSession() as session:
            assert (await post(session, ingress.callbacks, body))[0] == 200
        await wait_until(lambda: len(sink.deliveries["/stream"]) == 1, timeout=10)
    assert sink.deliveries["/stream"][0].body["extra"] == value
    assert await broker.count("deliver.dead") == 0


async def test_a_fast_receiver_keeps_flowing_while_several_receivers_are_slow(
    pipeline_env: dict[str, str], monkeypatch, broker: Broker
) -> None:
    """Four receivers that take 3 s to answer could hold every delivery slot; once they are known slow they never
    take the last half, so another tenant's fast receiver gets its webhooks at once."""
    slow = [await Sink(delay=3.0).start() for _ in range(4)]
    fast = await Sink().start()
    try:
        settings = settings_from(monkeypatch, pipeline_env, deliver_concurrency="8", deliver_host_concurrency="8")
        receivers = [*slow, fast]
        config = 'account = "default"\n' + "".join(
            f'[[templates]]\nname = "t{n}"\ncallback_key = "{KEY}"\nwebhook_secret = "{WEBHOOK_SECRET}"\n'
            f'stream_begin_notify_url = "{sink.url("/stream")}"\n[[rules]]\ndomain = "d{n}.test"\ntemplate = "t{n}"\n'
            for n, sink in enumerate(receivers)
        )
        await apply_config(settings, config)
        begin = sample("stream_begin")
        slow_events = [{**begin, "app": f"d{n % 4}.test", "sequence": f"slow{n}"} for n in range(28)]
        fast_events = [{**begin, "app": "d4.test", "sequence": f"fast{n}"} for n in range(5)]
        async with serve_workers(settings, ["deliver"]):
            await queue_callbacks(broker.namespace, slow_events[:4], domain="")  # they answer, slowly
            await wait_until(lambda: sum(len(sink.deliveries["/stream"]) for sink in slow) == 4, timeout=10)
            await queue_callbacks(broker.namespace, slow_events[4:], domain="")
            await wait_until(lambda: sum(sink.hits["/stream"] for sink in slow) >= 8, timeout=10)
            started = time.monotonic()
            await queue_callbacks(broker.namespace, fast_events, domain="")
            await wait_until(lambda: len(fast.deliveries["/stream"]) == 5, timeout=20)
            waited = time.monotonic() - started
    finally:
        for sink in receivers:
            await sink.stop()
    assert waited < 2.5, f"the fast receiver waited {waited:.1f} s behind the slow ones (they answer after 3 s)"


async def test_one_tenants_new_slow_urls_never_starve_another_tenants_webhooks(
    pipeline_env: dict[str, str], monkeypatch, broker: Broker
) -> None:
    """Tenant A's 40 new URLs answer in 4 s, 3 webhooks each; tenant B's 40 webhooks to its own URL, which answers in
    1 s, arrive in about 4 s (15 s and more when new URLs could take any free slot and B's, timed slow, only what
    A's left)."""
    slow = [await Sink(delay=4.0).start() for _ in range(40)]
    fast = await Sink(delay=1.0).start()
    try:
        settings = settings_from(monkeypatch, pipeline_env, deliver_concurrency="64", deliver_host_concurrency="16")

        def tenant(account: str, sinks: list[Sink], prefix: str) -> str:
            return f'account = "{account}"\n' + "".join(
                f'[[templates]]\nname = "t{n}"\ncallback_key = "{KEY}"\nwebhook_secret = "{WEBHOOK_SECRET}"\n'
                f'stream_begin_notify_url = "{sink.url("/stream")}"\n'
                f'[[rules]]\ndomain = "{prefix}{n}.test"\ntemplate = "t{n}"\n'
                for n, sink in enumerate(sinks)
            )

        await apply_config(settings, tenant("tenant-a", slow, "a"))
        await apply_config(settings, tenant("tenant-b", [fast], "b"))
        begin = sample("stream_begin")
        a_events = [{**begin, "app": f"a{n % 40}.test", "sequence": f"a{n}"} for n in range(120)]
        b_events = [{**begin, "app": "b0.test", "sequence": f"b{n}"} for n in range(40)]
        async with serve_workers(settings, ["deliver"]):
            await queue_callbacks(broker.namespace, a_events, domain="")
            await wait_until(lambda: sum(sink.hits["/stream"] for sink in slow) >= 2, timeout=10)
            started = time.monotonic()
            await queue_callbacks(broker.namespace, b_events, domain="")
            await wait_until(lambda: len(fast.deliveries["/stream"]) == 40, timeout=40)
            waited = time.monotonic() - started
    finally:
        for sink in [*slow, fast]:
            await sink.stop()
    assert waited < 10.0, f"tenant B's webhooks took {waited:.1f} s behind tenant A's slow URLs"


async def test_a_moderation_api_answering_a_huge_body_is_not_read_past_its_bound(
    pipeline_env: dict[str, str], monkeypatch, broker: Broker, image_server: ImageServer, sink: Sink
) -> None:
    async def huge(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        try:
            for _ in range(200):  # 200 MB if it were all read
                await response.write(b" " * 1_048_576)
        except (ConnectionError, RuntimeError):
            pass
        return response

    app = web.Application()
    app.router.add_post("/", huge)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    settings = settings_from(
        monkeypatch, pipeline_env, moderation_backend="http", moderation_http_url=f"http://127.0.0.1:{port}/"
    )
    await apply_config(settings, pipeline_config(sink))
    try:
        async with serve_workers(settings, ["fetch", "moderate"]):
            await queue_callbacks(broker.namespace, [screenshot(1, pic_full_url=image_server.url("/good/h.jpg"))])
            await wait_until(lambda: broker.at_least("moderate.dead", 1), timeout=20)
    finally:
        await runner.cleanup()
    listing = run_cli("dlq", "list", "moderate", env=pipeline_env).stdout
    assert "http_answer_too_large" in listing


async def test_audio_moderation_and_recording_status_and_exceptions_reach_their_urls(
    pipeline_env: dict[str, str], monkeypatch, broker: Broker, sink: Sink
) -> None:
    settings = settings_from(monkeypatch, pipeline_env)
    extra = "".join(
        f'{field} = "{sink.url("/" + field)}"\n'
        for field in ("audio_audit_notify_url", "record_status_notify_url", "record_exception_notify_url")
    )
    await apply_config(settings, pipeline_config(sink).replace("[[rules]]", extra + "[[rules]]", 1))
    events = [
        {"event_type": 315, "app": "test.app", "stream_id": "s", "audio": 1},
        {"event_type": 332, "app": "test.app", "record_detail": "{}", "stream_id": "s"},
        {"event_type": 341, "app": "test.app", "stream_id": "s", "level": "error"},
    ]
    async with serve_workers(settings, ["deliver"]):
        await queue_callbacks(broker.namespace, events)
        fields = ("/audio_audit_notify_url", "/record_status_notify_url", "/record_exception_notify_url")
        await wait_until(lambda: all(sink.deliveries[path] for path in fields), timeout=10)
    for path, event in zip(fields, events, strict=True):
        assert sink.deliveries[path][0].body["event_type"] == event["event_type"]
