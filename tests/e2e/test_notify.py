"""Notifications on a real engine: a crashed service's issue is told to a real local
webhook (Apprise's json://) when it opens and when it is fixed, and an endpoint that
does not answer is counted as failed without holding up the fix."""

from __future__ import annotations

import socket

import pytest

from tests.e2e.conftest import STACKS, free_ports, metric, wait_for
from tests.receiver import Receiver


@pytest.fixture
def receiver():
    (port,) = free_ports(1)
    server = Receiver(port)
    yield server
    server.close()


def test_a_crash_is_told_when_it_opens_and_when_it_is_fixed_despite_a_dead_endpoint(
    make_stack, receiver
):
    with socket.socket() as held:  # a port that accepts nothing: a dead endpoint
        held.bind(("127.0.0.1", 0))
        dead = held.getsockname()[1]
    stack = make_stack(STACKS / "trio.yaml")
    stack.desired_file.write_text(
        stack.desired_file.read_text()
        + "notify:\n"
        + f"  urls: ['json://127.0.0.1:{receiver.port}/hook', 'json://127.0.0.1:{dead}/']\n"
        + "  group_seconds: 0\n  timeout_seconds: 2\n"
    )
    stack.up()
    base = stack.serve("--interval-active", "1", "--interval-quiet", "2")
    wait_for(lambda: stack.issues()["converged"], 60, "the stack to count as converged")
    assert receiver.messages() == []  # a healthy start is no news

    stack.crash("alpha")
    stack.wait_issue("drift:alpha:exited", "resolved", 120)
    messages = wait_for(
        lambda: (m := receiver.messages()) and any("resolved" in x["title"] for x in m) and m,
        60,
        "the resolution to be told",
    )
    titles = [m["title"] for m in messages]
    assert titles[0] == "[e2e] alpha: opened: alpha exited with code 137", titles
    assert titles[-1].startswith("[e2e] alpha: resolved: alpha exited with code 137"), titles
    assert "fixed by restart" in messages[-1]["message"]
    assert messages[0]["type"] == "failure" and messages[-1]["type"] == "success"
    assert set(receiver.paths) == {"/hook"}
    assert not any(m["title"].startswith("[e2e] beta") for m in messages)

    # the dead endpoint failed every message; the fix went on all the same
    wait_for(
        lambda: metric(
            base,
            "compose_controller_notifications_total",
            'env="e2e",event="resolved",result="failed"',
        ),
        60,
        "the failed delivery to be counted",
    )
    assert stack.healthy("alpha")
    assert "notify: 1 of 2 endpoint(s) failed for alpha" in stack.log()
