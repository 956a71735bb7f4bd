"""The config store: SQLite by default, PostgreSQL by URL. Every change bumps the revision so replicas reload."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import structlog
from sqlalchemy import Engine, event, func, insert, select, update
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from framewatch.config import tables as t
from framewatch.config.snapshot import Binding, SigningKey, Snapshot, Template

log = structlog.get_logger("framewatch.config")
MIGRATIONS = Path(__file__).with_name("migrations")
_MIGRATION_LOCK = 0x6677_6D67  # pg_advisory_lock id: replicas starting together migrate one at a time
CONNECT_TIMEOUT = 3.0  # seconds to connect to PostgreSQL, or to get a pooled connection
STATEMENT_TIMEOUT = 5.0  # seconds one statement may take (migrations included)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL: readers in other processes never block the writer; FKs are off by default in SQLite.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def owner_only(database: Path) -> None:
    """The SQLite file (callback keys, webhook secrets) and a folder made for it readable by its owner only, like
    `master.key`; SQLite gives its -wal and -shm files the database's mode."""
    database.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


def sqlite_writer(engine: AsyncEngine) -> Engine | None:
    """A plain (sync) engine on the same SQLite file, for a writer that runs a whole transaction in one thread: its
    transactions begin IMMEDIATE, so what they read before their first write is already under the write lock.
    None for PostgreSQL and for an in-memory database (another connection would not see it)."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    writer = sa_create_engine(url.set(drivername="sqlite"), pool_size=1, max_overflow=0)
    event.listen(writer, "connect", _sqlite_pragmas)
    event.listen(writer, "connect", _sqlite_autocommit)
    event.listen(writer, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
    return writer


def _sqlite_autocommit(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite's own implicit BEGIN (deferred, only before a write) off: the writer's "begin" listener says BEGIN.
    dbapi_connection.isolation_level = None


def create_engine(url: str) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            owner_only(Path(parsed.database))
        engine = create_async_engine(url)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    # A database that is down or frozen must cost a caller seconds, not minutes: bounded connect, statement and
    # pool waits (the callback path never waits on it: it serves the snapshot in memory).
    return create_async_engine(
        url,
        pool_size=5,
        max_overflow=5,
        pool_pre_ping=True,
        pool_timeout=CONNECT_TIMEOUT,
        connect_args={
            "timeout": CONNECT_TIMEOUT,
            "command_timeout": STATEMENT_TIMEOUT,
            "server_settings": {"statement_timeout": str(int(STATEMENT_TIMEOUT * 1000))},
        },
    )


class ConfigStore:
    def __init__(self, url: str) -> None:
        self.engine = create_engine(url)

    async def close(self) -> None:
        await self.engine.dispose()

    async def migrate(self) -> None:
        """Bring the schema to the newest revision; safe to run from many replicas at once."""
        from alembic import command
        from alembic.config import Config

        def upgrade(connection: Any) -> None:
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS))
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

        async with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                await conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
            await conn.run_sync(upgrade)

    async def wait_for(
        self, probe: Callable[[], Awaitable[object]], retry_on: tuple[type[Exception], ...] = (Exception,)
    ) -> None:
        """Run `probe` until the store answers it, backing off from 0.5 s to 10 s: a process that does not own the
        store starts before the one that creates its schema, and waits for it instead of failing."""
        delay = 0.5
        while True:
            try:
                await probe()
                return
            except retry_on as exc:
                log.warning("config_store_not_ready", error=type(exc).__name__, retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def revision(self) -> int:
        async with self.engine.connect() as conn:
            return int(await conn.scalar(select(t.revision.c.revision).where(t.revision.c.id == 1)) or 0)

    async def record_change(
        self, conn: AsyncConnection, account_id: int | None, action: str, params: dict[str, Any]
    ) -> None:
        """Audit line plus revision bump, inside the caller's transaction. Never pass secrets in params."""
        await conn.execute(
            insert(t.audit_log).values(
                account_id=account_id,
                action=action,
                params=orjson.dumps(params).decode(),
                at=int(time.time()),
            )
        )
        await conn.execute(update(t.revision).where(t.revision.c.id == 1).values(revision=t.revision.c.revision + 1))

    async def snapshot(self) -> Snapshot:
        async with self.engine.connect() as conn:
            revision = int(await conn.scalar(select(t.revision.c.revision)) or 0)
            templates = {row.id: _template(row) for row in await conn.execute(select(t.templates))}
            bindings = {
                row.domain: Binding(row.domain, row.app_name, templates[row.template_id])
                for row in await conn.execute(select(t.rules))
            }
            # Only where the same account binds the domain: a config cannot receive another account's violations.
            notify = {
                row.domain: row.notify_url
                for row in await conn.execute(select(t.detect_notify))
                if row.domain in bindings and bindings[row.domain].template.account_id == row.account_id
            }
        return Snapshot(revision, bindings, notify)

    async def ensure_account(self, conn: AsyncConnection, name: str) -> int:
        found = await conn.scalar(select(t.accounts.c.id).where(t.accounts.c.name == name))
        if found is not None:
            return int(found)
        result = await conn.execute(insert(t.accounts).values(name=name, created_at=int(time.time())))
        return int(result.inserted_primary_key[0])

    async def count_templates(self, conn: AsyncConnection, account_id: int) -> int:
        query = select(func.count()).select_from(t.templates).where(t.templates.c.account_id == account_id)
        return int(await conn.scalar(query) or 0)


def _keys(current: str | None, previous: str | None, expires_at: int | None) -> tuple[SigningKey, ...]:
    keys = [SigningKey(current)] if current else []
    if previous and expires_at:
        keys.append(SigningKey(previous, float(expires_at)))
    return tuple(keys)


def _template(row: Any) -> Template:
    keys = _keys(row.callback_key, row.previous_callback_key, row.previous_key_expires_at)
    secrets = _keys(row.webhook_secret, row.previous_webhook_secret, row.previous_webhook_secret_expires_at)
    urls = {field: getattr(row, field) for field in t.NOTIFY_URL_FIELDS if getattr(row, field)}
    return Template(
        row.id,
        row.account_id,
        row.name,
        keys,
        bool(row.allow_unsigned),
        urls,
        secrets,
        moderation_sample_every=int(row.moderation_sample_every or 1),
        moderation_reuse_seconds=int(row.moderation_reuse_seconds or 0),
    )


# A changed secret's columns: (current, previous, previous's expiry).
CALLBACK_KEY_COLUMNS = ("callback_key", "previous_callback_key", "previous_key_expires_at")
WEBHOOK_SECRET_COLUMNS = ("webhook_secret", "previous_webhook_secret", "previous_webhook_secret_expires_at")


def rotated_values(
    current: Any, new: str, overlap: int, columns: tuple[str, str, str] = CALLBACK_KEY_COLUMNS
) -> dict[str, Any]:
    """Column values for a key or secret change: the old one stays valid for `overlap` seconds."""
    column, previous, expires_at = columns
    old = getattr(current, column)
    if old == new:
        return {}
    if not old:  # nothing to keep valid
        return {column: new}
    return {column: new, previous: old, expires_at: int(time.time()) + overlap}
