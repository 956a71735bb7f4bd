"""An immutable, in-memory view of the whole configuration: what the hot paths read, never the database."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class SigningKey:
    secret: str
    expires_at: float | None = None  # None: the template's current key


@dataclass(frozen=True, slots=True)
class Template:
    id: int
    account_id: int
    name: str
    keys: tuple[SigningKey, ...]  # current key first, then a previous one still in its overlap
    allow_unsigned: bool
    notify_urls: dict[str, str]  # e.g. {"snapshot_notify_url": "https://..."}
    webhook_secrets: tuple[SigningKey, ...] = ()  # current first, then a previous one still in its overlap
    moderation_sample_every: int = 1  # moderate one screenshot in this many of each stream
    moderation_reuse_seconds: int = 0  # reuse a near-identical frame's safe verdict for this long (0: off)

    @property
    def key(self) -> str | None:
        """The current callback key; None when the template has none (optional, as at Tencent)."""
        return self.keys[0].secret if self.keys and self.keys[0].expires_at is None else None

    def valid_keys(self, now: float) -> list[str]:
        return _valid(self.keys, now)

    def valid_webhook_secrets(self, now: float) -> list[str]:
        return _valid(self.webhook_secrets, now)


def _valid(keys: tuple[SigningKey, ...], now: float) -> list[str]:
    return [k.secret for k in keys if k.expires_at is None or k.expires_at > now]


@dataclass(frozen=True, slots=True)
class Binding:
    """A callback rule: this push domain (and app name, when set) is served by this template."""

    domain: str
    app_name: str
    template: Template


@dataclass(frozen=True, slots=True)
class Snapshot:
    revision: int
    bindings: dict[str, Binding] = field(default_factory=dict)
    detect_notify: dict[str, str] = field(default_factory=dict)  # domain -> notify URL
