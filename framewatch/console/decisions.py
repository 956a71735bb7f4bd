"""A reviewer's decision, delivered as a signed webhook to the domain's detect notify URL (through the deliver
stage: the same signatures and retries as every delivery), so the platform can act on it."""

from __future__ import annotations

import uuid
from typing import Any

from framewatch.broker.publisher import Publishing
from framewatch.config.snapshot import Snapshot
from schemas.messages import SCHEMA_VERSION, Webhook, routing_key

KIND = "review_decision"


def decision_webhook(frame: Any, decision: str, reviewer: str, at: int, snapshot: Snapshot) -> Webhook | None:
    """The webhook of one decided frame, or None when its domain has no detect notify URL."""
    url = snapshot.detect_notify.get(frame.domain)
    if url is None:
        return None
    body: dict[str, Any] = {
        "event_type": KIND,
        "streamId": frame.stream,
        "app": frame.domain,
        "appname": frame.app,
        "decision": decision,  # "violation" or "not_violation"
        "reviewer": reviewer,
        "decidedAt": at,
        "frame": {
            "eventId": frame.id,
            "img": frame.source_url,
            "screenshotTime": frame.capture_time,
            "suggestion": frame.suggestion,
            "label": frame.label,
            "subLabel": frame.sub_label,
            "score": frame.score,
            "source": frame.source,
        },
    }
    # Its own webhook-id: a decision is not the frame's delivery nor its violation; every decision is a new one.
    return Webhook(id=f"decision-{uuid.uuid4().hex}", domain=frame.domain, kind=KIND, url=url, body=body)


async def publish(publisher: Publishing, webhook: Webhook) -> None:
    await publisher.publish(
        webhook.model_dump_json().encode(),
        routing_key(Webhook.TYPE),
        message_id=webhook.id,
        message_type=Webhook.TYPE,
        headers={"domain": webhook.domain, "kind": KIND, "schema_version": SCHEMA_VERSION},
    )
