"""What one pipeline message becomes at the platform: zero or more webhooks, by the domain's current config."""

from __future__ import annotations

import time
from typing import Any

from framewatch.config.snapshot import Snapshot
from schemas.messages import CallbackReceived, FrameModerated, StoredImage, Verdict, Webhook
from workers.failures import Permanent

# Which template URL receives each event kind (the seeds' *NotifyUrl names).
KIND_URLS = {
    "stream_begin": "stream_begin_notify_url",
    "stream_end": "stream_end_notify_url",
    "recording": "record_notify_url",
    "screenshot": "snapshot_notify_url",
    "image_moderation": "porn_censorship_notify_url",
}
# Generic events with a URL of their own; other types have none in a template and are not forwarded.
EVENT_TYPE_URLS = {321: "push_exception_notify_url"}
# The provider's category codes in a 317 `type` array, for verdicts of other sources.
LABEL_CODES = {"Porn": 1, "Sexy": 1, "Terror": 2, "Polity": 3, "Ad": 4, "Illegal": 5, "Abuse": 6}


def _image(image: StoredImage) -> dict[str, Any]:
    return {"url": image.url, "width": image.width, "height": image.height, "bytes": image.bytes}


def _verdict(verdict: Verdict | None) -> dict[str, Any] | None:
    return verdict.model_dump() if verdict is not None else None


def _template_url(snapshot: Snapshot, domain: str, field: str) -> str | None:
    binding = snapshot.bindings.get(domain)
    if binding is None:
        # Accepted while bound, unbound since: kept (dead-lettered), never delivered to a template no longer in force.
        raise Permanent("domain_not_bound", domain)
    return binding.template.notify_urls.get(field) or None


def for_callback(callback: CallbackReceived, snapshot: Snapshot) -> list[Webhook]:
    """Stream begin/end, recordings and other events: forwarded as received, plus the event id."""
    field = KIND_URLS.get(callback.kind) or EVENT_TYPE_URLS.get(callback.event_type)
    url = _template_url(snapshot, callback.domain, field) if field else None
    if not url:
        return []
    body = {**callback.event, "framewatch": {"event_id": callback.id}}
    return [Webhook(id=callback.id, domain=callback.domain, kind=callback.kind, url=url, body=body)]


def for_moderated(moderated: FrameModerated, snapshot: Snapshot) -> list[Webhook]:
    """A moderated frame (to the snapshot URL) or a provider verdict (to the moderation URL), and any violation."""
    webhooks = []
    verdict = moderated.verdict
    if moderated.frame is not None:
        frame = moderated.frame
        url = _template_url(snapshot, moderated.domain, "snapshot_notify_url")
        if url:
            body = {
                **frame.callback.event,
                "framewatch": {
                    "event_id": frame.id,
                    "image": _image(frame.original),
                    "thumbnails": [_image(thumb) for thumb in frame.thumbnails],
                    "sha256": frame.sha256,
                    "verdict": _verdict(verdict),
                },
            }
            webhooks.append(Webhook(id=moderated.id, domain=moderated.domain, kind="screenshot", url=url, body=body))
    elif moderated.callback is not None:
        callback = moderated.callback
        url = _template_url(snapshot, moderated.domain, "porn_censorship_notify_url")
        if url:
            body = {**callback.event, "framewatch": {"event_id": callback.id, "verdict": _verdict(verdict)}}
            webhooks.append(Webhook(id=moderated.id, domain=moderated.domain, kind=callback.kind, url=url, body=body))
    if verdict is not None and verdict.suggestion in ("Review", "Block"):
        detect_url = snapshot.detect_notify.get(moderated.domain)
        if detect_url:
            webhooks.append(
                Webhook(
                    id=moderated.id,
                    domain=moderated.domain,
                    kind="violation",
                    url=detect_url,
                    body=violation(moderated, verdict),
                )
            )
    return webhooks


def violation(moderated: FrameModerated, verdict: Verdict) -> dict[str, Any]:
    """An event_type 317 body in the provider's format, whoever found the violation."""
    if moderated.callback is not None:  # the provider's own report: passed on as it came
        return {**moderated.callback.event, "framewatch": {"event_id": moderated.id, "source": verdict.source}}
    assert moderated.frame is not None
    frame = moderated.frame
    event = frame.callback.event
    return {
        "event_type": 317,
        "streamId": frame.stream_id,
        "channelId": event.get("channel_id") or frame.stream_id,
        "img": frame.original.url,
        "type": [LABEL_CODES.get(verdict.label, 0)],
        "score": [verdict.score],
        "suggestion": verdict.suggestion,
        "label": verdict.label,
        "subLabel": verdict.sub_label,
        "screenshotTime": frame.capture_time,
        "sendTime": int(time.time()),
        "app": frame.domain,
        "appname": event.get("appname", ""),
        "stream_param": event.get("stream_param", ""),
        "framewatch": {
            "event_id": frame.id,
            "source": verdict.source,
            "scores": verdict.scores,
            "image": _image(frame.original),
            "thumbnails": [_image(thumb) for thumb in frame.thumbnails],
        },
    }
