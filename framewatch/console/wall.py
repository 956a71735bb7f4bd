"""The live wall: an account's streams with their covers, kept current by server-sent events, a stream's recent
frames, and the images behind them."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any
from urllib.parse import urlencode

import orjson
from aiohttp import web

from framewatch.blobs.base import BlobStore
from framewatch.console.pages import PREFIX, SECURITY_HEADERS, Pages
from framewatch.console.sessions import Session
from framewatch.providers.refusals import Refused
from framewatch.streams.covers import Covers
from framewatch.streams.store import StreamStore, cover_tag

# Server-sent events: how often a wall looks for changed streams, how far back it looks again (transactions that
# commit late), and how many walls one process feeds at once.
EVENTS_EVERY = 1.0
EVENTS_OVERLAP = 5.0
MAX_EVENT_STREAMS = 200
MAX_EVENT_STREAMS_PER_ACCOUNT = 20  # one account's open walls never take the others' share
KEEPALIVE = 15.0


class Wall:
    def __init__(self, pages: Pages, streams: StreamStore, covers: Covers, blobs: BlobStore) -> None:
        self.pages = pages
        self.streams = streams
        self.covers = covers
        self.blobs = blobs
        self.event_streams = 0
        self.account_streams: Counter[int] = Counter()

    async def wall(self, request: web.Request, session: Session) -> web.Response:
        domain, app = request.query.get("domain", ""), request.query.get("app", "")
        total, rows = await self.streams.streams(session.account_id, domain=domain, app=app, limit=500)
        return self.pages.page(
            "wall.html",
            session,
            streams=[_tile(row, self.streams.is_live(row)) for row in rows],
            total=total,
            domains=await self.streams.domains(session.account_id),
            domain=domain,
            app=app,
            events=f"{PREFIX}/events?" + urlencode({"domain": domain, "app": app}),
        )

    async def events(self, request: web.Request, session: Session) -> web.StreamResponse:
        """Server-sent events: each changed stream of the account (filtered) as it changes."""
        if self.event_streams >= MAX_EVENT_STREAMS:
            return web.json_response({"error": "TooManyWalls"}, status=503, headers={"Retry-After": "5"})
        if self.account_streams[session.account_id] >= MAX_EVENT_STREAMS_PER_ACCOUNT:
            body = {"error": "TooManyWallsForAccount", "limit": MAX_EVENT_STREAMS_PER_ACCOUNT}
            return web.json_response(body, status=429, headers={"Retry-After": "5"})
        domain, app = request.query.get("domain", ""), request.query.get("app", "")
        response = web.StreamResponse(
            headers={**SECURITY_HEADERS, "Content-Type": "text/event-stream", "X-Accel-Buffering": "no"}
        )
        await response.prepare(request)
        self.event_streams += 1
        self.account_streams[session.account_id] += 1
        sent: dict[tuple[str, str], tuple[Any, ...]] = {}
        since = time.time() - EVENTS_OVERLAP
        quiet = 0.0
        try:
            # A wall whose browser went away is noticed within a turn, not at the next write: it gives its slot back.
            while request.transport is not None and not request.transport.is_closing():
                _, rows = await self.streams.streams(
                    session.account_id, domain=domain, app=app, live_only=False, changed_since=since, limit=1000
                )
                for row in rows:
                    tile = _tile(row, self.streams.is_live(row))
                    state = (tile["live"], tile["etag"], tile["verdict"], tile["last_frame"])
                    if sent.get((row.domain, row.name)) != state:
                        sent[(row.domain, row.name)] = state
                        await response.write(b"event: stream\ndata: " + orjson.dumps(tile) + b"\n\n")
                        quiet = 0.0
                if rows:
                    since = max(row.updated_at for row in rows) - EVENTS_OVERLAP
                quiet += EVENTS_EVERY
                if quiet >= KEEPALIVE:  # a comment line keeps proxies from closing an idle stream
                    await response.write(b": keepalive\n\n")
                    quiet = 0.0
                await asyncio.sleep(EVENTS_EVERY)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.event_streams -= 1
            self.account_streams[session.account_id] -= 1
            if not self.account_streams[session.account_id]:
                del self.account_streams[session.account_id]
        return response

    async def stream(self, request: web.Request, session: Session) -> web.Response:
        domain, name = request.match_info["domain"], request.match_info["stream"]
        frames = await self.streams.recent_frames(session.account_id, domain, name, limit=24)
        if not frames:
            raise web.HTTPNotFound(text="no such stream")
        return self.pages.page("stream.html", session, domain=domain, name=name, frames=frames)

    async def cover(self, request: web.Request, session: Session) -> web.StreamResponse:
        domain, name = request.match_info["domain"], request.match_info["stream"]
        if domain not in await self.streams.domains(session.account_id):
            raise web.HTTPNotFound()
        try:
            return await self.covers.respond(request, domain, name, "private, max-age=1")
        except Refused as refused:
            return web.json_response({"error": refused.reason.name}, status=refused.reason.status)

    async def frame_image(self, request: web.Request, session: Session) -> web.StreamResponse:
        frame = await self.streams.frame(session.account_id, request.match_info["id"])
        if frame is None:
            raise web.HTTPNotFound()
        if frame.image_key is None:  # a provider's verdict on a frame never stored here: its URL, as plain text
            # Never a redirect: a URL a callback named must not be followed from the console's origin.
            text = f"This frame was not stored here. The provider's copy: {frame.source_url}\n"
            return web.Response(status=404, text=text, content_type="text/plain", headers=SECURITY_HEADERS)
        try:
            data = await self.blobs.get(frame.image_key)
        except KeyError:
            raise web.HTTPNotFound() from None
        return web.Response(
            body=data, content_type=frame.image_content_type, headers={"Cache-Control": "private, max-age=3600"}
        )


def _tile(row: Any, live: bool) -> dict[str, Any]:
    etag = cover_tag(row.cover_frame_id) if row.cover_frame_id else None
    return {
        "domain": row.domain,
        "name": row.name,
        "app": row.app,
        "live": live,
        "etag": etag,
        "verdict": row.last_suggestion,
        "last_frame": row.last_frame_at,
        "cover": f"{PREFIX}/covers/{row.domain}/{row.name}.jpg?v={etag}" if etag else None,
        "href": f"{PREFIX}/streams/{row.domain}/{row.name}",
    }
