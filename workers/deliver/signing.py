"""Both signatures every delivery carries: the provider's body fields, and Standard Webhooks headers."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import orjson

# As CSS signs its callbacks: `t` is the signature's expiry, 10 minutes ahead.
SIGN_VALIDITY = 600


def signed_body(body: dict[str, Any], key: str, now: int) -> bytes:
    """The body with `t` and `sign` = MD5(key + t), as a CSS receiver already checks them."""
    t = now + SIGN_VALIDITY
    return orjson.dumps({**body, "t": t, "sign": hashlib.md5(f"{key}{t}".encode()).hexdigest()})


def webhook_signature(key: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256 of "id.timestamp.body">` under the template key (Standard Webhooks)."""
    mac = hmac.new(key.encode(), f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def headers(key: str, webhook_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": webhook_signature(key, webhook_id, timestamp, body),
    }
