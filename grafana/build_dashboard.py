"""Build grafana/dashboards/compose-controller.json from the panel list below.

    .venv/bin/python grafana/build_dashboard.py         # rewrite the JSON
    .venv/bin/python grafana/build_dashboard.py --check # exit 1 if the JSON is stale

Panels are declared here in a few lines each (title, kind, PromQL, unit), so a review
reads queries, not layout boilerplate. Grafana's own typed builder
(grafana-foundation-sdk) turns them into the dashboard model and lays them out, so the
JSON follows Grafana's schema rather than our idea of it; the JSON is what Grafana's file
provisioning loads. tests/unit/test_observability.py checks the JSON is up to date, and
the e2e test runs every query below on a real Prometheus.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from grafana_foundation_sdk.builders import bargauge, dashboard, prometheus, stat, table, timeseries
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    VariableRefresh,
    VariableSort,
)
from grafana_foundation_sdk.models.dashboard import (
    Panel as PanelModel,
)
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

OUT = Path(__file__).parent / "dashboards" / "compose-controller.json"
SEL = 'env="$env"'
SVC = 'env="$env", service=~"$service"'
RATE = "$__rate_interval"
# Detection, recovery and fix-step histograms get one or two observations per incident: at
# Grafana's rate window they show "No data" but for a minute after each. Their quantiles
# are taken over a rolling hour instead: a value for an hour after every incident.
SPARSE = "1h"
SPARSE_NOTE = "Quantiles over the hour before each point: incidents are rare, a minute's window is mostly empty."


@dataclass(frozen=True)
class Panel:
    title: str
    kind: str  # timeseries | stat | table | bargauge
    queries: dict[str, str]  # legend -> PromQL
    unit: str = "short"
    width: int = 8
    height: int = 7
    description: str = ""
    instant: bool = False  # one value per series now, shown as a table


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
                instant=True,
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
                "Time to detect (rolling hour)",
                "timeseries",
                {
                    "p50": f"histogram_quantile(0.5, sum by (le) (increase(compose_controller_detection_seconds_bucket{{{SVC}}}[{SPARSE}])))",
                    "p95": f"histogram_quantile(0.95, sum by (le) (increase(compose_controller_detection_seconds_bucket{{{SVC}}}[{SPARSE}])))",
                },
                unit="s",
                description=SPARSE_NOTE,
            ),
            Panel(
                "Time to recover (rolling hour)",
                "timeseries",
                {
                    "p50": f"histogram_quantile(0.5, sum by (le) (increase(compose_controller_recovery_seconds_bucket{{{SVC}}}[{SPARSE}])))",
                    "p95": f"histogram_quantile(0.95, sum by (le) (increase(compose_controller_recovery_seconds_bucket{{{SVC}}}[{SPARSE}])))",
                },
                unit="s",
                description=SPARSE_NOTE,
            ),
            Panel(
                "Fix step duration p95 (rolling hour)",
                "timeseries",
                {
                    "{{action}}": f"histogram_quantile(0.95, sum by (le, action) (increase(compose_controller_remediation_duration_seconds_bucket{{{SVC}}}[{SPARSE}])))"
                },
                unit="s",
                description=SPARSE_NOTE,
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
            Panel(
                "Changes judged",
                "timeseries",
                {
                    "{{service}} {{verdict}}": f"sum by (service, verdict) (increase(compose_controller_changes_total{{{SVC}}}[{RATE}]))"
                },
                description="A new config or image on a service, good (ready through its window) or bad.",
            ),
            Panel(
                "Rolled back",
                "stat",
                {"{{service}}": f"compose_controller_service_rolled_back{{{SVC}}}"},
                description="1: runs a last-good snapshot, not what its compose file asks for.",
            ),
        ],
    ),
    (
        "Foresight",
        [
            Panel(
                "Time to exhaustion",
                "timeseries",
                {
                    "{{service}} {{resource}}": f"clamp_max(compose_controller_resource_exhaustion_seconds{{{SVC}}}, 86400)"
                },
                unit="s",
                width=12,
                description="When each resource reaches its limit at its trend (Theil-Sen on the "
                "upper envelope of its samples); a day or more: not rising toward it. A "
                "predicted issue opens within the service's warning horizon (1 h by default).",
            ),
            Panel(
                "Use against the limit",
                "timeseries",
                {"{{service}} {{resource}}": f"compose_controller_resource_usage_ratio{{{SVC}}}"},
                unit="percentunit",
                width=12,
                description="Memory against its limit (or the host's memory), pids against the "
                "pids limit, writable layers and volumes against their declared sizes.",
            ),
            Panel(
                "Sampling cost per sample",
                "stat",
                {
                    # summed by env: the samples' counter has a result label, the CPU's none
                    "cpu": f'sum by (env) (rate(compose_controller_usage_sampling_cpu_seconds_total{{{SEL}}}[{RATE}])) / sum by (env) (rate(compose_controller_usage_samples_total{{{SEL}, result="ok"}}[{RATE}]))'
                },
                unit="s",
                width=6,
                height=4,
                description="The controller's CPU per resource sample (the engine's is not in it).",
            ),
            Panel(
                "Precursors learned",
                "stat",
                {"{{service}}": f"compose_controller_precursors_learned{{{SVC}}}"},
                width=6,
                height=4,
                description="Log templates learned to come before the service's incidents; "
                "`controller patterns` lists them.",
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


DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
KINDS = {
    "timeseries": timeseries.Panel,
    "stat": stat.Panel,
    "table": table.Panel,
    "bargauge": bargauge.Panel,
}


def _panel(panel: Panel, pid: int) -> Builder[PanelModel]:
    built = (
        KINDS[panel.kind]()
        .id(pid)
        .title(panel.title)
        .description(panel.description)
        .datasource(DATASOURCE)
        .unit(panel.unit)
        .span(panel.width)
        .height(panel.height)
    )
    for i, (legend, expr) in enumerate(panel.queries.items()):
        query = prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(chr(ord("A") + i))
        if panel.instant:
            query = query.instant().format(PromQueryFormat.TABLE)
        built = built.with_target(query.datasource(DATASOURCE))
    return built


def dashboard_builder() -> dashboard.Dashboard:
    board = (
        dashboard.Dashboard("compose-controller")
        .uid("compose-controller")
        .tags(["docker", "compose", "controller"])
        .editable()
        .time("now-1h", "now")
        .refresh("10s")
        .timezone("")
        .with_variable(
            dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus")
        )
        .with_variable(
            dashboard.QueryVariable("env")
            .label("Environment")
            .datasource(DATASOURCE)
            .query("label_values(compose_controller_engine_up, env)")
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(VariableSort.ALPHABETICAL_ASC)
        )
        .with_variable(
            dashboard.QueryVariable("service")
            .label("Service")
            .datasource(DATASOURCE)
            .query('label_values(compose_controller_service_ready{env="$env"}, service)')
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(VariableSort.ALPHABETICAL_ASC)
            .multi(True)
            .include_all(True)
            .all_value(".*")
        )
    )
    pid = 0
    for title, panels in ROWS:
        pid += 1
        board = board.with_row(dashboard.Row(title).id(pid))
        for panel in panels:
            pid += 1
            board = board.with_panel(_panel(panel, pid))
    return board


def render() -> str:
    return json.dumps(dashboard_builder().build(), cls=JSONEncoder, indent=2) + "\n"


if __name__ == "__main__":
    if "--check" in sys.argv[1:]:
        sys.exit(0 if OUT.read_text() == render() else 1)
    OUT.write_text(render())
    print(f"wrote {OUT} ({len(queries())} queries)")
