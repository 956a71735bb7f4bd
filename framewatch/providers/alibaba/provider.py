"""Alibaba Cloud ApsaraVideo Live (docs/protocols/alibaba.md).

Stream publish and publish_done arrive as GET with query parameters; recording callbacks as POST JSON. Each is
signed in two headers: `ALI-LIVE-TIMESTAMP` (Unix seconds) and `ALI-LIVE-SIGNATURE` =
md5(`{domain}|{timestamp}|{key}`), where `{domain}` is the ingest domain for publish callbacks and the host of the
callback URL for every POSTed one.

The automated review's results (`DomainName`, `StreamName`, the frame in OSS, `Result[]`) are provider verdicts,
kind "image_moderation", read by moderation.py. Snapshot callbacks are POSTed too, but their body's field list is
not in the public documents reachable here: a signed POST this package does not recognise is accepted as kind
"other" (kept and counted, never lost) rather than read by guessed field names.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

import orjson
from yarl import URL

from framewatch.config.snapshot import Template
from framewatch.providers.alibaba import moderation
from framewatch.providers.base import Incoming, Provider, RawRequest, json_object
from framewatch.providers.refusals import Reason, Refused
from framewatch.settings import Settings
from schemas.messages import Kind, Stream

PROVIDER = "alibaba"
TIMESTAMP_HEADER = "ALI-LIVE-TIMESTAMP"
SIGNATURE_HEADER = "ALI-LIVE-SIGNATURE"
STREAM_ACTIONS: dict[str, Kind] = {"publish": "stream_begin", "publish_done": "stream_end"}
RECORD_STATUS_EVENTS = frozenset({"record_started", "record_paused", "record_resumed"})
# Lenient: the documents say JSON but not which content type the cloud labels it with.
_JSON_TYPES = frozenset({"application/json", "text/json", "text/plain"})
# Longer values are no stream, domain or object name the cloud sends: refused before they reach a stage.
MAX_NAME = 1024


def sign(domain: str, timestamp: str, key: str) -> str:
    return hashlib.md5(f"{domain}|{timestamp}|{key}".encode()).hexdigest()


def _text(values: Mapping[str, Any], name: str, required: bool = True) -> str | None:
    value = values.get(name)
    if value is None or value == "":
        if required:
            raise Refused(Reason.InvalidEvent, f"{name}: field required")
        return None
    if not isinstance(value, str):
        raise Refused(Reason.InvalidEvent, f"{name}: must be a string")
    if len(value) > MAX_NAME:
        raise Refused(Reason.InvalidEvent, f"{name}: longer than {MAX_NAME} characters")
    return value


def _seconds(values: Mapping[str, Any], name: str, required: bool = False) -> int | None:
    """A Unix time in seconds, as text (query) or a number (JSON), within what a date can be."""
    value = values.get(name)
    if value is None or value == "":
        if required:
            raise Refused(Reason.InvalidEvent, f"{name}: field required")
        return None
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdecimal():
        raise Refused(Reason.InvalidEvent, f"{name}: must be whole Unix seconds")
    seconds = int(value)
    if seconds >= 2**33:
        raise Refused(Reason.InvalidEvent, f"{name}: not a plausible Unix time")
    return seconds


class AlibabaProvider(Provider):
    name = PROVIDER
    paths = ("/callbacks/alibaba",)

    def __init__(self, timestamp_window: int = 300, callback_host: str | None = None) -> None:
        self.timestamp_window = timestamp_window
        # Behind a proxy the Host header is not the callback URL's host the cloud signs with: the operator says it.
        self.callback_host = callback_host.lower() if callback_host else None

    @classmethod
    def from_settings(cls, settings: Settings) -> AlibabaProvider:
        return cls(settings.ingress.alibaba_timestamp_window, settings.ingress.alibaba_callback_host)

    def parse(self, request: RawRequest) -> Incoming:
        if request.method == "GET":
            return self._stream_event(request.query)
        if request.method == "POST":
            return self._posted(request)
        raise Refused(Reason.MethodNotAllowed, "ApsaraVideo Live sends GET (publish) or POST (other callbacks)")

    def _stream_event(self, query: Mapping[str, str]) -> Incoming:
        action = _text(query, "action")
        kind = STREAM_ACTIONS.get(action or "")
        if kind is None:
            raise Refused(Reason.InvalidEvent, f"action: {action!r} is not publish or publish_done")
        domain = _text(query, "app")
        stream = _text(query, "id")
        app_name = _text(query, "appname", required=False) or ""
        event_time = _seconds(query, "time", required=True)
        assert domain is not None and stream is not None
        return Incoming(
            domain=domain.strip().lower(),
            app_name=app_name,
            kind=kind,
            event_type=action or "",
            body=dict(query),
            natural_key=(str(action), app_name, stream, str(event_time), query.get("node", "")),
            stream=Stream(app=app_name, name=stream),
            auth=None,  # signed with the ingest domain itself
        )

    def _posted(self, request: RawRequest) -> Incoming:
        if request.content_type not in _JSON_TYPES and not request.content_type.endswith("+json"):
            raise Refused(Reason.UnsupportedMediaType, f"expected application/json, got {request.content_type!r}")
        body = json_object(request.body)
        if moderation.is_moderation(body):
            return self._moderation(request, body)
        domain = _text(body, "domain")
        assert domain is not None
        app_name = _text(body, "app", required=False) or ""
        stream_name = _text(body, "stream", required=False)
        stream = Stream(app=app_name, name=stream_name) if stream_name else None
        kind: Kind
        if "uri" in body:
            kind, event_type = "recording", "record_file"
            uri = _text(body, "uri")
            for name in ("start_time", "stop_time"):
                _seconds(body, name)
            duration = body.get("duration")
            if duration is not None and (isinstance(duration, bool) or not isinstance(duration, int | float)):
                raise Refused(Reason.InvalidEvent, "duration: must be a number of seconds")
            natural_key: tuple[str, ...] = (app_name, stream_name or "", str(uri))
        elif isinstance(body.get("event"), str) and body["event"] in RECORD_STATUS_EVENTS:  # any JSON may come
            kind, event_type = "recording_status", str(body["event"])
            natural_key = ("body", _digest(body))
        else:  # a POSTed callback this package does not read (see the module's docstring): kept as it came
            kind, event_type = "other", str(body.get("event") or "unknown")[:64]
            natural_key = ("body", _digest(body))
        return Incoming(
            domain=domain.strip().lower(),
            app_name=app_name,
            kind=kind,
            event_type=event_type,
            body=body,
            natural_key=natural_key,
            stream=stream,
            auth=self._callback_hosts(request.host),
        )

    def _moderation(self, request: RawRequest, body: dict[str, Any]) -> Incoming:
        """A review result: the judged frame and the cloud's verdict on it, signed like every POSTed callback."""
        domain = _text(body, "DomainName")
        stream_name = _text(body, "StreamName")
        app_name = _text(body, "AppName", required=False) or ""
        assert domain is not None and stream_name is not None
        shot = moderation.screenshot(body, _text)
        return Incoming(
            domain=domain.strip().lower(),
            app_name=app_name,
            kind="image_moderation",
            event_type=moderation.EVENT_TYPE,
            body=body,
            # One result per saved frame: its retries carry the same object.
            natural_key=("moderation", app_name, stream_name, str(body["OssObject"])),
            stream=Stream(app=app_name, name=stream_name),
            screenshot=shot,
            verdict=moderation.verdict(body),
            auth=self._callback_hosts(request.host),
        )

    def _callback_hosts(self, host: str) -> tuple[str, ...]:
        """The domain a POSTed callback is signed with: the callback URL's host, as configured or as addressed
        (with and without its port: the documents do not say which the cloud uses)."""
        if self.callback_host:
            return (self.callback_host,)
        host = host.lower()
        try:
            bare = URL(f"http://{host}").host or host
        except ValueError:
            bare = host
        return tuple(dict.fromkeys((bare, host)))

    def verify(self, incoming: Incoming, request: RawRequest, template: Template, now: float) -> None:
        timestamp = request.headers.get(TIMESTAMP_HEADER)
        given = request.headers.get(SIGNATURE_HEADER)
        if timestamp is None and given is None and template.allow_unsigned:
            return
        if not timestamp or not given:
            raise Refused(Reason.MissingSignature, f"{TIMESTAMP_HEADER} and {SIGNATURE_HEADER} are required")
        timestamp = timestamp.strip()
        if not timestamp.isdecimal() or len(timestamp) > 12:
            raise Refused(Reason.InvalidSignature, f"{TIMESTAMP_HEADER} must be Unix seconds")
        window = self.timestamp_window
        if int(timestamp) < now - window:
            raise Refused(Reason.SignatureExpired, f"{TIMESTAMP_HEADER} is more than {window}s old")
        if int(timestamp) > now + window:
            raise Refused(Reason.TimestampTooFarAhead, f"{TIMESTAMP_HEADER} is more than {window}s ahead")
        signing_domains = incoming.auth or (incoming.domain,)
        expected = given.strip().lower().encode()
        # Every key and every candidate domain, always: the time taken does not tell which matched.
        matched = False
        for key in template.valid_keys(now):
            for domain in signing_domains:
                matched |= hmac.compare_digest(sign(domain, timestamp, key).encode(), expected)
        if not matched:
            raise Refused(Reason.InvalidSignature, f"{SIGNATURE_HEADER} does not match the template's key")


def _digest(body: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()
