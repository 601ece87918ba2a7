"""Faults that overlap, on a real engine: a crash during a proof, a stale log line, a
person's slow recreate, and Docker's own restart loop."""

from __future__ import annotations

import subprocess
import time
from datetime import datetime
from typing import Any

from tests.e2e.conftest import STACKS, Stack, metric, wait_for

OVERLAP = STACKS / "overlap.yaml"
ONLY = ("web", "stubborn", "looper")


def only(stack: Stack, *services: str, extra: str = "", tail: str = "") -> None:
    """Declare the other services of overlap.yaml as not wanted (replicas 0)."""
    lines = "".join(f"  {n}: {{replicas: 0}}\n" for n in ONLY if n not in services)
    stack.desired_file.write_text(
        stack.desired_file.read_text() + "services:\n" + lines + extra + tail
    )


def serve(stack: Stack, *flags: str) -> str:
    return stack.serve("--interval-active", "1", "--interval-quiet", "2", *flags)


def passes(base: str) -> float:
    return metric(base, "compose_controller_reconcile_passes_total", 'env="e2e",result="ok"') or 0.0


def times(attempt: dict[str, Any]) -> tuple[datetime, datetime | None]:
    end = attempt["finished_at"]
    return datetime.fromisoformat(attempt["started_at"]), (
        datetime.fromisoformat(end) if end else None
    )


def actions_on(stack: Stack, service: str) -> list[dict[str, Any]]:
    return [a for i in stack.issues()["issues"] if i["service"] == service for a in i["attempts"]]


def test_a_crash_while_a_fix_is_proven_fails_it_at_once_and_is_fixed_after_its_backoff(
    make_stack,
):
    stack = make_stack(OVERLAP)
    only(stack, "web", extra="  web: {min_ready_seconds: 15, verify_timeout_seconds: 60}\n")
    stack.up("web")
    serve(stack)
    wait_for(lambda: stack.issues()["converged"], 60, "the stack to converge")

    stack.crash("web")
    proving = wait_for(
        lambda: (
            (i := stack.issue("drift:web:exited"))
            and i["verifying_until"]
            and stack.state("web")[0] == "running"
            and i
        ),
        60,
        "the first restart to be carried out and proven",
    )
    assert proving["attempts"][0]["action"] == "restart"
    stack.crash("web")  # killed again, long before the 15 s proof is over
    crashed = time.time()

    failed = wait_for(
        lambda: (
            (i := stack.issue("drift:web:exited"))
            and i["attempts"][0]["outcome"] == "failure"
            and i
        ),
        60,
        "the first step to fail",
    )
    first = failed["attempts"][0]
    # a new fault, not a deadline: the step ended on the crash, not 60 s later
    assert "after the fix" in first["detail"], first
    assert times(first)[1] is not None and times(first)[1].timestamp() < crashed + 30
    fixed = wait_for(
        lambda: (i := stack.issue("drift:web:exited")) and i["state"] == "resolved" and i,
        120,
        "the service to be fixed after its backoff",
    )
    assert stack.healthy("web")
    second = fixed["attempts"][1]
    # the backoff (10 s here) counts from when the step before began, as the kubelet's
    gap = (times(second)[0] - times(first)[0]).total_seconds()  # type: ignore[operator]
    assert gap >= 9, (
        f"the same fault's next fix came {gap:.1f} s after the first, inside its backoff"
    )
    assert all(a["action"] != "runbook" for a in fixed["attempts"])


RUNBOOK = """remediation:
  runbooks:
    - name: create-missing-database
      when: {pattern: pg-database-missing}
      exec:
        service: db
        argv: [createdb, -h, /tmp, -p, "${DB_PORT}", -U, postgres, -O, app, "{database}"]
"""


def test_after_a_runbook_fixed_the_database_a_killed_api_is_restarted_without_backoff(
    make_stack,
):
    stack = make_stack(services="  backend: {verify_timeout_seconds: 30}\n")
    stack.environment["APP_DB_NAME"] = "orders"
    stack.desired_file.write_text(
        stack.desired_file.read_text().replace(
            "environment:\n", "environment:\n  APP_DB_NAME: orders\n"
        )
        + RUNBOOK
    )
    stack.up("db")
    serve(stack)
    wait_for(
        lambda: any(
            a["action"] == "runbook" and "createdb in db exited 0" in a["detail"]
            for s in ("backend", "worker", "db")
            for a in actions_on(stack, s)
        ),
        180,
        "the runbook to create the database",
    )
    wait_for(lambda: stack.healthy("backend"), 120, "the backend to be healthy")

    stack.crash("backend")
    wait_for(lambda: stack.state("backend")[0] != "running", 30, "the backend to die")
    restart = wait_for(
        lambda: (i := stack.issue("drift:backend:exited")) and i["attempts"] and i["attempts"][0],
        60,
        "the crash to be acted on",
    )
    wait_for(lambda: stack.healthy("backend"), 120, "the backend to be healthy again")
    assert restart["action"] == "restart", restart
    log = stack.log()
    # the first fix of a new fault: no backoff, and the runbook is not run again
    assert "backend: backing off" not in log, log[-4000:]
    runbooks = [
        a
        for s in ("backend", "worker", "db")
        for a in actions_on(stack, s)
        if a["action"] == "runbook" and a["started_at"] > restart["started_at"]
    ]
    assert runbooks == [], runbooks


