"""The observability contract on a real Prometheus: every dashboard query and every alert
signal returns series during an incident, the critical-issue alert goes pending or
firing and, through a real Alertmanager with the shipped route, reaches a webhook, and
promtool finds nothing wrong in a scrape of /metrics."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import ROOT, STACKS, free_ports, http_get, metric, wait_for
from tests.receiver import Receiver

DASHBOARD = ROOT / "grafana" / "dashboards" / "compose-controller.json"
ALERTS = ROOT / "metrics" / "alerts.yml"
ALERTMANAGER = ROOT / "metrics" / "alertmanager.yml"
COMPARISON = re.compile(r"\s*(==|!=|>=|<=|>|<)\s*-?[0-9.]+\s*$")


def dashboard_queries() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in board["panels"] for t in p.get("targets", [])]


def alert_rules() -> list[dict[str, Any]]:
    return [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]


class Prometheus:
    def __init__(self, root: Path, target: str, alertmanager: str | None = None) -> None:
        (self.port,) = free_ports(1)
        self.base = f"http://127.0.0.1:{self.port}"
        config = root / "prometheus.yml"
        alerting = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
        config.write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "rule_files": [str(ALERTS)],
                    **({"alerting": alerting} if alertmanager else {}),
                    "scrape_configs": [
                        {
                            "job_name": "compose-controller",
                            "static_configs": [{"targets": [target]}],
                        }
                    ],
                }
            )
        )
        binary = shutil.which("prometheus")
        if binary is None:
            pytest.fail("no prometheus binary: run scripts/engine-up (Debian package prometheus)")
        with open(root / "prometheus.log", "w") as log:
            self.proc = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={root / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(lambda: http_get(self.base + "/-/ready")[0] == 200, 60, "Prometheus to start")

    def query(self, expr: str) -> dict[str, Any]:
        code, body = http_get(f"{self.base}/api/v1/query?query={urllib.parse.quote(expr)}")
        answer: dict[str, Any] = json.loads(body) if body else {"status": f"http {code}"}
        return answer

    def series(self, expr: str) -> list[dict[str, Any]]:
        answer = self.query(expr)
        assert answer["status"] == "success", (expr, answer)
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def alerts(self) -> list[dict[str, Any]]:
        alerts: list[dict[str, Any]] = json.loads(http_get(self.base + "/api/v1/alerts")[1])[
            "data"
        ]["alerts"]
        return alerts

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


class Alertmanager:
    """Debian's prometheus-alertmanager on a loopback port, with the shipped route and
    every receiver's webhook pointed at ``receiver`` (path: the receiver's name)."""

    def __init__(self, root: Path, receiver: Receiver) -> None:
        binary = shutil.which("prometheus-alertmanager")
        if binary is None:
            pytest.fail("no prometheus-alertmanager: run scripts/engine-up (Debian package)")
        (self.port,) = free_ports(1)
        self.address = f"127.0.0.1:{self.port}"
        config = yaml.safe_load(ALERTMANAGER.read_text())
        config["route"]["group_wait"] = "1s"  # the shipped waits, shortened for a test
        for route in config["route"].get("routes", []):
            route["group_wait"] = "1s"
        for item in config["receivers"]:
            for hook in item.get("webhook_configs", []):
                hook["url"] = f"http://127.0.0.1:{receiver.port}/{item['name']}"
        path = root / "alertmanager.yml"
        path.write_text(yaml.safe_dump(config))
        with open(root / "alertmanager.log", "w") as log:
            self.proc = subprocess.Popen(
                [
                    binary,
                    f"--config.file={path}",
                    f"--storage.path={root / 'am-data'}",
                    f"--web.listen-address={self.address}",
                    "--cluster.listen-address=",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(
            lambda: http_get(f"http://{self.address}/-/ready")[0] == 200,
            60,
            "Alertmanager to start",
        )

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


@pytest.fixture
def prometheus_factory(tmp_path: Path) -> Iterator[Any]:
    started: list[Prometheus] = []

    def start(target: str, alertmanager: str | None = None) -> Prometheus:
        prom = Prometheus(tmp_path, target, alertmanager)
        started.append(prom)
        return prom

    yield start
    for prom in started:
        prom.stop()


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[tuple[Alertmanager, Receiver]]:
    (port,) = free_ports(1)
    receiver = Receiver(port)
    manager = Alertmanager(tmp_path, receiver)
    yield manager, receiver
    manager.stop()
    receiver.close()


def concrete(expr: str) -> str:
    """A dashboard query with Grafana's variables filled in for this run."""
    return (
        expr.replace("$env", "e2e")
        .replace('service=~"$service"', 'service=~".*"')
        .replace("$__rate_interval", "1m")
    )


