"""Property tests: arbitrary input never crashes the callback parsers or the admin parameters, and whatever a parser
accepts, every stage can carry (the message survives its JSON round trip and the deliver stage's forwarding)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framewatch.admin.params import Params
from framewatch.config.errors import ConfigError
from framewatch.providers.alibaba.provider import AlibabaProvider
from framewatch.providers.base import Incoming, Provider, RawRequest
from framewatch.providers.refusals import Refused
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


def carried(provider: Provider, incoming: Incoming) -> None:
    """What a stage does with an accepted event: parse its message, and forward it as JSON."""
    message = provider.message(incoming, 1_700_000_000.0)
    again = CallbackReceived.model_validate_json(message.model_dump_json())
    assert again.id == message.id == provider.event_id(incoming)
    orjson.dumps({**again.event, "framewatch": {"event_id": again.id}})


def parse(provider: Provider, request: RawRequest) -> Incoming | None:
    try:
        return provider.parse(request)
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