def test_a_stale_auth_line_never_keeps_a_crashed_service_down(make_stack):
    stack = make_stack()
    stack.up()
    serve(stack)
    wait_for(lambda: stack.issues()["converged"], 90, "the stack to converge")
    port = stack.environment["DB_PORT"]
    stack.compose(  # a client with a wrong password: PostgreSQL logs an auth failure
        "exec",
        "-T",
        "db",
        "psql",
        f"postgresql://app:wrong@127.0.0.1:{port}/app",
        "-c",
        "select 1",
        check=False,
    )
    auth = wait_for(
        lambda: next(
            (
                i
                for i in stack.issues()["issues"]
                if i["service"] == "db" and i["category"] == "auth"
            ),
            None,
        ),
        60,
        "the auth error to be reported",
    )
    stack.crash("db")  # it ran on, healthy, and now dies
    fixed = wait_for(
        lambda: (i := stack.issue("drift:db:exited")) and i["state"] == "resolved" and i,
        120,
        "the database to be restarted",
    )
    assert fixed["attempts"][0]["action"] == "restart"
    assert "cannot fix" not in (fixed["resolution"] or "")
    wait_for(lambda: stack.healthy("db"), 90, "the database to be healthy")
    still = stack.issue(auth["fingerprint"])
    assert still is not None and still["attempts"] == []  # the log issue: reported only


def test_a_persons_slow_recreate_is_never_fought(make_stack):
    stack = make_stack(OVERLAP)
    only(stack, "stubborn")
    stack.up("stubborn")
    base = serve(stack)
    wait_for(lambda: stack.issues()["converged"], 60, "the stack to converge")
    before = stack.inspect("stubborn")
    assert before is not None

    person = subprocess.run(  # recreate with another value; SIGTERM is ignored for 10 s
        [
            "docker",
            "compose",
            "-p",
            stack.project,
            "-f",
            str(stack.compose_file),
            "up",
            "-d",
            "stubborn",
        ],
        env={**stack.process_env, **stack.environment, "FLAVOUR": "spicy"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert person.returncode == 0, person.stderr
    after = stack.inspect("stubborn")
    assert after is not None and after["Id"] != before["Id"]
    assert "FLAVOUR=spicy" in after["Config"]["Env"]

    outdated = wait_for(
        lambda: (
            (i := stack.issue("drift:stubborn:outdated")) and i["plan"].startswith("reported") and i
        ),
        60,
        "the outdated config to be reported",
    )
    assert outdated["state"] == "open" and outdated["attempts"] == []  # reported, no page
    seen = passes(base)
    wait_for(lambda: passes(base) >= seen + 3, 60, "three more passes")
    assert actions_on(stack, "stubborn") == []  # zero controller actions, during and after
    kept = stack.inspect("stubborn")
    assert kept is not None and kept["Id"] == after["Id"]  # the person's container is kept
    assert "stubborn: restart" not in stack.log() and "stubborn: recreate" not in stack.log()


def test_dockers_own_crash_loop_is_one_incident_with_no_restart_of_ours(make_stack):
    stack = make_stack(OVERLAP)
    only(stack, "looper", tail="remediation: {budget: 4}\n")
    stack.compose("up", "-d", "looper")
    serve(stack)
    issue = wait_for(
        lambda: (i := stack.issue("drift:looper:exited")) and i["state"] == "needs-human" and i,
        120,
        "Docker's loop to reach a human",
    )
    assert "Docker's restart policy (unless-stopped)" in issue["resolution"]
    end = time.monotonic() + 120  # it crash-loops for two minutes
    while time.monotonic() < end:
        drift = [i for i in stack.issues()["issues"] if i["fingerprint"].startswith("drift:looper")]
        assert [i["fingerprint"] for i in drift] == ["drift:looper:exited"], drift
        assert drift[0]["state"] != "resolved", drift  # never resolved and reopened
        assert drift[0]["occurrences"] == 1
        time.sleep(2)
    restarts = int(stack.inspect("looper")["RestartCount"])  # type: ignore[index]
    assert restarts >= 4  # Docker kept restarting it ...
    assert actions_on(stack, "looper") == []  # ... and the controller never did
    assert "Docker's restart policy" in stack.report()
