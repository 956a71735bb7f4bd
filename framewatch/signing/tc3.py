"""Tencent Cloud API 3.0's TC3-HMAC-SHA256 (docs/protocols/tencent.md §7): checked by the cloud-compatible API over
the request as received, made by the IMS moderation backend for its own requests."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

ALGORITHM = "TC3-HMAC-SHA256"


def scope(timestamp: int | str, service: str) -> str:
    return f"{datetime.fromtimestamp(int(timestamp), UTC).strftime('%Y-%m-%d')}/{service}/tc3_request"


def signature(
    *,
    method: str,
    query: str,
    headers: list[tuple[str, str]],
    payload: bytes,
    timestamp: int | str,
    service: str,
    secret: str,
) -> str:
    """Hex signature of a request to `/`: `headers` are the signed ones, lower-case names, in order."""
    canonical_headers = "".join(f"{name}:{value}\n" for name, value in headers)
    signed_headers = ";".join(name for name, _ in headers)
    canonical = "\n".join((method, "/", query, canonical_headers, signed_headers, hashlib.sha256(payload).hexdigest()))
    request_scope = scope(timestamp, service)
    to_sign = f"{ALGORITHM}\n{timestamp}\n{request_scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    key = f"TC3{secret}".encode()
    for part in request_scope.split("/"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def authorization(secret_id: str, signed: str, headers: list[tuple[str, str]], timestamp: int, service: str) -> str:
    """The Authorization header for a signature made by `signature`."""
    names = ";".join(name for name, _ in headers)
    return f"{ALGORITHM} Credential={secret_id}/{scope(timestamp, service)}, SignedHeaders={names}, Signature={signed}"
