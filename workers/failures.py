"""How a stage says a message failed; the runtime decides what happens to it (retry later, or dead-letter)."""

from __future__ import annotations


class StageFailure(Exception):
    """A message this stage could not finish. `reason` is a short code: it lands in metrics and dead-letter headers."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class Transient(StageFailure):
    """May work later (timeouts, 5xx, connection errors, storage hiccups): delayed retry, then dead letter."""

    def __init__(self, reason: str, detail: str = "", retry_after: float | None = None) -> None:
        super().__init__(reason, detail)
        self.retry_after = retry_after  # a floor the source asked for (Retry-After), in seconds


class Permanent(StageFailure):
    """Will never work (404, not an image, unsafe URL): straight to the dead-letter queue."""


class Deferred(StageFailure):
    """Not now, and not a failure (a receiver already busy with its share): wait `delay`, no try counted."""

    def __init__(self, reason: str, delay: float) -> None:
        super().__init__(reason)
        self.delay = delay
