"""What an action runs with: the store, the calling account, its parameters, and a transaction that audits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from framewatch.admin.params import Params
from framewatch.config import ownership
from framewatch.config.store import ConfigStore
from framewatch.streams.store import StreamStore


@dataclass
class Context:
    store: ConfigStore
    account_id: int
    action: str
    params: Params
    allow_private_urls: bool
    key_overlap: int
    streams: StreamStore  # the streams stage's view: the online list
    public_url: str = ""  # the callback listener, as the platform reaches it
    changed: bool = False  # set once a change has committed: the API then reloads and announces it

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.store.engine.connect() as conn:
            yield conn

    @asynccontextmanager
    async def change(self) -> AsyncIterator[AsyncConnection]:
        """One transaction, audited, serialized per account (counts and checks cannot race)."""
        async with ownership.account_change(self.store, self.account_id) as conn:
            yield conn
            await self.store.record_change(conn, self.account_id, self.action, self.params.loggable())
        self.changed = True
