"""A process builds each shared part once: one SQL engine, one live config, one blob store, one publisher, one
dedupe window, one topology, whatever number of listeners and stages use them; and closes them once."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from framewatch import wiring
from framewatch.blobs import factory as blob_factory
from framewatch.broker.publisher import Publisher
from framewatch.config import store as config_store
from framewatch.config.live import LiveConfig
from framewatch.dedupe import factory as dedupe_factory
from framewatch.settings import Settings
from tests.conftest import settings_from
from workers import stages


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    counts: Counter[str] = Counter()

    def counting(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            counts[name] += 1
            return real(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(config_store, "create_engine", counting("sql_engine", config_store.create_engine))
    monkeypatch.setattr(blob_factory, "create", counting("blob_store", blob_factory.create))
    monkeypatch.setattr(dedupe_factory, "create", counting("dedupe", dedupe_factory.create))
    monkeypatch.setattr(stages, "topology", counting("topology", stages.topology))
    for name, cls in (("publisher", Publisher), ("live_config", LiveConfig)):
        monkeypatch.setattr(cls, "__init__", counting(name, cls.__init__))
    return counts


@pytest.fixture
def run_settings(worker_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    return settings_from(monkeypatch, worker_env, moderation_backend="none", redis_url="redis://127.0.0.1:6379/0")


ONCE_EACH = {"sql_engine": 1, "blob_store": 1, "dedupe": 1, "topology": 1, "publisher": 1, "live_config": 1}


async def test_framewatch_run_builds_each_shared_part_once_and_closes_each_once(
    run_settings: Settings, built: Counter[str]
) -> None:
    listeners = wiring.run_listeners(run_settings)
    assert dict(built) == ONCE_EACH
    resources = listeners[0].app[wiring.RESOURCES]
    assert sorted(resources.built()) == sorted([*ONCE_EACH.keys() - {"topology"}, "redis", "stream_store"])
    assert resources.built()[0] == "sql_engine"  # built first, so closed last: the others use its pool
    await resources.close()
    assert resources.built() == []  # closed, in reverse order, and not again


async def test_a_worker_process_builds_only_what_its_stages_use(run_settings: Settings, built: Counter[str]) -> None:
    listeners = wiring.worker_listeners(run_settings, ["fetch", "deliver", "streams"])
    resources = listeners[0].app[wiring.RESOURCES]
    assert dict(built) == {"sql_engine": 1, "blob_store": 1, "topology": 1, "publisher": 1, "live_config": 1}
    await resources.close()
