"""Remediation on a real engine: no storms, root causes first, runbooks, people respected."""

from __future__ import annotations

import itertools
import re
from datetime import datetime

from tests.e2e.conftest import STACKS, metric, wait_for

CHATTY = STACKS / "chatty.yaml"
TRIO = STACKS / "trio.yaml"


def start(stack, *flags: str) -> str:  # type: ignore[no-untyped-def]
    return stack.serve("--interval-active", "1", "--interval-quiet", "2", *flags)


def passes(base: str) -> float:
    return metric(base, "compose_controller_reconcile_passes_total", 'env="e2e",result="ok"') or 0.0


def attempts(issue: dict) -> list[tuple[datetime, datetime]]:  # type: ignore[type-arg]
    return [
        (datetime.fromisoformat(a["started_at"]), datetime.fromisoformat(a["finished_at"]))
        for a in issue["attempts"]
        if a["finished_at"]
    ]


def only(stack, *services: str, extra: str = "") -> None:  # type: ignore[no-untyped-def]
    """Declare the other services of the file as not wanted (replicas 0)."""
    names = ("talker", "counter", "pytrace", "crasher", "importer")
    lines = "".join(f"  {n}: {{replicas: 0}}\n" for n in names if n not in services)
    stack.desired_file.write_text(stack.desired_file.read_text() + "services:\n" + lines + extra)


def test_an_always_crashing_service_is_fixed_within_budget_with_growing_gaps(make_stack):
    stack = make_stack(CHATTY)
    only(stack, "crasher", extra="  crasher: {verify_timeout_seconds: 3}\n")
    stack.desired_file.write_text(
        stack.desired_file.read_text()
        + ("remediation: {budget: 6, backoff_initial_seconds: 1, backoff_max_seconds: 30}\n")
    )
    stack.compose("up", "-d", "crasher")
    base = start(stack)
    issue = wait_for(
        lambda: (i := stack.issue("drift:crasher:exited")) and i["state"] == "needs-human" and i,
        180,
        "the crash loop to reach a human",
    )
    steps = attempts(issue)
    assert len(steps) == 6  # the budget, all of it, no more
    assert "budget of 6" in issue["resolution"]
    waits = [(b[0] - a[1]).total_seconds() for a, b in itertools.pairwise(steps)]
    backoffs = [w for w in waits if w > 0.5]  # the pauses between work items
    assert len(backoffs) >= 2 and backoffs == sorted(backoffs), waits
    seen = passes(base)
    wait_for(lambda: passes(base) >= seen + 4, 60, "four more passes")
    assert len(attempts(stack.issue("drift:crasher:exited"))) == 6  # hands off: no storm


def test_a_dead_database_is_fixed_first_and_its_dependents_wait(make_stack):
    # db is enforced: someone stopping it is undone, after the 10 s of blip time given
    # here; that keeps it down long enough for its dependents (healthchecks every 2 s) to
    # log real connection errors, even on a loaded machine (a crash is fixed before they
    # notice)
    stack = make_stack(services="  db: {enforce: true}\n")
    stack.up()
    start(stack, "--blip-seconds", "10")
    wait_for(lambda: stack.issues()["converged"], 90, "the stack to converge")
    stack.docker("stop", "--time", "5", stack.inspect("db")["Id"])
    db_issue = wait_for(
        lambda: (i := stack.issue("drift:db:exited")) and i["state"] == "resolved" and i,
        120,
        "the database to be fixed",
    )
    wait_for(lambda: stack.healthy("backend") and stack.healthy("db"), 120, "all healthy")
    db_fixed = attempts(db_issue)[-1][1]
    doc = stack.issues()
    for issue in doc["issues"]:
        if issue["service"] in ("backend", "worker", "frontend"):
            for started, _ in attempts(issue):
                assert started >= db_fixed, f"{issue['title']} was acted on before db was fixed"
    linked = [
        i
        for i in doc["issues"]
        if i["service"] in ("backend", "worker")
        and i["source"] == "log"
        and i["category"] in ("connection", "database")
    ]
    assert linked, stack.log()[-6000:] + str(
        [(i["service"], i["source"], i["category"], i["title"], i["state"]) for i in doc["issues"]]
    )
    assert all(not i["attempts"] for i in linked)  # never remediated on their own
    log = stack.log()
    assert re.search(
        r"(backend|worker): .* is caused by an upstream issue \(" + db_issue["id"], log
    )


