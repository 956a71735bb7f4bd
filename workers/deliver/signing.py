"""Both signatures every delivery carries: the provider's body fields, and Standard Webhooks headers."""

from __future__ import annotations

from typing import Any

import orjson

from framewatch.signing import css, webhooks


def signed_body(body: dict[str, Any], key: str | None, now: int) -> bytes:
    """The body with `t` and `sign` = MD5(key + t), as a CSS receiver already checks them; as it is when the
    template has no callback key (the webhook-signature header still signs it)."""
    return orjson.dumps(body if key is None else css.signed(body, key, now))


headers = webhooks.headers
