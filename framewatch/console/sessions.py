"""Console sign-ins: an account's bearer token buys a session cookie (HttpOnly, SameSite=Strict); every form carries
the session's CSRF token. Sessions live in the config database, so every replica knows them; only a hash of the
cookie's value is stored."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import delete, insert, select

from framewatch.config import tables as t
from framewatch.config.store import ConfigStore

COOKIE = "fw_console"


@dataclass(frozen=True, slots=True)
class Session:
    account_id: int
    account: str
    reviewer: str  # who decisions are recorded as: the name given at sign-in, else the account's
    csrf: str

    def csrf_matches(self, given: str) -> bool:
        return hmac.compare_digest(self.csrf.encode(), given.encode())


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class Sessions:
    def __init__(self, store: ConfigStore, ttl: int) -> None:
        self.store = store
        self.ttl = ttl

    async def create(self, account_id: int, reviewer: str) -> str:
        """A new session; returns the cookie's value (shown once, never stored)."""
        value = secrets.token_urlsafe(32)
        now = int(time.time())
        async with self.store.engine.begin() as conn:
            await conn.execute(
                insert(t.console_sessions).values(
                    id_hash=_hash(value),
                    account_id=account_id,
                    reviewer=reviewer,
                    csrf=secrets.token_urlsafe(24),
                    created_at=now,
                    expires_at=now + self.ttl,
                )
            )
        return value

    async def find(self, value: str | None) -> Session | None:
        if not value or len(value) > 128:
            return None
        s, a = t.console_sessions.c, t.accounts.c
        async with self.store.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(s.account_id, s.reviewer, s.csrf, a.name)
                    .join(t.accounts, a.id == s.account_id)
                    .where(s.id_hash == _hash(value), s.expires_at > int(time.time()))
                )
            ).first()
        return None if row is None else Session(row.account_id, row.name, row.reviewer, row.csrf)

    async def end(self, value: str) -> None:
        async with self.store.engine.begin() as conn:
            await conn.execute(delete(t.console_sessions).where(t.console_sessions.c.id_hash == _hash(value)))
