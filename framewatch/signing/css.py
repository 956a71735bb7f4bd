"""Tencent CSS's callback signature (docs/protocols/tencent.md §2): `sign = MD5(key + t)`, `t` the expiry."""

from __future__ import annotations

import hashlib
import hmac

# As CSS signs: `t` is the signature's expiry, 10 minutes after it was made.
VALIDITY = 600


def sign(key: str, t: int | str) -> str:
    return hashlib.md5(f"{key}{t}".encode()).hexdigest()


def signed(body: dict[str, object], key: str, now: int) -> dict[str, object]:
    """The body with a fresh `t` and its `sign`, as CSS sends it (and framewatch delivers it)."""
    t = now + VALIDITY
    return {**body, "t": t, "sign": sign(key, t)}


def valid(key: str, t: int | str, given: str) -> bool:
    """Constant-time, case-insensitive: samples are lower-case hex, some receivers upper-case it."""
    return hmac.compare_digest(sign(key, t).encode(), given.strip().lower().encode())
