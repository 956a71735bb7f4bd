"""Admin API accounts: a name and a bearer token, of which only a hash is stored."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import delete, select, update

from framewatch.config import tables as t
from framewatch.config.errors import ConfigError
from framewatch.config.store import ConfigStore

TOKEN_PREFIX = "fw_"


def hash_token(token: str) -> str:
    # Tokens are 256 random bits, not passwords: a fast hash is enough and makes the lookup an index hit.
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


async def issue_token(store: ConfigStore, name: str, *, replace: bool) -> str:
    """A fresh token for the account (created if missing). Without `replace`, an account that has one is refused."""
    if not 1 <= len(name) <= 64 or not name.isprintable():
        raise ConfigError("InvalidParameter", "account names are 1 to 64 printable characters")
    token = new_token()
    async with store.engine.begin() as conn:
        had_token = await conn.scalar(select(t.accounts.c.token_hash).where(t.accounts.c.name == name))
        if had_token and not replace:
            raise ConfigError("AccountHasToken", f"account {name!r} already has a token; rotate it to get a new one")
        account_id = await store.ensure_account(conn, name)
        await conn.execute(update(t.accounts).where(t.accounts.c.id == account_id).values(token_hash=hash_token(token)))
        if had_token:  # a rotation is the remedy for a leaked token: what it signed in ends with it
            await conn.execute(delete(t.console_sessions).where(t.console_sessions.c.account_id == account_id))
        await store.record_change(conn, account_id, "IssueToken", {"account": name, "replaced": bool(had_token)})
    return token


async def authenticate(store: ConfigStore, token: str) -> int | None:
    """The account id this token belongs to, or None."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    async with store.engine.connect() as conn:
        found = await conn.scalar(select(t.accounts.c.id).where(t.accounts.c.token_hash == hash_token(token)))
    return None if found is None else int(found)


async def name_of(store: ConfigStore, account_id: int) -> str:
    async with store.engine.connect() as conn:
        return str(await conn.scalar(select(t.accounts.c.name).where(t.accounts.c.id == account_id)))


async def list_accounts(store: ConfigStore) -> list[tuple[str, bool]]:
    async with store.engine.connect() as conn:
        rows = await conn.execute(select(t.accounts.c.name, t.accounts.c.token_hash).order_by(t.accounts.c.name))
        return [(row.name, row.token_hash is not None) for row in rows]
