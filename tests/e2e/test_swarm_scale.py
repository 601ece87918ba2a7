"""What people and Swarm do to a stack's services that is not a fault to fix: a person's
``docker service scale`` down is left alone and said (never scaled back unless enforced),
and scaling it back up resolves it; a task Swarm cannot place (a placement constraint no
node meets) is handed to a human at once in Swarm's words, and resolves once a node fits.
On the one-node swarm of tests/e2e/swarm.py, the controller zero-config on the stack."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.conftest import STACKS, wait_for
from tests.e2e.swarm import Swarm
from tests.e2e.swarmctl import Controller

TICKER = STACKS / "swarm-ticker.yaml"
UNPLACEABLE = STACKS / "swarm-unplaceable.yaml"


def replicas(swarm: Swarm, service: str) -> int:
    spec = json.loads(swarm.docker("service", "inspect", service))[0]["Spec"]
    return int(spec["Mode"]["Replicated"]["Replicas"])


def test_a_persons_scale_down_is_left_alone_and_said_until_they_scale_it_back(
    swarm1: Swarm, tmp_path: Path
):
    with swarm1.stack(TICKER) as stack:
        controller = Controller(swarm1, tmp_path, "-f", str(TICKER), "-p", stack)
        try:
            wait_for(lambda: controller.status()["converged"], 120, "the ticker to run", 0.5)
            swarm1.docker("service", "scale", "--detach", f"{stack}_ticker=0")
            said = wait_for(
                lambda: (
                    (i := controller.issue("drift:ticker:scaled-down"))
                    and i["plan"].startswith("reported: ")
                    and i
                ),
                120,
                "the scale down to be said",
                0.5,
                controller.seen,
            )
            assert said["state"] == "open" and said["severity"] == "low", said
            assert said["plan"] == (
                "reported: ticker was scaled to 0 of 2 replicas by a person: the controller "
                "leaves it alone (declare services.ticker.enforce: true to have it brought back)"
            )
            # left alone: passes come and go (the issue is seen again), Swarm keeps 0
            seen = said["count"]
            wait_for(
                lambda: (
                    (controller.issue("drift:ticker:scaled-down") or {}).get("count", 0) > seen + 3
                ),
                60,
                "more passes over the scaled-down service",
                0.5,
            )
            assert replicas(swarm1, f"{stack}_ticker") == 0
            assert not controller.status()["converged"]
            swarm1.docker("service", "scale", "--detach", f"{stack}_ticker=2")
            back = wait_for(
                lambda: controller.resolved("drift:ticker:scaled-down"),
                180,
                "the issue to resolve once a person scaled it back",
                1,
                controller.seen,
            )
            assert back["attempts"] == [], back  # the controller never acted
            wait_for(lambda: controller.status()["converged"], 120, "convergence", 0.5)
            assert "service scale" not in controller.log()
        finally:
            controller.stop()


def test_a_task_no_node_can_take_goes_to_a_human_at_once_in_swarms_words(
    swarm1: Swarm, tmp_path: Path
):
    node = swarm1.manager.node_id
    with swarm1.stack(UNPLACEABLE) as stack:
        controller = Controller(swarm1, tmp_path, "-f", str(UNPLACEABLE), "-p", stack)
        try:
            handed = wait_for(
                lambda: (
                    (i := controller.issue("drift:placed:unplaceable"))
                    and i["state"] == "needs-human"
                    and i
                ),
                120,
                "the unplaceable task to be handed to a human",
                0.5,
                controller.seen,
            )
            assert (
                "no suitable node (scheduling constraints not satisfied on 1 node)"
                in (handed["resolution"])
            ), handed
            assert "the controller cannot change where Swarm places tasks" in (handed["resolution"])
            assert handed["attempts"] == [], handed
            assert controller.issue("drift:placed:exited") is None  # never "never started"
            # a person labels the node: Swarm places the task, it runs, the issue resolves
            swarm1.docker("node", "update", "--label-add", "cc.placement=here", node)
            try:
                done = wait_for(
                    lambda: controller.resolved("drift:placed:unplaceable"),
                    180,
                    "the issue to resolve once the task is placed",
                    1,
                    controller.seen,
                )
            finally:
                swarm1.docker("node", "update", "--label-rm", "cc.placement", node, check=False)
            assert done["attempts"] == [], done
            assert "service update --force" not in controller.log()
        finally:
            controller.stop()


def test_a_removed_service_goes_to_a_human_at_once_with_the_command_that_deploys_it(
    swarm1: Swarm, tmp_path: Path
):
    with swarm1.stack(TICKER) as stack:
        controller = Controller(swarm1, tmp_path, "-f", str(TICKER), "-p", stack)
        try:
            wait_for(lambda: controller.status()["converged"], 120, "the ticker to run", 0.5)
            swarm1.docker("service", "rm", f"{stack}_ticker")
            handed = wait_for(
                lambda: (
                    (i := controller.issue("drift:ticker:undeployed"))
                    and i["state"] == "needs-human"
                    and i
                ),
                120,
                "the removed service to be handed to a human",
                0.5,
                controller.seen,
            )
            assert handed["resolution"] == (
                f"service {stack}_ticker is not deployed: run docker stack deploy -c "
                f"{TICKER} {stack}"
            ), handed
            assert handed["attempts"] == [], handed  # no scale of a service that is gone
            assert controller.issue("drift:ticker:missing") is None
            swarm1.docker("stack", "deploy", "--resolve-image", "never", "-c", str(TICKER), stack)
            done = wait_for(
                lambda: controller.resolved("drift:ticker:undeployed"),
                180,
                "the issue to resolve once the stack is deployed again",
                1,
                controller.seen,
            )
            assert done["attempts"] == [], done
        finally:
            controller.stop()


ENFORCED = """\
project: {stack}
compose_files: [{file}]
services:
  ticker: {{enforce: true}}
"""


def test_an_enforced_service_a_person_scaled_to_0_is_scaled_back_and_its_new_tasks_left_be(
    swarm1: Swarm, tmp_path: Path
):
    with swarm1.stack(TICKER) as stack:
        desired = tmp_path / "desired"
        desired.mkdir()
        (desired / "dev.yaml").write_text(ENFORCED.format(stack=stack, file=TICKER))
        controller = Controller(
            swarm1, tmp_path, "--engine", "swarm", "--desired-state-dir", str(desired)
        )
        try:
            wait_for(lambda: controller.status()["converged"], 120, "the ticker to run", 0.5)
            swarm1.docker("service", "scale", "--detach", f"{stack}_ticker=0")
            fixed = wait_for(
                lambda: controller.resolved("drift:ticker:scaled-down"),
                180,
                "the controller to scale it back and prove it",
                1,
                controller.seen,
            )
            assert [a["detail"].split(" (")[0] for a in fixed["attempts"]] == [
                f"docker service scale {stack}_ticker=2"
            ], fixed
            # the tasks the controller's scale made are its step's, not a person's start
            # (swarmtasks.Made): the step is proven, not cut short
            assert fixed["resolution"].startswith("fixed by start"), fixed
            wait_for(lambda: controller.status()["converged"], 120, "convergence", 0.5)
            # the tasks Swarm then placed and started were never "created but never
            # started": no forced update of them
            assert "service update --force" not in controller.log()
            assert controller.issue("drift:ticker:exited") is None
            assert replicas(swarm1, f"{stack}_ticker") == 2
        finally:
            controller.stop()
