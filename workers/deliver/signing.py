"""Both signatures every delivery carries: the provider's body fields, and Standard Webhooks headers."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import orjson

from framewatch.config import webhook_secrets

# As CSS signs its callbacks: `t` is the signature's expiry, 10 minutes ahead.
SIGN_VALIDITY = 600


def signed_body(body: dict[str, Any], key: str | None, now: int) -> bytes:
    """The body with `t` and `sign` = MD5(key + t), as a CSS receiver already checks them; as it is when the
    template has no callback key (the webhook-signature header still signs it)."""
    if key is None:
        return orjson.dumps(body)
    t = now + SIGN_VALIDITY
    return orjson.dumps({**body, "t": t, "sign": hashlib.md5(f"{key}{t}".encode()).hexdigest()})


def webhook_signature(secrets: list[str], webhook_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256 of "id.timestamp.body">` under each of the template's valid webhook secrets, the
    newest first (Standard Webhooks: several while a secret is being changed)."""
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    return " ".join(
        "v1," + base64.b64encode(hmac.new(webhook_secrets.key(secret), signed, hashlib.sha256).digest()).decode()
        for secret in secrets
    )


def headers(secrets: list[str], webhook_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": webhook_signature(secrets, webhook_id, timestamp, body),
    }
