"""Standard Webhooks secrets: `whsec_` + base64 of random bytes, one per callback template, signing every delivery
so that the specification's official libraries verify it with the secret as it is."""

from __future__ import annotations

import base64
import binascii
import secrets

from framewatch.config.errors import ConfigError
from framewatch.signing.webhooks import PREFIX

SECRET_BYTES = 32
# The specification asks for 24 to 64 random bytes.
MIN_BYTES, MAX_BYTES = 24, 64


def new() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def validate(value: str) -> str:
    if not value.startswith(PREFIX):
        raise ConfigError("InvalidParameter", f"WebhookSecret must start with {PREFIX}.")
    try:
        raw = base64.b64decode(value[len(PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError("InvalidParameter", f"WebhookSecret must be {PREFIX} and base64.") from None
    if not MIN_BYTES <= len(raw) <= MAX_BYTES:
        raise ConfigError("InvalidParameter", f"WebhookSecret must hold {MIN_BYTES} to {MAX_BYTES} bytes.")
    return value
