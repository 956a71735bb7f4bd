"""Alibaba's automated review results (docs/protocols/alibaba.md §3) are provider verdicts, like Tencent's 317:
read into the neutral verdict, signed like every POSTed callback, refused with their codes, and through the real
pipeline a violation at the domain's detect notify URL, never a cover, and a frame in the console's review queue."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import orjson
import pytest

from framewatch.settings import Settings
from tests.conftest import apply_config, serve_ingress, serve_workers, settings_from
from tests.helpers import KEY, WEBHOOK_SECRET, Broker, wait_until
from tests.sink import Sink
from tests.test_alibaba import CALLBACK_HOST, auth, body, send
from tests.test_covers import token_for

DOMAIN = "qt01.alivecdn.com"  # the sample's DomainName
STREAM = "gs0911_4"
FRAME_URL = "https://mts-bucket-test.oss-cn-hangzhou.aliyuncs.com/customer/ondemand_oss/gs0911_4/1505131029218.jpg"


def result(suggestion: str = "block", rate: Any = 97, **changes: Any) -> dict[str, Any]:
    """The documented result, with its first entry's suggestion and rate set."""
    sample = body("moderation", **changes)
    if "Result" not in changes:
        first, *rest = sample["Result"][0]["Result"]
        sample["Result"][0]["Result"] = [{**first, "Suggestion": suggestion, "Rate": rate}, *rest]
    return sample


def config(sink: Sink | None = None, allow_unsigned: bool = False) -> str:
    urls = f'porn_censorship_notify_url = "{sink.url("/moderation")}"\n' if sink else ""
    detect = f'[[detect_notify]]\ndomain = "{DOMAIN}"\nnotify_url = "{sink.url("/violations")}"\n' if sink else ""
    return (
        f'account = "default"\n[[templates]]\nname = "main"\ncallback_key = "{KEY}"\n'
        f'webhook_secret = "{WEBHOOK_SECRET}"\nallow_unsigned = {str(allow_unsigned).lower()}\n{urls}'
        f'[[rules]]\ndomain = "{DOMAIN}"\ntemplate = "main"\n{detect}'
    )


async def test_the_documented_result_is_a_provider_verdict_on_the_frame_in_oss(
    settings: Settings, amqp: None, broker: Broker
) -> None:
    await apply_config(settings, config())
    async with serve_ingress(settings) as ingress, aiohttp.ClientSession() as session:
        url = f"{ingress.url}/callbacks/alibaba"
        for _ in range(2):  # the cloud's retry of the same result, signed anew: one event
            answer = await send(session, url, json_body=body("moderation"), headers=auth(CALLBACK_HOST))
            assert answer == (200, {"code": 0})
    [message] = await broker.take("fetch")
    assert message.routing_key == "alibaba.image_moderation"
    callback = orjson.loads(message.body)
    assert (callback["kind"], callback["provider"], callback["domain"]) == ("image_moderation", "alibaba", DOMAIN)
    assert callback["stream"] == {"app": "ondemand_oss", "name": STREAM}
    assert callback["screenshot"]["image_url"] == FRAME_URL
    assert callback["screenshot"]["capture_time"] == 1505131029  # the object's name, in milliseconds
    verdict = callback["verdict"]
    assert (verdict["suggestion"], verdict["label"], verdict["sub_label"], verdict["score"]) == (
        "Review",
        "Porn",
        "porn",
        100,
    )
    assert verdict["scores"] == {"Porn": 100.0, "Ad": 100.0} and verdict["source"] == "alibaba"
    assert callback["event"] == body("moderation")  # the body as received, for the platform
    assert await broker.count("deliver") == 0 and await broker.count("moderate") == 0


@pytest.mark.parametrize(
    ("changes", "verdict"),
    [
        ({}, ("Block", "Porn", 97)),  # block beats review whatever the rates
        ({"rate": "88.5"}, ("Block", "Porn", 88)),  # Rate as a string: the document shows numbers, SDKs strings
        ({"suggestion": "PASS", "rate": 5}, ("Review", "Ad", 100)),  # any case; the worst entry decides
    ],
)
async def test_the_worst_entry_decides_and_loose_fields_are_read(
    settings: Settings, amqp: None, broker: Broker, changes: dict[str, Any], verdict: tuple[str, str, int]
) -> None:
    await apply_config(settings, config())
    sample = result(**changes)
    del sample["Result"][0]["Result"][0]["Extent"]  # reserved, and absent from some results
    async with serve_ingress(settings) as ingress, aiohttp.ClientSession() as session:
        status, answer = await send(
            session, f"{ingress.url}/callbacks/alibaba", json_body=sample, headers=auth(CALLBACK_HOST)
        )
    assert status == 200, answer
    [message] = await broker.take("fetch")
    got = orjson.loads(message.body)["verdict"]
    assert (got["suggestion"], got["label"], got["score"]) == verdict


