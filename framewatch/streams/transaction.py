"""Where a batch's transaction runs. On PostgreSQL, on the process's async engine. On a SQLite file, whole in one
thread of the store's own, on a plain sqlite3 connection: one hop to that thread per batch, instead of three or
four per statement through aiosqlite, which cost the streams stage more CPU than SQLite's own work did."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from sqlalchemy import Engine
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from framewatch.config.store import sqlite_writer

R = TypeVar("R")


class Transactions:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._writer = sqlite_writer(engine)
        # One writer thread, as SQLite has one writer; threads start only when a transaction first runs.
        self._thread = None if self._writer is None else ThreadPoolExecutor(1, thread_name_prefix="stream-store")

    async def run(self, work: Callable[[Connection], R]) -> R:
        """`work` in one transaction, committed if it returns. If the caller is cancelled, a SQLite transaction
        already under way still ends (committed or rolled back) in its thread: the writes are idempotent."""
        if self._thread is None:
            async with self.engine.begin() as conn:
                return await conn.run_sync(work)
        return await asyncio.get_running_loop().run_in_executor(self._thread, _in_transaction, self._writer, work)

    async def close(self) -> None:
        thread, writer, self._thread, self._writer = self._thread, self._writer, None, None
        if thread is not None and writer is not None:
            await asyncio.get_running_loop().run_in_executor(None, _close, thread, writer)


def _in_transaction(writer: Engine, work: Callable[[Connection], R]) -> R:
    with writer.begin() as conn:
        return work(conn)


def _close(thread: ThreadPoolExecutor, writer: Engine) -> None:
    thread.shutdown(wait=True)  # the batch in hand ends first
    writer.dispose()
