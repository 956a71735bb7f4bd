"""Provider events parse leniently where the documents disagree; event ids survive retries and only retries."""

from __future__ import annotations

import orjson
import pytest

from framewatch.providers.base import RawRequest
from framewatch.providers.tencent.events import (
    ImageModerationEvent,
    InvalidEvent,
    RecordingEvent,
    ScreenshotEvent,
    StreamEvent,
    TencentEvent,
    parse_event,
)
from framewatch.providers.tencent.provider import TencentProvider
from tests.helpers import SAMPLES, sample, signed

PROVIDER = TencentProvider()


def incoming(body: dict, domain: str = "d.example"):
    """What the Tencent provider makes of a body posted to /callbacks/tencent/<domain> (without `app`)."""
    body = {k: v for k, v in body.items() if k != "app"}
    return PROVIDER.parse(RawRequest("POST", "h", {}, {}, "application/json", orjson.dumps(body), domain))


def event_id(body: dict, domain: str) -> str:
    return PROVIDER.event_id(incoming(body, domain))


EXPECTED = {
    "screenshot": ScreenshotEvent,
    "screenshot_legacy": ScreenshotEvent,
    "moderation": ImageModerationEvent,
    "stream_begin": StreamEvent,
    "stream_end": StreamEvent,
    "recording": RecordingEvent,
}


def test_every_sample_parses_to_its_model() -> None:
    names = sorted(path.stem for path in SAMPLES.glob("*.json"))
    assert names == sorted(EXPECTED)
    for name in names:
        assert type(parse_event(sample(name))) is EXPECTED[name]


def test_lenient_fields() -> None:
    legacy = parse_event(sample("screenshot_legacy"))
    assert legacy.t == 1622600525 and legacy.app is None and legacy.domain is None  # t as a string
    moderation = parse_event(sample("moderation"))
    assert moderation.score == [99.0] and moderation.type == [1]  # spelled `socre` in every sample
    scalar = parse_event({**sample("moderation"), "socre": 87})
    assert scalar.score == [87.0]
    spelled_right = parse_event({**{k: v for k, v in sample("moderation").items() if k != "socre"}, "score": [5]})
    assert spelled_right.score == [5.0]
    begin = parse_event({**sample("stream_begin"), "sequence": 6674468118806626493})
    assert begin.sequence == "6674468118806626493" and incoming(sample("stream_begin")).kind == "stream_begin"
    assert incoming(sample("stream_end")).kind == "stream_end"


def test_other_types_keep_every_field_and_decode_embedded_json() -> None:
    relay = parse_event({"event_type": 314, "app": "a.b", "msg": '{"k": [1]}', "source_urls": '["rtmp://x"]'})
    assert type(relay) is TencentEvent and incoming({"event_type": 314}).kind == "other"
    assert relay.embedded("msg") == {"k": [1]} and relay.embedded("source_urls") == ["rtmp://x"]
    status = parse_event({"event_type": 332, "app": "a.b", "record_detail": "not json"})
    assert status.embedded("record_detail") == "not json"
    push_error = parse_event({"event_type": 321, "domain": "push.example.com", "errcode": 1})
    assert push_error.domain == "push.example.com"
    unknown = parse_event({"event_type": 999, "anything": {"nested": True}})
    assert unknown.model_extra == {"anything": {"nested": True}}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"app": "x"}, "event_type"),
        ({"event_type": "two hundred"}, "event_type"),
        ({**sample("screenshot"), "pic_full_url": ""}, "pic_full_url"),
        ({**sample("screenshot"), "create_time": "noon"}, "create_time"),
        # Numbers no stage could compute with are refused at the edge, not retried for an hour.
        ({**sample("screenshot"), "create_time": 10**18}, "create_time"),
        ({**sample("screenshot"), "event_type": 2**63}, "event_type"),
        ({**sample("stream_begin"), "t": 10**18}, "t"),
        ({**sample("recording"), "file_id": None}, "file_id"),
        ({**sample("moderation"), "img": None}, "img"),
    ],
)
def test_invalid_events_name_the_field(body: dict, field: str) -> None:
    with pytest.raises(InvalidEvent, match=field):
        parse_event(body)


def test_event_id_ignores_t_and_sign_and_nothing_else() -> None:
    for name in EXPECTED:
        body = sample(name)
        first = event_id(signed(body, t=1_900_000_000), "d.example")
        retry = event_id(signed(body, key="other", t=1_900_000_100), "d.example")
        assert first == retry
        assert event_id(body, "other.example") != first  # domain is part of the key
    base = sample("screenshot")
    ids = {
        event_id({**base, "pic_url": "/other.jpg"}, "d"),
        event_id({**base, "create_time": base["create_time"] + 10}, "d"),
        event_id({**base, "stream_id": "another"}, "d"),
        # A forged callback with a captured (t, sign) and another image URL is not the genuine one's duplicate.
        event_id({**base, "pic_full_url": "https://evil.myqcloud.com/x.jpg"}, "d"),
        event_id(base, "d"),
    }
    assert len(ids) == 5
    end = sample("stream_end")
    begin = {**end, "event_type": 1}
    assert event_id(end, "d") != event_id(begin, "d")  # same sequence, two events
