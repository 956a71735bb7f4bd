"""The provider's side: streams that take a screenshot every few seconds, the image server that holds them, and
callbacks signed and retried as CSS sends them (docs/protocols/tencent.md §1)."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from yarl import URL

from framewatch.providers.alibaba import provider as alibaba
from framewatch.signing import css
from framewatch.simulate import frames

# CSS's retry policy: screenshots 5 retries 2 minutes apart; every other event 12 retries 1 minute apart.
SCREENSHOT_RETRIES, SCREENSHOT_RETRY_INTERVAL = 5, 120.0
OTHER_RETRIES, OTHER_RETRY_INTERVAL = 12, 60.0
CALLBACK_TIMEOUT = 20.0  # no answer within 20 s is a failure
# ApsaraVideo Live's: every callback 5 retries 1 second apart, 5 s to answer (docs/protocols/alibaba.md §1).
ALIBABA_RETRIES, ALIBABA_RETRY_INTERVAL, ALIBABA_TIMEOUT = 5, 1.0, 5.0


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
class Provider:
    """Tencent CSS: screenshots, stream begin/end and its own moderation verdicts, POSTed JSON signed in the body."""

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
    def _common(self) -> dict[str, Any]:
        return {
            "app": self.options.domain,
            "appid": 1250000000,
            "appname": "live",
            "stream_param": f"txSecret=sim&txTime={int(time.time()) + 86400:X}",
        }

    async def screenshot(self, stream: str) -> Event:
        sequence = next(self._sequence)
        now = time.time()
        path = f"/frames/{stream}/{sequence}-{int(now * 1000)}.jpg"
        # Inline, not in a thread: half a millisecond, cheaper than the thread handoff on a busy machine.
        image = frames.render(stream, sequence, int(now * 1000) / 1000, self.options.width, self.options.height)
        self.images[path] = image
        body = {
            **self._common(),
            "event_type": 200,
            "stream_id": stream,
            "channel_id": stream,
            "create_time": int(now),
            "file_size": len(image),
            "width": self.options.width,
            "height": self.options.height,
            "pic_url": path,
            "pic_full_url": self.options.image_base_url + path,
        }
        return self._event(f"200:{path}", body, screenshot=True)

    def stream_event(self, stream: str, begin: bool) -> Event:
        sequence = str(next(self._sequence))
        body = {
            **self._common(),
            "event_type": 1 if begin else 0,
            "stream_id": stream,
            "channel_id": stream,
            "sequence": sequence,
            "event_time": int(time.time()),
            "errcode": 0,
            "errmsg": "ok",
            "node": "100.121.160.92",
            "user_ip": "119.29.94.245",
            "set_id": 2,
            "width": self.options.width,
            "height": self.options.height,
        }
        if not begin:
            body["push_duration"] = "0"
        return self._event(f"{body['event_type']}:{sequence}", body, screenshot=False)

    timeout = CALLBACK_TIMEOUT

    async def periodic(self, stream: str) -> Event:
        """What a live stream sends every interval."""
        return await self.screenshot(stream)

    def moderation(self, stream: str, frame: Event) -> Event | None:
        """The provider's own moderation model flagging a frame (event_type 317)."""
        now = int(time.time())
        body = {
            **self._common(),
            "event_type": 317,
            "streamId": stream,
            "channelId": stream,
            "img": frame.body["pic_full_url"],
            "type": [1],
            "socre": [91],
            "suggestion": "Block",
            "label": "Porn",
            "subLabel": "PornHigh",
            "level": 0,
            "screenshotTime": frame.body["create_time"],
            "sendTime": now,
        }
        return self._event(f"317:{body['img']}:{now}", body, screenshot=False)

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

    def retry_policy(self, event: Event) -> tuple[int, float]:
        """How many times the cloud retries this event, and how long apart (before --retry-scale)."""
        return (
            (SCREENSHOT_RETRIES, SCREENSHOT_RETRY_INTERVAL)
            if event.screenshot
            else (OTHER_RETRIES, OTHER_RETRY_INTERVAL)
        )

    def request(self, event: Event) -> Request:
        """One attempt at an event, signed anew as the cloud does on every retry."""
        body = css.signed(event.body, self.options.key, int(time.time()))
        headers = {"Content-Type": "application/json"}
        return Request("POST", "/callbacks/tencent", body=orjson.dumps(body), headers=headers)

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


@dataclass
class AlibabaProvider(Provider):
    """ApsaraVideo Live: publish and publish_done as GET with query parameters, recordings as POST JSON, each
    signed in ALI-LIVE-TIMESTAMP and ALI-LIVE-SIGNATURE. Its snapshot callback's fields are not documented where
    framewatch could read them, so a stream's periodic event here is a recording file, not a screenshot."""

    timeout = ALIBABA_TIMEOUT

    def stream_event(self, stream: str, begin: bool) -> Event:
        now = next(self._sequence)  # unique per event: the cloud's `time` is the natural key
        params = {
            "action": "publish" if begin else "publish_done",
            "ip": "192.0.2.10",
            "id": stream,
            "app": self.options.domain,
            "appname": "live",
            "time": str(now // 1_000_000),
            "usrargs": f"seq={now}",
            "node": "sim-node",
        }
        return self._event(f"{params['action']}:{params['usrargs']}", params, screenshot=False)

    async def periodic(self, stream: str) -> Event:
        sequence = next(self._sequence)
        started = int(time.time())
        body = {
            "domain": self.options.domain,
            "app": "live",
            "stream": stream,
            "uri": f"live/{stream}/{sequence}.flv",
            "duration": 10.0,
            "start_time": started - 10,
            "stop_time": started,
            "push_args": {},
        }
        return self._event(f"record:{body['uri']}", body, screenshot=False)

    def moderation(self, stream: str, frame: Event) -> Event | None:
        return None  # the cloud's own moderation reports go to its own console, not to these callbacks

    def retry_policy(self, event: Event) -> tuple[int, float]:
        return ALIBABA_RETRIES, ALIBABA_RETRY_INTERVAL

    def request(self, event: Event) -> Request:
        timestamp = str(int(time.time()))
        if "action" in event.body:  # publish callbacks: signed with the ingest domain, sent as GET
            signature = alibaba.sign(self.options.domain, timestamp, self.options.key)
            headers = {"ALI-LIVE-TIMESTAMP": timestamp, "ALI-LIVE-SIGNATURE": signature}
            return Request("GET", "/callbacks/alibaba", params=event.body, headers=headers)
        # Everything else: POST JSON, signed with the host of the callback URL.
        host = URL(self.options.ingress).host or ""
        signature = alibaba.sign(host, timestamp, self.options.key)
        headers = {
            "Content-Type": "application/json",
            "ALI-LIVE-TIMESTAMP": timestamp,
            "ALI-LIVE-SIGNATURE": signature,
        }
        return Request("POST", "/callbacks/alibaba", body=orjson.dumps(event.body), headers=headers)


PROVIDERS: dict[str, type[Provider]] = {"tencent": Provider, "alibaba": AlibabaProvider}
