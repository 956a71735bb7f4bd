"""The platform's receiving URLs: a sink that checks both signatures of every delivery and tells events apart."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from framewatch.signing import css, webhooks


def event_key(body: dict[str, Any]) -> str | None:
    """The provider's natural key of an event (docs/protocols/tencent.md §1), as the simulator made it unique."""
    if "action" in body:  # ApsaraVideo Live's publish callbacks
        return f"{body['action']}:{body.get('usrargs')}"
    if "uri" in body:  # and its recordings
        return f"record:{body['uri']}"
    if "OssObject" in body:  # and its automated review's results, one per saved frame
        return f"moderation:{body['OssObject']}"
    kind = str(body.get("event_type"))
    if kind == "200":
        return f"200:{body.get('pic_url')}"
    if kind == "317":
        return f"317:{body.get('img')}:{body.get('sendTime')}"
    if "sequence" in body:
        return f"{kind}:{body['sequence']}"
    return None


def signatures_valid(
    raw: bytes, headers: Any, key: str, webhook_secret: str | None, now: float, body: dict[str, Any] | None = None
) -> bool:
    """The body's t/sign (MD5(key + t), t in the future) and, given the template's webhook secret, one of the
    Standard Webhooks signatures in `webhook-signature` (several while the secret is being changed)."""
    try:
        body = orjson.loads(raw) if body is None else body
        t = int(body["t"])
        if not css.valid(key, t, str(body["sign"])) or t < now:
            return False
    except (KeyError, ValueError, TypeError):
        return False
    return webhook_secret is None or webhooks.verify(webhook_secret, headers, raw)


@dataclass
class Platform:
    key: str
    webhook_secret: str | None = None  # unset: only the body's t/sign is checked
    outage: tuple[float, float] | None = None  # (start, end) seconds after `started`: answer 503 meanwhile
    started: float = field(default_factory=time.monotonic)
    first_delivery: dict[str, float] = field(default_factory=dict)  # event key -> monotonic arrival
    webhook_ids: dict[tuple[str, str], str] = field(default_factory=dict)  # (path, event key) -> webhook-id
    duplicates: int = 0
    mismatched_ids: int = 0  # a repeat that did not carry the first copy's webhook-id
    bad_signatures: int = 0
    unmatched: int = 0  # deliveries of no event the simulator sent (violations framewatch found itself)
    refused_during_outage: int = 0

    def app(self) -> web.Application:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_post("/{tail:.*}", self.receive)
        return app

    async def receive(self, request: web.Request) -> web.Response:
        raw = await request.read()
        now = time.monotonic()
        if self.outage and self.outage[0] <= now - self.started < self.outage[1]:
            self.refused_during_outage += 1
            return web.Response(status=503, text="platform down")
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = {}
        if not signatures_valid(raw, request.headers, self.key, self.webhook_secret, time.time(), body):
            self.bad_signatures += 1
            return web.Response(status=401, text="bad signature")
        key = event_key(body)
        if key is None:
            self.unmatched += 1
            return web.json_response({"code": 0})
        self.first_delivery.setdefault(key, now)
        seen = (request.path, key)
        webhook_id = request.headers["webhook-id"]
        if seen in self.webhook_ids:
            self.duplicates += 1
            self.mismatched_ids += self.webhook_ids[seen] != webhook_id
        else:
            self.webhook_ids[seen] = webhook_id
        return web.json_response({"code": 0})
