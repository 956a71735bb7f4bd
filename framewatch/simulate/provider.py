"""The cloud's side of the simulator: the image server that holds the streams' screenshots, and callbacks sent and
retried as the cloud does; each cloud's own events, signatures and retry policy are in its package."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, ClassVar

import aiohttp
import orjson
from aiohttp import web

from framewatch.simulate import frames


@dataclass
class Event:
    key: str
    body: dict[str, Any]
    screenshot: bool
    first_sent: float = 0.0
    accepted: bool = False
    gave_up: bool = False


@dataclass
class Options:
    ingress: str
    domain: str
    key: str
    image_base_url: str  # where the fetch stage downloads screenshots from
    width: int = 640
    height: int = 360
    retry_scale: float = 0.05  # 1.0: the provider's real timing; 0.05: 2 minutes become 6 seconds
    provider: str = "tencent"  # which cloud to play: tencent or alibaba
    webhook_secret: str | None = None  # the template's WebhookSecret: the platform checks webhook-signature with it


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    params: dict[str, str] | None = None
    body: bytes | None = None
    headers: dict[str, str] | None = None


@dataclass
class SimulatedCloud:
    """What every cloud's simulator shares: the image server, the events it made, sending with the cloud's retries.
    Each cloud's package says what its callbacks are (`framewatch/providers/<cloud>/simulator.py`)."""

    options: Options
    events: dict[str, Event] = field(default_factory=dict)
    attempts: int = 0
    refused: Counter[str] = field(default_factory=Counter)  # by the ingress's error name, per attempt
    images: dict[str, bytes] = field(default_factory=dict)  # rendered, not yet downloaded
    image_hits: int = 0
    # Unique across runs too: the ingress would rightly collapse a repeated sequence as the provider's retry.
    _sequence: itertools.count[int] = field(default_factory=lambda: itertools.count(int(time.time() * 1000) * 1000))
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _session: aiohttp.ClientSession | None = None

    # -- the image server -------------------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/frames/{stream}/{name}", self.image)
        return app

    async def image(self, request: web.Request) -> web.Response:
        path = request.path
        body = self.images.pop(path, None)
        if body is None:  # downloaded before (a fetch retry): render it again, byte for byte the same
            stream, name = request.match_info["stream"], request.match_info["name"]
            try:
                sequence, millis = (int(part) for part in name.removesuffix(".jpg").split("-"))
            except ValueError:
                raise web.HTTPNotFound() from None
            body = frames.render(stream, sequence, millis / 1000, self.options.width, self.options.height)
        self.image_hits += 1
        return web.Response(body=body, content_type="image/jpeg")

    # -- events ---------------------------------------------------------------------------------------------------
    timeout: ClassVar[float] = 20.0  # seconds the cloud waits for an answer

    # -- what a cloud's simulator says (its package's simulator.py) ----------------------------------------------
    def stream_event(self, stream: str, begin: bool) -> Event:
        raise NotImplementedError

    async def periodic(self, stream: str) -> Event:
        """What a live stream sends every interval."""
        raise NotImplementedError

    def moderation(self, stream: str, frame: Event) -> Event | None:
        """The cloud's own moderation flagging a frame, when its callbacks carry such verdicts."""
        return None

    def retry_policy(self, event: Event) -> tuple[int, float]:
        """How many times the cloud retries this event, and how long apart (before --retry-scale)."""
        raise NotImplementedError

    def request(self, event: Event) -> Request:
        """One attempt at an event, signed anew as the cloud does on every retry."""
        raise NotImplementedError

    def frame(self, stream: str) -> tuple[int, float, str, bytes]:
        """A new screenshot of the stream, held by the image server: (sequence, captured at, path, JPEG)."""
        sequence = next(self._sequence)
        now = time.time()
        path = f"/frames/{stream}/{sequence}-{int(now * 1000)}.jpg"
        # Inline, not in a thread: half a millisecond, cheaper than the thread handoff on a busy machine.
        image = frames.render(stream, sequence, int(now * 1000) / 1000, self.options.width, self.options.height)
        self.images[path] = image
        return sequence, now, path, image

    def _event(self, key: str, body: dict[str, Any], screenshot: bool) -> Event:
        event = Event(key, body, screenshot)
        self.events[key] = event
        return event

    # -- sending ----------------------------------------------------------------------------------------------
    def send(self, event: Event) -> None:
        task = asyncio.create_task(self._deliver(event))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def drain(self) -> None:
        """Wait for every callback to be accepted or given up (retries included)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _deliver(self, event: Event) -> None:
        retries, interval = self.retry_policy(event)
        event.first_sent = time.monotonic()
        for attempt in range(retries + 1):
            if attempt:
                await asyncio.sleep(interval * self.options.retry_scale)
            if await self._attempt(event):
                event.accepted = True
                return
        event.gave_up = True

    async def _attempt(self, event: Event) -> bool:
        assert self._session is not None
        request = self.request(event)
        self.attempts += 1
        try:
            async with self._session.request(
                request.method,
                self.options.ingress.rstrip("/") + request.path,
                params=request.params,
                data=request.body,
                headers=request.headers,
            ) as response:
                answer = await response.read()
                if response.status == 200:
                    return True
                try:
                    reason = orjson.loads(answer).get("error") or str(response.status)
                except orjson.JSONDecodeError:
                    reason = str(response.status)
        except TimeoutError:
            reason = "timeout"
        except aiohttp.ClientError:
            reason = "connection_error"
        self.refused[reason] += 1
        return False

    async def open(self) -> None:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            connector=aiohttp.TCPConnector(limit=256),
        )

    async def close(self) -> None:
        if self._session:
            await self._session.close()
