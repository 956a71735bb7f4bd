"""The shared parts of one process: one SQL engine, one live config, one blob store, one publisher, one dedupe
window, one topology. Each is built on first use, whoever asks first (a listener, a stage), and started by its
users (a second start is a no-op); the users never close them: this does, once, in the reverse order of
building, after every user stopped."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import cached_property
from typing import TypeVar

import structlog
from redis.asyncio import Redis

from framewatch.blobs import factory as blob_factory
from framewatch.blobs.base import BlobStore
from framewatch.broker.plain import PlainPublisher
from framewatch.broker.publisher import Publisher, Publishing
from framewatch.broker.topology import Topology
from framewatch.config.changes import ChangeFeed
from framewatch.config.live import LiveConfig
from framewatch.config.store import ConfigStore
from framewatch.dedupe import factory as dedupe_factory
from framewatch.dedupe.base import DedupeStore
from framewatch.settings import Settings
from framewatch.streams.store import StreamStore

log = structlog.get_logger("framewatch.resources")

T = TypeVar("T")


class Resources:
    def __init__(self, settings: Settings, topology: Topology, *, change_feed: bool = True) -> None:
        self.settings = settings
        self.topology = topology
        # Off: the live config reloads on its poll only (a process whose config no other process changes: the
        # stages' in-memory tests).
        self.change_feed = change_feed
        self._closers: list[tuple[str, Callable[[], Awaitable[object]]]] = []

    def _keep(self, name: str, thing: T, close: Callable[[], Awaitable[object]]) -> T:
        self._closers.append((name, close))
        return thing

    @cached_property
    def config_store(self) -> ConfigStore:
        """The process's SQL engine: the config, the streams and the console's sessions share its pool."""
        store = ConfigStore(self.settings.database_url.get_secret_value())
        return self._keep("sql_engine", store, store.close)

    @cached_property
    def live_config(self) -> LiveConfig:
        settings = self.settings
        feed = ChangeFeed(settings.broker.amqp_url.get_secret_value(), self.topology) if self.change_feed else None
        config = LiveConfig(self.config_store, settings.config_reload_interval, feed)
        return self._keep("live_config", config, config.close)

    @cached_property
    def blobs(self) -> BlobStore:
        blobs = blob_factory.create(self.settings)
        return self._keep("blob_store", blobs, blobs.close)

    @cached_property
    def publisher(self) -> Publishing:
        broker = self.settings.broker
        kind = PlainPublisher if broker.publisher == "aio-pika" else Publisher
        publisher = kind(broker.amqp_url.get_secret_value(), self.topology, broker.publish_timeout)
        return self._keep("publisher", publisher, publisher.close)

    @cached_property
    def dedupe(self) -> DedupeStore:
        dedupe = dedupe_factory.create(self.settings)
        return self._keep("dedupe", dedupe, dedupe.close)

    @cached_property
    def redis(self) -> Redis | None:
        """The admin side's Redis client (sign-in throttles, cloud-API signatures and nonces already used); the
        dedupe window keeps a client of its own, tuned for the callbacks' hot path. None without REDIS_URL."""
        url = self.settings.redis_url
        if url is None:
            return None
        redis = Redis.from_url(url.get_secret_value(), socket_timeout=1.0, socket_connect_timeout=1.0)
        return self._keep("redis", redis, redis.aclose)

    @cached_property
    def streams(self) -> StreamStore:
        """The stream tables, over the process's engine; on SQLite its writes keep a connection and a thread of their
        own."""
        settings = self.settings
        store = StreamStore(
            self.config_store.engine, silence=settings.streams.silence, max_live=settings.streams.max_live_per_domain
        )
        return self._keep("stream_store", store, store.close)

    def built(self) -> list[str]:
        """What this process built, in order (each once)."""
        return [name for name, _ in self._closers]

    async def close(self) -> None:
        for name, close in reversed(self._closers):
            try:
                await close()
            except Exception as exc:  # the rest still closes
                log.warning("resource_close_failed", resource=name, error=f"{type(exc).__name__}: {exc}")
        self._closers.clear()
