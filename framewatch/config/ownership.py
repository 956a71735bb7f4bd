"""Who may change what: the rules the admin API and `config apply` both enforce, inside their change's transaction.

A domain binds to one template of one account. The account whose callback rule binds a domain controls that
domain's detect notify config; no other account can read or write it. A config made for a domain nobody binds
yet belongs to the account that made it until another account binds the domain: binding it drops the config (its
URL is another account's; handing it over would send the binder's violations there). An account holds at most
MAX_TEMPLATES templates.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from framewatch.config import tables as t
from framewatch.config import validate
from framewatch.config.errors import ConfigError
from framewatch.config.store import ConfigStore


@asynccontextmanager
async def account_change(store: ConfigStore, account_id: int) -> AsyncIterator[AsyncConnection]:
    """One transaction serialized per account, so that counts and checks cannot race with a concurrent change."""
    async with store.engine.begin() as conn:
        # Write first: a row lock on PostgreSQL, the database write lock on SQLite, held to commit.
        await conn.execute(update(t.accounts).where(t.accounts.c.id == account_id).values(id=t.accounts.c.id))
        yield conn


async def check_template_limit(store: ConfigStore, conn: AsyncConnection, account_id: int) -> None:
    """After a change that may add templates: raising rolls the change back."""
    if await store.count_templates(conn, account_id) > validate.MAX_TEMPLATES:
        raise ConfigError("LimitExceeded", f"At most {validate.MAX_TEMPLATES} templates per account.")


def already_bound(domain: str) -> ConfigError:
    return ConfigError(
        "InvalidParameter.DomainAlreadyBound",
        f"{domain} is already bound to a callback template; one domain, one template.",
    )


async def own_rule(conn: AsyncConnection, domain: str, account_id: int) -> Any:
    """The domain's rule when this account binds it, None when nobody does; another account's: DomainAlreadyBound."""
    row = (await conn.execute(select(t.rules).where(t.rules.c.domain == domain))).first()
    if row is not None and row.account_id != account_id:
        raise already_bound(domain)
    return row


async def claim_notify_config(conn: AsyncConnection, domain: str, account_id: int) -> None:
    """This account binds the domain: another account's detect notify config for it goes."""
    await conn.execute(
        delete(t.detect_notify).where(t.detect_notify.c.domain == domain, t.detect_notify.c.account_id != account_id)
    )


async def bound_elsewhere(conn: AsyncConnection, domain: str, account_id: int) -> bool:
    owner = await conn.scalar(select(t.rules.c.account_id).where(t.rules.c.domain == domain))
    return owner is not None and owner != account_id


def notify_config_exists() -> ConfigError:
    return ConfigError("ConfigAlreadyExists", "Config has already exist.")


async def own_notify_config(conn: AsyncConnection, domain: str, account_id: int) -> Any:
    """The domain's detect notify config when it is this account's, None when there is none. Another account's
    domain (its violations are not ours to receive): InvalidDomain.NotFound; another account's config:
    ConfigAlreadyExists."""
    owner = await conn.scalar(select(t.rules.c.account_id).where(t.rules.c.domain == domain))
    if owner is not None and owner != account_id:
        raise ConfigError("InvalidDomain.NotFound", f"The domain {domain} does not belong to this account.", 404)
    if owner == account_id:  # a config another account made before this one bound the domain: not theirs now
        await claim_notify_config(conn, domain, account_id)
    row = (await conn.execute(select(t.detect_notify).where(t.detect_notify.c.domain == domain))).first()
    if row is not None and row.account_id != account_id:
        raise notify_config_exists()
    return row
