"""Build grafana/dashboards/compose-controller.json from the panel list below.

    .venv/bin/python grafana/build_dashboard.py         # rewrite the JSON
    .venv/bin/python grafana/build_dashboard.py --check # exit 1 if the JSON is stale

Panels are declared here in a few lines each (title, kind, PromQL, unit), so a review
reads queries, not layout boilerplate; the JSON is what Grafana's file provisioning
loads. tests/unit/test_observability.py checks the JSON is up to date, and the e2e test
runs every query below on a real Prometheus.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OUT = Path(__file__).parent / "dashboards" / "compose-controller.json"
SEL = 'env="$env"'
SVC = 'env="$env", service=~"$service"'
RATE = "$__rate_interval"


@dataclass(frozen=True)
class Panel:
    title: str
    kind: str  # timeseries | stat | table | bargauge
    queries: dict[str, str]  # legend -> PromQL
    unit: str = "short"
    width: int = 8
    height: int = 7
    description: str = ""
    options: dict[str, Any] = field(default_factory=dict)


ROWS: list[tuple[str, list[Panel]]] = [
    (
        "Controller",
        [
            Panel(
                "Controller up",
                "stat",
                {"{{instance}}": 'up{job="compose-controller"}'},
                width=4,
                height=4,
                description="1 while Prometheus scrapes the controller.",
            ),
            Panel(
                "Engine reachable",
                "stat",
                {"engine": f"compose_controller_engine_up{{{SEL}}}"},
                width=4,
                height=4,
                description="1 while the Docker engine answers.",
            ),
            Panel(
                "Reconcile passes",
                "timeseries",
                {
                    "{{result}}": f"sum by (result) (rate(compose_controller_reconcile_passes_total{{{SEL}}}[{RATE}]))"
                },
                unit="ops",
                width=8,
                height=4,
            ),
            Panel(
                "Pass duration p95",
                "timeseries",
                {
                    "p95": f"histogram_quantile(0.95, sum by (le) (rate(compose_controller_reconcile_duration_seconds_bucket{{{SEL}}}[{RATE}])))"
                },
                unit="s",
                width=8,
                height=4,
            ),
        ],
    ),
    (
        "Issues",
        [
            Panel(
                "Open issues by severity",
                "timeseries",
                {"{{severity}}": f"sum by (severity) (compose_controller_issues{{{SVC}}})"},
                description="Issues not yet resolved.",
            ),
            Panel(
                "Open issues by category",
                "timeseries",
                {"{{category}}": f"sum by (category) (compose_controller_issues{{{SVC}}})"},
            ),
            Panel(
                "Issues by state",
                "bargauge",
                {"{{state}}": f"compose_controller_issues_by_state{{{SEL}}}"},
            ),
            Panel(
                "Open issues",
                "table",
                {"": f"compose_controller_issues{{{SVC}}}"},
                width=12,
                height=8,
                description="One row per service, severity, category and state; the JSON and "
                "Markdown reports have the details.",
                options={"instant": True},
            ),
            Panel(
                "Findings by pattern",
                "timeseries",
                {
                    "{{pattern}}": f"sum by (pattern) (increase(compose_controller_findings_total{{{SEL}}}[{RATE}]))"
                },
                width=12,
                height=8,
                description="Log records that matched, per pattern.",
            ),
        ],
    ),
    (
        "Remediation",
        [
            Panel(
                "Remediation outcomes",
                "timeseries",
                {
                    "{{action}} {{outcome}}": f"sum by (action, outcome) (increase(compose_controller_remediation_actions_total{{{SVC}}}[{RATE}]))"
                },
            ),
            Panel(
                "Time to detect",
                "timeseries",
                {
                    "p50": f"histogram_quantile(0.5, sum by (le) (rate(compose_controller_detection_seconds_bucket{{{SVC}}}[{RATE}])))",
                    "p95": f"histogram_quantile(0.95, sum by (le) (rate(compose_controller_detection_seconds_bucket{{{SVC}}}[{RATE}])))",
                },
                unit="s",
            ),
            Panel(
                "Time to recover",
                "timeseries",
                {
                    "p50": f"histogram_quantile(0.5, sum by (le) (rate(compose_controller_recovery_seconds_bucket{{{SVC}}}[{RATE}])))",
                    "p95": f"histogram_quantile(0.95, sum by (le) (rate(compose_controller_recovery_seconds_bucket{{{SVC}}}[{RATE}])))",
                },
                unit="s",
            ),
            Panel(
                "Fix step duration p95",
                "timeseries",
                {
                    "{{action}}": f"histogram_quantile(0.95, sum by (le, action) (rate(compose_controller_remediation_duration_seconds_bucket{{{SVC}}}[{RATE}])))"
                },
                unit="s",
            ),
            Panel(
                "Needs a human",
                "stat",
                {"{{service}}": f"compose_controller_service_needs_human{{{SVC}}}"},
            ),
            Panel(
                "Backing off",
                "stat",
                {"{{service}}": f"compose_controller_service_backoff{{{SVC}}}"},
            ),
        ],
    ),
    (
        "Services",
        [
            Panel(
                "Ready",
                "stat",
                {"{{service}}": f"compose_controller_service_ready{{{SVC}}}"},
                description="1: as declared and healthy; 0: drifted or still starting.",
            ),
            Panel(
                "Running and healthy containers",
                "timeseries",
                {
                    "{{service}} running": f"compose_controller_service_running_containers{{{SVC}}}",
                    "{{service}} healthy": f"compose_controller_service_healthy_containers{{{SVC}}}",
                },
            ),
            Panel(
                "Restarts by Docker",
                "timeseries",
                {
                    "{{service}}": f"increase(compose_controller_container_restarts_total{{{SVC}}}[{RATE}])"
                },
            ),
            Panel(
                "Log lines read",
                "timeseries",
                {"{{service}}": f"rate(compose_controller_log_lines_total{{{SVC}}}[{RATE}])"},
                unit="ops",
                width=12,
            ),
            Panel(
                "Workers and queue",
                "timeseries",
                {
                    "busy": f"compose_controller_workers_busy{{{SEL}}}",
                    "max": f"compose_controller_workers_max{{{SEL}}}",
                    "queued": f"compose_controller_workqueue_depth{{{SEL}}}",
                },
                width=12,
            ),
        ],
    ),
]


def queries() -> list[str]:
    """Every PromQL expression of the dashboard (the e2e test runs them all)."""
    return [q for _, panels in ROWS for p in panels for q in p.queries.values()]


DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def _panel(panel: Panel, pid: int, x: int, y: int) -> dict[str, Any]:
    targets = [
        {
            "datasource": DATASOURCE,
            "refId": chr(ord("A") + i),
            "expr": expr,
            "legendFormat": legend,
            **({"instant": True, "format": "table"} if panel.options.get("instant") else {}),
        }
        for i, (legend, expr) in enumerate(panel.queries.items())
    ]
    return {
        "id": pid,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
        "options": {},
        "targets": targets,
    }


def dashboard() -> dict[str, Any]:
    panels: list[dict[str, Any]] = []
    y, pid = 0, 1
    for title, row in ROWS:
        panels.append(
            {
                "id": pid,
                "type": "row",
                "title": title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                "panels": [],
            }
        )
        pid, y, x, line_height = pid + 1, y + 1, 0, 0
        for panel in row:
            if x + panel.width > 24:
                x, y, line_height = 0, y + line_height, 0
            panels.append(_panel(panel, pid, x, y))
            pid, x, line_height = pid + 1, x + panel.width, max(line_height, panel.height)
        y += line_height
    variable = {"type": "query", "datasource": DATASOURCE, "refresh": 2, "sort": 1}
    return {
        "uid": "compose-controller",
        "title": "compose-controller",
        "editable": True,
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-1h", "to": "now"},
        "refresh": "10s",
        "tags": ["docker", "compose", "controller"],
        "timezone": "",
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                },
                {
                    **variable,
                    "name": "env",
                    "label": "Environment",
                    "query": {
                        "query": "label_values(compose_controller_engine_up, env)",
                        "refId": "env",
                    },
                    "definition": "label_values(compose_controller_engine_up, env)",
                },
                {
                    **variable,
                    "name": "service",
                    "label": "Service",
                    "multi": True,
                    "includeAll": True,
                    "allValue": ".*",
                    "query": {
                        "query": 'label_values(compose_controller_service_ready{env="$env"}, service)',
                        "refId": "service",
                    },
                    "definition": 'label_values(compose_controller_service_ready{env="$env"}, service)',
                },
            ]
        },
        "annotations": {"list": []},
        "panels": panels,
    }


def render() -> str:
    return json.dumps(dashboard(), indent=2) + "\n"


if __name__ == "__main__":
    if "--check" in sys.argv[1:]:
        sys.exit(0 if OUT.read_text() == render() else 1)
    OUT.write_text(render())
    print(f"wrote {OUT} ({len(queries())} queries)")
