"""Fewer model calls, per template: a near-identical frame carries the stream's last safe verdict (never after a
flagged frame, never past the template's age), and one screenshot in N is moderated. Real broker, the real fetch,
moderate, deliver and streams stages, an HTTP moderation API on loopback that counts its calls."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import pytest
from PIL import Image, ImageDraw

from framewatch.config.errors import ConfigError
from framewatch.resources import Resources
from framewatch.settings import Settings
from tests.conftest import apply_config, serve_workers, settings_from
from tests.helpers import KEY, WEBHOOK_SECRET, Broker, queue_callbacks, screenshot, wait_until
from tests.imageserver import ImageServer
from tests.moderation_api import RedFlagApi
from tests.sink import Sink
from workers import stages

STAGES = ["fetch", "moderate", "deliver", "streams"]


def config(sink: Sink, **template: int) -> str:
    extra = "".join(f"{name} = {value}\n" for name, value in template.items())
    return f"""
account = "default"
[[templates]]
name = "main"
callback_key = "{KEY}"
webhook_secret = "{WEBHOOK_SECRET}"
snapshot_notify_url = "{sink.url("/snapshot")}"
{extra}
[[rules]]
domain = "test.app"
template = "main"
"""


def scene(quality: int = 85, red_part: float = 0.0) -> bytes:
    """A studio scene with a presenter; `quality` re-encodes it (near-identical frames), `red_part` covers that
    fraction of it, from the left, with the red the moderation API flags."""
    image = Image.new("RGB", (1280, 720), (40, 60, 90))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 520, 1280, 720), fill=(120, 100, 70))  # the desk
    draw.ellipse((540, 120, 740, 340), fill=(220, 180, 150))  # the presenter
    draw.rectangle((500, 340, 780, 620), fill=(30, 30, 140))
    draw.rectangle((900, 80, 1220, 300), fill=(200, 200, 210))  # a screen behind
    if red_part:
        draw.rectangle((0, 0, int(1280 * red_part), 720), fill=(250, 10, 10))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


@pytest.fixture
async def api() -> AsyncIterator[RedFlagApi]:
    running = await RedFlagApi().start()
    yield running
    await running.stop()


async def settings_for(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], api: RedFlagApi, sink: Sink, **template: int
) -> Settings:
    settings = settings_from(monkeypatch, env, **api.settings())
    await apply_config(settings, config(sink, **template))
    return settings


async def one_by_one(broker: Broker, sink: Sink, events: list[dict]) -> list[dict]:
    """Each screenshot through the pipeline before the next is sent; their snapshot webhooks' verdicts."""
    for n, event in enumerate(events, start=1):
        await queue_callbacks(broker.namespace, [event])
        await wait_until(lambda n=n: len(sink.deliveries["/snapshot"]) >= n, timeout=30)
    return [delivery.body["framewatch"]["verdict"] for delivery in sink.deliveries["/snapshot"]]


async def stored_sources(settings: Settings) -> dict[int, str]:
    """Each stored frame's verdict source, by capture time, as the console's stream page shows them."""
    resources = Resources(settings, stages.topology(settings.broker.namespace), change_feed=False)
    try:
        await wait_until(lambda: resources.streams.recent_frames(1, "test.app", "your_streamid"), timeout=10)
        rows = await resources.streams.recent_frames(1, "test.app", "your_streamid", limit=30)
        return {row.capture_time: row.source for row in rows}
    finally:
        await resources.close()


async def test_near_identical_frames_carry_the_last_safe_verdict_until_the_forced_recheck(
    pipeline_env: dict[str, str], monkeypatch, broker: Broker, image_server: ImageServer, sink: Sink, api: RedFlagApi
) -> None:
    settings = await settings_for(monkeypatch, pipeline_env, api, sink, moderation_reuse_seconds=30)
    for n, quality in ((0, 85), (5, 80), (10, 90), (40, 85)):  # capture times, seconds
        image_server.files[f"scene{n}.jpg"] = scene(quality)
    events = [screenshot(n, pic_full_url=image_server.url(f"/file/scene{n}.jpg")) for n in (0, 5, 10, 40)]
    async with serve_workers(settings, STAGES):
        verdicts = await one_by_one(broker, sink, events)
    first = sink.deliveries["/snapshot"][0].headers["webhook-id"]
    assert api.calls == 2  # the first frame, and the one 40 s later: past the template's 30 s, judged again
    assert [v["suggestion"] for v in verdicts] == ["Pass"] * 4
    assert [v["reused_from"] for v in verdicts] == [None, first, first, None]
    assert verdicts[1]["source"] == verdicts[0]["source"]  # whose verdict it is
    sources = await stored_sources(settings)
    model = verdicts[0]["source"]
    assert [sources[1_700_000_000 + n] for n in (0, 5, 10, 40)] == [model, f"reuse/{model}", f"reuse/{model}", model]


