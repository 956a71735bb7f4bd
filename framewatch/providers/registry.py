"""The streaming clouds framewatch serves: one line per provider package."""

from __future__ import annotations

import importlib
from functools import cache
from typing import TYPE_CHECKING

from framewatch.providers.alibaba.provider import AlibabaProvider
from framewatch.providers.base import Provider
from framewatch.providers.tencent.provider import TencentProvider
from framewatch.settings import Settings

if TYPE_CHECKING:
    from framewatch.providers.base import CloudApiDialect
    from framewatch.simulate.provider import SimulatedCloud

# In the order their cloud-API dialects are asked whether a request is theirs: Alibaba's claims everything else.
PROVIDERS: dict[str, type[Provider]] = {
    TencentProvider.name: TencentProvider,
    AlibabaProvider.name: AlibabaProvider,
}


def cloud_apis() -> list[type[CloudApiDialect]]:
    """Each cloud's own API on the admin listener, from its package's cloud_api.py (imported by the ingress only)."""
    return [importlib.import_module(f"framewatch.providers.{name}.cloud_api").DIALECT for name in PROVIDERS]


def simulator(name: str) -> type[SimulatedCloud]:
    """The cloud's side of `framewatch simulate`, from its package's simulator.py (imported only when simulating)."""
    if name not in PROVIDERS:
        raise KeyError(f"no provider named {name!r}")
    module = importlib.import_module(f"framewatch.providers.{name}.simulator")
    simulated: type[SimulatedCloud] = module.SIMULATOR
    return simulated


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
