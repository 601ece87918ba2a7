"""A dependent's connection errors while its database starts again (a person restarted
it; on a swarm, every deploy: Swarm starts a stack's services together) are expected:
a low issue, no page, no step, ended once the database has been ready for a while. The
same error logged after the database is ready is the dependent's own problem."""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import STACKS, wait_for

FINGERPRINT = "log:api:pg-server-unreachable:"


def test_errors_while_the_database_starts_are_expected_and_end_when_it_is_ready(make_stack):
    stack = make_stack(STACKS / "startorder.yaml")
    stack.up()
    stack.serve()
    wait_for(lambda: stack.issues().get("converged"), 90, "a converged stack")

    def current() -> dict[str, Any] | None:
        found = (i for i in stack.issues()["issues"] if i["fingerprint"].startswith(FINGERPRINT))
        return next(found, None)

    # what api logged while db first started (read when the controller started, api
    # starting too) ends first: the same issue comes back below
    wait_for(
        lambda: (i := current()) is None or i["state"] == "resolved" or None,
        90,
        "api's errors of the first start ended",
    )
    stack.compose("restart", "--timeout", "1", "db")  # a person's restart
    issue = wait_for(
        lambda: (i := current()) and i["state"] != "resolved" and i,
        60,
        "api's connection error while db starts",
    )
    assert issue["severity"] == "low" and issue["while_starting"] == ["db"], issue
    assert not issue["blocking"]
    done = stack.wait_issue(issue["fingerprint"], "resolved", timeout=90)
    assert done["resolution"].startswith("its dependency was starting (db, ready since "), done
    assert done["attempts"] == [], done  # nothing was done to api
    assert done["severity"] == "low" and done["escalated_from"] is None, done

    # db ready for long, api failing again: its own problem, at the pattern's severity
    stack.compose("exec", "-T", "db", "touch", "/shared/broken")
    again = wait_for(
        lambda: (i := stack.issue(issue["fingerprint"])) and i["state"] != "resolved" and i,
        60,
        "api's error again, with db ready",
    )
    assert again["severity"] == "high" and again["while_starting"] == [], again


def test_the_gate_on_a_fresh_deploy_converges_through_the_starts_errors(make_stack):
    # `docker compose up` without --wait, then the CI gate at once: api logs its
    # connection error every second for the 12 s db takes to start (depends_on without a
    # condition); that is no failure, so the gate converges (exit 0) with a low issue
    stack = make_stack(STACKS / "startorder.yaml")
    stack.compose("up", "--detach")
    done = stack.run_controller("--once", "--timeout", "150", timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    issues = [i for i in stack.issues()["issues"] if i["fingerprint"].startswith(FINGERPRINT)]
    assert issues and all(i["severity"] == "low" and not i["blocking"] for i in issues), issues
    assert all(i["attempts"] == [] for i in issues), issues
