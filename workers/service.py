"""Worker stages of one process: built from settings, one consumer connection, one confirming publisher."""

from __future__ import annotations

import asyncio
import contextlib
import time

import structlog
from aio_pika.abc import AbstractRobustConnection

from framewatch.broker.nodes import Nodes, redact
from framewatch.broker.publisher import Publisher, connect_until_up
from framewatch.broker.topology import STAGES, Topology
from framewatch.runtime.settings import Settings
from workers.runtime import Stage, StageRunner

log = structlog.get_logger("framewatch.worker")

# How long the consumer connection's node may stay away before the stages move to another node, and how often
# that is checked.
FAILOVER_AFTER = 5.0
FAILOVER_CHECK = 0.5
# Tencent IMS's documented default quota, calls per second.
IMS_RATE = 100.0


def build_stage(name: str, settings: Settings) -> Stage:
    """The stage called `name`, with its options, clients and backends built from settings (the edge)."""
    if name == "fetch":
        from framewatch.blobs import factory as blob_factory
        from framewatch.runtime.http import GuardedClient
        from workers.fetch.stage import FetchOptions, FetchStage

        options = FetchOptions(
            concurrency=settings.fetch_concurrency,
            max_bytes=settings.fetch_max_bytes,
            max_pixels=settings.fetch_max_pixels,
            inline_bytes=settings.fetch_inline_bytes,
            thumbnail_boxes=settings.thumbnail_boxes(),
            thumbnail_format=settings.thumbnail_format,
            thumbnail_quality=settings.thumbnail_quality,
            retry_delays=tuple(settings.fetch_retry_delays),
            # Only the operator's explicit choice: the default picks the local model when it is installed.
            unmoderated=settings.moderation_backend == "none",
            large_decodes=settings.fetch_large_decodes,
        )
        client = GuardedClient(
            allow_private=settings.fetch_allow_private,
            allowed_hosts=settings.fetch_allowed_hosts,
            connect_timeout=settings.fetch_connect_timeout,
            total_timeout=settings.fetch_timeout,
            limit=settings.fetch_concurrency,
            max_redirects=settings.fetch_max_redirects,
        )
        return FetchStage(options, blob_factory.create(settings), client)
    if name == "moderate":
        from framewatch.blobs import factory as blob_factory
        from workers.moderate.backends import factory as backend_factory
        from workers.moderate.stage import ModerateOptions, ModerateStage

        backend = backend_factory.create(settings, blob_factory.create(settings))
        rate = settings.moderation_rate_limit or (IMS_RATE if backend.name == "tencent-ims" else None)
        return ModerateStage(
            ModerateOptions(
                concurrency=settings.moderation_concurrency,
                timeout=settings.moderation_timeout,
                retry_delays=tuple(settings.moderation_retry_delays),
                rate_limit=rate,
                breaker_failures=settings.moderation_breaker_failures,
                breaker_cooldown=settings.moderation_breaker_cooldown,
                sample_every=settings.moderation_sample_every,
                off_domains=frozenset(settings.moderation_off_domains),
            ),
            backend,
        )
    if name == "deliver":
        from framewatch.config.live import live_config
        from workers.deliver.stage import DeliverOptions, DeliverStage

        options = DeliverOptions(
            concurrency=settings.deliver_concurrency,
            host_concurrency=settings.deliver_host_concurrency,
            timeout=settings.deliver_timeout,
            allow_private=settings.deliver_allow_private,
            screenshot_tries=settings.deliver_screenshot_tries,
            screenshot_interval=settings.deliver_screenshot_interval,
            tries=settings.deliver_tries,
            interval=settings.deliver_interval,
        )
        return DeliverStage(options, live_config(settings))
    if name == "streams":
        from framewatch.blobs import factory as blob_factory
        from framewatch.config.store import ConfigStore
        from workers.streams.stage import StreamsOptions, StreamsStage

        return StreamsStage(
            StreamsOptions(
                concurrency=settings.streams_concurrency,
                retry_delays=tuple(settings.streams_retry_delays),
                stream_retention=settings.stream_retention,
                review_retention=settings.review_retention,
                silence=settings.stream_silence,
                max_live_per_domain=settings.streams_max_live_per_domain,
            ),
            ConfigStore(settings.database_url.get_secret_value()),
            blob_factory.create(settings),
        )
    raise ValueError(f"unknown stage {name!r}; choose from {', '.join(STAGES)} or all")


class Workers:
    """The stages of one process, started once the broker answers and drained on shutdown."""

    def __init__(self, settings: Settings, stages: list[Stage]) -> None:
        self.settings = settings
        self.stages = stages
        self.topology = Topology(settings.namespace)
        self.nodes = Nodes(settings.amqp_url.get_secret_value())
        self.publisher = Publisher(settings.amqp_url.get_secret_value(), self.topology, settings.publish_timeout)
        self.connection: AbstractRobustConnection | None = None
        self.node = ""  # the URL of the node the stages consume from
        self.runners: list[StageRunner] = []
        self._task: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        return (
            self.publisher.ready
            and self.connection is not None
            and self.connection.connected.is_set()
            and len(self.runners) == len(self.stages)
        )

    def start(self) -> None:
        self.publisher.start()
        self._task = asyncio.create_task(self._start(), name="workers-start")

    async def _start(self) -> None:
        self.connection, self.node = await connect_until_up(self.nodes, "framewatch-worker")
        await self.publisher.wait_declared()  # outputs need a confirming channel before the first message is taken
        for stage in self.stages:
            runner = StageRunner(stage, self.connection, self.publisher, self.topology)
            await runner.start()
            self.runners.append(runner)
        if len(self.nodes) > 1:
            await self._fail_over()

    async def _fail_over(self) -> None:
        """A robust connection retries its own node only: when that node stays away longer than FAILOVER_AFTER,
        the stages move to another node (the cluster's quorum queues are served by every node)."""
        lost_since: float | None = None
        while True:
            await asyncio.sleep(FAILOVER_CHECK)
            assert self.connection is not None
            if self.connection.connected.is_set():
                lost_since = None
                continue
            lost_since = lost_since or time.monotonic()
            if time.monotonic() - lost_since < FAILOVER_AFTER:
                continue
            log.warning("broker_failover", away=redact(self.node), seconds=round(time.monotonic() - lost_since, 1))
            previous = self.connection
            self.connection, self.node = await connect_until_up(self.nodes, "framewatch-worker")
            for runner in self.runners:
                await runner.attach(self.connection)
            with contextlib.suppress(Exception):
                await previous.close()  # stops its reconnecting: the stages consume over the new one only
            log.info("broker_failed_over", url=redact(self.node))
            lost_since = None

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await asyncio.gather(*(runner.stop(self.settings.shutdown_timeout) for runner in self.runners))
        await self.publisher.close()
        if self.connection is not None:
            await self.connection.close()
