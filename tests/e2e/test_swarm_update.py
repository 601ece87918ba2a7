"""A bad ``docker stack deploy`` on the one-node private swarm (tests/e2e/swarm.py): while
Swarm carries out the update (one task, a long delay, the next), the controller takes no
step on the service, though a task the update started has ended and Swarm will not
replace it; once Swarm's update is over, the controller acts. Never two actors."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from controller.model import engine_ns
from tests.e2e.conftest import STACKS, wait_for
from tests.e2e.swarm import Swarm
from tests.e2e.swarmctl import Controller

STACK_FILE = STACKS / "swarm-update.yaml"

DESIRED = """\
project: {stack}
compose_files: [{file}]
environment:
  MODE: good
services:
  app: {{}}
"""


def inspect(swarm: Swarm, service: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(swarm.docker("service", "inspect", service))[0]
    return found


def forced(service: dict[str, Any]) -> int:
    """The service's ForceUpdate counter (what ``service update --force`` moves)."""
    return int(service["Spec"]["TaskTemplate"].get("ForceUpdate") or 0)


def test_the_controller_takes_no_step_while_swarm_carries_out_a_bad_stack_deploy(
    swarm1: Swarm, tmp_path: Path
):
    with swarm1.stack(STACK_FILE, environment={"MODE": "good"}) as stack:
        desired = tmp_path / "desired"
        desired.mkdir()
        (desired / "dev.yaml").write_text(DESIRED.format(stack=stack, file=STACK_FILE))
        controller = Controller(swarm1, tmp_path, "--desired-state-dir", str(desired))
        service = f"{stack}_app"
        try:
            wait_for(lambda: controller.status()["converged"], 120, "convergence", 1)
            before = forced(inspect(swarm1, service))

            # the bad change: each new task exits at once; Swarm updates one, waits 25 s
            swarm1.docker(
                "stack",
                "deploy",
                "--resolve-image",
                "never",
                "-c",
                str(STACK_FILE),
                stack,
                environment={"MODE": "bad"},
            )
            seen: list[tuple[str, int]] = []  # (update state, ForceUpdate) while polled

            def update_over() -> dict[str, Any] | None:
                found = inspect(swarm1, service)
                state = (found.get("UpdateStatus") or {}).get("State", "")
                seen.append((state, forced(found)))
                return found if seen[0][0] == "updating" and state != "updating" else None

            over = wait_for(update_over, 180, "Swarm's update to end", 0.5, lambda: seen[-5:])
            during = {count for state, count in seen if state == "updating"}
            assert during == {before}, seen  # no forced update while Swarm updated
            assert "Swarm is updating the service" in controller.log()
            ended_ns = engine_ns(over["UpdateStatus"]["CompletedAt"]) or 0

            # Swarm's update is over and the tasks it started have ended: now the
            # controller acts (its forced update), and not before
            def forced_steps() -> list[dict[str, Any]]:
                return [
                    a
                    for i in controller.issues()
                    for a in i["attempts"]
                    if "service update --force" in a["detail"]
                ]

            old = {str(t["ID"]) for t in swarm1.tasks(service)}  # the update's, failed
            steps = wait_for(forced_steps, 180, "the controller's step", 1, controller.seen)
            began = [datetime.fromisoformat(a["started_at"]).timestamp() for a in steps]
            assert min(began) >= ended_ns / 1e9, (over["UpdateStatus"], steps)
            assert forced(inspect(swarm1, service)) > before

            # its step is judged once Swarm has carried out its forced update, on a task
            # that update started, never on the task that had failed before it
            first = wait_for(
                lambda: next((a for a in forced_steps() if a["outcome"]), None),
                300,
                "the step's verdict",
                1,
                controller.seen,
            )
            assert first["outcome"] == "failure", first
            assert "exited with code 1 after the fix" in first["detail"], first
            assert not any(task in first["detail"] for task in old), (old, first)
        finally:
            controller.stop()
