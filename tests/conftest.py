"""Fixtures over the real services: RabbitMQ, Redis and PostgreSQL must be running; a test fails if one is not."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import aio_pika
import asyncpg
import pytest
import redis.asyncio as aioredis
from aiohttp import web

from framewatch.config import apply as config_apply
from framewatch.settings import Settings
from framewatch.wiring import ingest_listeners, resources_for
from tests import outside
from tests.helpers import (
    AMQP_URL,
    KEY,
    POSTGRES_URL,
    REDIS_URL,
    Broker,
    free_port,
    ready,
    wait_until,
)
from tests.imageserver import ImageServer
from tests.moderation_api import RedFlagApi
from tests.rabbit import RabbitNode, Sentinel
from tests.sink import Sink
from workers import stages
from workers.processing import RETRY_AFTER_RUNGS
from workers.service import Workers, build_stage

outside.install()


_sentinel = Sentinel(AMQP_URL)


def pytest_sessionstart(session: pytest.Session) -> None:
    try:
        _sentinel.start()
    except Exception:  # services_are_up says so, as a failure of the run
        pass


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The run fails if this process read a path beside the repository (a fresh clone would not have it), or if the
    machine's broker dropped our connection (a test disturbed it instead of a node of its own)."""
    if outside.seen:
        print(f"\nread outside the repository: {sorted(set(outside.seen))[:20]}", file=sys.stderr)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if (dropped := _sentinel.stop()) is not None:
        print(f"\nthe machine's RabbitMQ was disturbed during the run: {dropped}", file=sys.stderr)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


DOMAINS = ("test.app", "test.domain.com", "5000.myqcloud.com")
# Every delay queue a test may declare (its ladders, intervals and deferrals, the defaults', Retry-After's rungs),
# deleted after each test.
RETRY_QUEUE_DELAYS = (0.2, 0.4, 0.5, 1.0, 2.0)
_DEFAULTS = Settings(_env_file=None)
ALL_DELAYS = {
    *RETRY_QUEUE_DELAYS,
    *RETRY_AFTER_RUNGS,
    *_DEFAULTS.fetch.retry_delays,
    *_DEFAULTS.moderation.retry_delays,
    *_DEFAULTS.streams.retry_delays,
    _DEFAULTS.delivery.interval,
    _DEFAULTS.delivery.screenshot_interval,
}


@pytest.fixture(scope="session", autouse=True)
def services_are_up() -> None:
    """Fail loudly, never skip, when a service the suite needs is down."""

    async def check() -> None:
        connection = await aio_pika.connect(AMQP_URL, timeout=5)
        await connection.close()
        client = aioredis.Redis.from_url(REDIS_URL)
        await client.ping()
        await client.aclose()
        pg = await asyncpg.connect(POSTGRES_URL.replace("postgresql://", "postgres://"), timeout=5)
        await pg.close()

    try:
        asyncio.run(check())
    except Exception as exc:
        pytest.fail(f"a required service is down (RabbitMQ, Redis, PostgreSQL): {exc!r}", pytrace=False)


@asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards; yields its SQLAlchemy URL."""
    name = f"fwtest_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(POSTGRES_URL.replace("postgresql://", "postgres://"))
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield POSTGRES_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + f"/{name}"
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The config store's URL: each test using it runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/config.db"
        return
    async with postgres_database() as url:
        yield url


@pytest.fixture
def namespace() -> str:
    return f"fwtest-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def _own_rabbit() -> Iterator[RabbitNode]:
    node = RabbitNode(f"fwtest{os.getpid()}", free_port())
    node.start()
    yield node
    node.stop()
    shutil.rmtree(node.base.parent, ignore_errors=True)


@pytest.fixture
def own_broker(_own_rabbit: RabbitNode) -> RabbitNode:
    """A RabbitMQ node of the suite's own, for a test that stops, freezes or alarms its broker: every fixture of
    that test (env, settings, amqp, broker) then points at it instead of the machine's broker."""
    _own_rabbit.ctl("start_app")  # a test that failed midway may have left it stopped
    return _own_rabbit


@pytest.fixture
def amqp_url(request: pytest.FixtureRequest) -> str:
    if "own_broker" in request.fixturenames:
        return str(request.getfixturevalue("own_broker").url)
    return AMQP_URL


