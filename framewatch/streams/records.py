"""What the stream store holds and answers: frames, stream events, covers, what a batch changed."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

FLAGGED = ("Review", "Block")
# Unflagged frames kept per stream: the cover falls back on them when a later verdict flags the newest. They are
# pruned on about one frame in PRUNE_EVERY (by its id), so a stream holds a few more than that at most.
KEEP_RECENT = 30
PRUNE_EVERY = 8
DECISIONS = ("violation", "not_violation")
# A live stream from which nothing (no frame, no event) came for this long is no longer live (a lost end).
DEFAULT_SILENCE = 600.0
# Live streams one push domain may have at once; frames and events of more are refused (counted).
DEFAULT_MAX_LIVE = 10_000


@dataclass(frozen=True, slots=True)
class FrameRecord:
    """A frame the pipeline stored and moderation judged (or a provider's verdict on a frame it names)."""

    id: str
    domain: str
    stream: str
    app: str
    provider: str
    capture_time: int
    source_url: str
    image_key: str | None  # the largest thumbnail; None for a provider's verdict whose frame was not stored
    image_content_type: str | None
    blob_keys: tuple[str, ...]
    suggestion: str | None  # None: not moderated (moderation off for the domain, or sampled out)
    label: str = ""
    sub_label: str = ""
    score: int = 0
    source: str = ""
    received_at: float = field(default_factory=time.time)
    account_id: int | None = None  # whose it is; None: the domain's owner when written
    provider_verdict: bool = False  # the provider's own verdict (a 317, an Alibaba result), not a screenshot

    @property
    def flagged(self) -> bool:
        return self.suggestion in FLAGGED


@dataclass(frozen=True, slots=True)
class StreamRecord:
    """A provider's begin or end of a stream."""

    domain: str
    stream: str
    app: str
    provider: str
    live: bool
    at: float  # when the ingress received it
    account_id: int | None = None


@dataclass(frozen=True, slots=True)
class Cover:
    frame_id: str
    key: str
    content_type: str
    capture_time: int

    @property
    def etag(self) -> str:
        return f'"{cover_tag(self.frame_id)}"'


def cover_tag(frame_id: str) -> str:
    """What names a cover's picture (its ETag, quoted): its frame's id, hashed."""
    return hashlib.blake2b(frame_id.encode(), digest_size=12).hexdigest()


@dataclass(frozen=True, slots=True)
class Change:
    """What one batch changed that something outside the database must follow: covers (stable blob keys), and
    what it refused (items of a domain that changed owner, of a new stream past the domain's cap)."""

    covers: dict[tuple[str, str], Cover | None]
    refused: dict[str, int] = field(default_factory=dict)  # reason -> items
