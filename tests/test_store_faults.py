"""The config store frozen (SIGSTOP) or down, on a PostgreSQL instance of this test's own (never the machine's):
the admin API answers its JSON error within seconds, and callbacks keep being served from the loaded config."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from framewatch.admin import accounts
from framewatch.config import apply as config_apply
from framewatch.config.store import ConfigStore
from tests.conftest import serve_ingress, settings_from, standard_config
from tests.helpers import free_port, post, screenshot, signed

PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"))), None)


async def as_postgres(*argv: str, check: bool = True) -> None:
    """A PostgreSQL command as the postgres user (initdb refuses root), off the event loop."""
    command = ["runuser", "-u", "postgres", "--", *argv]
    await asyncio.to_thread(subprocess.run, command, check=check, capture_output=True, timeout=120)


@asynccontextmanager
async def own_postgres() -> AsyncIterator[tuple[str, Path]]:
    """A PostgreSQL cluster of its own on a free port, removed afterwards; yields (SQLAlchemy URL, data directory).
    Under /tmp itself: the postgres user cannot enter pytest's private temporary directories."""
    assert PG_BIN is not None, "PostgreSQL's server binaries are missing (Debian's postgresql package)"
    root = Path(tempfile.mkdtemp(prefix="framewatch-pg-"))
    data = root / "pgdata"
    data.mkdir()
    shutil.chown(root, "postgres")
    shutil.chown(data, "postgres")
    port = free_port()
    await as_postgres(str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres")
    options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off"
    await as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(data / "log"), "-w", "start")
    try:
        admin = await asyncpg.connect(f"postgres://postgres@127.0.0.1:{port}/postgres")
        await admin.execute("CREATE DATABASE framewatch")
        await admin.close()
        yield f"postgresql+asyncpg://postgres@127.0.0.1:{port}/framewatch", data
    finally:
        if (data / "postmaster.pid").exists():
            for pid in cluster_pids(data):
                os.kill(pid, signal.SIGCONT)
        await as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop", check=False)
        shutil.rmtree(root, ignore_errors=True)


def cluster_pids(data: Path) -> list[int]:
    postmaster = int((data / "postmaster.pid").read_text().split()[0])
    children = subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True, text=True).stdout.split()
    return [postmaster, *map(int, children)]


@contextmanager
def frozen_processes(data: Path) -> Iterator[None]:
    """Every process of the cluster stopped for the block: connections stay open and nothing answers."""
    pids = cluster_pids(data)
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)


async def admin_call(session: aiohttp.ClientSession, url: str, token: str) -> tuple[int, dict, float]:
    started = time.monotonic()
    async with session.get(
        f"{url}/api", params={"Action": "DescribeLiveCallbackTemplates"}, headers={"Authorization": f"Bearer {token}"}
    ) as response:
        assert response.content_type == "application/json"
        return response.status, await response.json(), time.monotonic() - started


async def test_a_frozen_or_stopped_database_gets_a_clear_answer_and_callbacks_go_on(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, amqp: None, tmp_path: Path
) -> None:
    async with own_postgres() as (url, data):
        settings = settings_from(monkeypatch, env, database_url=url)
        (tmp_path / "config.toml").write_text(standard_config())
        await config_apply.apply_file(settings, tmp_path / "config.toml", allow_private_urls=True)
        store = ConfigStore(url)
        token = await accounts.issue_token(store, "acme", replace=False)
        await store.close()
        async with serve_ingress(settings) as ingress, aiohttp.ClientSession() as session:
            assert (await admin_call(session, ingress.admin_url, token))[0] == 200
            with frozen_processes(data):
                status, body, took = await admin_call(session, ingress.admin_url, token)
                assert (status, body["Code"]) == (503, "ServiceUnavailable") and body["RequestId"]
                assert took < 12  # the store's connect and statement bounds, not the client's patience
                assert (await post(session, ingress.callbacks, signed(screenshot(1))))[0] == 200
            assert (await admin_call(session, ingress.admin_url, token))[0] == 200  # back by itself
            await as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
            status, body, took = await admin_call(session, ingress.admin_url, token)
            assert (status, body["Code"]) == (503, "ServiceUnavailable") and took < 12
            assert (await post(session, ingress.callbacks, signed(screenshot(2))))[0] == 200
