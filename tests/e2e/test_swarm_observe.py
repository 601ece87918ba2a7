"""The Swarm backend's read side on a real three-node swarm (tests/e2e/swarm.py): a stack
observed through ``SwarmEngine`` on the manager's socket, as the controller would observe
it. A task killed on a worker's own engine is seen through the manager: its death (exit
code), the hint the task poll gives of it, the end of its log, and its replacement with a
restart counted; a task whose healthcheck fails is seen unhealthy."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from controller.model import ContainerSnapshot, ContainerState, Health
from controller.observe.gateway import NodeUnreachable
from controller.observe.swarm import SwarmEngine
from tests.e2e.conftest import STACKS, wait_for
from tests.e2e.swarm import Swarm

STACK = STACKS / "swarm-observe.yaml"


@pytest.fixture
def engine(swarm3: Swarm) -> Iterator[SwarmEngine]:
    found = SwarmEngine(swarm3.manager.host)
    yield found
    found.close()


def of(engine: SwarmEngine, stack: str, service: str) -> list[ContainerSnapshot]:
    return [c for c in engine.list_containers(stack) if c.service == service]


class Collected:
    """Everything a stream hands out, read on a thread of its own."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.items: list[Any] = []
        self.ended = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            for item in self.stream:
                self.items.append((time.monotonic(), item))
        finally:
            self.ended.set()

    def close(self) -> None:
        self.stream.close()
        self.thread.join(5)


def test_a_task_killed_on_a_worker_is_seen_dead_then_replaced(swarm3: Swarm, engine: SwarmEngine):
    with swarm3.stack(STACK) as stack:
        nodes = {node.node_id: node for node in swarm3.nodes}

        def spread() -> list[ContainerSnapshot]:
            tickers = of(engine, stack, "ticker")
            # a task is "starting" (health starting) for a moment even without a healthcheck
            running = [c for c in tickers if c.status.running and c.health is None]
            return tickers if len(running) == 2 and len({c.node for c in running}) == 2 else []

        tickers = wait_for(
            spread, 60, "2 tickers running on 2 nodes", seen=lambda: of(engine, stack, "ticker")
        )
        # each on the node the manager's task says, by its host name
        tasks = {t["ID"]: t for t in swarm3.tasks(f"{stack}_ticker")}
        for snap in tickers:
            assert snap.node == nodes[tasks[snap.id]["NodeID"]].hostname
            assert (snap.restart_count, snap.health, snap.image) == (0, None, "cc-busybox:1")
        victim = next(c for c in tickers if c.node != swarm3.manager.hostname)
        worker = next(n for n in swarm3.nodes if n.hostname == victim.node)
        assert worker.role == "worker"

        events = Collected(engine.events(stack))
        log = Collected(engine.follow_logs(victim.id, time.time() - 5))
        try:
            wait_for(lambda: log.items, 30, "the victim's log lines through the manager")
            container = tasks[victim.id]["Status"]["ContainerStatus"]["ContainerID"]
            killed = time.monotonic()
            swarm3.docker("kill", container, node=worker)  # the worker's engine

            seen: list[ContainerSnapshot] = []

            def replaced() -> ContainerSnapshot | None:
                slot = [c for c in of(engine, stack, "ticker") if c.number == victim.number]
                seen.extend(slot)
                return next((c for c in slot if c.id != victim.id and c.status.running), None)

            new = wait_for(replaced, 60, "the killed task's replacement", 0.1, lambda: seen)
            dead = [c for c in seen if c.id == victim.id and not c.status.running]
            assert dead, f"the dead task was never seen: {seen}"
            assert dead[0].status in (ContainerState.RESTARTING, ContainerState.EXITED)
            assert (dead[0].exit_code, dead[0].error) == (137, "task: non-zero exit (137)")
            assert new.restart_count == 1 and new.status.running

            def died() -> float | None:
                return next(
                    (
                        at
                        for at, e in events.items
                        if e["Action"] == "die"
                        and e["id"] == victim.id
                        and e["Actor"]["Attributes"]["exitCode"] == "137"
                    ),
                    None,
                )

            hinted = wait_for(died, 30, "a die hint of the killed task", seen=lambda: events.items)
            # the task poll's hint, soon after the kill (0.25 s measured; a worker's report
            # of a death reaches the manager within a fraction of a second)
            assert hinted - killed < 3.0, hinted - killed
            # the killed task's log ends (its task ended), with its last tick in it
            assert log.ended.wait(15), "the dead task's log stream did not end"
            assert all(b" tick " in line for _, lines in log.items for line in lines)
        finally:
            events.close()
            log.close()


def test_a_task_whose_healthcheck_fails_is_seen_unhealthy(swarm3: Swarm, engine: SwarmEngine):
    with swarm3.stack(STACK) as stack:
        seen: list[ContainerSnapshot] = []

        def unhealthy() -> ContainerSnapshot | None:
            sick = of(engine, stack, "sick")
            seen.extend(sick)
            return next((c for c in sick if c.health is Health.UNHEALTHY), None)

        found = wait_for(unhealthy, 90, "the sick task seen unhealthy", 0.2, lambda: seen[-5:])
        assert found.error.endswith("dockerexec: unhealthy container")
        assert found.status in (ContainerState.RESTARTING, ContainerState.EXITED)
        # before that it was starting (waiting for its first healthy check)
        assert any(c.health is Health.STARTING and c.status.running for c in seen)


def test_a_tasks_use_is_read_from_the_engine_of_its_node(swarm3: Swarm):
    """Forecasts sample what each task uses: through the manager's own engine for a task
    there, through the engine given for a worker's (``--node-engine``), as the task's; a
    worker whose engine is not given is said to be out of reach, by name."""
    given = {n.hostname: n.host for n in swarm3.workers[:1]}
    engine = SwarmEngine(swarm3.manager.host, node_engines=given)
    try:
        with swarm3.stack(STACK) as stack:

            def everywhere() -> list[ContainerSnapshot]:
                tickers = [c for c in of(engine, stack, "ticker") if c.status.running]
                return tickers if len({c.node for c in tickers}) == 2 else []

            tickers = wait_for(everywhere, 60, "2 tickers on 2 nodes")
            for task in tickers:
                if task.node == swarm3.manager.hostname or task.node in given:
                    used = engine.usage(task.id)
                    assert used.container == task.id
                    assert 0 < used.memory < used.memory_limit, used
                    assert used.pids >= 1, used
                else:
                    with pytest.raises(NodeUnreachable, match=task.node):
                        engine.usage(task.id)
    finally:
        engine.close()
