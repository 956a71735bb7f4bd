"""The streaming clouds framewatch serves: one line per provider package."""

from __future__ import annotations

from functools import cache

from framewatch.providers.alibaba.provider import AlibabaProvider
from framewatch.providers.base import Provider
from framewatch.providers.tencent.provider import TencentProvider
from framewatch.runtime.settings import Settings

PROVIDERS: dict[str, type[Provider]] = {
    TencentProvider.name: TencentProvider,
    AlibabaProvider.name: AlibabaProvider,
}


def create_all(settings: Settings) -> list[Provider]:
    """Every provider with the operator's options: what the ingress serves."""
    return [provider.from_settings(settings) for provider in PROVIDERS.values()]


@cache
def get(name: str) -> Provider:
    """A provider with its default options: what the workers need of it (its formats), never its verification."""
    provider = PROVIDERS.get(name)
    if provider is None:
        raise KeyError(f"no provider named {name!r}")
    return provider()
