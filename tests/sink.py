"""The platform's receiving URLs: a real HTTP server on loopback that checks both signatures of every delivery: the
body's `t`/`sign` as a CSS receiver does, and the Standard Webhooks headers with the specification's official
library (`standardwebhooks`), given the template's WebhookSecret as it is."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.helpers import KEY, WEBHOOK_SECRET, free_port


def body_sign_valid(body: dict[str, Any], key: str, now: float) -> bool:
    """As a receiver written for CSS checks: sign = md5(key + t), t in the future."""
    try:
        t = int(body["t"])
        return body["sign"] == hashlib.md5(f"{key}{t}".encode()).hexdigest() and t >= now
    except (KeyError, TypeError, ValueError):
        return False


@dataclass
class Delivery:
    path: str
    body: dict[str, Any]
    headers: dict[str, str]
    at: float
    raw: bytes = b""


class Sink:
    def __init__(self, key: str = KEY, webhook_secret: str = WEBHOOK_SECRET, delay: float = 0.0) -> None:
        self.key = key
        self.delay = delay  # seconds before answering: a slow receiver
        self.verifier = Webhook(webhook_secret)
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
        if self.delay:
            await asyncio.sleep(self.delay)
        try:
            body = self.verifier.verify(raw, dict(request.headers))
        except WebhookVerificationError:
            body = None
        if not isinstance(body, dict) or not body_sign_valid(body, self.key, time.time()):
            self.bad_signatures += 1
            return web.Response(status=401)
        status = self.status.get(request.path, 200)
        if status == 200:
            self.deliveries[request.path].append(
                Delivery(request.path, body, dict(request.headers), time.monotonic(), raw)
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
