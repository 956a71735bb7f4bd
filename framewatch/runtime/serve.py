"""Run aiohttp applications as a service: uvloop, one or more listeners, graceful drain on SIGTERM, no access log on
the hot path."""

from __future__ import annotations

import asyncio
import gc
import signal
import ssl
from dataclasses import dataclass

import structlog
from aiohttp import web

from framewatch.runtime import tracing

log = structlog.get_logger("framewatch")


@dataclass(frozen=True, slots=True)
class Listener:
    app: web.Application
    host: str
    port: int
    tls: ssl.SSLContext | None = None  # HTTPS when set


def server_tls(cert: str | None, key: str | None) -> ssl.SSLContext | None:
    """A TLS server context from PEM files (TLS 1.2 at least), or None when no certificate is given."""
    if not cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key or None)
    return context


def new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency except on Windows
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def tune_gc() -> None:
    """A service allocates many short-lived containers per message (parsed JSON, models, frames): collecting the
    youngest generation every 700 allocations, the default, costs more CPU than the memory it returns."""
    gc.set_threshold(50_000, 20, 20)


def serve(listeners: list[Listener], name: str, shutdown_timeout: float) -> None:
    """Start every listener in order, and on SIGTERM or SIGINT drain them in reverse order: the first one's
    application owns what the others share (store, publisher, workers), so it closes last."""
    tune_gc()
    try:
        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            runner.run(_serve(listeners, name, shutdown_timeout))
    finally:
        tracing.shutdown()  # the spans still buffered are exported before the process goes (cli.py starts it)
    log.info("stopped", service=name)


async def _serve(listeners: list[Listener], name: str, shutdown_timeout: float) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    runners: list[web.AppRunner] = []
    try:
        for listener in listeners:
            runner = web.AppRunner(listener.app, access_log=None, shutdown_timeout=shutdown_timeout)
            await runner.setup()
            runners.append(runner)
            await web.TCPSite(runner, listener.host, listener.port, ssl_context=listener.tls).start()
            log.info("listening", service=name, host=listener.host, port=listener.port, tls=listener.tls is not None)
        await stop.wait()
    finally:
        for runner in reversed(runners):
            await runner.cleanup()