RUNBOOK = """remediation:
  runbooks:
    - name: create-missing-database
      when: {pattern: pg-database-missing}
      exec:
        service: db
        argv: [createdb, -h, /tmp, -p, "${DB_PORT}", -U, postgres, -O, app, "{database}"]
"""


def test_the_missing_database_runbook_creates_it_and_the_backend_recovers(make_stack):
    stack = make_stack(services="  backend: {verify_timeout_seconds: 10}\n")
    stack.environment["APP_DB_NAME"] = "orders"
    stack.desired_file.write_text(
        stack.desired_file.read_text().replace(
            "environment:\n", "environment:\n  APP_DB_NAME: orders\n"
        )
        + RUNBOOK
    )
    stack.up("db")
    done = stack.run_controller("--once", "--timeout", "240")
    assert done.returncode == 0, done.stderr[-3000:]
    assert stack.healthy("backend")
    issue = next(
        i
        for i in stack.issues()["issues"]
        if i["pattern_id"] == "pg-database-missing" and i["service"] == "backend"
    )
    assert issue["state"] == "resolved"
    assert issue["captures"] == {"database": "orders"}
    steps = [(i["service"], a) for i in stack.issues()["issues"] for a in i["attempts"]]
    assert any(
        a["action"] == "runbook"
        and a["outcome"] == "success"
        and "createdb in db exited 0" in a["detail"]
        for _, a in steps
    ), steps
    out = stack.psql(
        "-Atc",
        "select datname from pg_database where datname = 'orders'",
    )
    assert out.strip() == "orders"


def test_an_import_error_is_handed_to_a_human_not_restarted_in_a_loop(make_stack):
    stack = make_stack(CHATTY)
    only(stack, "importer")
    stack.compose("up", "-d", "importer")
    base = start(stack)
    issue = wait_for(
        lambda: (i := stack.issue("drift:importer:exited")) and i["state"] == "needs-human" and i,
        60,
        "the import error to reach a human",
    )
    assert "import error that a restart cannot fix" in issue["resolution"]
    assert "payments_sdk" in issue["resolution"]
    seen = passes(base)
    wait_for(lambda: passes(base) >= seen + 4, 60, "four more passes")
    assert stack.issue("drift:importer:exited")["attempts"] == []  # never restarted


def test_a_persons_restart_is_neither_a_stop_nor_a_crash(make_stack):
    # docker compose restart is kill, die, stop and start in one call: a pass in the
    # moment between the stop and the start must not open an issue (the soak paged a
    # person for each of their own restarts)
    stack = make_stack(TRIO)
    stack.up()
    base = start(stack)
    wait_for(lambda: stack.issues()["converged"], 60, "the stack to converge")
    for _ in range(3):
        seen = passes(base)
        stack.compose("restart", "--timeout", "1", "alpha", "beta")
        wait_for(lambda seen=seen: passes(base) >= seen + 2, 60, "two passes after the restart")
    wait_for(lambda: stack.issues()["converged"], 60, "the stack to converge again")
    doc = stack.issues()
    assert [(i["fingerprint"], i["state"]) for i in doc["issues"]] == []
    assert "stopped by a person" not in stack.log()


def test_a_stopped_service_is_left_alone_unless_enforced(make_stack):
    stack = make_stack(TRIO, services="  beta: {enforce: true}\n")
    stack.up()
    base = start(stack)
    wait_for(lambda: stack.issues()["converged"], 60, "the stack to converge")
    stack.docker("stop", "--time", "1", stack.inspect("alpha")["Id"])
    stack.docker("stop", "--time", "1", stack.inspect("beta")["Id"])
    alpha = wait_for(
        lambda: (i := stack.issue("drift:alpha:exited")) and i["state"] == "needs-human" and i,
        60,
        "alpha to be left to a human",
    )
    assert "stopped by a person" in alpha["resolution"]
    wait_for(lambda: stack.healthy("beta"), 60, "the enforced beta to be brought back")
    seen = passes(base)
    wait_for(lambda: passes(base) >= seen + 3, 60, "three more passes")
    assert stack.state("alpha")[0] == "exited"
    assert stack.issue("drift:alpha:exited")["attempts"] == []
    report = stack.report()
    assert "alpha was stopped by a person" in report
