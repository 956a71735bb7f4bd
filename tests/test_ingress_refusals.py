"""Every refusal: its status, its error name, a JSON body, and nothing published."""

from __future__ import annotations

import time

import aiohttp
import orjson
import pytest

from tests.conftest import serve_ingress
from tests.helpers import partial_post, post, sample, screenshot, signed

NOW = int(time.time())


def nested(depth: int) -> dict:
    """A signed screenshot with an extra field nested `depth` levels deep (the body itself is level 1)."""
    value: object = "bottom"
    for _ in range(depth - 1):
        value = {"x": value}
    return signed(screenshot(1, extra=value))


CASES = [
    # id, body (or raw bytes), path suffix, headers, status, error
    ("not json", b"{not json", "", None, 400, "InvalidJson"),
    ("array", b"[1, 2]", "", None, 400, "InvalidEvent"),
    ("no event_type", {"app": "test.app"}, "", None, 400, "InvalidEvent"),
    # Deeper than any stage can carry: refused at the edge, never accepted then dead-lettered, never a 500.
    ("nested 40 deep", nested(40), "", None, 400, "InvalidEvent"),
    ("nested 300 deep", nested(300), "", None, 400, "InvalidEvent"),
    ("nested 1100 deep", b'{"a":' * 1100 + b"1" + b"}" * 1100, "", None, 400, "InvalidJson"),
    ("event_type 2^63", signed(screenshot(1, event_type=2**63)), "", None, 400, "InvalidEvent"),
    ("create_time 10^18", signed(screenshot(1, create_time=10**18)), "", None, 400, "InvalidEvent"),
    # What the edge accepts every stage can store: names within the columns, no NUL or control characters, and
    # frames not dated further ahead than the clock skew (they would outrank every genuine one as the cover).
    ("frame dated an hour ahead", signed(screenshot(1, create_time=NOW + 3600)), "", None, 400, "CaptureTimeAhead"),
    ("NUL in a stream id", signed(screenshot(1, stream_id="s\x001")), "", None, 400, "ControlCharacter"),
    ("newline in an app name", signed(screenshot(1, appname="live\nx")), "", None, 400, "ControlCharacter"),
    (
        "DEL in a URL",
        signed(screenshot(1, pic_full_url="http://a.myqcloud.com/\x7f.jpg")),
        "",
        None,
        400,
        "ControlCharacter",
    ),
    ("stream id of 256", signed(screenshot(1, stream_id="s" * 256)), "", None, 400, "NameTooLong"),
    (
        "317 screenshotTime 10^19",
        signed({**sample("moderation"), "app": "test.app", "screenshotTime": 10**19}),
        "",
        None,
        400,
        "InvalidEvent",
    ),
    (
        "317 dated ahead",
        signed({**sample("moderation"), "app": "test.app", "screenshotTime": NOW + 3600}),
        "",
        None,
        400,
        "CaptureTimeAhead",
    ),
    (
        "317 label with NUL",
        signed({**sample("moderation"), "app": "test.app", "label": "Porn\x00"}),
        "",
        None,
        400,
        "ControlCharacter",
    ),
    (
        "missing field",
        {k: v for k, v in signed(screenshot(1)).items() if k != "pic_full_url"},
        "",
        None,
        400,
        "InvalidEvent",
    ),
    ("mistyped field", signed(screenshot(1, create_time="yesterday")), "", None, 400, "InvalidEvent"),
    ("no domain anywhere", signed(sample("screenshot_legacy")), "", None, 400, "MissingDomain"),
    ("path disagrees with body", signed(screenshot(1)), "/other.app", None, 400, "DomainMismatch"),
    (
        "no sign",
        {k: v for k, v in signed(screenshot(1)).items() if k not in ("t", "sign")},
        "",
        None,
        401,
        "MissingSignature",
    ),
    ("wrong key", signed(screenshot(1), key="notTheKey"), "", None, 401, "InvalidSignature"),
    ("sign without t", {k: v for k, v in signed(screenshot(1)).items() if k != "t"}, "", None, 401, "MissingSignature"),
    ("t passed", signed(screenshot(1), t=NOW - 5), "", None, 403, "SignatureExpired"),
    ("t too far ahead", signed(screenshot(1), t=NOW + 3600), "", None, 403, "TimestampTooFarAhead"),
    ("unbound domain", signed(screenshot(1, app="nobody.example.com")), "", None, 403, "DomainNotBound"),
    ("too large", signed(screenshot(1, padding="x" * 70_000)), "", None, 413, "BodyTooLarge"),
    (
        "form body",
        b"event_type=200",
        "",
        {"Content-Type": "application/x-www-form-urlencoded"},
        415,
        "UnsupportedMediaType",
    ),
    ("no content type", b"{}", "", {}, 415, "UnsupportedMediaType"),
]


@pytest.mark.parametrize(
    ("body", "suffix", "headers", "status", "error"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
async def test_refusal(ingress, broker, body, suffix, headers, status, error) -> None:
    kwargs = {} if headers is None else {"headers": headers}
    async with aiohttp.ClientSession() as session:
        got_status, answer = await post(session, ingress.callbacks + suffix, body, **kwargs)
        async with session.get(f"{ingress.admin_url}/metrics") as response:
            metrics = await response.text()
    assert got_status == status
    assert answer["error"] == error
    assert isinstance(answer["code"], int) and answer["code"] != 0
    assert answer["message"]
    assert f'reason="{error}"' in metrics
    for stage in ("fetch", "moderate", "deliver"):
        assert await broker.count(stage) == 0


async def test_sign_is_compared_case_insensitively(ingress, broker) -> None:
    body = signed(screenshot(1))
    body["sign"] = body["sign"].upper()
    async with aiohttp.ClientSession() as session:
        assert (await post(session, ingress.callbacks, body))[0] == 200


async def test_chunked_body_over_the_cap_is_refused(ingress, broker) -> None:
    async def chunks():
        yield b'{"event_type": 200, "padding": "'
        for _ in range(100):
            yield b"x" * 1024
        yield b'"}'

    async with aiohttp.ClientSession() as session:
        async with session.post(ingress.callbacks, data=chunks(), headers={"Content-Type": "application/json"}) as r:
            assert r.status == 413
            assert (await r.json())["error"] == "BodyTooLarge"


async def test_a_body_that_trickles_in_is_refused_in_time_and_frees_the_handler(configured, amqp, broker) -> None:
    configured.ingress.body_read_timeout = 0.5
    async with serve_ingress(configured) as ingress:
        body = orjson.dumps(signed(screenshot(1)))
        content_type = "Content-Type: application/json\r\n"
        status, answer, waited = await partial_post(
            ingress.url, "/callbacks/tencent", content_type, len(body), body[:10]
        )
        assert (status, answer["error"]) == (408, "BodyTimeout")
        assert 0.4 < waited < 2
        async with aiohttp.ClientSession() as session:  # the next callback is served as usual
            assert (await post(session, ingress.callbacks, signed(screenshot(2))))[0] == 200
    assert await broker.count("fetch") == 1
