"""Process wiring: what each command runs, built from settings over one set of shared resources. The one kernel
module that imports the services (`ingest/`, `workers/`); everything below it takes explicit parameters."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator

from aiohttp import web

from framewatch.admin import api as admin_api
from framewatch.admin import keys, throttle
from framewatch.admin.cloud import CloudApi
from framewatch.blobs.factory import local_root
from framewatch.console import app as console_app
from framewatch.providers import registry
from framewatch.resources import Resources
from framewatch.runtime import health
from framewatch.runtime.serve import Listener, server_tls
from framewatch.settings import Settings
from framewatch.streams.covers import Covers
from ingest.app import add_callback_routes
from ingest.covers import add_cover_routes
from workers import stages
from workers.service import Workers, build_stage

# The process's resources, on the application that closes them.
RESOURCES = web.AppKey("resources", Resources)


def resources_for(settings: Settings) -> Resources:
    """The shared parts of a process, over the deployment's topology (each stage's queue bound to what it
    consumes)."""
    return Resources(settings, stages.topology(settings.broker.namespace))


def close_with(app: web.Application, resources: Resources) -> None:
    """Close the process's resources when this application stops, after everything appended later (aiohttp
    runs cleanups in reverse)."""

    async def lifecycle(_: web.Application) -> AsyncIterator[None]:
        yield
        await resources.close()

    app[RESOURCES] = resources
    app.cleanup_ctx.insert(0, lifecycle)


def ingest_apps(settings: Settings, resources: Resources) -> tuple[web.Application, web.Application]:
    """The callback listener's application (public) and the admin listener's (internal), over the process's
    resources. The callback application starts them."""
    # aiohttp refuses larger bodies itself; the handlers turn that into the contract's 413 JSON.
    ingress = settings.ingress
    callbacks = web.Application(client_max_size=ingress.body_max_bytes)
    admin = web.Application(client_max_size=ingress.body_max_bytes)
    config, store, publisher, blobs = (
        resources.live_config,
        resources.config_store,
        resources.publisher,
        resources.blobs,
    )
    api = admin_api.AdminApi(
        config,
        throttle.create(resources.redis, settings.broker.namespace),
        allow_private_urls=settings.delivery.allow_private,
        key_overlap=ingress.key_rotation_overlap,
        streams=resources.streams,
        body_read_timeout=ingress.body_read_timeout,
        vault=keys.vault_for(settings),
        public_url=settings.public_url or f"http://{settings.host}:{settings.port}",
    )
    cloud = CloudApi(api, resources.redis, settings.broker.namespace)
    covers = Covers(resources.streams, blobs)
    console = console_app.Console(
        settings.console,
        config,
        resources.streams,
        covers,
        blobs,
        publisher,
        amqp_urls=settings.broker.amqp_url.get_secret_value(),
        topology=resources.topology,
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
        # aiohttp stopped accepting and waited for in-flight callbacks: their publishes are done. The resources
        # close after every other user stopped.

    callbacks.cleanup_ctx.append(lifecycle)
    add_callback_routes(
        callbacks,
        registry.create_all(settings),
        config,
        resources.dedupe,
        publisher,
        body_max_bytes=ingress.body_max_bytes,
        body_read_timeout=ingress.body_read_timeout,
        clock_skew=ingress.clock_skew,
    )
    add_cover_routes(callbacks, covers, settings.streams.cover_max_age)
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


def ingest_listeners(
    settings: Settings, port: int | None = None, admin_port: int | None = None, resources: Resources | None = None
) -> list[Listener]:
    owned = resources is None
    resources = resources or resources_for(settings)
    callbacks, admin = ingest_apps(settings, resources)
    if owned:
        close_with(callbacks, resources)
    return [
        Listener(callbacks, settings.host, settings.port if port is None else port),
        Listener(
            admin,
            settings.admin_host,
            settings.admin_port if admin_port is None else admin_port,
            server_tls(settings.admin_tls_cert, settings.admin_tls_key),
        ),
    ]


def add_workers(app: web.Application, resources: Resources, names: list[str]) -> Workers:
    """Worker stages that start and drain with this application."""
    workers = Workers(resources, [build_stage(name, resources) for name in names])

    async def lifecycle(_: web.Application) -> AsyncIterator[None]:
        workers.start()
        yield
        await workers.stop()

    app.cleanup_ctx.append(lifecycle)
    return workers


def run_listeners(settings: Settings, port: int | None = None, admin_port: int | None = None) -> list[Listener]:
    """`framewatch run`: both listeners and every stage in one process, over one set of resources."""
    resources = resources_for(settings)
    listeners = ingest_listeners(settings, port, admin_port, resources)
    callbacks = listeners[0].app
    close_with(callbacks, resources)
    workers = add_workers(callbacks, resources, list(stages.NAMES))
    callbacks[health.READINESS]["workers"] = lambda: workers.ready
    return listeners


def worker_listeners(settings: Settings, names: list[str], port: int | None = None) -> list[Listener]:
    """`framewatch worker STAGE...`: the stages, with health and metrics on the worker port."""
    app = web.Application()
    resources = resources_for(settings)
    close_with(app, resources)
    workers = add_workers(app, resources, names)
    health.add_routes(app, {"broker": lambda: workers.ready})
    return [Listener(app, settings.host, settings.worker_port if port is None else port)]
