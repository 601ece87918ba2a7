"""The controller on a stack (``--engine swarm``): the demo deployed on a one-node swarm
(tests/e2e/swarm.py) with examples/demo/stack.yaml and desired_state/dev.yaml, unchanged
but for its compose file and the stack's name. Its missing database is created by the
runbook (an exec in the database's task, through the manager's engine); a task killed
and a task that hangs (its healthcheck fails, Swarm kills it) are replaced by Swarm, and
the controller diagnoses both with their node and never acts on its own: never two
actors on one task."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import wait_for
from tests.e2e.swarm import Swarm
from tests.e2e.swarmctl import Controller

ROOT = Path(__file__).resolve().parents[2]
STACK_FILE = ROOT / "examples" / "demo" / "stack.yaml"
# the stack's ports live in the swarm's own network namespace: the demo's own are free
PORTS = {"DB_PORT": "18432", "BACKEND_PORT": "18080", "FRONTEND_PORT": "18081"}


@pytest.fixture
def demo(swarm1: Swarm, tmp_path: Path) -> Iterator[tuple[str, Controller]]:
    """The demo, deployed as a stack whose backend asks for a database that does not
    exist (``orders``), and the controller on it."""
    deploy_env = {**PORTS, "APP_DB_NAME": "orders"}
    with swarm1.stack(STACK_FILE, environment=deploy_env) as stack:
        controller = Controller(
            swarm1,
            tmp_path,
            "-f",
            str(STACK_FILE),
            "-p",
            stack,
            "--desired-state-dir",
            str(ROOT / "desired_state"),
        )
        try:
            yield stack, controller
        finally:
            controller.stop()


def backend_container(swarm: Swarm, stack: str) -> str:
    """The container of the backend's running task, on the manager's engine."""
    (task,) = swarm.running(f"{stack}_backend")
    return str(task["Status"]["ContainerStatus"]["ContainerID"])


def test_the_demo_as_a_stack_gets_its_database_and_its_dead_and_hung_tasks_diagnosed(
    swarm1: Swarm, demo: tuple[str, Controller]
):
    stack, controller = demo
    node = swarm1.manager.hostname

    # the missing database: the runbook creates it in the db task, the backend recovers
    # (whichever of the backend and the worker logged it first: Swarm starts them together,
    # and the database may exist before the other one connects)
    runbook = wait_for(
        lambda: next(
            (
                issue
                for service in ("backend", "worker")
                if (issue := controller.resolved(f"log:{service}:pg-database-missing:"))
                and issue["resolution"].startswith("fixed by runbook")
            ),
            None,
        ),
        240,
        "the missing database to be created by the runbook",
        1,
        controller.seen,
    )
    assert runbook["resolution"].startswith("fixed by runbook create-missing-database")
    created = [a for i in controller.issues() for a in i["attempts"] if "createdb" in a["detail"]]
    assert len(created) == 1, created  # once, though the backend and the worker log it
    wait_for(
        lambda: json.loads(controller.file.read_text())["converged"],
        180,
        "the stack to converge",
        1,
        controller.seen,
    )

    # a killed task: Swarm replaces it; the controller says where, and adds nothing
    mark = max(i["last_seen"] for i in controller.issues())
    swarm1.docker("kill", backend_container(swarm1, stack))

    def killed_seen() -> dict[str, Any] | None:
        """The dead task's issue once it ended; or, where Swarm's replacement ran before a
        pass listed the dead one (a busy machine: a pass slower than the 1 s restart
        delay), the count of Swarm's restarts that moved, as under Docker's policy."""
        drift = controller.resolved("drift:backend:exited", mark)
        restart = controller.issue("engine:backend:docker-restart")
        return drift or (restart if restart and restart["last_seen"] > mark else None)

    killed = wait_for(killed_seen, 180, "the killed task's issue", 1, controller.seen)
    assert f"on node {node}" in killed["detail"], killed
    assert killed["attempts"] == [], killed  # Swarm's restart policy did it
    if killed["kind"] == "exited":
        assert "Swarm's restart policy (condition any) is restarting it" in controller.log()
    wait_for(
        lambda: swarm1.running(f"{stack}_backend") and controller.status()["converged"],
        180,
        "Swarm's replacement to run and the stack to converge",
        1,
        controller.seen,
    )

    # a hung task: its healthcheck fails, Swarm kills it as unhealthy and replaces it
    mark = max(i["last_seen"] for i in controller.issues())
    pid = swarm1.docker("inspect", "-f", "{{.State.Pid}}", backend_container(swarm1, stack))
    os.kill(int(pid.strip()), signal.SIGSTOP)
    hung = wait_for(
        lambda: controller.resolved("drift:backend:unhealthy", mark),
        240,
        "the hung task's issue to end",
        1,
        controller.seen,
    )
    # seen from the manager's own engine (the node's verdict) or, were it missed, from
    # Swarm's words when it killed the task: either way with its node
    assert f"on node {node}" in hung["detail"], hung
    assert "its healthcheck fails" in hung["detail"] or "unhealthy container" in hung["detail"]
    assert hung["attempts"] == [], hung
    forced = [a for i in controller.issues() for a in i["attempts"] if "--force" in a["detail"]]
    assert forced == []  # never a forced update while Swarm replaced the tasks
