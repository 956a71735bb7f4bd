"""structlog JSON lines (orjson), with whatever the current task bound (event_id, stage) on every line."""

import logging
import sys
import time

import orjson
import structlog


def configure(level: str = "info") -> None:
    threshold = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(serializer=orjson.dumps),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(threshold),
        logger_factory=structlog.BytesLoggerFactory(sys.stderr.buffer),
        cache_logger_on_first_use=True,
    )
    # Libraries log through the standard library: keep their warnings, drop their chatter.
    logging.basicConfig(
        level=max(threshold, logging.WARNING), stream=sys.stderr, format="%(name)s %(levelname)s %(message)s"
    )


class Occasionally:
    """For a warning that can repeat per request (a dependency down): at most one line per `interval` seconds,
    carrying how many were left out since the last one. Counting every occurrence is the metrics' job."""

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self._next = 0.0
        self._left_out = 0

    def due(self) -> int | None:
        """None when this occurrence is left out; else how many were left out before it."""
        now = time.monotonic()
        if now < self._next:
            self._left_out += 1
            return None
        left_out, self._left_out, self._next = self._left_out, 0, now + self.interval
        return left_out


def redact_url(url: str) -> str:
    """The URL with any password replaced, fit for a log line."""
    from yarl import URL

    parsed = URL(url)
    return str(parsed.with_password("***")) if parsed.password else url
