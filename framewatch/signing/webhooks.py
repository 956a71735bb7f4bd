"""Standard Webhooks (docs/protocols/webhooks.md): `webhook-signature` is `v1,<base64 HMAC-SHA256 of
"id.timestamp.body">` under each valid secret, space-separated; the specification's libraries verify it."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence

PREFIX = "whsec_"


def key(secret: str) -> bytes:
    """The HMAC key: the bytes the base64 after the prefix stands for."""
    return base64.b64decode(secret.removeprefix(PREFIX))


def _one(secret: str, signed: bytes) -> str:
    return "v1," + base64.b64encode(hmac.new(key(secret), signed, hashlib.sha256).digest()).decode()


def signature(secrets: Sequence[str], webhook_id: str, timestamp: int, body: bytes) -> str:
    """One signature per secret, the newest first (several while a secret is being changed)."""
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    return " ".join(_one(secret, signed) for secret in secrets)


def headers(secrets: Sequence[str], webhook_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secrets, webhook_id, timestamp, body),
    }


def verify(secret: str, headers: Mapping[str, str], body: bytes) -> bool:
    """One of the header's signatures is the secret's (the receiver's side; the official libraries also bound the
    timestamp's age, which the simulator's platform leaves to its own clock checks)."""
    try:
        signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
        expected = _one(secret, signed)
    except (KeyError, ValueError):
        return False
    return any(hmac.compare_digest(given, expected) for given in headers.get("webhook-signature", "").split())