def test_dashboards_and_alerts_hold_on_a_real_prometheus_during_an_incident(
    make_stack, prometheus_factory
):
    stack = make_stack(
        STACKS / "chatty.yaml",
        services=(
            "  pytrace: {replicas: 0}\n  importer: {replicas: 0}\n"
            "  crasher: {verify_timeout_seconds: 2}\n"
        ),
    )
    stack.compose("up", "-d", "talker", "counter")
    base = stack.serve("--interval-active", "1", "--interval-quiet", "1")
    prom = prometheus_factory(base.removeprefix("http://"))
    wait_for(lambda: prom.series('up{job="compose-controller"} == 1'), 60, "the first scrape")

    # the incident: a critical database error is logged, a service crashes, one crash-loops
    stack.say(
        "talker", '2026-11-28 10:00:00.000 UTC [57] FATAL:  database "ghost" does not exist\n'
    )
    stack.crash("counter")
    wait_for(
        lambda: metric(
            base,
            "compose_controller_remediation_actions_total",
            'action="restart",env="e2e",outcome="success",service="counter"',
        ),
        90,
        "the crashed counter to be fixed",
    )
    wait_for(
        lambda: prom.series('compose_controller_issues{severity="critical"}'),
        60,
        "Prometheus to see the critical issue",
    )
    wait_for(
        lambda: prom.series(
            'compose_controller_remediation_actions_total{outcome="success",service="counter"} > 0'
        ),
        60,
        "Prometheus to see the fix",
    )
    wait_for(
        lambda: (
            prom.series("compose_controller_container_restarts_total")
            and prom.series("increase(compose_controller_remediation_actions_total[1m]) > 0")
        ),
        60,
        "a minute of remediation history",
    )

    # the Foresight row's series come with the sampler's rounds (every 30 s while a run is
    # new): each query is polled, not read once
    for expr in dashboard_queries():
        query = concrete(expr)
        wait_for(lambda q=query: prom.series(q), 150, f"dashboard query to return: {expr}")
    for rule in alert_rules():
        assert prom.query(rule["expr"])["status"] == "success", rule["alert"]
        signal = COMPARISON.sub("", rule["expr"])
        assert signal != rule["expr"], f"{rule['alert']}: expected `<signal> <comparison>`"
        assert prom.series(signal), f"{rule['alert']}: its signal has no series: {signal}"

    alert = wait_for(
        lambda: next(
            (
                a
                for a in prom.alerts()
                if a["labels"]["alertname"] == "ComposeCriticalIssueOpen"
                and a["state"] in ("pending", "firing")
            ),
            None,
        ),
        60,
        "the critical-issue alert to go pending or firing",
    )
    assert alert["labels"]["service"] == "talker"


