"""A bad ``docker stack deploy`` on the one-node private swarm (tests/e2e/swarm.py): while
Swarm carries out the update (one task, a long delay, the next), the controller takes no
step on the service, though a task the update started has ended and Swarm will not
replace it; once Swarm's update is over, the controller acts. Never two actors."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from controller.model import engine_ns
from tests.e2e.conftest import STACKS, wait_for
from tests.e2e.swarm import Swarm
from tests.e2e.swarmctl import Controller

STACK_FILE = STACKS / "swarm-update.yaml"

# the change's verdict is off: with it on, an update whose tasks ended is a bad change
# once Swarm completed it (tests/e2e/test_swarm_rollback.py); what this test proves is the
# controller's own step, after Swarm's update and never during it
DESIRED = """\
project: {stack}
compose_files: [{file}]
environment:
  MODE: good
rollback: off
services:
  app: {{}}
"""


def inspect(swarm: Swarm, service: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(swarm.docker("service", "inspect", service))[0]
    return found


def forced(service: dict[str, Any]) -> int:
    """The service's ForceUpdate counter (what ``service update --force`` moves)."""
    return int(service["Spec"]["TaskTemplate"].get("ForceUpdate") or 0)


@pytest.mark.timeout(900)  # two slow updates of Swarm's, one after the other
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

            # the bad change: each new task exits at once; Swarm updates one, waits 10 s
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
            # (when the read began, the update's start, its state, ForceUpdate) per read
            seen: list[tuple[float, str, str, int]] = []

            def deploy_over() -> bool:
                began = time.time()
                found = inspect(swarm1, service)
                status = found.get("UpdateStatus") or {}
                seen.append(
                    (began, status.get("StartedAt", ""), status.get("State", ""), forced(found))
                )
                first = next((s for s in seen if s[2] == "updating"), None)
                # over: no longer updating, or another update (the controller's) began
                return first is not None and (seen[-1][1] != first[1] or seen[-1][2] != "updating")

            wait_for(deploy_over, 240, "Swarm's update to end", 0.25, lambda: seen[-5:])
            # Swarm carried the deploy out to every slot before anything else changed the
            # service (a forced update meanwhile would have left a slot without one)
            deployed = {
                t["Slot"]
                for t in swarm1.tasks(service)
                if "MODE=bad" in (t["Spec"]["ContainerSpec"].get("Env") or [])
                and int(t["Spec"].get("ForceUpdate") or 0) == before
            }
            assert deployed == {1, 2}, swarm1.states(service)
            deploy = next(s[1] for s in seen if s[2] == "updating")
            during = [s for s in seen if s[1] == deploy and s[2] == "updating"]
            assert {s[3] for s in during} == {before}, seen  # no forced update meanwhile
            still = max(s[0] for s in during)  # Swarm was still updating after this
            assert "Swarm is updating the service" in controller.log()

            # the tasks the update started have ended and Swarm will not replace them: the
            # controller acts (its forced update), and not before Swarm's update was over
            def forced_steps() -> list[dict[str, Any]]:
                return [
                    a
                    for i in controller.issues()
                    for a in i["attempts"]
                    if "service update --force" in a["detail"]
                ]

            steps = wait_for(forced_steps, 180, "the controller's step", 1, controller.seen)
            began = min(datetime.fromisoformat(a["started_at"]).timestamp() for a in steps)
            assert began >= still, (seen, steps)
            assert forced(inspect(swarm1, service)) > before

            # its step is judged once Swarm has carried out its forced update, on a task
            # that update started, never on the task that had failed before it
            first = wait_for(
                lambda: next((a for a in forced_steps() if a["outcome"]), None),
                300,
                "the step's verdict",
                1,
                lambda: (controller.seen(), inspect(swarm1, service).get("UpdateStatus")),
            )
            assert first["outcome"] == "failure", first
            assert "exited with code 1 after the fix" in first["detail"], first
            step_began = datetime.fromisoformat(first["started_at"]).timestamp()
            named = [t for t in swarm1.tasks(service) if t["ID"] in first["detail"]]
            assert named, first
            for task in named:  # created by the step's forced update
                assert (engine_ns(task["CreatedAt"]) or 0) / 1e9 >= step_began, (task, first)
        finally:
            controller.stop()
