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
