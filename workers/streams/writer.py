"""Concurrent messages' effects written together: one transaction per batch instead of one per message.

Each message waits for the batch that holds it to commit. A batch that fails because the store is away fails each
of its messages, which the runtime retries (the store's writes are idempotent, so a retried batch changes nothing
twice); one that fails for any other reason is written again item by item, so that only the item at fault fails.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from workers.batches import settle_alone

T = TypeVar("T")


class BatchWriter(Generic[T]):
    def __init__(
        self,
        write: Callable[[list[T]], Awaitable[None]],
        max_items: int,
        max_wait: float,
        systemic: Callable[[BaseException], bool],
    ) -> None:
        self.write = write
        self.systemic = systemic  # whether a failure is the store's own (every item would fail alike)
        self.max_items = max_items
        self.max_wait = max_wait  # how long the first item of a batch waits for company
        self._pending: list[tuple[T, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._filled = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._writing: list[tuple[T, asyncio.Future[None]]] = []  # the batch being written

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="batch-writer")

    async def submit(self, item: T) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        self._wake.set()
        if len(self._pending) >= self.max_items:
            self._filled.set()
        await future

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            if len(self._pending) < self.max_items:
                self._filled.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._filled.wait(), self.max_wait)
            batch, self._pending = self._pending[: self.max_items], self._pending[self.max_items :]
            if not self._pending:
                self._wake.clear()
            live = [(item, future) for item, future in batch if not future.done()]  # a cancelled message is gone
            if not live:
                continue
            self._writing = live
            try:
                await self.write([item for item, _ in live])
            except Exception as exc:
                if len(live) > 1 and not self.systemic(exc):
                    await settle_alone(live, lambda item: self.write([item]), self.systemic)
                    continue
                for _, future in live:
                    if not future.done():
                        future.set_exception(exc)
            else:
                for _, future in live:
                    if not future.done():
                        future.set_result(None)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        # Closed mid-batch, the batch's outcome is unknown: its messages are not settled, and the broker
        # redelivers them (the writes are idempotent).
        for _, future in self._writing + self._pending:
            if not future.done():
                future.cancel()
