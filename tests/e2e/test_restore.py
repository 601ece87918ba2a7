"""A step being proven when the controller is SIGKILLed is the same step after it comes
back: one plan and one deadline in the JSON file, ``/status`` and ``controller status``.

Before the service's remediation record became the one owner of that state, a restored
step's deadline was updated in the rate limiter but not in the issue, and the outputs
read both.
"""

from __future__ import annotations

import json
import signal
import subprocess
from datetime import datetime
from typing import Any

from tests.e2e.conftest import CONTROLLER, STACKS, http_get, wait_for

TRIO = STACKS / "trio.yaml"
FINGERPRINT = "drift:alpha:exited"


def _in(document: dict[str, Any]) -> dict[str, Any] | None:
    return next((i for i in document.get("issues", []) if i["fingerprint"] == FINGERPRINT), None)


def _served(base: str) -> dict[str, Any]:
    code, text = http_get(base + "/status")
    return json.loads(text) if code == 200 else {}


def test_a_restored_step_shows_one_plan_and_one_deadline_everywhere(make_stack):
    stack = make_stack(TRIO, {"HEALTH_RETRIES": "2"})
    stack.desired_file.write_text(
        stack.desired_file.read_text()
        + "services:\n"
        + "  alpha: {min_ready_seconds: 240, verify_timeout_seconds: 300}\n"
        + "  beta: {replicas: 0}\n  gamma: {replicas: 0}\n"
    )
    stack.up("alpha")
    base = stack.serve("--interval-active", "1")
    wait_for(
        lambda: any(
            s["name"] == "alpha" and s["condition"] == "Ready"
            for s in _served(base).get("services", [])
        ),
        90,
        "alpha to be ready (its 240 s hold makes converging slow)",
    )
    stack.crash("alpha")
    proving = wait_for(
        lambda: (i := _in(stack.issues())) and i["verifying_until"] and i,
        90,
        "the restart to be carried out and its proof to begin",
    )
    plan, until = proving["plan"], proving["verifying_until"]
    assert plan.startswith("verifying until ")
    (first,) = [p for p in stack.started if p.poll() is None]
    first.send_signal(signal.SIGKILL)
    first.wait(10)

    again = stack.serve("--interval-active", "1")
    served = wait_for(
        lambda: (i := _in(_served(again))) and i["state"] == "remediating" and i,
        60,
        "the restored step in /status",
    )
    saved = wait_for(lambda: _in(stack.issues()), 30, "the issue in the JSON file")
    assert (served["plan"], served["verifying_until"]) == (plan, until)
    assert (saved["plan"], saved["verifying_until"]) == (plan, until)
    assert saved["attempts"] == served["attempts"] and len(saved["attempts"]) == 1  # not redone
    port = again.rsplit(":", 1)[1]
    described = subprocess.run(
        [CONTROLLER, "status", "alpha", "--metrics-port", port],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert described.returncode == 0, described.stderr
    assert f"Plan:         {plan}" in described.stdout
    record = _served(again)["remediation"]["alpha"]
    assert record["step"]["until"].replace("Z", "+00:00")[:19] == until.replace("Z", "+00:00")[:19]


# healthy while /tmp/ok exists (made at each start); deaf to SIGTERM, so a restart of
# its running container takes the whole 12 s stop grace period
STUBBORN = """
services:
  stubborn:
    image: cc-busybox:1
    network_mode: none
    stop_grace_period: 12s
    command: ["sh", "-c", "touch /tmp/ok; trap '' TERM; while :; do sleep 1; done"]
    healthcheck:
      test: ["CMD", "test", "-f", "/tmp/ok"]
      interval: 1s
      timeout: 2s
      retries: 2
"""


def test_a_step_killed_mid_command_is_restored_with_one_deadline_everywhere(make_stack, tmp_path):
    compose = tmp_path / "stubborn.yaml"
    compose.write_text(STUBBORN)
    stack = make_stack(compose, {}, services="  stubborn: {min_ready_seconds: 120}\n")
    stack.up()
    base = stack.serve("--interval-active", "1")
    wait_for(
        lambda: any(s["condition"] == "Ready" for s in _served(base).get("services", [])),
        90,
        "stubborn to be ready",
    )
    stack.compose("exec", "-T", "stubborn", "rm", "/tmp/ok")  # unhealthy, still running
    fingerprint = "drift:stubborn:unhealthy"
    wait_for(
        lambda: (i := _issue(_served(base), fingerprint)) and i["plan"] == "running: restart",
        60,
        "the restart to be running (it takes the 12 s stop grace period)",
        seen=lambda: (_served(base).get("issues"), _served(base).get("remediation")),
    )
    (first,) = [p for p in stack.started if p.poll() is None]
    first.send_signal(signal.SIGKILL)  # while `docker restart` waits for the grace period
    first.wait(10)

    again = stack.serve("--interval-active", "1")
    served = wait_for(
        lambda: (
            (i := _issue(_served(again), fingerprint))
            and i["plan"].startswith("verifying until")
            and i
        ),
        90,
        "the restored step to be carried out and proven",
    )
    until = _served(again)["remediation"]["stubborn"]["step"]["until"]
    saved = wait_for(
        lambda: (i := _issue(stack.issues(), fingerprint)) and i["plan"] == served["plan"] and i,
        30,
        "the JSON file to say the same",
    )
    assert _moment(served["verifying_until"]) == _moment(saved["verifying_until"]) == _moment(until)
    port = again.rsplit(":", 1)[1]
    described = subprocess.run(
        [CONTROLLER, "status", "stubborn", "--metrics-port", port],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert f"Plan:         {served['plan']}" in described.stdout, described.stdout
    assert len(saved["attempts"]) == 1  # the restart was not repeated


def _issue(document: dict[str, Any], fingerprint: str) -> dict[str, Any] | None:
    return next((i for i in document.get("issues", []) if i["fingerprint"] == fingerprint), None)


def _moment(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
