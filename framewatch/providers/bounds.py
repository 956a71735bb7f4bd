"""What every stage can store, checked at the edge for every cloud: a callback the ingress accepts carries names and
ids no longer than the stores' columns hold, no NUL or control characters (PostgreSQL refuses NUL in text; logs,
consoles and XML answers must not carry them), and times that a stage can compute with and store.

Checked once a provider's package has read the callback, before its binding is looked up: one rule for every cloud.
"""

from __future__ import annotations

import re

from framewatch.providers.base import Incoming
from framewatch.providers.refusals import Reason, Refused

# The stores' columns (config/tables.py): push domains, app and stream names hold 255 characters, labels 64.
MAX_NAME = 255
MAX_LABEL = 64
MAX_URL = 4096
# C0 and C1 control characters and DEL, and the two Unicode non-characters XML cannot carry.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ufffe\uffff]")
# No capture time is plausible beyond this (the year 2242): a stage computing a date from it never fails.
UNIX_TIME_LIMIT = 2**33


def check(incoming: Incoming, now: float, clock_skew: float) -> None:
    """Raise Refused unless every stage can carry and store what this callback says."""
    names = [("domain", incoming.domain, MAX_NAME), ("app name", incoming.app_name or "", MAX_NAME)]
    if incoming.stream is not None:
        names += [("stream", incoming.stream.name, MAX_NAME), ("stream app", incoming.stream.app, MAX_NAME)]
    if incoming.verdict is not None:
        names += [("label", incoming.verdict.label, MAX_LABEL), ("sub label", incoming.verdict.sub_label, MAX_LABEL)]
    shot = incoming.screenshot
    if shot is not None:
        names.append(("image URL", shot.image_url, MAX_URL))
    for what, value, limit in names:
        if _CONTROL.search(value):
            raise Refused(Reason.ControlCharacter, f"the {what} holds a NUL or control character")
        if len(value) > limit:
            raise Refused(Reason.NameTooLong, f"the {what} is longer than {limit} characters")
    if shot is None:
        return
    if not 0 <= shot.capture_time < UNIX_TIME_LIMIT:
        raise Refused(Reason.InvalidEvent, f"the capture time {shot.capture_time} is not a plausible Unix time")
    if shot.capture_time > now + clock_skew:
        # A frame dated ahead would outrank every genuine one as the stream's newest (its cover) for as long.
        ahead = int(shot.capture_time - now)
        raise Refused(Reason.CaptureTimeAhead, f"the frame is dated {ahead}s ahead, more than the clock skew allows")
    for what, number in (("file size", shot.file_size), ("width", shot.width), ("height", shot.height)):
        if number is not None and not 0 <= number < 2**31:
            raise Refused(Reason.InvalidEvent, f"the {what} {number} is out of range")
