"""/healthz (the process is alive), /readyz (it can do its job), /metrics (Prometheus) on every process: on the
admin listener for the ingress, on the worker port for workers."""

from __future__ import annotations

from collections.abc import Callable

import orjson
from aiohttp import web
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

# Named checks: each returns True when healthy. /readyz answers 503 and names the failing ones otherwise.
ReadinessChecks = dict[str, Callable[[], bool]]


class Lifecycle:
    """Mutable process state the probes read; set before the app starts, changed in place afterwards."""

    draining: bool = False


LIFECYCLE = web.AppKey("lifecycle", Lifecycle)
READINESS = web.AppKey("readiness", dict)


async def healthz(_: web.Request) -> web.Response:
    return web.Response(body=b'{"status":"ok"}', content_type="application/json")


async def readyz(request: web.Request) -> web.Response:
    checks: ReadinessChecks = request.app[READINESS]
    failing = [name for name, check in checks.items() if not check()]
    if request.app[LIFECYCLE].draining:
        failing.append("draining")
    body = {"status": "ready" if not failing else "not ready", "failing": failing}
    return web.Response(status=200 if not failing else 503, body=orjson.dumps(body), content_type="application/json")


async def metrics(_: web.Request) -> web.Response:
    # The text format every Prometheus reads, version included: a header, since aiohttp's content_type drops it.
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4})


def add_routes(app: web.Application, checks: ReadinessChecks, *, with_metrics: bool = True) -> None:
    """The probes; /metrics too unless the application faces the internet (the callback listener), whose
    metrics the admin listener serves."""
    app[READINESS] = checks
    app[LIFECYCLE] = Lifecycle()

    async def start_draining(app: web.Application) -> None:
        app[LIFECYCLE].draining = True

    app.on_shutdown.append(start_draining)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    if with_metrics:
        app.router.add_get("/metrics", metrics)
