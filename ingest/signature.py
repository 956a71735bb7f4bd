"""`sign = MD5(key + t)` (SPEC.md §2), with `t` the signature's expiry in Unix seconds."""

from __future__ import annotations

import hashlib
import hmac

from framewatch.config.snapshot import Template
from ingest.refusals import Reason, Refused
from framewatch.providers.tencent.events import UNSIGNED_TYPES, TencentEvent


def sign(key: str, t: int) -> str:
    return hashlib.md5(f"{key}{t}".encode()).hexdigest()


def verify(event: TencentEvent, template: Template, now: float, validity: int, skew: int) -> None:
    """Raise Refused unless the event is signed with one of the template's valid keys and `t` is in its window."""
    if event.sign is None or event.t is None:
        if event.sign is None and event.t is None and event.event_type in UNSIGNED_TYPES and template.allow_unsigned:
            return
        raise Refused(Reason.MissingSignature, "t and sign are required")
    if event.t < now:
        raise Refused(Reason.SignatureExpired, "t has passed: the signature has expired")
    if event.t > now + validity + skew:
        raise Refused(Reason.TimestampTooFarAhead, f"t is more than {validity + skew}s ahead")
    given = event.sign.strip().lower().encode()
    # Check every valid key, always, so the time taken does not tell which key matched.
    matched = False
    for key in template.valid_keys(now):
        matched |= hmac.compare_digest(sign(key, event.t).encode(), given)
    if not matched:
        raise Refused(Reason.InvalidSignature, "sign does not match the template's key")
