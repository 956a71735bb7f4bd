"""The streams stage and what reads its tables: retention, silence, bounds per domain, covers."""

from pydantic import Field, field_validator

from framewatch.settings.base import Delays, Group, split


class StreamsSettings(Group):
    # These variables predate the group and keep their names: each field names its own.
    concurrency: int = Field(256, gt=0, validation_alias="FRAMEWATCH_STREAMS_CONCURRENCY")
    retry_delays: Delays = Field([1, 5, 30, 120, 600], validation_alias="FRAMEWATCH_STREAMS_RETRY_DELAYS")
    # How long a batch's first frame waits for others before the one transaction that writes them: the covers'
    # latency is bounded by it plus one commit; the store's cost per frame falls as batches fill.
    batch_wait: float = Field(0.5, ge=0, le=5, validation_alias="FRAMEWATCH_STREAMS_BATCH_WAIT")
    # How long an ended stream is remembered, and how long flagged frames and reviewers' decisions are kept (then
    # removed with their blobs).
    stream_retention: float = Field(24 * 3600, gt=0, validation_alias="FRAMEWATCH_STREAM_RETENTION")
    review_retention: float = Field(30 * 24 * 3600, gt=0, validation_alias="FRAMEWATCH_REVIEW_RETENTION")
    # A live stream from which no frame and no event came for this long is no longer live (its end was lost, or the
    # stream id was made up): the online list, the console's wall and the covers' X-Stream-Live say so.
    silence: float = Field(600.0, gt=0, validation_alias="FRAMEWATCH_STREAM_SILENCE")
    # Live streams one push domain may have at once: frames and events of further new streams are refused (counted
    # in framewatch_streams_refused_total), so one key holder cannot grow the stream tables without bound.
    max_live_per_domain: int = Field(10_000, gt=0, validation_alias="FRAMEWATCH_STREAMS_MAX_LIVE_PER_DOMAIN")
    # Covers' Cache-Control max-age: a CDN in front re-validates them this often (ETag).
    cover_max_age: int = Field(1, ge=0, validation_alias="FRAMEWATCH_COVER_MAX_AGE")

    _split = field_validator("retry_delays", mode="before")(split)
