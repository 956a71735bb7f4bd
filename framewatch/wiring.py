"""Process wiring: what each command runs, built from settings. The one kernel module that imports the services
(`ingest/`, `workers/`); everything below it takes explicit parameters."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator

from aiohttp import web

from framewatch.admin import api as admin_api
from framewatch.admin import keys, throttle
from framewatch.admin.cloud import CloudApi
from framewatch.blobs import factory as blob_factory
from framewatch.blobs.factory import local_root
from framewatch.broker.publisher import Publisher
from framewatch.broker.topology import Topology
from framewatch.config.live import live_config
from framewatch.console import app as console_app
from framewatch.dedupe import factory as dedupe_factory
from framewatch.providers import registry
from framewatch.runtime import health
from framewatch.runtime.serve import Listener, server_tls
from framewatch.runtime.settings import Settings
from framewatch.streams.covers import Covers
from framewatch.streams.store import StreamStore
from ingest.app import add_callback_routes
from ingest.covers import add_cover_routes
from workers.service import Workers, build_stage


def ingest_apps(settings: Settings) -> tuple[web.Application, web.Application]:
    """The callback listener's application (public) and the admin listener's (internal), sharing one config store,
    dedupe window and publisher. The callback application owns them: it starts them and closes them last."""
    # aiohttp refuses larger bodies itself; the handlers turn that into the contract's 413 JSON.
    callbacks = web.Application(client_max_size=settings.body_max_bytes)
    admin = web.Application(client_max_size=settings.body_max_bytes)
    config = live_config(settings)
    store = config.store
    redis_url = settings.redis_url.get_secret_value() if settings.redis_url else None
    streams = StreamStore(store.engine, silence=settings.stream_silence)
    api = admin_api.AdminApi(
        config,
        throttle.create(redis_url, settings.namespace),
        allow_private_urls=settings.deliver_allow_private,
        key_overlap=settings.key_rotation_overlap,
        streams=streams,
        body_read_timeout=settings.body_read_timeout,
        vault=keys.vault_for(settings),
        public_url=settings.public_url or f"http://{settings.host}:{settings.port}",
    )
    cloud = CloudApi(api, redis_url, settings.namespace)
    dedupe = dedupe_factory.create(settings)
    publisher = Publisher(settings.amqp_url.get_secret_value(), Topology(settings.namespace), settings.publish_timeout)
    blobs = blob_factory.create(settings)
    covers = Covers(streams, blobs)
    console = console_app.Console(
        config,
        streams,
        covers,
        blobs,
        publisher,
        amqp_urls=settings.amqp_url.get_secret_value(),
        topology=Topology(settings.namespace),
        session_ttl=settings.console_session_ttl,
        secure_cookie=settings.console_secure_cookie,
        public_origin=settings.console_public_origin,
    )

    async def lifecycle(_: web.Application) -> AsyncIterator[None]:
        await store.migrate()  # the ingress owns the config store: it brings the schema up to date
        await config.start()
        await blobs.start()
        publisher.start()
        # Everything alive now lives as long as the process: keep it out of every future collection.
        gc.collect()
        gc.freeze()
        yield
        # Runs after aiohttp stopped accepting and waited for in-flight callbacks: their publishes are done.
        await publisher.close()
        await dedupe.close()
        await api.close()
        await cloud.close()
        await config.close()
        await blobs.close()
        await store.close()

    callbacks.cleanup_ctx.append(lifecycle)
    add_callback_routes(
        callbacks,
        registry.create_all(settings),
        config,
        dedupe,
        publisher,
        body_max_bytes=settings.body_max_bytes,
        body_read_timeout=settings.body_read_timeout,
        clock_skew=settings.clock_skew,
    )
    add_cover_routes(callbacks, covers, settings.cover_max_age)
    health.add_routes(callbacks, {"broker": lambda: publisher.ready}, with_metrics=False)
    blob_root = local_root(settings)
    if blob_root is not None:  # frames and thumbnails in a local directory: the platform fetches them here
        blob_root.mkdir(parents=True, exist_ok=True)
        callbacks.router.add_static("/blobs", blob_root, follow_symlinks=False)

    admin_api.add_routes(admin, api)
    admin.router.add_route("*", "/", cloud.handle)  # the cloud-compatible API: the official SDKs call /
    admin.router.add_get("/healthz", health.healthz)
    admin.router.add_get("/metrics", health.metrics)  # internal only, like everything on this listener
    console_app.add_routes(admin, console)
    return callbacks, admin


def ingest_listeners(settings: Settings, port: int | None = None, admin_port: int | None = None) -> list[Listener]:
    callbacks, admin = ingest_apps(settings)
    return [
        Listener(callbacks, settings.host, settings.port if port is None else port),
        Listener(
            admin,
            settings.admin_host,
            settings.admin_port if admin_port is None else admin_port,
            server_tls(settings.admin_tls_cert, settings.admin_tls_key),
        ),
    ]


def add_workers(app: web.Application, settings: Settings, names: list[str]) -> Workers:
    """Worker stages that start and drain with this application."""
    workers = Workers(settings, [build_stage(name, settings) for name in names])

    async def lifecycle(_: web.Application) -> AsyncIterator[None]:
        workers.start()
        yield
        await workers.stop()

    app.cleanup_ctx.append(lifecycle)
    return workers


def run_listeners(settings: Settings, port: int | None = None, admin_port: int | None = None) -> list[Listener]:
    """`framewatch run`: both listeners and every stage in one process."""
    from framewatch.broker.topology import STAGES

    listeners = ingest_listeners(settings, port, admin_port)
    callbacks = listeners[0].app
    workers = add_workers(callbacks, settings, list(STAGES))
    callbacks[health.READINESS]["workers"] = lambda: workers.ready
    return listeners


def worker_listeners(settings: Settings, names: list[str], port: int | None = None) -> list[Listener]:
    """`framewatch worker STAGE...`: the stages, with health and metrics on the worker port."""
    app = web.Application()
    workers = add_workers(app, settings, names)
    health.add_routes(app, {"broker": lambda: workers.ready})
    return [Listener(app, settings.host, settings.worker_port if port is None else port)]
