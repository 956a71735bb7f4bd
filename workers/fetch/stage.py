"""The fetch stage: screenshot callback in, "frame stored" message out."""

from __future__ import annotations

import asyncio
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor

import structlog

from framewatch.blobs.base import Blob, BlobStore
from framewatch.runtime import metrics
from framewatch.runtime.http import GuardedClient
from framewatch.runtime.times import plausible
from framewatch.settings.fetch import FetchSettings
from schemas.messages import CallbackReceived, FrameModerated, FrameStored, Screenshot, StoredImage
from workers.contract import Consumption, Output, Retries, Stage
from workers.failures import Permanent, StageFailure, Transient
from workers.fetch import CONSUMES, NAME, images
from workers.fetch.download import download

log = structlog.get_logger("framewatch.fetch")

_UNSAFE_KEY_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


def key_part(value: str) -> str:
    """A path segment that cannot climb out of its folder or clash with the key layout."""
    cleaned = _UNSAFE_KEY_CHARS.sub("_", value).strip("._") or "_"
    return cleaned[:128]


def blob_key(domain: str, stream_id: str, capture_time: int, sha256: str) -> str:
    """Deterministic: the same frame always lands on the same key, so storing it twice changes nothing."""
    day = time.strftime("%Y/%m/%d", time.gmtime(plausible(capture_time)))
    return f"{key_part(domain)}/{key_part(stream_id)}/{day}/{capture_time}-{sha256[:20]}"


# Past this many pixels, a frame that has no reduced-scale decoding is a large decode (a 2560x1440 frame is 3.7M).
LARGE_PIXELS = 4_000_000