def test_the_critical_issue_alert_reaches_a_webhook_through_alertmanager(
    make_stack, prometheus_factory, alertmanager
):
    """The project's rules on a real Prometheus, the shipped route on a real Alertmanager:
    a critical database error in a service's log becomes an alert a person receives."""
    manager, receiver = alertmanager
    stack = make_stack(
        STACKS / "chatty.yaml",
        services="  pytrace: {replicas: 0}\n  importer: {replicas: 0}\n  crasher: {replicas: 0}\n",
    )
    stack.compose("up", "-d", "talker", "counter")
    base = stack.serve("--interval-active", "1", "--interval-quiet", "1")
    prom = prometheus_factory(base.removeprefix("http://"), manager.address)
    wait_for(lambda: prom.series('up{job="compose-controller"} == 1'), 60, "the first scrape")

    stack.say(
        "talker", '2026-11-28 10:00:00.000 UTC [57] FATAL:  database "ghost" does not exist\n'
    )
    wait_for(
        lambda: prom.series('compose_controller_issues{severity="critical"}'),
        60,
        "Prometheus to see the critical issue",
    )

    def delivered() -> list[tuple[str, dict[str, Any]]]:
        return [
            (path, alert)
            for path, body in zip(receiver.paths, receiver.messages(), strict=False)
            for alert in body.get("alerts", [])
            if alert["labels"].get("alertname") == "ComposeCriticalIssueOpen"
            and alert["status"] == "firing"
        ]

    # the rule holds for 30 s before it fires; then the route's group_wait
    path, alert = wait_for(delivered, 150, "the alert to reach the webhook")[0]
    assert path == "/oncall"  # the shipped route sends critical alerts to on-call
    assert alert["labels"]["service"] == "talker" and alert["labels"]["env"] == "e2e"
    assert alert["labels"]["severity"] == "critical"
    assert "critical issue open on e2e/talker" in alert["annotations"]["summary"]


def test_promtool_finds_no_problem_in_a_scrape_of_metrics(make_stack):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("no promtool: run scripts/engine-up (Debian package prometheus)")
    stack = make_stack(STACKS / "trio.yaml")
    stack.up()
    base = stack.serve()
    wait_for(lambda: stack.issues()["converged"], 60, "a first pass")
    code, scrape = http_get(base + "/metrics")
    assert code == 200
    done = subprocess.run(
        [promtool, "check", "metrics"],
        input=scrape,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0 and not done.stdout.strip() and not done.stderr.strip(), (
        done.stdout + done.stderr
    )


def test_the_grafana_compose_file_wires_the_files_we_ship():
    """What a user runs to get Prometheus and Grafana (the images are not pulled here):
    valid Compose, every bind mount a folder we ship, Prometheus' config valid with its
    rules, Grafana's provisioning reading where the dashboard is mounted, and its
    datasource the Prometheus of the same file."""
    compose = ROOT / "grafana" / "compose.yaml"
    done = subprocess.run(
        ["docker", "compose", "-f", str(compose), "config", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    services = json.loads(done.stdout)["services"]
    mounts = {
        name: {v["target"]: Path(v["source"]) for v in svc["volumes"] if v["type"] == "bind"}
        for name, svc in services.items()
    }
    for name, binds in mounts.items():
        for target, source in binds.items():
            assert source.is_dir() and ROOT in source.parents, f"{name}: {source} -> {target}"
    prometheus = services["prometheus"]["command"]
    config = dict(arg.removeprefix("--").split("=", 1) for arg in prometheus)
    etc = Path(config["config.file"]).parent
    shipped = mounts["prometheus"][str(etc)] / Path(config["config.file"]).name
    check = subprocess.run(
        ["promtool", "check", "config", str(shipped)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "1 rule files found" in check.stdout  # alerts.yml came along
    grafana = mounts["grafana"]
    provisioning = grafana["/etc/grafana/provisioning"]
    (provider,) = yaml.safe_load(
        (provisioning / "dashboards" / "compose-controller.yml").read_text()
    )["providers"]
    dashboards = grafana[provider["options"]["path"]]
    assert (dashboards / DASHBOARD.name).read_text() == DASHBOARD.read_text()
    home = services["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (dashboards / Path(home).relative_to(provider["options"]["path"])).is_file()
    (source,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())[
        "datasources"
    ]
    assert source["url"] == f"http://{config['web.listen-address']}"
    # Prometheus sends its alerts to the Alertmanager of the same file, which reads the
    # shipped, valid route
    manager = dict(
        arg.removeprefix("--").split("=", 1) for arg in services["alertmanager"]["command"]
    )
    routes = mounts["alertmanager"][str(Path(manager["config.file"]).parent)]
    amtool = shutil.which("amtool")
    assert amtool, "no amtool: run scripts/engine-up (Debian package prometheus-alertmanager)"
    check = subprocess.run(
        [amtool, "check-config", str(routes / Path(manager["config.file"]).name)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    alerting = yaml.safe_load(shipped.read_text())["alerting"]["alertmanagers"]
    assert alerting == [{"static_configs": [{"targets": [manager["web.listen-address"]]}]}]
