"""Property tests: arbitrary input never crashes the callback parsers, the edge's bounds, the signature checks or the
admin parameters, and whatever the edge accepts, every stage can carry (the message survives its JSON round trip and
the deliver stage's forwarding) and store (names within their columns, no control characters, plausible times)."""

from __future__ import annotations

import unicodedata
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framewatch.admin.api import same
from framewatch.admin.params import Params
from framewatch.config.errors import ConfigError
from framewatch.providers import bounds
from framewatch.providers.alibaba.provider import AlibabaProvider
from framewatch.providers.base import MAX_DEPTH, Incoming, Provider, RawRequest, json_object
from framewatch.providers.refusals import Refused
from framewatch.providers.tencent.cloud_api import _AUTHORIZATION
from framewatch.providers.tencent.provider import TencentProvider
from schemas.messages import CallbackReceived
from tests.helpers import sample

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=40,
)
TENCENT_FIELDS = sorted(
    {key for name in ("screenshot", "stream_begin", "moderation", "recording") for key in sample(name)}
)
# Bodies shaped like the provider's, every field's value arbitrary, and sometimes a real sample's value.
tencent_bodies = st.dictionaries(st.sampled_from(TENCENT_FIELDS) | st.text(max_size=12), json_values, max_size=14)
sample_bodies = st.sampled_from(["screenshot", "stream_begin", "stream_end", "moderation", "recording"]).flatmap(
    lambda name: st.fixed_dictionaries(
        {}, optional={key: json_values | st.just(value) for key, value in sample(name).items()}
    )
)


NOW = 1_700_000_000.0


def carried(provider: Provider, incoming: Incoming) -> None:
    """What a stage does with an accepted event: parse its message, forward it as JSON, and store its names."""
    message = provider.message(incoming, NOW, 1)
    again = CallbackReceived.model_validate_json(message.model_dump_json())
    assert again.id == message.id == provider.event_id(incoming)
    orjson.dumps({**again.event, "framewatch": {"event_id": again.id}})
    names = [again.domain, *((again.stream.name, again.stream.app) if again.stream else ())]
    assert all(len(name) <= 255 and not _controls(name) for name in names)
    if again.screenshot is not None:
        assert 0 <= again.screenshot.capture_time <= NOW + 60
    if again.verdict is not None:
        assert len(again.verdict.label) <= 64 and not _controls(again.verdict.label)


def _controls(text: str) -> bool:
    """NUL, C0 and C1 controls: what PostgreSQL, logs and XML answers cannot carry."""
    return any(unicodedata.category(char) == "Cc" for char in text)


def parse(provider: Provider, request: RawRequest) -> Incoming | None:
    """The callback as the edge takes it: read by its provider's package, then held to what every stage stores."""
    try:
        incoming = provider.parse(request)
        bounds.check(incoming, NOW, 60)
        return incoming
    except Refused as refused:
        assert refused.reason.status in (400, 405, 415) and refused.message
        return None


@SETTINGS
@given(st.one_of(tencent_bodies, sample_bodies), st.sampled_from([None, "path.example.com"]))
def test_tencent_bodies_are_accepted_only_when_every_stage_can_carry_them(body: dict[str, Any], path: str | None):
    provider = TencentProvider()
    if not _encodable(body):
        return
    incoming = parse(provider, RawRequest("POST", "h", {}, {}, "application/json", orjson.dumps(body), path))
    if incoming is not None:
        carried(provider, incoming)


@SETTINGS
@given(st.binary(max_size=200))
def test_any_bytes_are_refused_with_a_reason_or_accepted(raw: bytes) -> None:
    for provider in (TencentProvider(), AlibabaProvider()):
        incoming = parse(provider, RawRequest("POST", "h", {}, {}, "application/json", raw, None))
        if incoming is not None:
            carried(provider, incoming)


@SETTINGS
@given(
    st.dictionaries(
        st.sampled_from(["action", "id", "app", "appname", "time", "node", "usrargs", "ip"]) | st.text(max_size=8),
        st.text(max_size=30) | st.sampled_from(["publish", "publish_done", "1609220385", "example.aliyundoc.com"]),
        max_size=9,
    )
)
def test_alibaba_queries_never_crash(query: dict[str, str]) -> None:
    provider = AlibabaProvider()
    incoming = parse(provider, RawRequest("GET", "h", query, {}, "", b"", None))
    if incoming is not None:
        carried(provider, incoming)


