"""The stream store: live streams, their recent frames, their covers and the flagged frames people review.

Tables of the config database (SQLite or PostgreSQL). The streams stage writes it; the covers route, the admin API
and the console read it. Every write is idempotent and independent of arrival order: a stream's row is locked
first, then its frames change, then its cover is recomputed from what the frames table holds.

Data belongs to the account that owned its domain when it arrived, and is shown only to that account while it owns
the domain. A domain that moves to another account hands over none of its history: what arrived before the move
is shown to nobody and the next sweep removes it (flagged frames' blobs too); what was still in flight is dropped.
"""

from __future__ import annotations

from framewatch.streams.queries import Queries
from framewatch.streams.records import (
    DECISIONS,
    DEFAULT_MAX_LIVE,
    DEFAULT_SILENCE,
    FLAGGED,
    KEEP_RECENT,
    PRUNE_EVERY,
    Change,
    Cover,
    FrameRecord,
    StreamRecord,
    cover_tag,
)
from framewatch.streams.retention import Retention
from framewatch.streams.review import Review
from framewatch.streams.writes import Writes

__all__ = [
    "DECISIONS",
    "DEFAULT_MAX_LIVE",
    "DEFAULT_SILENCE",
    "FLAGGED",
    "KEEP_RECENT",
    "PRUNE_EVERY",
    "Change",
    "Cover",
    "FrameRecord",
    "StreamRecord",
    "StreamStore",
    "cover_tag",
]


class StreamStore(Writes, Retention, Queries, Review):
    """One store, four parts by what they do: writes (the streams stage), retention (its sweep), queries (covers,
    the admin API, the console) and review (flagged frames and decisions), over one engine."""
