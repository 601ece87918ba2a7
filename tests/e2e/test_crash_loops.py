"""A crash loop is never called fixed, on a real engine.

The landed code of 2026-12-03 logged ``fixed by restart: ready for 2 s`` four times in a
row for a service that dies 3 s after each start (the proof held ``min_ready``, 2 s), and
resolved Docker's own loop of a service that dies 12 s after each start every cycle (the
hold under a restart policy was 10 s). A fix now holds until the service outlives the
crash pattern it had.
"""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import STACKS, wait_for

LATE = STACKS / "late.yaml"


def _declare(stack, wanted: str, remediation: str) -> None:  # type: ignore[no-untyped-def]
    other = "looping" if wanted == "late" else "late"
    stack.desired_file.write_text(
        stack.desired_file.read_text()
        + f"services:\n  {wanted}: {{}}\n  {other}: {{replicas: 0}}\n"
        + f"remediation: {remediation}\n"
    )


def _issues_of(stack, service: str) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    return [i for i in stack.issues()["issues"] if i["service"] == service]


def test_a_service_that_crashes_3_s_after_each_start_is_never_called_fixed(make_stack):
    stack = make_stack(LATE, {"LATE_SECONDS": "3"})
    _declare(stack, "late", "{budget: 3, backoff_initial_seconds: 1, backoff_max_seconds: 2}")
    stack.compose("up", "-d", "late")
    stack.serve("--interval-active", "1")
    issue = stack.wait_issue("drift:late:exited", "needs-human", timeout=180)
    assert "budget of 3" in issue["resolution"]
    assert len(issue["attempts"]) == 3
    assert [a["outcome"] for a in issue["attempts"]] == ["failure"] * 3, issue["attempts"]
    assert issue["occurrences"] == 1  # one incident: never resolved, never reopened
    assert "fixed by" not in stack.log()


def test_dockers_loop_of_a_service_that_dies_12_s_after_each_start_is_never_resolved(
    make_stack,
):
    stack = make_stack(LATE, {"LATE_SECONDS": "12"})
    _declare(stack, "looping", "{budget: 20}")
    stack.compose("up", "-d", "looping")
    stack.serve("--interval-active", "1")

    def restarts() -> int:
        data = stack.inspect("looping")
        return int(data["RestartCount"]) if data else 0

    wait_for(lambda: _issues_of(stack, "looping"), 60, "the loop's first issue")
    # three more of Docker's restarts, each after a run longer than Docker's 10 s: every
    # one of them a moment the old hold called the service recovered
    first = restarts()

    def one_incident_until_three_more_restarts() -> bool:
        for issue in _issues_of(stack, "looping"):
            assert issue["occurrences"] == 1, issue  # never resolved and reopened
            assert not issue["resolution"].startswith("recovered"), issue
        return restarts() >= first + 3

    wait_for(one_incident_until_three_more_restarts, 150, "three more of Docker's restarts")
    assert not [i for i in _issues_of(stack, "looping") if i["attempts"]]  # Docker's loop