@pytest.fixture
async def amqp(namespace: str, amqp_url: str) -> AsyncIterator[None]:
    """Removes the test's exchanges and every queue of its namespace afterwards (idle quorum queues left behind
    load the broker until it stalls); on a fresh connection, since a test may restart the broker."""
    yield
    topology = stages.topology(namespace)
    names = {topology.queue(stage) for stage in stages.NAMES} | {topology.dead_queue(stage) for stage in stages.NAMES}
    names |= {topology.retry_queue(stage, delay) for stage in stages.NAMES for delay in ALL_DELAYS}
    connection = await aio_pika.connect(amqp_url)
    async with connection, connection.channel() as channel:
        for name in sorted(names):
            await channel.queue_delete(name)
        await channel.exchange_delete(topology.events)
        await channel.exchange_delete(topology.dead_letters)
        await channel.exchange_delete(topology.config_changes)


@pytest.fixture
async def broker(amqp: None, namespace: str, amqp_url: str) -> Broker:
    return Broker(namespace, amqp_url)


@pytest.fixture
def env(tmp_path: Path, namespace: str, amqp_url: str) -> dict[str, str]:
    """Settings for a framewatch process of this test, as environment variables."""
    return {
        "FRAMEWATCH_AMQP_URL": amqp_url,
        "FRAMEWATCH_NAMESPACE": namespace,
        "FRAMEWATCH_DATABASE_URL": f"sqlite:///{tmp_path}/config.db",
        "FRAMEWATCH_LOG_LEVEL": "warning",
        "FRAMEWATCH_DELIVER_ALLOW_PRIVATE": "true",
        "FRAMEWATCH_PUBLISH_TIMEOUT": "2",
    }


def settings_from(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], **extra: str) -> Settings:
    """Settings read from these variables (and FRAMEWATCH_<NAME> for each extra), set for the test's duration."""
    for name, value in {**env, **{f"FRAMEWATCH_{k.upper()}": v for k, v in extra.items()}}.items():
        monkeypatch.setenv(name, value)
    return Settings(_env_file=None)


