"""Worker stages of one process: built from settings over the process's resources, one consumer connection."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import structlog
from aio_pika.abc import AbstractRobustConnection

from framewatch.broker.nodes import Nodes, redact
from framewatch.broker.publisher import connect_until_up
from framewatch.resources import Resources
from workers import stages
from workers.consumer import StageConsumer
from workers.contract import Stage
from workers.handoff import Handoff, Unconsumed

log = structlog.get_logger("framewatch.worker")

# How long the consumer connection's node may stay away before the stages move to another node, and how often
# that is checked.
FAILOVER_AFTER = 5.0
FAILOVER_CHECK = 0.5
# How long the stages wait, at start, for the stages they hand messages to (workers/handoff.py).
HANDED_START_WAIT = 10.0


def build_stage(name: str, resources: Resources) -> Stage[Any]:
    """The stage called `name`, with its settings, clients and backends, over the process's shared resources."""
    settings = resources.settings
    if name == "fetch":
        from framewatch.runtime.http import GuardedClient
        from workers.fetch.stage import FetchStage

        fetch = settings.fetch
        client = GuardedClient(
            allow_private=fetch.allow_private,
            allowed_hosts=fetch.allowed_hosts,
            connect_timeout=fetch.connect_timeout,
            total_timeout=fetch.timeout,
            limit=fetch.concurrency,
            max_redirects=fetch.max_redirects,
        )
        # Only the operator's explicit choice: the default picks the local model when it is installed.
        return FetchStage(fetch, resources.blobs, client, unmoderated=settings.moderation.backend == "none")
    if name == "moderate":
        from workers.moderate.backends import factory as backend_factory
        from workers.moderate.stage import ModerateStage

        backend = backend_factory.create(settings, resources.blobs)
        return ModerateStage(settings.moderation, backend, resources.live_config)
    if name == "deliver":
        from workers.deliver.stage import DeliverStage

        return DeliverStage(settings.delivery, resources.live_config)
    if name == "streams":
        from workers.streams.stage import StreamsStage

        return StreamsStage(settings.streams, resources.streams, resources.config_store, resources.blobs)
    raise ValueError(f"unknown stage {name!r}; choose from {', '.join(stages.NAMES)} or all")


def handed_stages(configured: list[str], consumed: list[str]) -> list[str]:
    """The stages of HANDOFF_STAGES that what the consumed stages emit reaches."""
    unknown = sorted(set(configured) - set(stages.NAMES))
    if unknown:
        raise ValueError(f"HANDOFF_STAGES names no stage {', '.join(unknown)}; choose from deliver, streams")
    return [name for name in stages.downstream(consumed) if name in configured]


class Workers:
    """The stages of one process, started once the broker answers and drained on shutdown; and the stages it
    hands what they emit to in-process (workers/handoff.py), built here when the process does not consume them."""

    def __init__(self, resources: Resources, stages: list[Stage[Any]]) -> None:
        self.settings = resources.settings
        self.stages = stages
        consumed = {stage.name: stage for stage in stages}
        handed = handed_stages(self.settings.handoff.stages, list(consumed))
        self.handed = [consumed.get(name) or build_stage(name, resources) for name in handed]
        for stage in self.handed:
            if not stage.inline:
                raise ValueError(f"HANDOFF_STAGES: the {stage.name} stage takes its messages from its queue only")
        self.handoff = Handoff(resources.publisher, resources.topology, self.settings.handoff.timeout)
        self._handed_only = [stage for stage in self.handed if stage.name not in consumed]
        self._handed_started: list[Stage[Any]] = []
        self._handing: asyncio.Task[None] | None = None
        self.topology = resources.topology
        self.nodes = Nodes(self.settings.broker.amqp_url.get_secret_value())
        self.publisher = resources.publisher  # the process's: closed with its other resources
        self.connection: AbstractRobustConnection | None = None
        self.node = ""  # the URL of the node the stages consume from
        self.consumers: list[StageConsumer] = []
        self._task: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        return (
            self.publisher.ready
            and self.connection is not None
            and self.connection.connected.is_set()
            and len(self.consumers) == len(self.stages)
        )

    def start(self) -> None:
        self.publisher.start()
        self._task = asyncio.create_task(self._start(), name="workers-start")

    async def _start(self) -> None:
        self.connection, self.node = await connect_until_up(self.nodes, "framewatch-worker")
        await self.publisher.wait_declared()  # outputs need a confirming channel before the first message is taken
        # A stage handed messages but not consumed here waits for what it needs (the config, the stream tables):
        # the stages wait for it a little, not for ever; until it is up, the broker takes its messages.
        self._handing = asyncio.create_task(self._start_handed(), name="workers-handed-start")
        await asyncio.wait({self._handing}, timeout=HANDED_START_WAIT)
        handing = self.handoff if self.handed else None
        for stage in self.stages:
            consumer = StageConsumer(stage, self.connection, self.publisher, self.topology, handing)
            await consumer.start()
            self.consumers.append(consumer)
            if stage in self.handed:
                self.handoff.add(stage)
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
            for consumer in self.consumers:
                await consumer.attach(self.connection)
            with contextlib.suppress(Exception):
                await previous.close()  # stops its reconnecting: the stages consume over the new one only
            log.info("broker_failed_over", url=redact(self.node))
            lost_since = None

    async def _start_handed(self) -> None:
        for stage in self._handed_only:
            try:
                await stage.start(Unconsumed())
            except Exception as exc:  # its queue's consumers take its messages
                log.warning("handed_stage_not_started", stage=stage.name, error=f"{type(exc).__name__}: {exc}")
                continue
            self._handed_started.append(stage)
            self.handoff.add(stage)

    async def stop(self) -> None:
        for task in (self._task, self._handing):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        # Every stage drains before any closes: a fetch message in hand may still be handing its frame to this
        # process's streams stage, whose own queue is already drained.
        await asyncio.gather(*(consumer.drain(self.settings.shutdown_timeout) for consumer in self.consumers))
        closing = [consumer.stage for consumer in self.consumers] + self._handed_started
        for stage in closing:  # after the drain: what the consumers handed over has finished
            try:
                await stage.close()
            except Exception as exc:  # the others still close, and the connection
                log.warning("stage_close_failed", stage=stage.name, error=f"{type(exc).__name__}: {exc}")
        if self.connection is not None:
            await self.connection.close()
