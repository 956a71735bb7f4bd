"""What the two cloud API backends share: one client, one call per frame, the image to send, status handling."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import aiohttp
import orjson

from framewatch.blobs.base import BlobStore
from framewatch.runtime.http import GuardedClient, retry_after
from schemas.messages import FrameStored, StoredImage, Verdict
from workers.failures import Permanent
from workers.moderate.backends.base import BackendUnavailable, ModerationBackend


class ApiBackend(ModerationBackend):
    def __init__(self, blobs: BlobStore, *, timeout: float, concurrency: int, send_url: bool) -> None:
        self.blobs = blobs
        self.send_url = send_url  # send the image's URL (the API must reach it), not its bytes
        self.client = GuardedClient(
            allow_private=True,  # the operator's own endpoint or proxy often sits on a private address
            connect_timeout=min(5.0, timeout),
            total_timeout=timeout,
            limit=concurrency,
        )

    async def start(self) -> None:
        await self.blobs.start()

    async def moderate(self, frames: list[FrameStored]) -> list[Verdict | None]:
        return [await self.moderate_one(frame) for frame in frames]

    @abstractmethod
    async def moderate_one(self, frame: FrameStored) -> Verdict:
        """One API call for one frame."""

    async def close(self) -> None:
        await self.client.close()


def image_for_api(frame: FrameStored) -> StoredImage:
    """The largest thumbnail: small to send, large enough for any classifier; the original when none."""
    return max(frame.thumbnails, key=lambda t: t.width * t.height) if frame.thumbnails else frame.original


# A moderation answer is a few hundred bytes of JSON; a larger one is not read past this (memory stays bounded
# whatever the API, or something posing as it, sends).
MAX_ANSWER_BYTES = 256 * 1024


async def json_answer(response: aiohttp.ClientResponse, api: str) -> Any:
    """The API's JSON answer, read within MAX_ANSWER_BYTES; ValueError when it is not JSON."""
    raw = bytearray()
    async for chunk in response.content.iter_any():
        raw += chunk
        if len(raw) > MAX_ANSWER_BYTES:
            raise Permanent(f"{api}_answer_too_large", f"over {MAX_ANSWER_BYTES} bytes")
    return orjson.loads(raw)


def check_status(response: aiohttp.ClientResponse, api: str) -> None:
    """429 and 5xx: the API is unavailable (retry, count towards the breaker); other non-2xx: it refuses the frame."""
    if response.status == 429 or response.status >= 500:
        raise BackendUnavailable(f"{api}_http_{response.status}", "", retry_after(response))
    if not 200 <= response.status < 300:
        raise Permanent(f"{api}_http_{response.status}")
