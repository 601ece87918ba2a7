"""The private swarms of tests/e2e/swarm.py are real swarms: a stack's replicas spread over
the nodes, Swarm replaces a task whose container is killed on a worker's own engine, and
the manager serves the logs of every node's tasks. These are the test infrastructure's
own proof; the Swarm backend's tests build on it (docs/swarm-testing.md)."""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import STACKS, wait_for
from tests.e2e.swarm import Swarm

TICKER = STACKS / "swarm-ticker.yaml"


def test_swarm3_spreads_replicas_and_replaces_a_task_killed_on_a_worker(swarm3: Swarm) -> None:
    with swarm3.stack(TICKER) as stack:
        service = f"{stack}_ticker"

        def spread() -> list[dict[str, Any]]:
            running = swarm3.running(service)
            on = {task["NodeID"] for task in running}
            return running if len(running) == 2 and len(on) == 2 else []

        running = wait_for(
            spread, 60, "2 replicas running on 2 nodes", seen=lambda: swarm3.states(service)
        )
        # two replicas on two of three nodes: at least one is on a worker
        victim = next(t for t in running if swarm3.node(t["NodeID"]).role == "worker")
        worker = swarm3.node(victim["NodeID"])
        container = victim["Status"]["ContainerStatus"]["ContainerID"]
        swarm3.docker("kill", container, node=worker)  # the worker's engine, not the manager's

        def replaced() -> tuple[dict[str, Any], dict[str, Any]] | None:
            tasks = swarm3.tasks(service)
            old = next(t for t in tasks if t["ID"] == victim["ID"])
            new = [
                t
                for t in swarm3.running(service)
                if t["Slot"] == victim["Slot"] and t["ID"] != victim["ID"]
            ]
            return (old, new[0]) if old["Status"]["State"] == "failed" and new else None

        old, new = wait_for(
            replaced, 60, "Swarm to replace the killed task", seen=lambda: swarm3.states(service)
        )
        # what a controller reads of the killed task, through the manager
        assert old["DesiredState"] == "shutdown"
        assert old["Status"]["Err"] == "task: non-zero exit (137)"
        assert old["Status"]["ContainerStatus"]["ExitCode"] == 137
        assert new["Status"]["ContainerStatus"]["ContainerID"] != container
        assert len(swarm3.running(service)) == 2


def test_swarm1_manager_serves_a_service_log(swarm1: Swarm) -> None:
    with swarm1.stack(TICKER) as stack:
        service = f"{stack}_ticker"
        hostname = swarm1.manager.hostname  # a host-networked task has its node's hostname

        def logged() -> bool:
            lines = list(swarm1.client().api.service_logs(service, stdout=True))
            return any(f"on {hostname}" in line.decode() for line in lines)

        wait_for(logged, 60, f"a tick from {hostname} in the service's log")
