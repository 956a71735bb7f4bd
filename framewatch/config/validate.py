"""Checks shared by `framewatch config apply` and the admin API, so both refuse the same things."""

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from framewatch.config import webhook_secrets
from framewatch.config.errors import ConfigError
from framewatch.config.tables import NOTIFY_URL_FIELDS
from framewatch.runtime.netguard import address_allowed, resolve

CALLBACK_KEY = re.compile(r"[A-Za-z0-9]{1,32}")
DOMAIN = re.compile(r"(?=.{1,253}$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9_-]{1,63}")
MAX_TEMPLATES = 50


def callback_key(value: str) -> str:
    if not CALLBACK_KEY.fullmatch(value):
        raise ConfigError("InvalidParameter", "CallbackKey must be 1 to 32 letters and digits.")
    return value


RECORD_EXCEPTION_LEVELS = frozenset({"error", "alarm"})


def record_exception_levels(values: list[str]) -> str:
    """Tencent's levels (`error`, `alarm`), stored as the JSON array Tencent returns."""
    levels = [value.strip() for value in values]
    if any(level not in RECORD_EXCEPTION_LEVELS for level in levels):
        raise ConfigError("InvalidParameter", "RecordExceptionLevels takes error and alarm.")
    return json.dumps(sorted(set(levels)))


async def template_columns(given: Mapping[str, Any], allow_private_urls: bool) -> dict[str, Any]:
    """Column values of a callback template from the fields given (by column name), each checked as its column
    needs, for the admin API and `config apply` alike. None clears an optional field."""
    columns: dict[str, Any] = {}
    for column, value in given.items():
        if column == "name":
            if not 1 <= len(value) <= 255:
                raise ConfigError("InvalidParameter", "TemplateName must be 1 to 255 characters.")
        elif column == "description":
            if len(value) > 1024:
                raise ConfigError("InvalidParameter", "Description must be at most 1024 characters.")
        elif column == "callback_key":
            value = callback_key(value) if value else None  # optional, as at Tencent
        elif column == "webhook_secret":
            value = webhook_secrets.validate(value) if value else None
        elif column == "record_exception_levels":
            value = record_exception_levels(value)
        elif column in NOTIFY_URL_FIELDS:
            value = await notify_url(value, allow_private_urls) if value else None
        elif column == "moderation_sample_every":
            value = bounded(value, 1, 1000, "ModerationSampleEvery")
        elif column == "moderation_reuse_seconds":
            value = bounded(value, 0, 3600, "ModerationReuseSeconds")
        elif column != "allow_unsigned":
            raise ValueError(f"no template column {column!r}")
        columns[column] = value
    return columns


def bounded(value: object, low: int, high: int, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError("InvalidParameter", f"{field} must be a whole number from {low} to {high}.")
    return value


def app_name(value: str) -> str:
    if len(value) > 255:
        raise ConfigError("InvalidParameter", "AppName must be at most 255 characters.")
    return value


def domain(value: str, field: str = "DomainName") -> str:
    value = value.strip().lower()
    if not DOMAIN.fullmatch(value):
        raise ConfigError("InvalidParameter", f"{field} is not a valid domain name.")
    return value


async def notify_url(value: str, allow_private: bool) -> str:
    """http(s) with a host that resolves only to public addresses, or, where private ones are allowed, to none
    that is link-local or a cloud's metadata service (those never: they hand out the machine's credentials)."""
    try:
        parts = urlsplit(value)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise ConfigError("InvalidNotifyUrl.Malformed", "Specified NotifyUrl is invalid.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in value):
        raise ConfigError("InvalidNotifyUrl.Malformed", "Specified NotifyUrl is invalid.")
    try:
        addresses = await resolve(parts.hostname, port)
    except OSError:
        if allow_private:  # a development receiver this machine cannot resolve yet: checked again at each delivery
            return value
        raise ConfigError("InvalidNotifyUrl.Malformed", "Specified NotifyUrl host does not resolve.") from None
    if not addresses or not all(address_allowed(address, allow_private) for address in addresses):
        raise ConfigError("InvalidNotifyUrl.Unsafe", "Specified NotifyUrl is not safe.")
    return value
