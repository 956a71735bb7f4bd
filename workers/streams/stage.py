"""The streams stage: the providers' begin and end events and every moderated frame, written to the stream store.

A frame that moderation did not flag becomes its stream's cover unless a newer one already is; a frame flagged
Review or Block never does, and one that a later verdict flags (the provider's 317) gives the cover back to the
previous safe frame. Frames of a domain whose moderation is off carry no verdict: they are safe by definition.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import structlog
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as SATimeoutError

from framewatch.blobs.base import BlobStore
from framewatch.config.store import ConfigStore
from framewatch.runtime import metrics
from framewatch.settings.streams import StreamsSettings
from framewatch.streams.store import Change, FrameRecord, StreamRecord, StreamStore
from schemas.messages import CallbackReceived, FrameModerated
from workers.contract import Consumption, Output, Retries, Stage
from workers.failures import Permanent, Transient
from workers.streams import CONSUMES, NAME
from workers.streams.writer import BatchWriter

log = structlog.get_logger("framewatch.streams")

BATCH_ITEMS = 200
SWEEP_INTERVAL = 60.0


def store_away(exc: BaseException) -> bool:
    """A failure of the store itself (down, frozen, out of connections), not of what one item holds."""
    if isinstance(exc, OSError | TimeoutError | ConnectionError | OperationalError | InterfaceError):
        return True
    if isinstance(exc, SATimeoutError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def cover_key(domain: str, stream: str) -> str:
    """The stable blob key of a stream's cover (with an S3 store, a CDN serves it from the bucket)."""
    return f"covers/{domain}/{stream}.jpg"


class StreamsStage(Stage[FrameModerated | CallbackReceived]):
    name = NAME
    consumes = CONSUMES
    inline = True

    def __init__(
        self, options: StreamsSettings, store: StreamStore, config_store: ConfigStore, blobs: BlobStore
    ) -> None:
        super().__init__(options.concurrency, Retries(tuple(options.retry_delays)))
        self.options = options
        self.config_store = config_store  # the process's engine: waited for at start, not closed here
        self.store = store
        self.blobs = blobs
        self.writer: BatchWriter[FrameRecord | StreamRecord] = BatchWriter(
            self._write, BATCH_ITEMS, options.batch_wait, store_away
        )
        self._sweeper: asyncio.Task[None] | None = None
        self._moderated_at: dict[str, float] = {}  # frames in the writer's hands: when their verdict was known

    async def start(self, consumption: Consumption) -> None:
        await self.blobs.start()
        # The ingress owns the store and its schema: wait for the streams tables rather than fail messages.
        await self.config_store.wait_for(lambda: self.store.cover("", ""), (SQLAlchemyError, OSError))
        self.writer.start()
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="streams-sweep")

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        await self.writer.close()

    async def handle(self, message: FrameModerated | CallbackReceived) -> list[Output]:
        item = self._item(message)
        if item is None:
            return []
        try:
            await self.writer.submit(item)
        except Exception as exc:
            if store_away(exc):
                raise Transient("stream_store_unavailable", type(exc).__name__) from None
            # This item alone failed to write (its batch was tried item by item): its own ladder, then dead letters.
            raise Transient("unwritable", f"{type(exc).__name__}: {str(exc)[:200]}") from None
        finally:  # written, failed or cancelled: the frame is out of the writer's hands
            if isinstance(item, FrameRecord):
                self._moderated_at.pop(item.id, None)
        return []

    def _item(self, message: FrameModerated | CallbackReceived) -> FrameRecord | StreamRecord | None:
        if isinstance(message, FrameModerated):
            record = frame_record(message)
            if record is not None and message.moderated_at is not None:
                self._moderated_at[record.id] = message.moderated_at
            return record
        callback = message
        if callback.stream is None:
            raise Permanent("bad_message", f"a {callback.kind} callback without a stream is not for this stage")
        return StreamRecord(
            callback.domain,
            callback.stream.name,
            callback.stream.app,
            callback.provider,
            live=callback.kind == "stream_begin",
            at=callback.received_at,
            account_id=callback.account_id,
        )

    async def _write(self, items: list[FrameRecord | StreamRecord]) -> None:
        change = await self.store.apply(items)
        for reason, count in change.refused.items():
            metrics.STREAMS_REFUSED.labels(reason).inc(count)
            log.info("streams_refused", reason=reason, items=count)
        now = time.time()
        for item in items:
            at = self._moderated_at.get(item.id) if isinstance(item, FrameRecord) else None
            cover = change.covers.get((item.domain, item.stream))
            if at is not None and cover is not None and cover.frame_id == item.id:
                metrics.COVER_LATENCY.observe(max(0.0, now - at))
        if self.blobs.serves_covers:
            await self._copy_covers(change)

    async def _copy_covers(self, change: Change) -> None:
        """The stable cover keys follow the store: written after the commit, then checked against it, so that
        two replicas finishing in the other order still leave the newest cover in place."""
        for (domain, stream), cover in change.covers.items():
            for _ in range(3):
                if cover is None:
                    await self.blobs.delete([cover_key(domain, stream)])
                else:
                    await self.blobs.copy(cover.key, cover_key(domain, stream), cover.content_type)
                _, now = await self.store.cover(domain, stream)
                if now == cover:
                    break
                cover = now

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_INTERVAL)
            try:
                await self.sweep()
            except Exception as exc:  # the next sweep tries again; nothing is lost by waiting
                log.warning("stream_sweep_failed", error=type(exc).__name__)

    async def sweep(self) -> int:
        """Forget ended streams and expired flagged frames, with their blobs; returns the blobs removed."""
        keys = await self.store.sweep(time.time(), self.options.stream_retention, self.options.review_retention)
        if keys:
            await self.blobs.delete(keys)
            log.info("review_retention_swept", blobs=len(keys))
        return len(keys)


