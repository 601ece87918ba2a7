"""`controller status`: the issues document as kubectl get/describe would print it,
read from a real local HTTP endpoint or the JSON file; colour only when wanted."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from controller.cli import main
from controller.http import StatusServer
from controller.status import colour_wanted, status_command

NOW = datetime(2026, 11, 28, 4, 45, 0, tzinfo=UTC)

DOC = {
    "schema_version": 1,
    "env": "dev",
    "project": "demo-dev",
    "generated_at": "2026-11-28T04:44:59+00:00",
    "observed_at": "2026-11-28T04:44:57+00:00",
    "engine": {"reachable": True, "detail": ""},
    "dry_run": False,
    "converged": False,
    "summary": {"active": 2},
    "services": [
        {
            "name": "db",
            "condition": "Ready",
            "required": True,
            "replicas": 1,
            "containers": 1,
            "running": 1,
            "healthy": 1,
            "restarts": 0,
        },
        {
            "name": "backend",
            "condition": "Degraded",
            "required": True,
            "replicas": 1,
            "containers": 1,
            "running": 0,
            "healthy": 0,
            "restarts": 2,
        },
        {
            "name": "worker",
            "condition": "Remediating",
            "required": True,
            "replicas": 1,
            "containers": 1,
            "running": 0,
            "healthy": None,
            "restarts": 0,
        },
    ],
    "issues": [
        {
            "id": "e6c38aabe127",
            "fingerprint": "drift:backend:exited",
            "service": "backend",
            "kind": "exited",
            "severity": "high",
            "state": "failed",
            "blocking": True,
            "title": "backend exited with code 1",
            "detail": "exit code 1, restart count 2",
            "count": 4,
            "occurrences": 1,
            "opened_at": "2026-11-28T04:43:00+00:00",
            "resolution": "restart did not fix it",
            "next_attempt_at": "2026-11-28T04:45:20+00:00",
            "waiting_for": [],
            "caused_by": [],
            "plan": "backing off: next fix (restart)",
            "attempts": [
                {
                    "action": "restart",
                    "attempt": 1,
                    "started_at": "2026-11-28T04:43:01+00:00",
                    "finished_at": "2026-11-28T04:43:06.500000+00:00",
                    "outcome": "failure",
                    "detail": "backend exited again within 2 s",
                },
            ],
        },
        {
            "id": "0a1b2c3d4e5f",
            "fingerprint": "drift:worker:exited",
            "service": "worker",
            "kind": "exited",
            "severity": "high",
            "state": "remediating",
            "blocking": True,
            "title": "worker exited with code 137",
            "count": 1,
            "occurrences": 1,
            "opened_at": "2026-11-28T04:44:50+00:00",
            "waiting_for": [],
            "caused_by": [],
            "attempts": [
                {
                    "action": "restart",
                    "attempt": 1,
                    "started_at": "2026-11-28T04:44:55+00:00",
                    "finished_at": None,
                }
            ],
        },
        {
            "id": "ffeeddccbbaa",
            "fingerprint": "drift:db:exited",
            "service": "db",
            "kind": "exited",
            "severity": "high",
            "state": "resolved",
            "title": "db exited",
            "resolved_at": "2026-11-28T04:40:00+00:00",
            "resolution": "fixed by restart",
            "attempts": [],
        },
    ],
    "remediation": {
        "backend": {
            "throttle": {
                "steps": ["2026-11-28T04:43:01+00:00"],
                "consecutive": 1,
                "next_step_at": "2026-11-28T04:45:20+00:00",
                "exhausted_at": None,
                "ready_since": None,
            },
        },
    },
}


def run(*argv: str, environ: dict[str, str] | None = None) -> tuple[int, str]:
    out = io.StringIO()
    code = status_command(list(argv), out=out, environ=environ or {}, now=NOW)
    return code, out.getvalue()


@pytest.fixture
def status_file(tmp_path: Path) -> Path:
    path = tmp_path / "docker_issues_dev.json"
    path.write_text(json.dumps(DOC))
    return path


def test_one_row_per_service_with_condition_containers_issues_and_next_action(status_file):
    code, text = run("--file", str(status_file))
    assert code == 0
    lines = text.splitlines()
    assert lines[0] == "demo-dev (env dev): not converged, 2 active issue(s), observed 3s ago"
    header, *rows = lines[2:]
    assert header.split() == [
        "SERVICE",
        "CONDITION",
        "RUNNING",
        "HEALTHY",
        "RESTARTS",
        "ISSUES",
        "NEXT",
        "WHEN",
    ]
    by_name = {row.split()[0]: " ".join(row.split()) for row in rows}
    assert by_name["backend"].split()[:7] == [
        "backend",
        "Degraded",
        "0/1",
        "0/1",
        "2",
        "1",
        "(high)",
    ]
    assert by_name["backend"].endswith("fix (backing off) in 20s")
    assert by_name["worker"].split()[:4] == ["worker", "Remediating", "0/1", "-"]
    assert by_name["worker"].endswith("restart (attempt 1) now")
    assert by_name["db"].split() == ["db", "Ready", "1/1", "1/1", "0", "0", "-", "-"]
    assert "\x1b[" not in text  # not a terminal: no colour


def test_a_step_whose_command_returned_is_shown_being_proven_until_its_deadline(tmp_path):
    doc = json.loads(json.dumps(DOC))
    worker = next(i for i in doc["issues"] if i["service"] == "worker")
    worker["attempts"][0]["acted_at"] = "2026-11-28T04:44:56+00:00"
    worker["verifying_until"] = "2026-11-28T04:45:12+00:00"
    path = tmp_path / "docker_issues_dev.json"
    path.write_text(json.dumps(doc))
    code, text = run("--file", str(path))
    assert code == 0
    row = next(" ".join(r.split()) for r in text.splitlines() if r.startswith("worker"))
    assert row.endswith("proving restart (attempt 1) in 12s")


def test_the_header_says_what_a_verdict_waits_on_that_no_issue_says(tmp_path):
    doc = json.loads(json.dumps(DOC))
    doc["waiting_on"] = ["api: its new change is under watch"]
    path = tmp_path / "docker_issues_dev.json"
    path.write_text(json.dumps(doc))
    code, text = run("--file", str(path))
    assert code == 0
    assert text.splitlines()[0].startswith(
        "demo-dev (env dev): not converged (api: its new change is under watch), 2 active"
    )


def test_one_service_in_full_with_attempts_backoff_and_history(status_file):
    code, text = run("backend", "--file", str(status_file))
    assert code == 0
    assert "Condition:    Degraded" in text
    assert "Containers:   0/1 running, 0/1 healthy" in text
    assert "Next:         fix (backing off) (in 20s)" in text
    assert (
        "Backoff:      next fix in 20s; 1 fix step(s) since last stable, 1 in the budget window"
        in text
    )
    assert "e6c38aabe127  exited  high  failed  backend exited with code 1" in text
    assert "Why:          restart did not fix it" in text
    assert "Next attempt: in 20s" in text
    attempt = next(line for line in text.splitlines() if line.strip().startswith("1 "))
    assert attempt.split()[:6] == ["1", "restart", "1m59s", "ago", "5.5s", "failure"]


def test_an_unknown_service_is_exit_2_naming_the_known_ones(status_file, capsys):
    assert run("nosuch", "--file", str(status_file))[0] == 2
    assert "has: backend, db, worker" in capsys.readouterr().err


def test_json_passes_the_document_through(status_file):
    code, text = run("--file", str(status_file), "--json")
    assert code == 0 and json.loads(text) == DOC


def test_it_reads_a_running_controllers_status_endpoint_found_by_its_variables():
    server = StatusServer("127.0.0.1", 0, CollectorRegistry(), lambda: True, lambda: DOC)
    server.start()
    try:
        _, port = server.address
        code, text = run(environ={"CONTROLLER_METRICS_PORT": str(port)})
        assert code == 0 and "backend" in text and "Degraded" in text
        code, text = run("--url", f"http://127.0.0.1:{port}/status", "--json")
        assert json.loads(text)["project"] == "demo-dev"
    finally:
        server.stop()


def test_no_controller_answering_is_exit_1_with_one_line(capsys):
    server = StatusServer("127.0.0.1", 0, CollectorRegistry(), lambda: True, lambda: DOC)
    _, port = server.address
    server.stop()  # the port is free again: nothing answers there
    assert run("--metrics-port", str(port))[0] == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no controller answers" in err


def test_colour_only_on_a_terminal_and_never_with_no_color(status_file):
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert colour_wanted("auto", Tty(), {}) is True
    assert colour_wanted("auto", Tty(), {"NO_COLOR": "1"}) is False
    assert colour_wanted("auto", io.StringIO(), {}) is False
    assert colour_wanted("auto", Tty(), {"NO_COLOR": ""}) is True  # empty: not set
    _, text = run("--file", str(status_file), "--color", "always")
    assert "\x1b[31mDegraded\x1b[0m" in text
    plain = [line.split() for line in run("--file", str(status_file))[1].splitlines()[3:]]
    coloured_rows = text.splitlines()[3:]
    # padding counts visible characters only: columns still line up
    assert [
        row.replace("\x1b[31m", "")
        .replace("\x1b[32m", "")
        .replace("\x1b[36m", "")
        .replace("\x1b[0m", "")
        .split()
        for row in coloured_rows
    ] == plain


def test_the_cli_dispatches_status(status_file, capsys):
    assert main(["status", "--file", str(status_file), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["env"] == "dev"
