"""The ingress application: callbacks, admin API, health and metrics over one config store, dedupe and publisher."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator

from aiohttp import web

from framewatch.admin.api import AdminApi
from framewatch.admin.api import add_routes as add_admin_routes
from framewatch.blobs.factory import local_root
from framewatch.broker.publisher import Publisher
from framewatch.broker.topology import Topology
from framewatch.config.live import LiveConfig, live_config
from framewatch.config.store import ConfigStore
from framewatch.dedupe import factory as dedupe_factory
from ingest.callbacks import CallbackHandler
from framewatch.runtime import health
from framewatch.runtime.settings import Settings

PUBLISHER = web.AppKey("publisher", Publisher)
LIVE_CONFIG = web.AppKey("live_config", LiveConfig)
STORE = web.AppKey("store", ConfigStore)


def create_app(settings: Settings) -> web.Application:
    # aiohttp refuses larger bodies itself; the handler turns that into the contract's 413 JSON.
    app = web.Application(client_max_size=settings.body_max_bytes)
    config = live_config(settings)
    store = config.store
    admin = AdminApi(settings, config)
    dedupe = dedupe_factory.create(settings)
    publisher = Publisher(settings.amqp_url.get_secret_value(), Topology(settings.namespace), settings.publish_timeout)
    app[STORE], app[LIVE_CONFIG], app[PUBLISHER] = store, config, publisher

    async def lifecycle(_: web.Application) -> AsyncIterator[None]:
        await store.migrate()
        await config.start()
        publisher.start()
        # Everything alive now lives as long as the process: keep it out of every future collection.
        gc.collect()
        gc.freeze()
        yield
        # Runs after aiohttp stopped accepting and waited for in-flight callbacks: their publishes are done.
        await publisher.close()
        await dedupe.close()
        await admin.close()
        await config.close()
        await store.close()

    app.cleanup_ctx.append(lifecycle)
    handler = CallbackHandler(settings, config, dedupe, publisher)
    app.router.add_post("/callbacks/tencent", handler.handle)
    app.router.add_post("/callbacks/tencent/{domain}", handler.handle)
    add_admin_routes(app, admin)
    health.add_routes(app, {"broker": lambda: publisher.ready})
    blob_root = local_root(settings)
    if blob_root is not None:  # frames and thumbnails in a local directory: the platform fetches them here
        blob_root.mkdir(parents=True, exist_ok=True)
        app.router.add_static("/blobs", blob_root, follow_symlinks=False)
    return app
