"""Checks shared by `framewatch config apply` and the admin API, so both refuse the same things."""

import json
import re
from urllib.parse import urlsplit

from framewatch.config.errors import ConfigError
from framewatch.runtime.netguard import is_public, resolve

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
    """http(s) with a host, and, unless private addresses are allowed, a host that resolves only to public ones."""
    try:
        parts = urlsplit(value)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise ConfigError("InvalidNotifyUrl.Malformed", "Specified NotifyUrl is invalid.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in value):
        raise ConfigError("InvalidNotifyUrl.Malformed", "Specified NotifyUrl is invalid.")
    if allow_private:
        return value
    try:
        addresses = await resolve(parts.hostname, port)
    except OSError:
        raise ConfigError("InvalidNotifyUrl.Malformed", "Specified NotifyUrl host does not resolve.") from None
    if not addresses or not all(is_public(address) for address in addresses):
        raise ConfigError("InvalidNotifyUrl.Unsafe", "Specified NotifyUrl is not safe.")
    return value