class FetchStage(Stage[CallbackReceived]):
    name = NAME
    consumes = CONSUMES

    def __init__(self, options: FetchSettings, blobs: BlobStore, client: GuardedClient, unmoderated: bool) -> None:
        super().__init__(options.concurrency, Retries(tuple(options.retry_delays)))
        self.options = options
        self.boxes = options.thumbnails.boxes()
        self.unmoderated = unmoderated  # moderation switched off: frames go straight to delivery, one hop less
        self.blobs = blobs
        self.client = client
        # Pillow releases the GIL while it decodes and encodes: threads use every core without pickling frames.
        self.pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="thumbnails")
        self.large_pool = ThreadPoolExecutor(max_workers=options.large_decodes, thread_name_prefix="large-decodes")

    async def start(self, consumption: Consumption) -> None:
        await self.blobs.start()

    async def close(self) -> None:
        await self.client.close()  # the blob store is the process's: closed with its other resources
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.large_pool.shutdown(wait=False, cancel_futures=True)

    async def handle(self, callback: CallbackReceived) -> list[Output]:
        if callback.kind == "image_moderation":
            return [await self._judged(callback)]
        shot, stream = callback.screenshot, callback.stream
        if shot is None or stream is None:
            raise Permanent("bad_message", f"a {callback.kind} callback carries no screenshot to fetch")
        stored = await self._store(callback, shot, await self._download(shot), stream.name)
        if self.unmoderated:  # straight to delivery, unreviewed
            unmoderated = FrameModerated(id=stored.id, domain=stored.domain, frame=stored, moderated_at=time.time())
            return [Output.of(unmoderated, "screenshot")]
        return [Output.of(stored, "screenshot")]

    async def _judged(self, callback: CallbackReceived) -> Output:
        """A provider's verdict: the frame it judged is stored when it downloads on the first try (for the review
        console and the webhooks); the verdict goes on either way, straight past moderation, and is never late for
        a frame the provider keeps private or has already deleted."""
        verdict, shot, stream = callback.verdict, callback.screenshot, callback.stream
        if verdict is None:
            raise Permanent("bad_message", f"a {callback.kind} callback carries no verdict")
        stored = None
        if shot is not None and stream is not None:
            try:
                data = await self._download(shot)
                stored = await self._store(callback, shot, data, stream.name)
            except Transient as failure:
                if failure.reason == "storage_error":  # ours, not the frame's: retried like a screenshot
                    raise
                log.info("judged_frame_not_fetched", event_id=callback.id, reason=failure.reason)
            except StageFailure as failure:  # not allowed, too large, not an image: the verdict stands alone
                log.info("judged_frame_not_fetched", event_id=callback.id, reason=failure.reason)
        metrics.VERDICTS.labels(verdict.source, verdict.suggestion).inc()
        moderated = FrameModerated(
            id=callback.id,
            domain=callback.domain,
            callback=callback,
            frame=stored,
            verdict=verdict,
            moderated_at=time.time(),
        )
        return Output.of(moderated, moderated.kind)

    async def _download(self, shot: Screenshot) -> bytes:
        options = self.options
        if shot.file_size is not None and shot.file_size > options.max_bytes:
            raise Permanent("too_large", f"file_size {shot.file_size} > {options.max_bytes}")
        data = await download(self.client, shot.image_url, options.max_bytes)
        metrics.FRAME_BYTES.inc(len(data))
        return data

    async def _store(self, callback: CallbackReceived, shot: Screenshot, data: bytes, stream: str) -> FrameStored:
        options = self.options
        thumbnails = options.thumbnails
        args = (data, self.boxes, options.max_pixels, thumbnails.format)
        quality = thumbnails.quality
        full_pixels = images.decodes_in_full(data, options.max_pixels)  # the header only; refuses past the cap
        # Small JPEGs only: shrink-on-load bounds their decode whatever size the header claims; a small PNG can
        # still unpack to millions of pixels and would stall the loop.
        # No moderation, no reuse: the difference hash would go unread.
        if len(data) <= options.inline_bytes and full_pixels == 0:
            frame = images.process(*args, quality, not self.unmoderated)
        else:
            pool = self.large_pool if full_pixels > LARGE_PIXELS else self.pool
            loop = asyncio.get_running_loop()
            frame = await loop.run_in_executor(pool, images.process, *args, quality, not self.unmoderated)
        self._note_mismatches(shot, len(data), frame)

        try:
            base = blob_key(callback.domain, stream, shot.capture_time, frame.sha256)
        except (OverflowError, OSError, ValueError) as exc:  # a time no date has: will never work
            raise Permanent("bad_message", f"capture_time {shot.capture_time}: {exc}") from None
        _, thumb_type, extension = images.ENCODERS[thumbnails.format]
        original_key = f"{base}.{frame.format.lower().replace('jpeg', 'jpg')}"
        thumb_keys = [f"{base}_{t.width}x{t.height}.{extension}" for t in frame.thumbnails]
        try:
            await self.blobs.put_many(
                [Blob(original_key, data, frame.content_type)]
                + [Blob(key, t.data, thumb_type) for key, t in zip(thumb_keys, frame.thumbnails, strict=True)]
            )
            urls = [await self.blobs.url(key) for key in [original_key, *thumb_keys]]
        except Exception as exc:  # disk full, S3 hiccup: the frame is fetched again later
            raise Transient("storage_error", f"{type(exc).__name__}: {exc}") from None

        stored = FrameStored(
            id=callback.id,
            provider=callback.provider,
            domain=callback.domain,
            stream_id=stream,
            capture_time=shot.capture_time,
            source_url=shot.image_url,
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
            phash=frame.phash,
        )
        log.debug("frame_stored", key=original_key)
        return stored

    def _note_mismatches(self, shot: Screenshot, size: int, frame: images.Frame) -> None:
        """The callback's announced size and dimensions are hints: a difference is worth a count, not a refusal."""
        for field, announced, actual in (
            ("file_size", shot.file_size, size),
            ("width", shot.width, frame.width),
            ("height", shot.height, frame.height),
        ):
            if announced and announced != actual:
                metrics.FRAME_MISMATCHES.labels(field).inc()
                log.info("frame_mismatch", field=field, announced=announced, actual=actual)