@pytest.fixture
def settings(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    return settings_from(monkeypatch, env)


async def apply_config(settings: Settings, toml: str, **kwargs: object) -> str:
    """`framewatch config apply` in-process: applied, then announced to every running process."""
    path = Path(settings.database_url.get_secret_value().split("///", 1)[1]).with_name("config.toml")
    path.write_text(toml)
    if "key_overlap" in kwargs:
        ingress = settings.ingress.model_copy(update={"key_rotation_overlap": kwargs["key_overlap"]})
        settings = settings.model_copy(update={"ingress": ingress})
    return str(await config_apply.apply_file(settings, path, allow_private_urls=True))


def standard_config(key: str = KEY, allow_unsigned: bool = False, app_name: str = "") -> str:
    rules = "".join(f'[[rules]]\ndomain = "{d}"\ntemplate = "main"\napp_name = "{app_name}"\n' for d in DOMAINS)
    return (
        f'account = "default"\n[[templates]]\nname = "main"\ncallback_key = "{key}"\n'
        f"allow_unsigned = {str(allow_unsigned).lower()}\n{rules}"
    )


@pytest.fixture
async def configured(settings: Settings) -> Settings:
    await apply_config(settings, standard_config())
    return settings


class RunningIngress:
    def __init__(self, url: str, admin_url: str, app: web.Application) -> None:
        self.url = url  # the callback listener
        self.admin_url = admin_url  # the admin listener
        self.app = app
        self.callbacks = f"{url}/callbacks/tencent"


@asynccontextmanager
async def serve_ingress(settings: Settings) -> AsyncIterator[RunningIngress]:
    """The ingress's two listeners served on loopback ports of their own, ready (broker connected); the admin
    listener cleaned up first, as `framewatch ingest` does."""
    callbacks, admin = (listener.app for listener in ingest_listeners(settings))
    runners = []
    urls = []
    try:
        for app in (callbacks, admin):
            runner = web.AppRunner(app, shutdown_timeout=5)
            await runner.setup()
            runners.append(runner)
            port = free_port()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            urls.append(f"http://127.0.0.1:{port}")
        await wait_until(lambda: ready(urls[0]), timeout=15)
        yield RunningIngress(urls[0], urls[1], callbacks)
    finally:
        for runner in reversed(runners):
            await runner.cleanup()


@pytest.fixture
async def ingress(configured: Settings, amqp: None) -> AsyncIterator[RunningIngress]:
    async with serve_ingress(configured) as running:
        yield running


# Short ladders so retries and dead letters happen within a test.
TEST_RETRY_DELAYS = (0.2, 0.4)


@pytest.fixture
def worker_env(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return {
        **env,
        "FRAMEWATCH_BLOB_URL": str(tmp_path / "blobs"),
        "FRAMEWATCH_BLOB_PUBLIC_URL": "http://frames.example.com/blobs",
        "FRAMEWATCH_FETCH_ALLOWED_HOSTS": "127.0.0.1,localhost,*.myqcloud.com",
        "FRAMEWATCH_FETCH_ALLOW_PRIVATE": "true",
        "FRAMEWATCH_FETCH_TIMEOUT": "1",
        "FRAMEWATCH_FETCH_MAX_BYTES": "1000000",
        "FRAMEWATCH_FETCH_RETRY_DELAYS": ",".join(map(str, TEST_RETRY_DELAYS)),
        "FRAMEWATCH_MODERATION_RETRY_DELAYS": ",".join(map(str, TEST_RETRY_DELAYS)),
        "FRAMEWATCH_SHUTDOWN_TIMEOUT": "3",
    }


@pytest.fixture
def pipeline_env(worker_env: dict[str, str]) -> dict[str, str]:
    """Workers that give up soon: a few tries 0.2 s apart."""
    return {
        **worker_env,
        "FRAMEWATCH_DELIVER_TRIES": "3",
        "FRAMEWATCH_DELIVER_INTERVAL": "0.2",
        "FRAMEWATCH_DELIVER_SCREENSHOT_TRIES": "3",
        "FRAMEWATCH_DELIVER_SCREENSHOT_INTERVAL": "0.2",
        "FRAMEWATCH_MODERATION_RETRY_DELAYS": "0.2,0.4",
        "FRAMEWATCH_MODERATION_BACKEND": "none",
    }


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    """The platform's receiving URLs."""
    running = await Sink().start()
    yield running
    await running.stop()


@pytest.fixture
async def moderation_api() -> AsyncIterator[RedFlagApi]:
    """A moderation API flagging the mostly-red frames (ImageServer's /bad/ ones)."""
    api = await RedFlagApi().start()
    yield api
    await api.stop()


@pytest.fixture
def s3_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A real S3-compatible server (moto, server mode) on loopback; yields its endpoint. Moto keeps buckets per
    process: each test uses a bucket of its own."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    monkeypatch.delenv("FRAMEWATCH_BLOB_PUBLIC_URL", raising=False)  # presigned URLs
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def s3_env(env: dict[str, str], endpoint: str, blob_url: str) -> dict[str, str]:
    """These settings with the blob store at `blob_url` on the S3 server at `endpoint`, URLs presigned."""
    s3 = {**env, "FRAMEWATCH_BLOB_URL": blob_url, "FRAMEWATCH_S3_ENDPOINT_URL": endpoint}
    s3.pop("FRAMEWATCH_BLOB_PUBLIC_URL")
    return {**s3, "AWS_ACCESS_KEY_ID": "test-key-id", "AWS_SECRET_ACCESS_KEY": "test-secret"}


@pytest.fixture
def worker_settings(worker_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    return settings_from(monkeypatch, worker_env)


@asynccontextmanager
async def serve_workers(settings: Settings, stages: list[str], *, migrated: bool = True) -> AsyncIterator[Workers]:
    """Worker stages running in this process, consuming (as `framewatch worker` runs them). `migrated`: the config
    store has its schema, as the ingress leaves it in a deployment (without it, the stages handed messages here
    wait HANDED_START_WAIT for it before the consumers start)."""
    resources = resources_for(settings)
    if migrated:
        await resources.config_store.migrate()
    workers = Workers(resources, [build_stage(name, resources) for name in stages])
    workers.start()
    try:
        await wait_until(lambda: workers.ready, timeout=15)
        yield workers
    finally:
        await workers.stop()
        await resources.close()


@pytest.fixture
async def image_server() -> AsyncIterator[ImageServer]:
    server = await ImageServer().start()
    yield server
    await server.close()
