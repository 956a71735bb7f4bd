"""Key pairs for the clouds' official SDKs: one pair serves Tencent's SecretId/SecretKey and Alibaba's
AccessKeyId/AccessKeySecret. Verifying an HMAC needs the secret itself, so it is stored encrypted (Fernet) under a
master key; it is shown once, at creation, and never logged."""

from __future__ import annotations

import os
import secrets
import string
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import select, update
from sqlalchemy.engine import make_url

from framewatch.config import tables as t
from framewatch.config.errors import ConfigError
from framewatch.config.store import ConfigStore
from framewatch.settings import Settings

KEY_ID_PREFIX = "FWK"
_ALPHANUMERIC = string.ascii_letters + string.digits
# Writing last_used_at on every call would make every admin call a write: once a minute per key is enough to tell.
LAST_USED_RESOLUTION = 60


def new_pair() -> tuple[str, str]:
    """(key id, secret): letters and digits only, so every SDK and every signing scheme carries them as they are."""
    key_id = KEY_ID_PREFIX + "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(21))
    secret = "".join(secrets.choice(_ALPHANUMERIC) for _ in range(40))
    return key_id, secret


class Vault:
    """Encrypts and decrypts secrets under the master key."""

    def __init__(self, master_key: bytes) -> None:
        self._fernet = Fernet(master_key)

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def open(self, sealed: str) -> str | None:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:  # sealed under another master key: unusable, not an error of the caller's
            return None


def master_key(configured: str | None, key_file: Path) -> bytes:
    """The configured master key, or the key file's, made (mode 0600) on first use."""
    if configured:
        return configured.encode()
    try:
        return key_file.read_bytes().strip()
    except FileNotFoundError:
        pass
    key_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = Fernet.generate_key()
    # Written whole to a file of our own, then linked into place: a process starting beside us either finds no key
    # file or a complete one, never the empty file an O_EXCL create shows until its write lands.
    draft = key_file.with_name(f".{key_file.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(key + b"\n")
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(draft, key_file)
        except FileExistsError:  # another process made it first: use theirs
            return key_file.read_bytes().strip()
    finally:
        draft.unlink(missing_ok=True)
    return key


def vault_for(settings: Settings) -> Vault:
    """The vault under MASTER_KEY, or under the key file beside the SQLite database (./data/ otherwise)."""
    url = make_url(settings.database_url.get_secret_value())
    folder = Path(url.database).parent if url.get_backend_name() == "sqlite" and url.database else Path("data")
    configured = settings.master_key.get_secret_value() if settings.master_key else None
    return Vault(master_key(configured, folder / "master.key"))


@dataclass(frozen=True, slots=True)
class KeyInfo:
    key_id: str
    created_at: int
    last_used_at: int | None
    revoked_at: int | None


async def _account_id(store: ConfigStore, name: str) -> int:
    async with store.engine.connect() as conn:
        found = await conn.scalar(select(t.accounts.c.id).where(t.accounts.c.name == name))
    if found is None:
        raise ConfigError("InvalidParameter", f"no account named {name!r}")
    return int(found)


async def create(store: ConfigStore, vault: Vault, account: str) -> tuple[str, str]:
    account_id = await _account_id(store, account)
    key_id, secret = new_pair()
    async with store.engine.begin() as conn:
        await conn.execute(
            t.api_keys.insert().values(
                account_id=account_id, key_id=key_id, secret_encrypted=vault.seal(secret), created_at=int(time.time())
            )
        )
        await store.record_change(conn, account_id, "CreateApiKey", {"account": account, "key_id": key_id})
    return key_id, secret


async def revoke(store: ConfigStore, account: str, key_id: str) -> None:
    """At once on every replica: each call looks its key up in the store."""
    account_id = await _account_id(store, account)
    async with store.engine.begin() as conn:
        result = await conn.execute(
            update(t.api_keys)
            .where(
                t.api_keys.c.key_id == key_id, t.api_keys.c.account_id == account_id, t.api_keys.c.revoked_at.is_(None)
            )
            .values(revoked_at=int(time.time()))
        )
        if not result.rowcount:
            raise ConfigError("InvalidParameter", f"account {account!r} has no active key {key_id!r}")
        await store.record_change(conn, account_id, "RevokeApiKey", {"account": account, "key_id": key_id})


async def list_keys(store: ConfigStore, account: str) -> list[KeyInfo]:
    account_id = await _account_id(store, account)
    async with store.engine.connect() as conn:
        rows = await conn.execute(
            select(t.api_keys).where(t.api_keys.c.account_id == account_id).order_by(t.api_keys.c.id)
        )
        return [KeyInfo(r.key_id, r.created_at, r.last_used_at, r.revoked_at) for r in rows]


@dataclass(frozen=True, slots=True)
class ActiveKey:
    id: int
    account_id: int
    secret: str
    last_used_at: int | None


async def lookup(store: ConfigStore, vault: Vault, key_id: str) -> ActiveKey | None:
    """The active key pair with this id, its secret opened; None when unknown or revoked."""
    if not key_id.startswith(KEY_ID_PREFIX) or len(key_id) > 64 or not key_id.isascii():
        return None
    async with store.engine.connect() as conn:
        row = (await conn.execute(select(t.api_keys).where(t.api_keys.c.key_id == key_id))).first()
    if row is None or row.revoked_at is not None:
        return None
    secret = vault.open(row.secret_encrypted)
    if secret is None:
        return None
    return ActiveKey(int(row.id), int(row.account_id), secret, row.last_used_at)


async def touch(store: ConfigStore, key: ActiveKey) -> None:
    """Notes the key's use: called only once its signature verified, so a forger cannot make a key look used."""
    now = int(time.time())
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
        async with store.engine.begin() as conn:
            await conn.execute(update(t.api_keys).where(t.api_keys.c.id == key.id).values(last_used_at=now))
