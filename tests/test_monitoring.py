"""deploy/grafana and deploy/prometheus cannot rot: every query of the dashboard and every alert names metrics and
labels the processes really export, promtool parses them all, the alerts fire on the unit-test series of
deploy/prometheus/framewatch-rules.test.yaml, and the operator's PrometheusRule holds the same groups."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from framewatch.runtime import metrics

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
DASHBOARD = DEPLOY / "grafana" / "framewatch.json"
RULES = DEPLOY / "prometheus" / "framewatch-rules.yaml"
RULE_TESTS = DEPLOY / "prometheus" / "framewatch-rules.test.yaml"
OPERATOR_RULE = DEPLOY / "kubernetes" / "monitoring" / "prometheusrule.yaml"
SCRAPE_LABELS = {"job", "instance"}  # what Prometheus adds to every series it scrapes


def exported() -> dict[str, set[str]]:
    """Every series name the processes export, with the labels it carries."""
    series: dict[str, set[str]] = {}
    for value in vars(metrics).values():
        if not isinstance(value, MetricWrapperBase):
            continue
        name, labels = value._name, set(value._labelnames)
        kind = value._type
        if kind == "counter":
            series[f"{name}_total"] = labels
        elif kind == "histogram":
            series[f"{name}_bucket"] = labels | {"le"}
            series[f"{name}_sum"] = series[f"{name}_count"] = labels
        else:
            series[name] = labels
    return series


def promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool is missing: .ci/run installs it (Debian's prometheus)"
    return found


def queries() -> list[tuple[str, str]]:
    board = json.loads(DASHBOARD.read_text())
    found = [(panel["title"], target["expr"]) for panel in board["panels"] for target in panel.get("targets", [])]
    rules = yaml.safe_load(RULES.read_text())
    found += [(rule["alert"], rule["expr"]) for group in rules["groups"] for rule in group["rules"]]
    return found


_METRIC = re.compile(r"\b(framewatch_[a-z_]+)\b(\{[^}]*\})?")
_GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
_MATCHER = re.compile(r"([a-zA-Z_]+)\s*(?:=~|!~|!=|=)")


@pytest.mark.parametrize(("where", "expr"), queries(), ids=[where for where, _ in queries()])
def test_every_query_names_exported_metrics_and_their_labels(where: str, expr: str) -> None:
    series = exported()
    named = _METRIC.findall(expr)
    assert named or expr.startswith("up{"), f"{where}: no framewatch metric in {expr!r}"  # `up`: Prometheus's own
    labels: set[str] = set(SCRAPE_LABELS)
    for name, matchers in named:
        assert name in series, f"{where}: {name} is not exported (exported: {sorted(series)})"
        labels |= series[name]
        for label in _MATCHER.findall(matchers):
            assert label in series[name] | SCRAPE_LABELS, f"{where}: {name} has no label {label!r}"
    for grouping in _GROUPING.findall(expr):
        for label in filter(None, (part.strip() for part in grouping.split(","))):
            assert label in labels, f"{where}: grouped by {label!r}, which none of its metrics carries"


def test_promtool_parses_every_dashboard_query(tmp_path: Path) -> None:
    """As recording rules, so that Prometheus's own parser reads each query of the dashboard."""
    board = json.loads(DASHBOARD.read_text())
    rules = [
        {
            "record": f"framewatch:panel{panel['id']}:{target['refId']}",
            "expr": target["expr"].replace("$__rate_interval", "5m"),
        }
        for panel in board["panels"]
        for target in panel.get("targets", [])
    ]
    path = tmp_path / "dashboard-rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    checked = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"{len(rules)} rules found" in checked.stdout


def test_the_dashboard_is_importable_with_a_datasource_variable() -> None:
    board = json.loads(DASHBOARD.read_text())
    [variable] = board["templating"]["list"]
    assert (variable["type"], variable["query"], variable["name"]) == ("datasource", "prometheus", "datasource")
    panels = [panel for panel in board["panels"] if panel["type"] != "row"]
    assert all(panel["datasource"]["uid"] == "${datasource}" for panel in panels)
    assert len({panel["id"] for panel in board["panels"]}) == len(board["panels"])
    # What an operator looks at, each on a panel of its own.
    shown = " ".join(target["expr"] for panel in panels for target in panel["targets"])
    for metric in (
        "framewatch_callbacks_total",
        "framewatch_publish_seconds_bucket",
        "framewatch_queue_messages",
        "framewatch_stage_queue_wait_seconds_bucket",
        "framewatch_dead_letter_messages",
        "framewatch_stage_messages_total",
        "framewatch_stage_seconds_bucket",
        "framewatch_moderation_breaker_open",
        "framewatch_moderation_seconds_bucket",
        "framewatch_deliveries_total",
        "framewatch_cover_update_seconds_bucket",
        "framewatch_end_to_end_seconds_bucket",
    ):
        assert metric in shown, metric


def test_the_alerts_fire_on_their_unit_test_series() -> None:
    tested = subprocess.run(
        [promtool(), "test", "rules", RULE_TESTS.name], cwd=RULE_TESTS.parent, capture_output=True, text=True
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    alerts = {rule["alert"] for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]}
    covered = set(re.findall(r"alertname: (\w+)", RULE_TESTS.read_text()))
    assert alerts == covered, f"alerts without a unit test: {sorted(alerts - covered)}"


def test_the_operator_rule_holds_the_same_groups() -> None:
    [resource] = [doc for doc in yaml.safe_load_all(OPERATOR_RULE.read_text()) if doc]
    assert (resource["apiVersion"], resource["kind"]) == ("monitoring.coreos.com/v1", "PrometheusRule")
    assert resource["spec"] == yaml.safe_load(RULES.read_text())