@SETTINGS
@given(
    st.dictionaries(
        st.sampled_from(["domain", "app", "stream", "uri", "event", "start_time", "stop_time", "duration"])
        | st.text(max_size=8),
        json_values,
        max_size=9,
    )
)
def test_alibaba_bodies_never_crash(body: dict[str, Any]) -> None:
    provider = AlibabaProvider()
    if not _encodable(body):
        return
    incoming = parse(provider, RawRequest("POST", "h", {}, {}, "application/json", orjson.dumps(body), None))
    if incoming is not None:
        carried(provider, incoming)


@SETTINGS
@given(st.dictionaries(st.sampled_from(["TemplateId", "AppName", "Description"]), st.text(max_size=3000), max_size=3))
def test_admin_parameters_are_refused_with_a_code_or_read_within_their_columns(values: dict[str, str]) -> None:
    try:
        params = Params(values, ["TemplateId", "AppName", "Description"])
        if "TemplateId" in values:
            assert 1 <= params.integer("TemplateId") <= 2**31 - 1
    except ConfigError as refused:
        assert refused.code in ("InvalidParameter", "MissingParameter") and refused.status == 400


def _encodable(body: Any) -> bool:
    try:
        orjson.dumps(body)
    except orjson.JSONEncodeError:  # integers past 64 bits: no HTTP client sends them as JSON from orjson
        return False
    return True


@pytest.mark.parametrize("name", ["screenshot", "stream_begin", "moderation", "recording"])
def test_the_documented_samples_are_carried(name: str) -> None:
    provider = TencentProvider()
    raw = orjson.dumps(sample(name))
    incoming = parse(provider, RawRequest("POST", "h", {}, {}, "application/json", raw, None))
    assert incoming is not None
    carried(provider, incoming)


names = st.text(max_size=300) | st.sampled_from(["s1", "a" * 255, "a" * 256, "x\x00y", "ok\u0085", "\ufffe"])


@SETTINGS
@given(names, names, st.integers(min_value=-(2**40), max_value=2**40), names)
def test_the_edge_keeps_out_every_name_and_time_a_stage_cannot_store(
    stream: str, app: str, capture_time: int, label: str
) -> None:
    body = {**sample("screenshot"), "stream_id": stream, "appname": app, "create_time": capture_time}
    incoming = parse(TencentProvider(), RawRequest("POST", "h", {}, {}, "application/json", orjson.dumps(body), None))
    if incoming is not None:
        carried(TencentProvider(), incoming)
    verdict = {**sample("moderation"), "streamId": stream, "label": label, "screenshotTime": capture_time}
    incoming = parse(
        TencentProvider(), RawRequest("POST", "h", {}, {}, "application/json", orjson.dumps(verdict), None)
    )
    if incoming is not None:
        carried(TencentProvider(), incoming)


@SETTINGS
@given(st.text(max_size=200), st.text(max_size=200))
def test_a_signature_of_any_characters_is_compared_never_an_error(expected: str, given_: str) -> None:
    assert same(expected, given_) is (expected == given_)
    assert same(expected, expected)
    found = _AUTHORIZATION.match(f"TC3-HMAC-SHA256 Credential={given_}, SignedHeaders=host, Signature={expected}")
    assert found is None or len(found["signature"]) == 64


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(child) for child in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(child) for child in value), default=0)
    return 0


deep_values = st.recursive(
    st.none() | st.integers(-(2**53), 2**53) | st.text(max_size=4) | st.just("[{"),  # brackets in strings: no level
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3),
    max_leaves=120,
)


def _wrapped(value: Any, wrappers: list[bool]) -> Any:
    for as_list in wrappers:
        value = [value] if as_list else {"k": value}
    return value


# Chains around the limit, lists and objects mixed, beside wide trees.
chains = st.builds(_wrapped, deep_values, st.lists(st.booleans(), min_size=20, max_size=40))


@SETTINGS
@given(st.dictionaries(st.text(max_size=4), deep_values | chains, max_size=4))
def test_a_body_is_refused_exactly_when_nested_deeper_than_the_limit(body: dict[str, Any]) -> None:
    # The parser's shortcut (no more openings than levels allowed) must agree with the level-by-level walk.
    raw = orjson.dumps(body)
    if _depth(body) > MAX_DEPTH:
        with pytest.raises(Refused):
            json_object(raw)
    else:
        assert json_object(raw) == body


def test_a_wide_shallow_body_with_many_brackets_is_accepted() -> None:
    body = {"items": [{"n": n, "tags": ["a"]} for n in range(50)], "text": "[[[[{{{{" * 10}
    assert json_object(orjson.dumps(body)) == body
    deep: Any = "bottom"
    for _ in range(MAX_DEPTH + 1):  # the body itself is level 1
        deep = {"x": deep}
    with pytest.raises(Refused):
        json_object(orjson.dumps(deep))
    assert json_object(orjson.dumps(deep["x"]))
