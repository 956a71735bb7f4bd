"""Run worker stages in a process: one consumer connection, one confirming publisher, health on an HTTP port."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog
from aio_pika.abc import AbstractRobustConnection
from aiohttp import web

from framewatch.broker.publisher import Publisher, connect_until_up
from framewatch.broker.topology import STAGES, Topology
from framewatch.runtime import health
from framewatch.runtime.settings import Settings
from workers.runtime import Stage, StageRunner

log = structlog.get_logger("framewatch.worker")


def build_stage(name: str, settings: Settings) -> Stage:
    if name == "fetch":
        from framewatch.blobs import factory as blob_factory
        from workers.fetch.stage import FetchStage

        return FetchStage(settings, blob_factory.create(settings))
    if name == "moderate":
        from framewatch.blobs import factory as blob_factory
        from workers.moderate.backends import factory as backend_factory
        from workers.moderate.stage import ModerateStage

        return ModerateStage(settings, backend_factory.create(settings, blob_factory.create(settings)))
    if name == "deliver":
        from framewatch.config.live import live_config
        from workers.deliver.stage import DeliverStage

        return DeliverStage(settings, live_config(settings))
    raise ValueError(f"unknown stage {name!r}; choose from {', '.join(STAGES)} or all")


class Workers:
    """The stages of one process, started once the broker answers and drained on shutdown."""

    def __init__(self, settings: Settings, stages: list[Stage]) -> None:
        self.settings = settings
        self.stages = stages
        self.topology = Topology(settings.namespace)
        self.publisher = Publisher(settings.amqp_url.get_secret_value(), self.topology, settings.publish_timeout)
        self.connection: AbstractRobustConnection | None = None
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
        self.connection = await connect_until_up(self.settings.amqp_url.get_secret_value(), "framewatch-worker")
        await self.publisher.wait_declared()  # outputs need a confirming channel before the first message is taken
        for stage in self.stages:
            runner = StageRunner(stage, self.connection, self.publisher, self.topology)
            await runner.start()
            self.runners.append(runner)

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await asyncio.gather(*(runner.stop(self.settings.shutdown_timeout) for runner in self.runners))
        await self.publisher.close()
        if self.connection is not None:
            await self.connection.close()


def add_workers(app: web.Application, settings: Settings, names: list[str]) -> Workers:
    workers = Workers(settings, [build_stage(name, settings) for name in names])

    async def lifecycle(_: web.Application) -> AsyncIterator[None]:
        workers.start()
        yield
        await workers.stop()

    app.cleanup_ctx.append(lifecycle)
    return workers


def create_app(settings: Settings, names: list[str]) -> web.Application:
    app = web.Application()
    workers = add_workers(app, settings, names)
    health.add_routes(app, {"broker": lambda: workers.ready})
    return app
