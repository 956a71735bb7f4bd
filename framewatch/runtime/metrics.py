"""Prometheus metrics of every framewatch process, served at /metrics.

Every counter's known series exist from the start, at 0 (`preset`, and the stages and routes for their own labels):
a rate over a series that appears only with its first increase misses that increase, and an alert on it never fires.
"""

from prometheus_client import Counter, Gauge, Histogram

CALLBACKS = Counter(
    "framewatch_callbacks_total",
    "Provider callbacks by outcome (accepted, duplicate, refused) and refusal reason.",
    ["provider", "outcome", "reason"],
)
PUBLISH_SECONDS = Histogram(
    "framewatch_publish_seconds",
    "Time from publish to broker confirm.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
PUBLISH_IN_FLIGHT = Gauge("framewatch_publish_in_flight", "Messages published and not yet confirmed.")
PUBLISHED_BYTES = Counter(
    "framewatch_published_bytes_total",
    "Bytes of message bodies the broker confirmed (framewatch_publish_seconds counts them).",
)
PUBLISH_FAILURES = Counter("framewatch_publish_failures_total", "Publishes not confirmed, by cause.", ["cause"])
DEDUPE_ERRORS = Counter(
    "framewatch_dedupe_errors_total", "Dedupe store errors (the event is published anyway: never lost)."
)
DEDUPE_FALLBACK = Gauge(
    "framewatch_dedupe_fallback", "1 while the shared (Redis) window does not answer and the in-process one serves."
)
CONFIG_REVISION = Gauge("framewatch_config_revision", "Config revision this process serves.")
CONFIG_RELOAD_FAILURES = Counter("framewatch_config_reload_failures_total", "Failed config reloads.")
ADMIN_CALLS = Counter("framewatch_admin_calls_total", "Admin API calls by action and result code.", ["action", "code"])
BROKER_CONNECTED = Gauge("framewatch_broker_connected", "1 while the broker connection is open.")

STAGE_MESSAGES = Counter(
    "framewatch_stage_messages_total",
    "Messages a worker stage finished, by outcome (done, retried, deferred, dead, requeued).",
    ["stage", "outcome"],
)
STAGE_SECONDS = Histogram(
    "framewatch_stage_seconds",
    "Time a stage spent on one message, outputs confirmed.",
    ["stage"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
STAGE_IN_FLIGHT = Gauge("framewatch_stage_in_flight", "Messages a stage holds right now.", ["stage"])
STAGE_QUEUE_WAIT = Histogram(
    "framewatch_stage_queue_wait_seconds",
    "From a message's publish (or its retry's) to a worker of the stage taking it: how far the queue is behind.",
    ["stage"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600),
)
# Read from the broker by every worker for its own stage (every QUEUE_POLL seconds): take max by (stage).
QUEUE_MESSAGES = Gauge("framewatch_queue_messages", "Messages ready in the stage's queue.", ["stage"])
QUEUE_CONSUMERS = Gauge("framewatch_queue_consumers", "Consumers on the stage's queue, fleet-wide.", ["stage"])
DEAD_LETTER_MESSAGES = Gauge(
    "framewatch_dead_letter_messages", "Messages waiting in the stage's dead-letter queue.", ["stage"]
)
BREAKER_OPEN = Gauge(
    "framewatch_moderation_breaker_open",
    "1 while the moderation backend's circuit breaker is open and the stage takes nothing.",
    ["backend"],
)
END_TO_END = Histogram(
    "framewatch_end_to_end_seconds",
    "From the ingress accepting a callback to the receiver's 2xx for its webhook, by webhook kind.",
    ["kind"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
)
DEAD_LETTERS = Counter(
    "framewatch_dead_letters_total", "Messages dead-lettered, by stage and reason.", ["stage", "reason"]
)
FRAME_MISMATCHES = Counter(
    "framewatch_frame_mismatches_total",
    "Downloaded frames whose size or dimensions differ from what the callback announced (logged, not fatal).",
    ["field"],
)
FRAME_BYTES = Counter("framewatch_frame_bytes_total", "Bytes of screenshots downloaded.")
DELIVERIES = Counter(
    "framewatch_deliveries_total",
    "Webhook attempts by kind and outcome (delivered, http_5xx, timeout, connection_error, deferred, ...).",
    ["kind", "outcome"],
)
DELIVERY_SECONDS = Histogram(
    "framewatch_delivery_seconds",
    "Time from POST to the receiver's answer.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
MODERATION_SECONDS = Histogram(
    "framewatch_moderation_seconds",
    "Time a moderation backend took per batch.",
    ["backend"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
MODERATION_SKIPPED = Counter(
    "framewatch_moderation_skipped_total",
    "Frames given no model call: sampled_out (the template's or MODERATION_SAMPLE_EVERY's one in N), reused (a "
    "near-identical frame's safe verdict carried).",
    ["reason"],
)
VERDICTS = Counter("framewatch_verdicts_total", "Verdicts by source and suggestion.", ["source", "suggestion"])
COVER_LATENCY = Histogram(
    "framewatch_cover_update_seconds",
    "From a frame's verdict to the stream store naming it the stream's cover.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0),
)
STREAMS_REFUSED = Counter(
    "framewatch_streams_refused_total",
    "Frames and stream events the streams stage did not keep, by reason (live_stream_cap, domain_moved).",
    ["reason"],
)
COVERS_SERVED = Counter("framewatch_covers_served_total", "GET /covers answers, by status.", ["status"])
REVIEW_DECISIONS = Counter("framewatch_review_decisions_total", "Reviewers' decisions on flagged frames.", ["decision"])

STAGE_OUTCOMES = ("done", "retried", "deferred", "dead", "requeued")
PUBLISH_CAUSES = ("not_connected", "blocked", "overloaded", "timeout", "nack", "unroutable", "connection_lost")
COVER_STATUSES = ("200", "304", "404", "503")


def preset() -> None:
    """The series whose labels this module knows, at 0."""
    for cause in PUBLISH_CAUSES:
        PUBLISH_FAILURES.labels(cause)
    for status in COVER_STATUSES:
        COVERS_SERVED.labels(status)
    for decision in ("violation", "not_violation"):
        REVIEW_DECISIONS.labels(decision)
    for reason in ("live_stream_cap", "domain_moved"):
        STREAMS_REFUSED.labels(reason)
    for reason in ("sampled_out", "reused"):
        MODERATION_SKIPPED.labels(reason)


HANDOFFS = Counter(
    "framewatch_handoffs_total",
    "Messages a stage was handed in the process that made them: handled there (inline), or sent to its queue "
    "(broker: it failed, declined or took too long there).",
    ["stage", "way"],
)


def preset_handoff(stage: str) -> None:
    for way in ("inline", "broker"):
        HANDOFFS.labels(stage, way)


def preset_stage(stage: str) -> None:
    for outcome in STAGE_OUTCOMES:
        STAGE_MESSAGES.labels(stage, outcome)
    STAGE_IN_FLIGHT.labels(stage)
    STAGE_SECONDS.labels(stage)
    STAGE_QUEUE_WAIT.labels(stage)


preset()