REFUSALS = [
    ("bad signature", {"headers": auth(CALLBACK_HOST, key="notTheKey")}, 401, "InvalidSignature"),
    ("unsigned", {"headers": {}}, 401, "MissingSignature"),
    ("no OssObject", {"drop": "OssObject"}, 400, "InvalidEvent"),
    ("no StreamName", {"drop": "StreamName"}, 400, "InvalidEvent"),
    ("a bucket that is no host name", {"change": {"OssBucket": "evil.example/x?"}}, 400, "InvalidEvent"),
    ("a rate that is no number", {"change": {"Result": [{"Result": [{"Label": "Porn", "Rate": "high",
                                                                     "Suggestion": "block"}]}]}}, 400, "InvalidEvent"),
    ("a suggestion of its own", {"change": {"Result": [{"Result": [{"Label": "Porn", "Rate": 9,
                                                                    "Suggestion": "maybe"}]}]}}, 400, "InvalidEvent"),
    ("no result at all", {"change": {"Result": []}}, 400, "InvalidEvent"),
]  # fmt: skip


@pytest.mark.parametrize(("how", "status", "error"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
async def test_refusal(settings: Settings, amqp: None, broker: Broker, how: dict[str, Any], status: int, error: str):
    await apply_config(settings, config())
    sample = body("moderation", **how.get("change", {}))
    sample.pop(how.get("drop", ""), None)
    headers = how.get("headers", auth(CALLBACK_HOST))
    async with serve_ingress(settings) as ingress, aiohttp.ClientSession() as session:
        got = await send(session, f"{ingress.url}/callbacks/alibaba", json_body=sample, headers=headers)
    assert (got[0], got[1]["error"]) == (status, error), got
    assert await broker.count("fetch") == 0


async def test_unsigned_results_are_accepted_where_the_template_allows_unsigned_callbacks(
    settings: Settings, amqp: None, broker: Broker
) -> None:
    await apply_config(settings, config(allow_unsigned=True))
    async with serve_ingress(settings) as ingress, aiohttp.ClientSession() as session:
        status, _ = await send(session, f"{ingress.url}/callbacks/alibaba", json_body=body("moderation"))
    assert status == 200 and await broker.count("fetch") == 1


async def test_a_block_result_is_a_violation_never_a_cover_and_a_frame_to_review(
    worker_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, amqp: None, broker: Broker
) -> None:
    sink = await Sink().start()
    try:
        settings = settings_from(monkeypatch, worker_env)
        await apply_config(settings, config(sink=sink))
        token = await token_for(settings)
        stages = ["fetch", "deliver", "streams"]
        async with serve_ingress(settings) as ingress, serve_workers(settings, stages), aiohttp.ClientSession() as s:
            status, _ = await send(
                s, f"{ingress.url}/callbacks/alibaba", json_body=result(), headers=auth(CALLBACK_HOST)
            )
            assert status == 200
            await wait_until(lambda: sink.deliveries["/violations"] and sink.deliveries["/moderation"], timeout=15)
            cover = f"{ingress.url}/covers/{DOMAIN}/{STREAM}.jpg"
            await wait_until(lambda: cover_refused(s, cover), timeout=10)
            review = await review_page(s, ingress.admin_url, token)
    finally:
        await sink.stop()
    [violation] = sink.deliveries["/violations"]
    assert {k: v for k, v in violation.body.items() if k not in ("t", "sign", "framewatch")} == result()
    assert violation.body["framewatch"]["provider"] == "alibaba" and violation.body["framewatch"]["source"] == "alibaba"
    [forwarded] = sink.deliveries["/moderation"]
    assert forwarded.body["framewatch"]["verdict"]["suggestion"] == "Block"
    # The frame's bucket is out of reach here (no such host): one try, and the verdict went on without it.
    assert "image" not in forwarded.body["framewatch"] and "image" not in violation.body["framewatch"]
    assert sink.bad_signatures == 0
    # Reviewable in the console: the stream, the label, the cloud as the source, the frame's link to OSS.
    assert STREAM in review and "Porn" in review and "alibaba" in review


async def cover_refused(session: aiohttp.ClientSession, url: str) -> bool:
    """The stream is known (its flagged frame) and has no cover: never the flagged frame."""
    async with session.get(url) as answer:
        return answer.status == 404 and (await answer.json())["error"] == "NoSafeCover"


async def review_page(_: aiohttp.ClientSession, admin_url: str, token: str) -> str:
    """The review queue as a signed-in reviewer's browser gets it (cookies kept for the loopback address)."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        login = {"token": token, "reviewer": "ana"}
        async with browser.post(f"{admin_url}/console/login", data=login) as answer:
            assert answer.status == 200 and answer.url.path == "/console/", await answer.text()
        async with browser.get(f"{admin_url}/console/review", params={"domain": DOMAIN}) as answer:
            assert answer.status == 200
            page = await answer.text()
    return re.sub(r"\s+", " ", page)
