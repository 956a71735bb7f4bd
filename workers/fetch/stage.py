"""The fetch stage: screenshot callback in, "frame stored" message out."""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import structlog
from aio_pika.abc import AbstractIncomingMessage
from pydantic import ValidationError

from framewatch.blobs.base import Blob, BlobStore
from framewatch.broker.topology import FRAME_STORED
from framewatch.runtime import metrics
from framewatch.runtime.http import GuardedClient
from framewatch.runtime.settings import Settings
from schemas.messages import CallbackReceived, FrameModerated, FrameStored, StoredImage
from framewatch.providers.tencent.events import ScreenshotEvent
from workers.failures import Permanent, Transient
from workers.fetch import images
from workers.fetch.download import download
from workers.moderate.stage import moderated_output
from workers.runtime import Output, Stage

log = structlog.get_logger("framewatch.fetch")

_UNSAFE_KEY_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


def key_part(value: str) -> str:
    """A path segment that cannot climb out of its folder or clash with the key layout."""
    cleaned = _UNSAFE_KEY_CHARS.sub("_", value).strip("._") or "_"
    return cleaned[:128]


def blob_key(domain: str, stream_id: str, capture_time: int, sha256: str) -> str:
    """Deterministic: the same frame always lands on the same key, so storing it twice changes nothing."""
    day = time.strftime("%Y/%m/%d", time.gmtime(capture_time))
    return f"{key_part(domain)}/{key_part(stream_id)}/{day}/{capture_time}-{sha256[:20]}"


class FetchStage(Stage):
    name = "fetch"

    def __init__(self, settings: Settings, blobs: BlobStore) -> None:
        super().__init__(settings.fetch_concurrency)
        self.settings = settings
        self.blobs = blobs
        self.boxes = settings.thumbnail_boxes()
        # Only the operator's explicit choice: the default picks the local model when it is installed.
        self.unmoderated = settings.moderation_backend == "none"
        self.client = GuardedClient(
            allow_private=settings.fetch_allow_private,
            allowed_hosts=settings.fetch_allowed_hosts,
            connect_timeout=settings.fetch_connect_timeout,
            total_timeout=settings.fetch_timeout,
            limit=settings.fetch_concurrency,
            max_redirects=settings.fetch_max_redirects,
        )
        # Pillow releases the GIL while it decodes and encodes: threads use every core without pickling frames.
        self.pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="thumbnails")

    def retry_delays(self, message: AbstractIncomingMessage) -> Sequence[float]:
        return self.settings.fetch_retry_delays

    def ladder(self) -> set[float]:
        return set(self.settings.fetch_retry_delays)

    async def start(self) -> None:
        await self.blobs.start()

    async def close(self) -> None:
        await self.client.close()
        await self.blobs.close()
        self.pool.shutdown(wait=False, cancel_futures=True)

    async def handle(self, message: AbstractIncomingMessage) -> list[Output]:
        try:
            callback = CallbackReceived.model_validate_json(message.body)
            event = ScreenshotEvent.model_validate(callback.event)
        except ValidationError as exc:
            raise Permanent("bad_message", str(exc).splitlines()[0]) from None
        max_bytes = self.settings.fetch_max_bytes
        if event.file_size is not None and event.file_size > max_bytes:
            raise Permanent("too_large", f"file_size {event.file_size} > {max_bytes}")

        data = await download(self.client, event.pic_full_url, max_bytes)
        metrics.FRAME_BYTES.inc(len(data))
        args = (data, self.boxes, self.settings.fetch_max_pixels, self.settings.thumbnail_format)
        quality = self.settings.thumbnail_quality
        # Small JPEGs only: shrink-on-load bounds their decode whatever size the header claims; a small PNG can
        # still unpack to millions of pixels and would stall the loop.
        if len(data) <= self.settings.fetch_inline_bytes and data.startswith(b"\xff\xd8"):
            frame = images.process(*args, quality)
        else:
            frame = await asyncio.get_running_loop().run_in_executor(self.pool, images.process, *args, quality)
        self._note_mismatches(event, len(data), frame)

        base = blob_key(callback.domain, event.stream_id, event.create_time, frame.sha256)
        _, thumb_type, extension = images.ENCODERS[self.settings.thumbnail_format]
        original_key = f"{base}.{frame.format.lower().replace('jpeg', 'jpg')}"
        thumb_keys = [f"{base}_{t.width}x{t.height}.{extension}" for t in frame.thumbnails]
        try:
            await self.blobs.put_many(
                [Blob(original_key, data, frame.content_type)]
                + [Blob(key, t.data, thumb_type) for key, t in zip(thumb_keys, frame.thumbnails, strict=True)]
            )
            urls = await asyncio.gather(*(self.blobs.url(key) for key in [original_key, *thumb_keys]))
        except Exception as exc:  # disk full, S3 hiccup: the frame is fetched again later
            raise Transient("storage_error", f"{type(exc).__name__}: {exc}") from None

        stored = FrameStored(
            id=callback.id,
            provider=callback.provider,
            domain=callback.domain,
            stream_id=event.stream_id,
            capture_time=event.create_time,
            source_url=event.pic_full_url,
            sha256=frame.sha256,
            original=StoredImage(
                key=original_key,
                url=urls[0],
                width=frame.width,
                height=frame.height,
                bytes=len(data),
                content_type=frame.content_type,
            ),
            thumbnails=[
                StoredImage(
                    key=key, url=url, width=t.width, height=t.height, bytes=len(t.data), content_type=thumb_type
                )
                for key, url, t in zip(thumb_keys, urls[1:], frame.thumbnails, strict=True)
            ],
            callback=callback,
        )
        log.debug("frame_stored", key=original_key)
        if self.unmoderated:  # moderation switched off: one hop less, the frame goes straight to delivery
            return [moderated_output(FrameModerated(id=stored.id, domain=stored.domain, frame=stored, verdict=None))]
        return [
            Output(
                FRAME_STORED,
                stored.model_dump_json().encode(),
                message_id=callback.id,
                message_type="frame_stored",
                headers={"domain": callback.domain, "schema_version": stored.schema_version},
            )
        ]

    def _note_mismatches(self, event: ScreenshotEvent, size: int, frame: images.Frame) -> None:
        """The callback's announced size and dimensions are hints: a difference is worth a count, not a refusal."""
        for field, announced, actual in (
            ("file_size", event.file_size, size),
            ("width", event.width, frame.width),
            ("height", event.height, frame.height),
        ):
            if announced and announced != actual:
                metrics.FRAME_MISMATCHES.labels(field).inc()
                log.info("frame_mismatch", field=field, announced=announced, actual=actual)
