"""A frame near-identical to the last one of its stream that the model judged safe carries that verdict instead
of a model call, within the template's age (MODERATION_REUSE: the forced re-check).

Safe by construction: the reference is always a frame the model itself judged Pass, never a carried verdict, so
the age counts from the last real call; a flagged verdict, on any frame of the stream, forgets the reference, so the
frame after it goes to the model; a frame older than the reference, or out of its age, or more than the distance
away, goes to the model. Kept per moderate worker: with several, each keeps its own references and re-checks.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from schemas.messages import FrameStored, Verdict

# Streams whose reference is kept (the oldest forgotten first): bounded whatever the number of streams.
MAX_STREAMS = 100_000


@dataclass(frozen=True, slots=True)
class Judged:
    frame_id: str
    phash: str
    capture_time: int
    verdict: Verdict


def distance(a: str, b: str) -> int:
    """How many of the 64 bits of two difference hashes differ."""
    return (int(a, 16) ^ int(b, 16)).bit_count()


class Reuse:
    def __init__(self, max_distance: int, max_streams: int = MAX_STREAMS) -> None:
        self.max_distance = max_distance
        self.max_streams = max_streams
        self._last: OrderedDict[tuple[str, str], Judged] = OrderedDict()

    def carried(self, frame: FrameStored, max_age: int) -> Verdict | None:
        """The verdict this frame may carry, or None: the model judges it."""
        if max_age <= 0 or frame.phash is None:
            return None
        last = self._last.get((frame.domain, frame.stream_id))
        if last is None or not 0 <= frame.capture_time - last.capture_time < max_age:
            return None
        if distance(frame.phash, last.phash) > self.max_distance:
            return None
        return last.verdict.model_copy(update={"reused_from": last.frame_id, "latency_ms": 0.0})

    def judged(self, frame: FrameStored, verdict: Verdict) -> None:
        """The model's verdict on this frame: its stream's new reference when safe, none at all when flagged."""
        key = (frame.domain, frame.stream_id)
        if verdict.suggestion != "Pass":
            self._last.pop(key, None)
            return
        last = self._last.get(key)
        if frame.phash is None or (last is not None and frame.capture_time < last.capture_time):
            return  # a late frame is no reference for the newer ones
        self._last[key] = Judged(frame.id, frame.phash, frame.capture_time, verdict)
        self._last.move_to_end(key)
        if len(self._last) > self.max_streams:
            self._last.popitem(last=False)
