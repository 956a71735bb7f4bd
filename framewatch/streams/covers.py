"""Serving covers: the newest safe frame of a stream, with ETag and a CDN-friendly Cache-Control.

Looked up in the stream store at most every LOOKUP_TTL per stream and process (a cover that a later verdict flags
is replaced well within a second); the image bytes of a cover never change for one key, so they are cached.
"""

from __future__ import annotations

import time
from collections import OrderedDict

import asyncpg
from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from framewatch.blobs.base import BlobStore
from framewatch.providers.refusals import Reason, Refused
from framewatch.streams.store import Cover, StreamStore

LOOKUP_TTL = 0.2
MAX_LOOKUPS = 10_000
MAX_CACHED_BYTES = 32 * 1024 * 1024


class Covers:
    def __init__(self, store: StreamStore, blobs: BlobStore) -> None:
        self.store = store
        self.blobs = blobs
        self._lookups: OrderedDict[tuple[str, str], tuple[float, bool, bool, Cover | None]] = OrderedDict()
        self._images: OrderedDict[str, bytes] = OrderedDict()
        self._cached_bytes = 0

    async def lookup(self, domain: str, stream: str) -> tuple[bool, bool, Cover | None]:
        """(whether the stream was ever seen, whether it is live, its cover if it has one)."""
        key = (domain, stream)
        now = time.monotonic()
        cached = self._lookups.get(key)
        if cached is not None and now - cached[0] < LOOKUP_TTL:
            return cached[1], cached[2], cached[3]
        known, live, cover = await self.store.cover_state(domain, stream)
        self._lookups[key] = (now, known, live, cover)
        self._lookups.move_to_end(key)
        while len(self._lookups) > MAX_LOOKUPS:  # bounded whatever names callers try
            self._lookups.popitem(last=False)
        return known, live, cover

    async def image(self, cover: Cover) -> bytes:
        data = self._images.get(cover.key)
        if data is not None:
            self._images.move_to_end(cover.key)
            return data
        data = await self.blobs.get(cover.key)
        self._images[cover.key] = data
        self._cached_bytes += len(data)
        while self._cached_bytes > MAX_CACHED_BYTES and self._images:
            _, dropped = self._images.popitem(last=False)
            self._cached_bytes -= len(dropped)
        return data

    async def respond(self, request: web.Request, domain: str, stream: str, cache_control: str) -> web.Response:
        """The cover's image with its ETag (304 when the client holds it); Refused with the reason otherwise."""
        held = request.headers.get("If-None-Match", "")
        try:
            known, live, cover = await self.lookup(domain, stream)
            if cover is not None and cover.etag not in held:
                data = await self.image(cover)
        except (SQLAlchemyError, OSError, TimeoutError, asyncpg.PostgresError) as exc:
            raise Refused(Reason.StoreUnavailable, f"the stream store did not answer: {type(exc).__name__}") from None
        except KeyError:  # the frame's blob is gone (removed by hand, or by a bucket lifecycle rule)
            raise Refused(Reason.NoSafeCover, f"the cover of {stream!r} is no longer stored") from None
        if not known:
            raise Refused(Reason.StreamNotFound, f"no stream {stream!r} of {domain!r} was ever seen")
        if cover is None:
            raise Refused(Reason.NoSafeCover, f"{stream!r} has no frame that moderation passed yet")
        # Whether the stream is live now (begun, not ended, heard from within the silence): a room list can tell a
        # stream whose end was lost from one still pushing.
        headers = {"ETag": cover.etag, "Cache-Control": cache_control, "X-Stream-Live": "true" if live else "false"}
        if cover.etag in held:
            return web.Response(status=304, headers=headers)
        return web.Response(body=data, content_type=cover.content_type, headers=headers)
