"""``--log-format json`` on a real engine: a killed service's lines carry the service, the
issue, its fingerprint, the step's action and the engine event, for a log shipper."""

from __future__ import annotations

import json
from typing import Any

from tests.e2e.conftest import STACKS, Stack, wait_for

TRIO = STACKS / "trio.yaml"


def fields(stack: Stack) -> list[dict[str, Any]]:
    """The ``record.extra`` of every complete JSON line the controller wrote so far."""
    found = []
    for line in stack.log().splitlines():
        try:
            found.append(json.loads(line)["record"]["extra"])
        except (ValueError, KeyError, TypeError):
            continue  # the line being written
    return found


def a_line(stack: Stack, what: str, **wanted: str) -> dict[str, Any]:
    line: dict[str, Any] = wait_for(
        lambda: next(
            (f for f in fields(stack) if all(f.get(k) == v for k, v in wanted.items())), None
        ),
        60,
        f"a JSON log line {what} ({wanted})",
    )
    return line


def test_a_killed_services_json_lines_carry_its_issue_and_the_restart(make_stack):
    stack = make_stack(TRIO)
    stack.up()
    stack.serve(
        "--interval-active", "1", "--interval-quiet", "2", "--log-format", "json",
        "--log-level", "DEBUG",  # the engine's events are DEBUG lines
    )  # fmt: skip
    wait_for(lambda: stack.issues()["converged"], 60, "the stack to converge")
    lines = stack.log().splitlines()
    assert lines and all(json.loads(line) for line in lines)  # every line is JSON

    stack.kill("beta")

    issue = stack.wait_issue("drift:beta:exited", "resolved")
    drift = a_line(stack, "about the drift", service="beta", fingerprint="drift:beta:exited")
    assert drift["issue"] == issue["id"]
    step = a_line(stack, "about the step", service="beta", action="restart")
    assert step["issue"] == issue["id"] and step["fingerprint"] == "drift:beta:exited"
    assert [a["action"] for a in issue["attempts"]] == ["restart"]
    died = a_line(stack, "about the engine's event", service="beta", event="die")
    assert died["engine"].startswith(("unix://", "tcp://", "ssh://", "npipe://"))
