"""The platform's receiving URLs: a real HTTP server on loopback that checks both signatures of every delivery."""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from framewatch.simulate.platform import signatures_valid
from tests.helpers import KEY, free_port


@dataclass
class Delivery:
    path: str
    body: dict[str, Any]
    headers: dict[str, str]
    at: float


class Sink:
    def __init__(self, key: str = KEY) -> None:
        self.key = key
        self.port = free_port()
        self.deliveries: dict[str, list[Delivery]] = defaultdict(list)
        self.hits: dict[str, int] = defaultdict(int)
        self.status: dict[str, int] = {}  # path -> status to answer instead of 200
        self.bad_signatures = 0
        self._runner: web.AppRunner | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        self.hits[request.path] += 1
        if not signatures_valid(raw, request.headers, self.key, time.time()):
            self.bad_signatures += 1
            return web.Response(status=401)
        status = self.status.get(request.path, 200)
        if status == 200:
            self.deliveries[request.path].append(
                Delivery(request.path, orjson.loads(raw), dict(request.headers), time.monotonic())
            )
        return web.Response(status=status, text="{}")

    async def start(self) -> Sink:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.2)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
