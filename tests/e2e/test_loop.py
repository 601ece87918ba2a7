"""The whole loop on a real engine: observe, diff, record, fix, verify, report."""

from __future__ import annotations

import re
import signal
from datetime import datetime
from itertools import pairwise

from tests.e2e.conftest import STACKS, free_ports, http_get, wait_for

TRIO = STACKS / "trio.yaml"


def test_a_killed_demo_service_is_restarted_healthy_and_its_issue_resolved(make_stack):
    stack = make_stack()
    stack.up()
    (port,) = free_ports(1)
    proc = stack.start_controller(
        "--interval-active", "1", "--interval-quiet", "2", "--metrics-port", str(port)
    )
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: http_get(base + "/readyz")[0] == 200, 60, "the controller to be ready")
    wait_for(lambda: stack.issues()["converged"], 60, "the running stack to count as converged")

    stack.kill("backend")
    issue = wait_for(
        lambda: (i := stack.issue("drift:backend:exited")) and i["state"] == "resolved" and i,
        120,
        "the backend's exited issue to be resolved",
    )
    assert stack.healthy("backend")
    assert issue["resolution"] == "fixed by restart"
    assert issue["attempts"][-1]["outcome"] == "success"
    assert "137" in issue["title"]
    assert f"| {issue['id']} | backend | backend exited with code 137" in stack.report()

    code, metrics = http_get(base + "/metrics")
    assert code == 200
    assert re.search(
        r'compose_controller_remediation_actions_total\{action="restart",env="e2e",'
        r'outcome="success",service="backend"\} [1-9]',
        metrics,
    ), metrics
    assert "compose_controller_reconcile_duration_seconds_count" in metrics

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0
    assert "shutting down" in stack.log()


def test_services_never_started_are_started_in_dependency_order(make_stack):
    stack = make_stack()
    stack.up("db")
    done = stack.run_controller("--once")
    assert done.returncode == 0, done.stderr
    for service in ("db", "backend", "frontend"):
        assert stack.healthy(service), service
    assert stack.state("worker")[0] == "running"
    doc = stack.issues()
    assert doc["converged"] is True
    starts = {i["service"]: i["attempts"][0] for i in doc["issues"] if i["kind"] == "missing"}
    assert set(starts) == {"backend", "worker", "frontend"}
    # the frontend depends on the backend: it was started only after the backend was ready
    assert starts["frontend"]["started_at"] >= starts["backend"]["finished_at"]


def test_a_service_whose_healthcheck_fails_is_restarted(make_stack):
    stack = make_stack(TRIO)
    stack.up()
    stack.compose("exec", "-T", "beta", "rm", "/tmp/healthy")
    wait_for(lambda: stack.state("beta") == ("running", "unhealthy"), 60, "beta to be unhealthy")
    done = stack.run_controller("--once")
    assert done.returncode == 0, done.stderr
    assert stack.healthy("beta")
    issue = stack.issue("drift:beta:unhealthy")
    assert issue is not None and issue["state"] == "resolved"
    assert [a["action"] for a in issue["attempts"]] == ["restart"]


def test_dry_run_changes_no_container_and_still_reports_the_plan(make_stack):
    stack = make_stack(TRIO)
    stack.up("alpha", "beta")
    stack.kill("alpha")
    wait_for(lambda: stack.state("alpha")[0] == "exited", 30, "alpha to exit")
    before = {s: stack.inspect(s) for s in ("alpha", "beta", "gamma")}

    done = stack.run_controller("--once", "--dry-run")

    assert done.returncode == 1  # not converged, and it says so
    after = {s: stack.inspect(s) for s in ("alpha", "beta", "gamma")}
    for service in ("alpha", "beta"):
        assert after[service]["Id"] == before[service]["Id"]
        assert after[service]["State"]["Status"] == before[service]["State"]["Status"]
        assert after[service]["State"]["StartedAt"] == before[service]["State"]["StartedAt"]
    assert after["gamma"] is None  # never started
    doc = stack.issues()
    assert doc["dry_run"] is True
    plans = {i["service"]: i["plan"] for i in doc["issues"]}
    assert plans["alpha"].startswith(
        "would restart then recreate alpha because alpha exited with code 137"
    )
    assert plans["gamma"].startswith("would start gamma")
    assert all(i["attempts"] == [] for i in doc["issues"])
    assert "Dry run: nothing was changed." in stack.report()
    assert done.stdout.startswith("Plan for e2e (dry run, nothing changed): 2 issue(s)\n")
    assert "- gamma: gamma is not running (no container) [high] -> would start gamma" in done.stdout


def test_with_one_agent_fixes_never_overlap(make_stack):
    stack = make_stack(TRIO)
    stack.up()
    for service in ("alpha", "beta", "gamma"):
        stack.kill(service)
    done = stack.run_controller("--once", "--max-agents", "1")
    assert done.returncode == 0, done.stderr
    # a step's command runs from started_at to acted_at; its proof needs no worker
    commands = sorted(
        (datetime.fromisoformat(a["started_at"]), datetime.fromisoformat(a["acted_at"]))
        for i in stack.issues()["issues"]
        for a in i["attempts"]
    )
    assert len(commands) == 3
    for (_, previous_end), (start, _) in pairwise(commands):
        assert start >= previous_end


def test_a_malformed_desired_state_exits_2_with_one_line(make_stack):
    stack = make_stack(TRIO, services="  alpha:\n    replicas: -1\n")
    done = stack.run_controller("--once")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    line = stack.desired_file.read_text().splitlines().index("    replicas: -1") + 1
    assert f"{stack.desired_file}:{line}: services.alpha.replicas:" in lines[0]
