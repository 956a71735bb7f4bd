"""The configuration a running process serves: a snapshot in memory, reloaded when the revision moves."""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from framewatch.config.changes import ChangeFeed
from framewatch.config.snapshot import Snapshot
from framewatch.config.store import ConfigStore
from framewatch.runtime import metrics

log = structlog.get_logger("framewatch.config")


class LiveConfig:
    """Hot paths read `.snapshot` (a dict lookup, never I/O).

    `poke()` reloads now; the change feed pokes every process on every change; a poll is the backstop.
    """

    def __init__(self, store: ConfigStore, poll_interval: float, feed: ChangeFeed | None = None) -> None:
        self.store = store
        self.poll_interval = poll_interval
        self.feed = feed
        self.snapshot = Snapshot(revision=0)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._started: asyncio.Future[None] | None = None

    async def start(self, wait: bool = False) -> None:
        """Load the config. `wait`: retry until the store answers (a process that does not own the store starts
        before the one that creates its schema) instead of failing. The listeners and stages of a process share
        one: the first start loads it, the others wait for that."""
        if self._started is None:
            self._started = asyncio.ensure_future(self._start(wait))
        await asyncio.shield(self._started)

    async def _start(self, wait: bool) -> None:
        if wait:
            await self.store.wait_for(self.reload)
        else:
            await self.reload()
        self._task = asyncio.create_task(self._watch(), name="config-watch")
        if self.feed:
            self.feed.listen(self.poke)

    def poke(self) -> None:
        self._wake.set()

    async def reload(self) -> None:
        snapshot = await self.store.snapshot()
        if snapshot.revision != self.snapshot.revision:
            log.info("config_loaded", revision=snapshot.revision, domains=len(snapshot.bindings))
        self.snapshot = snapshot
        metrics.CONFIG_REVISION.set(snapshot.revision)

    async def _watch(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_interval)
            self._wake.clear()
            try:
                if await self.store.revision() != self.snapshot.revision:
                    await self.reload()
            except Exception as exc:  # keep serving the last good snapshot; the database may come back
                metrics.CONFIG_RELOAD_FAILURES.inc()
                log.warning("config_reload_failed", error=str(exc))

    async def changed(self) -> None:
        """This process changed the config: serve it here before answering, and tell every other process."""
        try:
            await self.reload()
        except Exception:  # committed all the same: the watch loop retries
            self.poke()
        if self.feed:  # the revision is informative only: every listener reloads whatever it says
            await self.feed.announce(self.snapshot.revision)

    async def close(self) -> None:
        if self._started is not None and not self._started.done():
            self._started.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._started
        if self.feed:
            await self.feed.close()
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
