"""An action's request parameters: the clouds' names, from the query string or a form body."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from framewatch.config.errors import ConfigError

# Parameters every call may carry (the providers' SDKs send them); framewatch reads Action and Format only.
COMMON = frozenset(
    {
        "Action",
        "Format",
        "Version",
        "Region",
        "RegionId",
        "Timestamp",
        "Nonce",
        "SignatureNonce",
        "SignatureMethod",
        "SignatureVersion",
        "AccessKeyId",
        "Language",
    }
)
SECRET = frozenset({"CallbackKey", "WebhookSecret"})
# No parameter is longer (URLs included): a longer value is refused, not stored.
MAX_VALUE = 2048
# Integer columns (ids) are 32-bit on PostgreSQL.
MAX_ID = 2**31 - 1
# Control characters other than tab and line breaks are no text a template holds, and XML cannot carry them.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_TRUE, _FALSE = frozenset({"true", "1", "yes"}), frozenset({"false", "0", "no"})


_LIST_ITEM = re.compile(r"^(?P<name>[A-Za-z]+)\.(?P<index>\d{1,3})$")


def _fold_lists(values: Mapping[str, str]) -> dict[str, str]:
    """A list sent as `Name.0=a&Name.1=b` (the clouds' query form) becomes `Name=a,b`."""
    folded: dict[str, str] = {}
    items: dict[str, list[tuple[int, str]]] = {}
    for key, value in values.items():
        match = _LIST_ITEM.match(key)
        if match:
            items.setdefault(match["name"], []).append((int(match["index"]), value))
        else:
            folded[key] = value
    for name, listed in items.items():
        folded[name] = ",".join(value for _, value in sorted(listed))
    return folded


class Params:
    def __init__(self, values: Mapping[str, str], allowed: Iterable[str]) -> None:
        values = _fold_lists(values)
        unknown = sorted(set(values) - COMMON - set(allowed))
        if unknown:
            # A misspelt optional parameter must not be ignored silently: the caller thinks it changed something.
            raise ConfigError("UnknownParameter", f"The parameter {unknown[0]} is not recognized by this action.")
        self.values = {k: v for k, v in values.items() if k not in COMMON}
        for name, value in self.values.items():
            if len(value) > MAX_VALUE:
                raise ConfigError("InvalidParameter", f"{name} is longer than {MAX_VALUE} characters.")
            if _CONTROL.search(value):
                raise ConfigError("InvalidParameter", f"{name} holds a control character.")

    def __contains__(self, name: str) -> bool:
        return name in self.values

    def required(self, name: str) -> str:
        value = self.values.get(name, "").strip()
        if not value:
            raise ConfigError("MissingParameter", f"The input parameter {name} that is mandatory is not supplied.")
        return value

    def optional(self, name: str) -> str | None:
        value = self.values.get(name)
        return None if value is None else value.strip()

    def integer(self, name: str) -> int:
        value = self.required(name)
        # ASCII digits only: str.isdigit() also takes "²" and "①", which int() refuses, and a fullwidth "1",
        # which it reads as 1.
        if not (value.isascii() and value.isdecimal()) or not 1 <= int(value) <= MAX_ID:
            raise ConfigError("InvalidParameter", f"{name} must be an integer from 1 to {MAX_ID}.")
        return int(value)

    def optional_integer(self, name: str, default: int, highest: int) -> int:
        if not self.values.get(name, "").strip():
            return default
        value = self.integer(name)
        if value > highest:
            raise ConfigError("InvalidParameter", f"{name} must be at most {highest}.")
        return value

    def boolean(self, name: str) -> bool | None:
        value = self.optional(name)
        if value is None:
            return None
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        raise ConfigError("InvalidParameter", f"{name} must be true or false.")

    def loggable(self) -> dict[str, Any]:
        """For the audit log: every parameter, secrets replaced by a marker saying they were set."""
        return {k: ("(set)" if k in SECRET else v) for k, v in self.values.items()}
