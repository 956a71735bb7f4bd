"""structlog JSON lines (orjson), with whatever the current task bound (event_id, stage) on every line."""

import logging
import sys

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
