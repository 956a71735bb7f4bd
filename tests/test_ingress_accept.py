"""Documented callbacks are accepted, queued durably where their stage finds them, and retries collapse."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import orjson
import pytest

from tests.conftest import apply_config, serve_ingress, standard_config
from tests.helpers import KEY, post, sample, screenshot, signed

# sample -> the stage queue it must reach
ROUTES = {
    "screenshot": "fetch",
    "moderation": "fetch",  # the judged frame is stored, the verdict handed on
    "stream_begin": "deliver",
    "stream_end": "deliver",
    "recording": "deliver",
}


@pytest.mark.parametrize("name", sorted(ROUTES))
async def test_every_documented_sample_is_accepted_and_routed(ingress, broker, name: str) -> None:
    body = signed(sample(name))
    async with aiohttp.ClientSession() as session:
        status, answer = await post(session, ingress.callbacks, body)
    assert (status, answer) == (200, {"code": 0})

    stage = ROUTES[name]
    messages = await broker.take(stage)
    assert len(messages) == 1
    message = messages[0]
    envelope = orjson.loads(message.body)
    assert envelope["event"] == body  # every field as received, typos included
    assert envelope["id"] == message.message_id and len(message.message_id) == 32
    assert message.content_type == "application/json"
    assert message.delivery_mode == 2  # persistent
    assert abs(message.timestamp.timestamp() - time.time()) < 60
    assert message.headers["provider"] == "tencent"
    assert message.headers["event_type"] == body["event_type"]
    assert message.headers["domain"] == (body.get("app") or "")
    assert message.headers["schema_version"] == 1
    for other in set(ROUTES.values()) - {stage}:
        assert await broker.count(other) == 0


async def test_legacy_screenshot_takes_its_domain_from_the_path(ingress, broker) -> None:
    body = signed(sample("screenshot_legacy"))
    body["t"] = str(body["t"])  # older documents send t as a string
    async with aiohttp.ClientSession() as session:
        status, _ = await post(session, f"{ingress.callbacks}/test.app", body)
    assert status == 200
    [message] = await broker.take("fetch")
    assert message.headers["domain"] == "test.app"
    assert orjson.loads(message.body)["event"]["t"] == body["t"]


async def test_provider_retries_collapse_into_one_message(ingress, broker) -> None:
    event = screenshot(1)
    async with aiohttp.ClientSession() as session:
        first = await post(session, ingress.callbacks, signed(event))
        # A retry carries a new t and sign: still the same event.
        retry = await post(session, ingress.callbacks, signed(event, t=int(time.time()) + 599))
        other = await post(session, ingress.callbacks, signed(screenshot(2)))
    assert first == retry == other == (200, {"code": 0})
    ids = [m.message_id for m in await broker.take("fetch")]
    assert len(ids) == 2 and len(set(ids)) == 2


async def test_five_thousand_concurrent_callbacks_become_five_thousand_messages(ingress, broker) -> None:
    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=connector) as session:
        results = await asyncio.gather(*(post(session, ingress.callbacks, signed(screenshot(n))) for n in range(5000)))
    assert [status for status, _ in results] == [200] * 5000
    assert await broker.count("fetch") == 5000


async def test_unsigned_types_pass_only_where_the_template_allows(settings, amqp, broker) -> None:
    push_error = {"event_type": 321, "domain": "test.app", "stream_id": "s", "errcode": 3, "errmsg": "x"}
    relay = {"event_type": 314, "app": "test.app", "msg": '{"a": 1}', "source_urls": '["rtmp://x"]'}
    unsigned_screenshot = {k: v for k, v in screenshot(1).items() if k not in ("t", "sign")}
    for allow, expected in ((False, 401), (True, 200)):
        await apply_config(settings, standard_config(allow_unsigned=allow))
        async with serve_ingress(settings) as ingress, aiohttp.ClientSession() as session:
            assert (await post(session, ingress.callbacks, push_error))[0] == expected
            assert (await post(session, ingress.callbacks, relay))[0] == expected
            # A type documented with a signature still needs it, whatever the template allows.
            assert (await post(session, ingress.callbacks, unsigned_screenshot))[0] == 401
    delivered = await broker.take("deliver")
    assert sorted(orjson.loads(m.body)["event_type"] for m in delivered) == [314, 321]


async def test_key_rotation_keeps_the_previous_key_for_the_overlap(settings, amqp, broker) -> None:
    await apply_config(settings, standard_config(key=KEY))
    await apply_config(settings, standard_config(key="newKey456"), key_overlap=3600)
    async with serve_ingress(settings) as ingress, aiohttp.ClientSession() as session:
        url = ingress.callbacks
        assert (await post(session, url, signed(screenshot(1), key="newKey456")))[0] == 200
        assert (await post(session, url, signed(screenshot(2), key=KEY)))[0] == 200
        # Rotate again with no overlap: the key before is refused once the replica hears of the change.
        await apply_config(settings, standard_config(key="third789"), key_overlap=0)
        await asyncio.sleep(1.0)
        status, answer = await post(session, url, signed(screenshot(3), key="newKey456"))
        assert (status, answer["error"]) == (401, "InvalidSignature")
        assert (await post(session, url, signed(screenshot(4), key="third789")))[0] == 200
    assert await broker.count("fetch") == 3