async def test_a_flagged_frame_is_never_followed_by_a_carried_verdict(
    pipeline_env: dict[str, str], monkeypatch, broker: Broker, image_server: ImageServer, sink: Sink, api: RedFlagApi
) -> None:
    """Safe, then flagged content over most of the same scene, then the safe scene again: that last frame is
    near-identical to the first, within the age, and still goes to the model."""
    settings = await settings_for(monkeypatch, pipeline_env, api, sink, moderation_reuse_seconds=300)
    image_server.files.update({"a.jpg": scene(), "b.jpg": scene(red_part=0.95), "c.jpg": scene(80)})
    events = [screenshot(n, pic_full_url=image_server.url(f"/file/{name}.jpg")) for n, name in enumerate("abc")]
    async with serve_workers(settings, STAGES):
        await queue_callbacks(broker.namespace, events[:1])
        await wait_until(lambda: len(sink.deliveries["/snapshot"]) == 1, timeout=30)
        await queue_callbacks(broker.namespace, events[1:2])
        await wait_until(lambda: api.calls == 2, timeout=30)
        await wait_until(lambda: len(sink.deliveries["/snapshot"]) == 2, timeout=30)
        await queue_callbacks(broker.namespace, events[2:])
        await wait_until(lambda: len(sink.deliveries["/snapshot"]) == 3, timeout=30)
    verdicts = {
        d.body["pic_full_url"].rsplit("/", 1)[1]: d.body["framewatch"]["verdict"] for d in sink.deliveries["/snapshot"]
    }
    assert verdicts["b.jpg"]["suggestion"] == "Block"
    assert verdicts["c.jpg"]["suggestion"] == "Pass" and verdicts["c.jpg"]["reused_from"] is None
    assert api.calls == 3


async def test_without_reuse_every_frame_goes_to_the_model(
    pipeline_env: dict[str, str], monkeypatch, broker: Broker, image_server: ImageServer, sink: Sink, api: RedFlagApi
) -> None:
    settings = await settings_for(monkeypatch, pipeline_env, api, sink)
    image_server.files.update({f"s{n}.jpg": scene(85 - n) for n in range(3)})
    events = [screenshot(n, pic_full_url=image_server.url(f"/file/s{n}.jpg")) for n in range(3)]
    async with serve_workers(settings, STAGES):
        verdicts = await one_by_one(broker, sink, events)
    assert api.calls == 3 and all(v["reused_from"] is None for v in verdicts)


async def test_a_template_that_samples_sends_one_screenshot_in_n_to_the_model(
    pipeline_env: dict[str, str], monkeypatch, broker: Broker, image_server: ImageServer, sink: Sink, api: RedFlagApi
) -> None:
    """One in 1,000: these six screenshots are all sampled out (the choice is the event id's hash, the same on
    every worker and every retry); they are delivered and recorded unreviewed."""
    settings = await settings_for(monkeypatch, pipeline_env, api, sink, moderation_sample_every=1000)
    events = [screenshot(n, pic_full_url=image_server.url(f"/good/sample{n}.jpg")) for n in range(6)]
    async with serve_workers(settings, STAGES):
        await queue_callbacks(broker.namespace, events)
        await wait_until(lambda: len(sink.deliveries["/snapshot"]) == 6, timeout=30)
    assert api.calls == 0
    assert all(d.body["framewatch"]["verdict"] is None for d in sink.deliveries["/snapshot"])


@pytest.mark.parametrize(
    ("field", "value"),
    [("moderation_sample_every", 0), ("moderation_sample_every", 1001), ("moderation_reuse_seconds", -1)],
)
async def test_moderation_fields_out_of_range_are_refused(
    pipeline_env: dict[str, str], monkeypatch, sink: Sink, field: str, value: int
) -> None:
    settings = settings_from(monkeypatch, pipeline_env)
    with pytest.raises(ConfigError, match="Moderation"):
        await apply_config(settings, config(sink, **{field: value}))
