"""What one pipeline message becomes at the platform: zero or more webhooks, by the domain's current config."""

from __future__ import annotations

import hashlib
import time
from typing import Any

from framewatch.config.snapshot import Snapshot
from framewatch.providers import registry
from schemas.messages import CallbackReceived, FrameModerated, FrameStored, StoredImage, Verdict, Webhook
from workers.failures import Permanent

# Which template URL receives each event kind (the clouds' *NotifyUrl names). Kinds without one are not forwarded.
KIND_URLS = {
    "stream_begin": "stream_begin_notify_url",
    "stream_end": "stream_end_notify_url",
    "recording": "record_notify_url",
    "screenshot": "snapshot_notify_url",
    "image_moderation": "porn_censorship_notify_url",
    "push_exception": "push_exception_notify_url",
    "recording_status": "record_status_notify_url",
    "recording_exception": "record_exception_notify_url",
    "audio_moderation": "audio_audit_notify_url",
}


def _image(image: StoredImage) -> dict[str, Any]:
    return {"url": image.url, "width": image.width, "height": image.height, "bytes": image.bytes}


def _verdict(verdict: Verdict | None) -> dict[str, Any] | None:
    return verdict.model_dump() if verdict is not None else None


def violation_id(event_id: str) -> str:
    """The violation an event causes is a webhook of its own: its own `webhook-id`, stable across retries."""
    return hashlib.blake2b(f"violation\x1f{event_id}".encode(), digest_size=16).hexdigest()


def _template_url(snapshot: Snapshot, domain: str, field: str) -> str | None:
    binding = snapshot.bindings.get(domain)
    if binding is None:
        # Accepted while bound, unbound since: kept (dead-lettered), never delivered to a template no longer in force.
        raise Permanent("domain_not_bound", domain)
    return binding.template.notify_urls.get(field) or None


def for_callback(callback: CallbackReceived, snapshot: Snapshot) -> list[Webhook]:
    """Stream begin/end, recordings and other events: forwarded as received, plus the event id and provider."""
    field = KIND_URLS.get(callback.kind)
    url = _template_url(snapshot, callback.domain, field) if field else None
    if not url:
        return []
    body = {**callback.event, "framewatch": {"event_id": callback.id, "provider": callback.provider}}
    return [Webhook(id=callback.id, domain=callback.domain, kind=callback.kind, url=url, body=body)]


def received_at(message: FrameModerated | CallbackReceived) -> float | None:
    """When the ingress accepted the callback a message comes from (the end-to-end latency starts there)."""
    if isinstance(message, CallbackReceived):
        return message.received_at
    origin = message.callback or (message.frame.callback if message.frame else None)
    return origin.received_at if origin else None


def for_moderated(moderated: FrameModerated, snapshot: Snapshot) -> list[Webhook]:
    """A moderated frame (to the snapshot URL) or a provider verdict (to the moderation URL), and any violation."""
    webhooks = []
    verdict = moderated.verdict
    if moderated.callback is not None:
        callback = moderated.callback
        url = _template_url(snapshot, moderated.domain, "porn_censorship_notify_url")
        if url:
            body = {
                **callback.event,
                "framewatch": {
                    "event_id": callback.id,
                    "provider": callback.provider,
                    "verdict": _verdict(verdict),
                    **_images(moderated.frame),
                },
            }
            webhooks.append(Webhook(id=moderated.id, domain=moderated.domain, kind=callback.kind, url=url, body=body))
    elif moderated.frame is not None:
        frame = moderated.frame
        url = _template_url(snapshot, moderated.domain, "snapshot_notify_url")
        if url:
            body = {
                **frame.callback.event,
                "framewatch": {
                    "event_id": frame.id,
                    "provider": frame.provider,
                    **_images(frame),
                    "sha256": frame.sha256,
                    "verdict": _verdict(verdict),
                },
            }
            webhooks.append(Webhook(id=moderated.id, domain=moderated.domain, kind="screenshot", url=url, body=body))
    if verdict is not None and verdict.suggestion in ("Review", "Block"):
        detect_url = snapshot.detect_notify.get(moderated.domain)
        if detect_url:
            webhooks.append(
                Webhook(
                    id=violation_id(moderated.id),
                    domain=moderated.domain,
                    kind="violation",
                    url=detect_url,
                    body=violation(moderated, verdict),
                )
            )
    return webhooks


def _images(frame: FrameStored | None) -> dict[str, Any]:
    """The judged frame as framewatch stored it, when it could be downloaded."""
    if frame is None:
        return {}
    return {"image": _image(frame.original), "thumbnails": [_image(thumb) for thumb in frame.thumbnails]}


def violation(moderated: FrameModerated, verdict: Verdict) -> dict[str, Any]:
    """The violation report in the format of the provider that sent the frame, whoever found the violation."""
    if moderated.callback is not None:  # the provider's own report: passed on as it came
        callback = moderated.callback
        return {
            **callback.event,
            "framewatch": {
                "event_id": moderated.id,
                "provider": callback.provider,
                "source": verdict.source,
                **_images(moderated.frame),
            },
        }
    assert moderated.frame is not None
    frame = moderated.frame
    body = registry.get(frame.provider).violation(frame, verdict, int(time.time()))
    body["framewatch"] = {
        "event_id": frame.id,
        "provider": frame.provider,
        "source": verdict.source,
        "scores": verdict.scores,
        "image": _image(frame.original),
        "thumbnails": [_image(thumb) for thumb in frame.thumbnails],
    }
    return body
