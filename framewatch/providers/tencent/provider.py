"""Tencent Cloud CSS: one JSON event per POST, `sign = MD5(key + t)` with `t` the signature's expiry
(docs/protocols/tencent.md)."""

from __future__ import annotations

import hmac

from framewatch.config.snapshot import Template
from framewatch.providers.base import Incoming, Provider, RawRequest, json_object
from framewatch.providers.refusals import Reason, Refused
from framewatch.providers.tencent.events import (
    UNSIGNED_TYPES,
    EventType,
    ImageModerationEvent,
    InvalidEvent,
    ScreenshotEvent,
    TencentEvent,
    parse_event,
)
from framewatch.settings import Settings
from framewatch.signing import css
from schemas.messages import Kind, Screenshot, Stream, Verdict

PROVIDER = "tencent"
_JSON_TYPES = frozenset({"application/json", "text/json"})

KINDS: dict[int, Kind] = {
    EventType.STREAM_END: "stream_end",
    EventType.STREAM_BEGIN: "stream_begin",
    EventType.RECORDING: "recording",
    EventType.SCREENSHOT: "screenshot",
    EventType.AUDIO_MODERATION: "audio_moderation",
    EventType.IMAGE_MODERATION: "image_moderation",
    EventType.PUSH_ERROR: "push_exception",
    EventType.RECORDING_STATUS: "recording_status",
    EventType.RECORDING_EXCEPTION: "recording_exception",
}


def provider_verdict(event: ImageModerationEvent) -> Verdict:
    """A 317 callback's own verdict, in the one verdict schema."""
    suggestion = event.suggestion if event.suggestion in ("Pass", "Review", "Block") else "Review"
    scores = {}
    for result in event.labelResults or []:
        if isinstance(result, dict) and "Label" in result:
            try:
                scores[str(result["Label"])] = float(result.get("Score") or 0)
            except (TypeError, ValueError):
                continue  # a score that is not a number says nothing: leave it out
    return Verdict(
        suggestion=suggestion,
        label=event.label or "Normal",
        sub_label=event.subLabel or "",
        score=max(0, min(100, round(max(event.score, default=0)))),
        scores=scores,
        source=PROVIDER,
    )


class TencentProvider(Provider):
    name = PROVIDER
    paths = ("/callbacks/tencent", "/callbacks/tencent/{domain}")

    def __init__(self, sign_validity: int = 600, clock_skew: int = 60) -> None:
        self.sign_validity = sign_validity
        self.clock_skew = clock_skew

    @classmethod
    def from_settings(cls, settings: Settings) -> TencentProvider:
        return cls(settings.ingress.sign_validity, settings.ingress.clock_skew)

    def parse(self, request: RawRequest) -> Incoming:
        if request.method != "POST":
            raise Refused(Reason.MethodNotAllowed, "CSS posts its callbacks: use POST")
        content_type = request.content_type
        if content_type not in _JSON_TYPES and not content_type.endswith("+json"):
            raise Refused(Reason.UnsupportedMediaType, f"expected application/json, got {content_type!r}")
        body = json_object(request.body)
        try:
            event = parse_event(body)
        except InvalidEvent as exc:
            raise Refused(Reason.InvalidEvent, str(exc)) from None
        domain = self._domain(event, request.path_domain)
        return Incoming(
            domain=domain,
            app_name=event.appname,
            kind=KINDS.get(event.event_type, "other"),
            event_type=event.event_type,
            body=body,
            natural_key=event.natural_key(),
            stream=_stream(event),
            screenshot=_screenshot(event),
            verdict=provider_verdict(event) if isinstance(event, ImageModerationEvent) else None,
            auth=event,
        )

    @staticmethod
    def _domain(event: TencentEvent, from_path: str | None) -> str:
        in_body = event.domain.strip().lower() if event.domain else None
        in_path = from_path.strip().lower() if from_path else None
        if in_body and in_path and in_body != in_path:
            raise Refused(Reason.DomainMismatch, f"the body's domain {in_body!r} is not the path's {in_path!r}")
        domain = in_body or in_path
        if not domain:
            raise Refused(Reason.MissingDomain, "no app or domain in the body: post to /callbacks/tencent/{domain}")
        return domain

    def verify(self, incoming: Incoming, request: RawRequest, template: Template, now: float) -> None:
        event: TencentEvent = incoming.auth
        if event.sign is None or event.t is None:
            unsigned = event.sign is None and event.t is None
            if unsigned and event.event_type in UNSIGNED_TYPES and template.allow_unsigned:
                return
            raise Refused(Reason.MissingSignature, "t and sign are required")
        if event.t < now:
            raise Refused(Reason.SignatureExpired, "t has passed: the signature has expired")
        if event.t > now + self.sign_validity + self.clock_skew:
            raise Refused(Reason.TimestampTooFarAhead, f"t is more than {self.sign_validity + self.clock_skew}s ahead")
        given = event.sign.strip().lower().encode()
        # Check every valid key, always, so the time taken does not tell which key matched.
        matched = False
        for key in template.valid_keys(now):
            matched |= hmac.compare_digest(css.sign(key, event.t).encode(), given)
        if not matched:
            raise Refused(Reason.InvalidSignature, "sign does not match the template's key")


def _stream(event: TencentEvent) -> Stream | None:
    name = getattr(event, "stream_id", None) or getattr(event, "streamId", None)
    return Stream(app=event.appname or "", name=name) if name else None


def _screenshot(event: TencentEvent) -> Screenshot | None:
    """The frame a screenshot event stored, or the frame a 317 verdict is about."""
    if isinstance(event, ImageModerationEvent):
        return Screenshot(image_url=event.img, capture_time=event.screenshotTime or event.sendTime or 0)
    if not isinstance(event, ScreenshotEvent):
        return None
    return Screenshot(
        image_url=event.pic_full_url,
        capture_time=event.create_time,
        file_size=event.file_size,
        width=event.width,
        height=event.height,
    )
