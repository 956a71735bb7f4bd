"""Writes framewatch.json, the Grafana dashboard: `python deploy/grafana/build.py`. Edit the panels here, not
the JSON; tests/test_monitoring.py checks every query against the metrics the processes export."""

from __future__ import annotations

import json
from pathlib import Path

RATE = "$__rate_interval"
DS = {"type": "prometheus", "uid": "${datasource}"}


def q99(metric: str, by: str = "", q: float = 0.99) -> str:
    labels = f"{by}, le" if by else "le"
    return f"histogram_quantile({q}, sum by ({labels}) (rate({metric}_bucket[{RATE}])))"


# (row, title, unit, [(expr, legend)], description)
PANELS = [
    ("Ingress", "Callbacks by provider and outcome", "reqps",
     [(f"sum by (provider, outcome) (rate(framewatch_callbacks_total[{RATE}]))", "{{provider}} {{outcome}}")],
     "Accepted, duplicate (a cloud's retry of an event already queued) and refused callbacks."),
    ("Ingress", "Refusals by reason", "reqps",
     [(f'sum by (provider, reason) (rate(framewatch_callbacks_total{{outcome="refused"}}[{RATE}]))',
       "{{provider}} {{reason}}")],
     "BrokerUnavailable is a 503: RabbitMQ did not confirm."),
    ("Ingress", "Publish confirm latency", "s",
     [(q99("framewatch_publish_seconds", q=0.5), "p50"), (q99("framewatch_publish_seconds"), "p99")],
     "From publish to the broker's confirm: the ingress answers after it."),
    ("Ingress", "Publishes not confirmed, by cause", "ops",
     [(f"sum by (cause) (rate(framewatch_publish_failures_total[{RATE}]))", "{{cause}}")], ""),
    ("Queues", "Messages waiting per stage queue", "short",
     [("max by (stage) (framewatch_queue_messages)", "{{stage}}")],
     "Ready messages in <ns>.<stage>, as the broker counts them (every worker reads its own stage's)."),
    ("Queues", "Queue wait p95 (age of the messages taken)", "s",
     [(q99("framewatch_stage_queue_wait_seconds", "stage", 0.95), "{{stage}}")],
     "From publish to a worker taking the message: how far behind each stage is."),
    ("Queues", "Dead letters waiting", "short",
     [("max by (stage) (framewatch_dead_letter_messages)", "{{stage}}")],
     "Messages in <ns>.<stage>.dead: the console's dead letters page replays or purges them."),
    ("Queues", "Dead-lettered, by stage and reason", "ops",
     [(f"sum by (stage, reason) (rate(framewatch_dead_letters_total[{RATE}]))", "{{stage}} {{reason}}")], ""),
    ("Stages", "Messages finished per stage", "ops",
     [(f'sum by (stage) (rate(framewatch_stage_messages_total{{outcome="done"}}[{RATE}]))', "{{stage}}")], ""),
    ("Stages", "Stage latency p99", "s",
     [(q99("framewatch_stage_seconds", "stage"), "{{stage}}")],
     "One message through one stage, its outputs confirmed."),
    ("Stages", "Retries and failures", "ops",
     [(f'sum by (stage, outcome) (rate(framewatch_stage_messages_total{{outcome=~"retried|deferred|dead|requeued"}}[{RATE}]))',
       "{{stage}} {{outcome}}")], ""),
    ("Stages", "Consumers per stage queue", "short",
     [("max by (stage) (framewatch_queue_consumers)", "{{stage}}")],
     "Zero: no worker takes the stage's messages (or the moderation breaker is open)."),
    ("Moderation", "Breaker open", "short",
     [("max by (backend) (framewatch_moderation_breaker_open)", "{{backend}}")],
     "1 while the backend is failing and the moderate stage takes nothing."),
    ("Moderation", "Backend latency per batch", "s",
     [(q99("framewatch_moderation_seconds", "backend", 0.5), "{{backend}} p50"),
      (q99("framewatch_moderation_seconds", "backend"), "{{backend}} p99")], ""),
    ("Moderation", "Verdicts by source and suggestion", "ops",
     [(f"sum by (source, suggestion) (rate(framewatch_verdicts_total[{RATE}]))", "{{source}} {{suggestion}}")], ""),
    ("Delivery", "Webhook tries by kind and outcome", "ops",
     [(f"sum by (kind, outcome) (rate(framewatch_deliveries_total[{RATE}]))", "{{kind}} {{outcome}}")], ""),
    ("Delivery", "Receiver answer time", "s",
     [(q99("framewatch_delivery_seconds", q=0.5), "p50"), (q99("framewatch_delivery_seconds"), "p99")], ""),
    ("Delivery", "Callback to delivered webhook", "s",
     [(q99("framewatch_end_to_end_seconds", "kind", 0.5), "{{kind}} p50"),
      (q99("framewatch_end_to_end_seconds", "kind"), "{{kind}} p99")],
     "From the ingress accepting the callback to the receiver's 2xx for its webhook, retries included."),
    ("Covers", "Cover update latency", "s",
     [(q99("framewatch_cover_update_seconds", q=0.5), "p50"), (q99("framewatch_cover_update_seconds"), "p99")],
     "From a frame's verdict to the stream store naming it the cover."),
    ("Covers", "Streams stage refusals", "ops",
     [(f"sum by (reason) (rate(framewatch_streams_refused_total[{RATE}]))", "{{reason}}")], ""),
]  # fmt: skip


def dashboard() -> dict:
    panels, y, row_seen = [], 0, None
    x = 0
    for ident, (row, title, unit, targets, description) in enumerate(PANELS, start=1):
        if row != row_seen:
            y += 0 if row_seen is None else 8
            panels.append({"type": "row", "title": row, "id": 100 + ident, "collapsed": False,
                           "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})  # fmt: skip
            y, x, row_seen = y + 1, 0, row
        elif x >= 24:
            y, x = y + 8, 0
        panels.append(
            {
                "type": "timeseries",
                "id": ident,
                "title": title,
                "description": description,
                "datasource": DS,
                "gridPos": {"h": 8, "w": 6, "x": x, "y": y},
                "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
                "targets": [
                    {"refId": chr(65 + n), "datasource": DS, "expr": expr, "legendFormat": legend}
                    for n, (expr, legend) in enumerate(targets)
                ],
            }
        )
        x += 6
    return {
        "title": "framewatch",
        "uid": "framewatch",
        "tags": ["framewatch"],
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "time": {"from": "now-3h", "to": "now"},
        "refresh": "30s",
        "templating": {
            "list": [
                {"name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus",
                 "current": {}, "hide": 0, "refresh": 1}  # fmt: skip
            ]
        },
        "annotations": {"list": []},
        "panels": panels,
    }


if __name__ == "__main__":
    out = Path(__file__).with_name("framewatch.json")
    out.write_text(json.dumps(dashboard(), indent=2) + "\n")
