"""The callback edge: one route per streaming cloud, over the process's config, dedupe window and publisher."""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web

from framewatch.broker.publisher import Publishing
from framewatch.config.live import LiveConfig
from framewatch.dedupe.base import DedupeStore
from framewatch.providers.base import Provider
from ingest.callbacks import CallbackHandler


def add_callback_routes(
    app: web.Application,
    providers: Iterable[Provider],
    config: LiveConfig,
    dedupe: DedupeStore,
    publisher: Publishing,
    *,
    body_max_bytes: int,
    body_read_timeout: float,
    clock_skew: float,
) -> None:
    for provider in providers:
        handler = CallbackHandler(
            provider,
            config,
            dedupe,
            publisher,
            body_max_bytes=body_max_bytes,
            body_read_timeout=body_read_timeout,
            clock_skew=clock_skew,
        )
        handler.add_routes(app)
