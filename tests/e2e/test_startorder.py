"""A dependent's connection errors while its database starts again (a person restarted
it; on a swarm, every deploy: Swarm starts a stack's services together) are expected:
a low issue, no page, no step, ended once the database has been ready for a while. The
same error logged after the database is ready is the dependent's own problem."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from controller.causes import STARTING_GRACE
from controller.model import engine_time
from tests.e2e.conftest import STACKS, wait_for

FINGERPRINT = "log:api:pg-server-unreachable:"


def settled(stack: Any) -> Callable[[], dict[str, Any] | None]:
    """A converged stack whose api errors of db's first start ended (read when the
    controller started, api starting too): the same issue comes back later. Returns how
    to read api's issue."""
    wait_for(lambda: stack.issues().get("converged"), 90, "a converged stack")

    def current() -> dict[str, Any] | None:
        found = (i for i in stack.issues()["issues"] if i["fingerprint"].startswith(FINGERPRINT))
        return next(found, None)

    wait_for(
        lambda: (i := current()) is None or i["state"] == "resolved" or None,
        90,
        "api's errors of the first start ended",
    )
    return current


def test_errors_while_the_database_starts_are_expected_and_end_when_it_is_ready(make_stack):
    stack = make_stack(STACKS / "startorder.yaml")
    stack.up()
    stack.serve()
    current = settled(stack)
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


def test_a_database_that_crashed_and_came_back_at_once_did_not_merely_start(make_stack):
    # db crashes; its restart policy brings it back within a second, so no pass may see
    # it down: only its restart count moved (a medium issue, below the default
    # min_severity). api's errors while it comes back are the crash's: at their own
    # severity (high: what pages), not "expected"
    stack = make_stack(STACKS / "startorder.yaml")
    stack.up()
    stack.serve()
    current = settled(stack)
    stack.compose("exec", "-T", "db", "touch", "/shared/crash")
    wait_for(
        lambda: (i := stack.issue("engine:db:docker-restart")) and i["state"] != "resolved",
        60,
        "db's restart by its policy",
    )
    issue = wait_for(
        lambda: (i := current()) and i["state"] != "resolved" and i["severity"] == "high" and i,
        60,
        "api's error at its own severity",
    )
    assert issue["while_starting"] == [], issue


RESET = "log:db:conn-reset:"


def test_a_servers_reset_when_its_client_died_is_expected_and_one_without_is_not(make_stack):
    # the mirror case: db (a server) logs PostgreSQL's "could not receive data from
    # client: Connection reset by peer" when api (its client) dies mid-connection. api's
    # crash is api's issue; db's line is expected: low, nothing done to db, ended saying
    # who left. The same line with no client leaving near it is db's own: medium
    stack = make_stack(STACKS / "clientgone.yaml")
    stack.up()
    stack.serve()
    wait_for(lambda: stack.issues().get("converged"), 90, "a converged stack")

    def current() -> dict[str, Any] | None:
        found = (i for i in stack.issues()["issues"] if i["fingerprint"].startswith(RESET))
        return next(found, None)

    assert current() is None
    # past db's own start, which would explain the line too ("it was starting")
    data = stack.inspect("db")
    started = engine_time(data["State"]["StartedAt"]) if data else None
    assert started is not None, data
    wait_for(
        lambda: time.time() > started.timestamp() + STARTING_GRACE + 3 or None,
        60,
        "db past its start's grace",
    )
    stack.kill("api")  # a crash: the controller restarts api
    issue = wait_for(
        lambda: (i := current()) and i["state"] != "resolved" and i, 60, "db's reset line"
    )
    assert issue["severity"] == "low" and list(issue["clients_left"]) == ["api"], issue
    assert not issue["blocking"]
    done = stack.wait_issue(issue["fingerprint"], "resolved", timeout=90)
    assert done["resolution"].startswith("its client api went away at "), done
    assert done["attempts"] == [] and done["severity"] == "low", done
    wait_for(lambda: stack.issues().get("converged"), 90, "api restarted, stack converged")

    # no client leaving: db's own problem, at the pattern's severity
    stack.compose("exec", "-T", "db", "touch", "/shared/reset")
    again = wait_for(
        lambda: (i := stack.issue(issue["fingerprint"])) and i["state"] != "resolved" and i,
        60,
        "db's reset line with api running",
    )
    assert again["severity"] == "medium" and again["clients_left"] == {}, again