def frame_record(moderated: FrameModerated) -> FrameRecord | None:
    """What the stream store keeps of a moderated frame, or of a provider's verdict on one."""
    verdict = moderated.verdict
    judged = {
        "suggestion": verdict.suggestion if verdict else None,
        "label": verdict.label if verdict else "",
        "sub_label": verdict.sub_label if verdict else "",
        "score": verdict.score if verdict else 0,
        # A carried verdict says so where reviewers look (the stream's frames, the quality page).
        "source": (f"reuse/{verdict.source}"[:64] if verdict.reused_from else verdict.source) if verdict else "",
    }
    frame = moderated.frame
    largest = (
        max(frame.thumbnails, key=lambda image: image.width * image.height, default=frame.original) if frame else None
    )
    stored = {
        "image_key": largest.key if largest else None,
        "image_content_type": largest.content_type if largest else None,
        "blob_keys": (frame.original.key, *(image.key for image in frame.thumbnails)) if frame else (),
    }
    if moderated.callback is None and frame is not None:
        callback = frame.callback
        if callback.stream is None:
            return None
        return FrameRecord(
            id=frame.id,
            domain=frame.domain,
            stream=callback.stream.name,
            app=callback.stream.app,
            provider=frame.provider,
            capture_time=frame.capture_time,
            source_url=frame.source_url,
            received_at=callback.received_at,
            account_id=callback.account_id,
            **stored,
            **judged,
        )
    # A provider's verdict, with the judged frame when the fetch stage could store it.
    callback = moderated.callback
    if callback is None or callback.stream is None:
        return None
    shot = callback.screenshot
    return FrameRecord(
        id=callback.id,
        domain=callback.domain,
        stream=callback.stream.name,
        app=callback.stream.app,
        provider=callback.provider,
        capture_time=shot.capture_time if shot else int(callback.received_at),
        source_url=shot.image_url if shot else "",
        received_at=callback.received_at,
        account_id=callback.account_id,
        provider_verdict=True,
        **stored,
        **judged,
    )
