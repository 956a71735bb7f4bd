"""ApsaraVideo Live at /callbacks/alibaba: the documented callbacks accepted and routed, every refusal with its
code, retries collapsed, app-name rules, and stream events forwarded to the platform end to end."""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
import orjson
import pytest

from framewatch.settings import Settings
from tests.conftest import DOMAINS, RunningIngress, apply_config, serve_ingress, serve_workers, settings_from
from tests.helpers import KEY, SAMPLES, WEBHOOK_SECRET, Broker, wait_until
from tests.sink import Sink

ALIBABA = SAMPLES.parent / "alibaba"
INGEST_DOMAIN = "example.aliyundoc.com"  # the publish samples' `app`
RECORD_DOMAIN = "demo.aliyundoc.com"  # the recording samples' `domain`
# What a POSTed callback is signed with: the host of the callback URL the cloud was given (here, the test's).
CALLBACK_HOST = "127.0.0.1"


def query(name: str, **changes: str) -> dict[str, str]:
    return {**dict(parse_qsl((ALIBABA / f"{name}.query").read_text().strip())), **changes}


def body(name: str, **changes: Any) -> dict[str, Any]:
    return {**orjson.loads((ALIBABA / f"{name}.json").read_bytes()), **changes}


def auth(domain: str, key: str = KEY, timestamp: int | None = None) -> dict[str, str]:
    """The two headers as the cloud sends them: md5("{domain}|{timestamp}|{key}"), lower-case hex."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    signature = hashlib.md5(f"{domain}|{timestamp}|{key}".encode()).hexdigest()
    return {"ALI-LIVE-TIMESTAMP": str(timestamp), "ALI-LIVE-SIGNATURE": signature}


def config(app_name: str = "", sink: Sink | None = None) -> str:
    urls = (
        f'stream_begin_notify_url = "{sink.url("/stream")}"\nstream_end_notify_url = "{sink.url("/stream")}"\n'
        f'record_notify_url = "{sink.url("/record")}"\n'
        if sink
        else ""
    )
    rules = "".join(
        f'[[rules]]\ndomain = "{domain}"\ntemplate = "main"\napp_name = "{app_name}"\n'
        for domain in (INGEST_DOMAIN, RECORD_DOMAIN, *DOMAINS)
    )
    template = f'[[templates]]\nname = "main"\ncallback_key = "{KEY}"\nwebhook_secret = "{WEBHOOK_SECRET}"\n'
    return f'account = "default"\n{template}{urls}{rules}'


@pytest.fixture
async def alibaba(settings: Settings, amqp: None) -> AsyncIterator[RunningIngress]:
    await apply_config(settings, config())
    async with serve_ingress(settings) as ingress:
        yield ingress


def endpoint(ingress: RunningIngress) -> str:
    return f"{ingress.url}/callbacks/alibaba"


async def send(
    session: aiohttp.ClientSession,
    url: str,
    *,
    params: dict[str, str] | None = None,
    json_body: Any = None,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
    method: str | None = None,
) -> tuple[int, dict[str, Any]]:
    headers = dict(headers or {})
    data = raw
    if json_body is not None:
        data = orjson.dumps(json_body)
        headers.setdefault("Content-Type", "application/json")
    method = method or ("GET" if data is None else "POST")
    async with session.request(method, url, params=params, data=data, headers=headers) as response:
        return response.status, await response.json(content_type=None)


async def test_the_documented_callbacks_are_accepted_and_routed(alibaba: RunningIngress, broker: Broker) -> None:
    url = endpoint(alibaba)
    host = CALLBACK_HOST
    async with aiohttp.ClientSession() as session:
        for name in ("publish", "publish_done"):
            assert await send(session, url, params=query(name), headers=auth(INGEST_DOMAIN)) == (200, {"code": 0})
        for name in ("record_file", "record_status"):
            assert await send(session, url, json_body=body(name), headers=auth(host)) == (200, {"code": 0})
    messages = await broker.take("deliver")
    envelopes = {orjson.loads(m.body)["kind"]: orjson.loads(m.body) for m in messages}
    assert sorted(envelopes) == ["recording", "recording_status", "stream_begin", "stream_end"]
    begin = envelopes["stream_begin"]
    assert begin["provider"] == "alibaba" and begin["domain"] == INGEST_DOMAIN
    assert begin["event"] == query("publish")  # every parameter as received
    assert begin["stream"] == {"app": "liveApp", "name": "world"}
    recording = envelopes["recording"]
    assert recording["domain"] == RECORD_DOMAIN and recording["event"] == body("record_file")
    assert {m.routing_key for m in messages} == {f"alibaba.{kind}" for kind in envelopes}
    for stage in ("fetch", "moderate"):
        assert await broker.count(stage) == 0


async def test_retries_with_a_new_timestamp_are_one_event(alibaba: RunningIngress, broker: Broker) -> None:
    url = endpoint(alibaba)
    async with aiohttp.ClientSession() as session:
        for delay in (0, 1, 2):  # the cloud retries 5 times 1 s apart, each time signed anew
            headers = auth(INGEST_DOMAIN, timestamp=int(time.time()) + delay)
            assert (await send(session, url, params=query("publish"), headers=headers))[0] == 200
        another = query("publish", time=str(int(query("publish")["time"]) + 60))  # a new push: a new event
        assert (await send(session, url, params=another, headers=auth(INGEST_DOMAIN)))[0] == 200
    assert await broker.count("deliver") == 2


NOW = int(time.time())
DEEP: Any = 1
for _ in range(40):
    DEEP = [DEEP]
REFUSALS = [
    # id, request (params, json body or raw bytes, headers, method), status, error
    ("PUT", {"json_body": body("record_file"), "method": "PUT", "sign": "host"}, 405, "MethodNotAllowed"),
    (
        "not json",
        {"raw": b"{nope", "headers": {"Content-Type": "application/json"}, "sign": "host"},
        400,
        "InvalidJson",
    ),
    ("array", {"json_body": [1], "sign": "host"}, 400, "InvalidEvent"),
    ("nested 40 deep", {"json_body": body("record_file", push_args=DEEP), "sign": "host"}, 400, "InvalidEvent"),
    ("no domain", {"json_body": {"app": "liveApp", "uri": "a.flv"}, "sign": "host"}, 400, "InvalidEvent"),
    ("mistyped time", {"json_body": body("record_file", start_time="noon"), "sign": "host"}, 400, "InvalidEvent"),
    ("absurd time", {"json_body": body("record_file", stop_time=10**18), "sign": "host"}, 400, "InvalidEvent"),
    ("unknown action", {"params": query("publish", action="explode"), "sign": "ingest"}, 400, "InvalidEvent"),
    ("no stream name", {"params": {k: v for k, v in query("publish").items() if k != "id"}}, 400, "InvalidEvent"),
    ("no domain in query", {"params": {k: v for k, v in query("publish").items() if k != "app"}}, 400, "InvalidEvent"),
    ("no signature", {"params": query("publish")}, 401, "MissingSignature"),
    ("wrong key", {"params": query("publish"), "sign": "wrong key"}, 401, "InvalidSignature"),
    ("signed for another domain", {"params": query("publish"), "sign": "host"}, 401, "InvalidSignature"),
    (
        "POST signed with the ingest domain",
        {"json_body": body("record_file"), "sign": "record"},
        401,
        "InvalidSignature",
    ),
    ("stale timestamp", {"params": query("publish"), "sign": "stale"}, 403, "SignatureExpired"),
    ("timestamp ahead", {"params": query("publish"), "sign": "ahead"}, 403, "TimestampTooFarAhead"),
    (
        "unbound domain",
        {"params": query("publish", app="nobody.example.com"), "sign": "unbound"},
        403,
        "DomainNotBound",
    ),
    ("too large", {"json_body": body("record_file", pad="x" * 70_000), "sign": "host"}, 413, "BodyTooLarge"),
    (
        "form body",
        {"raw": b"a=b", "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
        415,
        "UnsupportedMediaType",
    ),
]


def signing_headers(how: str | None) -> dict[str, str]:
    return {
        None: {},
        "ingest": auth(INGEST_DOMAIN),
        "host": auth(CALLBACK_HOST),
        "record": auth(RECORD_DOMAIN),
        "wrong key": auth(INGEST_DOMAIN, key="notTheKey"),
        "stale": auth(INGEST_DOMAIN, timestamp=NOW - 3600),
        "ahead": auth(INGEST_DOMAIN, timestamp=NOW + 3600),
        "unbound": auth("nobody.example.com"),
    }[how]


@pytest.mark.parametrize(("request_", "status", "error"), [c[1:] for c in REFUSALS], ids=[c[0] for c in REFUSALS])
async def test_refusal(alibaba: RunningIngress, broker: Broker, request_: dict[str, Any], status: int, error: str):
    request_ = dict(request_)
    headers = {**request_.pop("headers", {}), **signing_headers(request_.pop("sign", None))}
    async with aiohttp.ClientSession() as session:
        got_status, answer = await send(session, endpoint(alibaba), headers=headers, **request_)
        async with session.get(f"{alibaba.admin_url}/metrics") as response:
            metrics = await response.text()
    assert (got_status, answer["error"]) == (status, error), answer
    assert isinstance(answer["code"], int) and answer["code"] != 0 and answer["message"]
    assert f'framewatch_callbacks_total{{outcome="refused",provider="alibaba",reason="{error}"}}' in metrics
    for stage in ("fetch", "moderate", "deliver"):
        assert await broker.count(stage) == 0


async def test_an_app_name_rule_serves_only_its_app(settings: Settings, amqp: None, broker: Broker) -> None:
    await apply_config(settings, config(app_name="liveApp"))
    async with serve_ingress(settings) as ingress, aiohttp.ClientSession() as session:
        url = endpoint(ingress)
        assert (await send(session, url, params=query("publish"), headers=auth(INGEST_DOMAIN)))[0] == 200
        other = query("publish", appname="otherApp")
        status, answer = await send(session, url, params=other, headers=auth(INGEST_DOMAIN))
        assert (status, answer["error"]) == (403, "DomainNotBound")
    assert await broker.count("deliver") == 1


async def test_behind_a_proxy_the_configured_callback_host_signs(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, amqp: None, broker: Broker
) -> None:
    settings = settings_from(monkeypatch, env, alibaba_callback_host="callbacks.example.com")
    await apply_config(settings, config())
    async with serve_ingress(settings) as ingress, aiohttp.ClientSession() as session:
        url = endpoint(ingress)
        status, _ = await send(session, url, json_body=body("record_file"), headers=auth("callbacks.example.com"))
        assert status == 200
        status, answer = await send(session, url, json_body=body("record_status"), headers=auth(CALLBACK_HOST))
        assert (status, answer["error"]) == (401, "InvalidSignature")
    assert await broker.count("deliver") == 1


async def test_stream_events_and_recordings_reach_the_platform_with_the_provider_named(
    worker_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, amqp: None, broker: Broker
) -> None:
    sink = await Sink().start()
    try:
        settings = settings_from(monkeypatch, worker_env)
        await apply_config(settings, config(sink=sink))
        async with serve_ingress(settings) as ingress, serve_workers(settings, ["deliver"]):
            url = endpoint(ingress)
            async with aiohttp.ClientSession() as session:
                assert (await send(session, url, params=query("publish"), headers=auth(INGEST_DOMAIN)))[0] == 200
                status, _ = await send(session, url, json_body=body("record_file"), headers=auth(CALLBACK_HOST))
                assert status == 200
            await wait_until(lambda: sink.deliveries["/stream"] and sink.deliveries["/record"], timeout=10)
    finally:
        await sink.stop()
    [begin] = sink.deliveries["/stream"]
    assert {k: v for k, v in begin.body.items() if k not in ("t", "sign", "framewatch")} == query("publish")
    assert begin.body["framewatch"]["provider"] == "alibaba"
    [record] = sink.deliveries["/record"]
    assert record.body["uri"] == body("record_file")["uri"] and record.body["framewatch"]["provider"] == "alibaba"
    assert sink.bad_signatures == 0
