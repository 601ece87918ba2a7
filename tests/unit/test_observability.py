"""The Prometheus side: alert rules unit-tested with promtool, configs that load, and a
dashboard that is up to date and queries only metrics the controller exports."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
METRICS = ROOT / "metrics"
DASHBOARD = ROOT / "grafana" / "dashboards" / "compose-controller.json"
PROMTOOL = shutil.which("promtool")
# locally a missing promtool skips; in CI (CI=true) it is a failure: engine-up installs it
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None and not os.environ.get("CI"),
    reason="promtool missing: scripts/engine-up installs Debian's prometheus",
)


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], cwd=METRICS, capture_output=True, text=True, check=False, timeout=120
    )


@needs_promtool
def test_every_alert_rule_passes_its_promtool_unit_tests():
    done = promtool("test", "rules", "alerts_test.yml")
    assert done.returncode == 0, done.stdout + done.stderr


@needs_promtool
def test_the_rules_and_the_scrape_config_are_valid():
    assert promtool("check", "rules", "alerts.yml").returncode == 0
    done = promtool("check", "config", "prometheus.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_rule_has_a_promtool_test():
    rules = set(re.findall(r"^ +- alert: (\w+)$", (METRICS / "alerts.yml").read_text(), re.M))
    tested = set(re.findall(r"alertname: (\w+)", (METRICS / "alerts_test.yml").read_text()))
    assert rules and rules == tested


def test_the_dashboard_json_is_what_the_builder_makes():
    done = subprocess.run(
        [sys.executable, str(ROOT / "grafana" / "build_dashboard.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, "run: python grafana/build_dashboard.py"


def test_the_dashboard_has_env_and_service_variables_and_only_known_metrics():
    board = json.loads(DASHBOARD.read_text())
    names = [v["name"] for v in board["templating"]["list"]]
    assert names == ["datasource", "env", "service"]
    documented = set(
        re.findall(r"^\| `([a-z_]+)` \|", (ROOT / "docs" / "metrics.md").read_text(), re.M)
    )
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 20
    for expr in exprs:
        for metric in re.findall(r"\b(compose_controller_[a-z_]+?)(?:_bucket)?\{", expr):
            assert metric in documented, f"{metric} in {expr!r} is not a documented metric"


# one incident at minute 2: detected in 0.1-0.5 s, recovered in 1-5 s, a restart step of 1-5 s
_SPARSE_SERIES = {
    "compose_controller_detection_seconds_bucket": ("0.1", "0.5"),
    "compose_controller_recovery_seconds_bucket": ("1", "5"),
    "compose_controller_remediation_duration_seconds_bucket": ("1", "5"),
}


@needs_promtool
def test_the_sparse_histogram_panels_show_a_value_for_an_hour_after_one_incident(tmp_path):
    board = json.loads(DASHBOARD.read_text())
    sparse = [
        t["expr"].replace("$env", "dev").replace("$service", ".*")
        for p in board["panels"]
        if "rolling hour" in p.get("title", "")
        for t in p.get("targets", [])
    ]
    assert len(sparse) == 5  # detect p50/p95, recover p50/p95, fix step p95
    series = []
    for name, (low, high) in _SPARSE_SERIES.items():
        extra = ', action="restart"' if "remediation" in name else ""
        for le, values in ((low, "0+0x200"), (high, "0 0 1+0x200"), ("+Inf", "0 0 1+0x200")):
            labels = f'{{env="dev", service="web"{extra}, le="{le}"}}'
            series.append({"series": name + labels, "values": values})
    tests = []
    for expr in sparse:
        quantile = 0.5 if expr.startswith("histogram_quantile(0.5,") else 0.95
        metric = next(n for n in _SPARSE_SERIES if n in expr)
        low, high = (float(v) for v in _SPARSE_SERIES[metric])
        labels = '{action="restart"}' if "remediation" in metric else "{}"
        value = low + (high - low) * quantile  # the incident's bucket, interpolated
        sample = {"labels": labels, "value": value}
        tests.append({"expr": expr, "eval_time": "40m", "exp_samples": [sample]})
    spec = {
        "rule_files": [],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series, "promql_expr_test": tests}],
    }
    path = tmp_path / "sparse_test.yml"
    path.write_text(json.dumps(spec))  # JSON is YAML
    done = promtool("test", "rules", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
