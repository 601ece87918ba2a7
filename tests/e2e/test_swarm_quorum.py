"""The manager the controller talks to loses the swarm's quorum (two of three managers
go down): it still answers, but cannot say what the swarm runs. The controller takes it
for an engine that is not there: nothing observed or changed, the status and /readyz say
why, and the CI gate exits 3 (engine unreachable)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import CONTROLLER, STACKS, http_get, wait_for
from tests.e2e.swarm import Swarm, make_swarm
from tests.e2e.swarmctl import Controller

TICKER = STACKS / "swarm-ticker.yaml"
NO_LEADER = "The swarm does not have a leader"


@pytest.fixture
def managers3() -> Iterator[Swarm]:
    """Three managers of their own: this test takes two of them down."""
    yield from make_swarm(3, managers=3)


def test_a_manager_without_quorum_is_an_engine_that_is_not_there(managers3: Swarm, tmp_path: Path):
    # deployed, never removed: the swarm is taken down whole (without a leader, a stack
    # cannot be removed)
    stack = "quorum"
    managers3.docker("stack", "deploy", "--resolve-image", "never", "-c", str(TICKER), stack)
    controller = Controller(managers3, tmp_path, "-f", str(TICKER), "-p", stack)
    try:
        wait_for(lambda: controller.status()["converged"], 90, "the ticker to run", 0.5)
        for node in managers3.nodes[1:]:
            managers3.stop_node(node)
        engine = wait_for(
            lambda: (e := controller.status()["engine"]) and not e["reachable"] and e,
            120,
            "the controller to find the swarm without a leader",
            0.5,
            lambda: controller.status()["engine"],
        )
        assert NO_LEADER in engine["detail"], engine
        assert http_get(controller.base + "/readyz")[0] == 503
        assert controller.process.poll() is None  # it waits for the swarm, running
        gate = subprocess.run(
            [
                CONTROLLER,
                *("--env", "dev", "--engine", "swarm", "-f", str(TICKER), "-p", stack),
                *("--once", "--engine-timeout", "3", "--state-dir", str(tmp_path / "gate")),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env=controller.environment,
            cwd=tmp_path,
        )
        assert gate.returncode == 3, gate.stdout[-2000:] + gate.stderr[-2000:]
        assert NO_LEADER in gate.stdout + gate.stderr
        actions = [a for i in controller.issues() for a in i["attempts"]]
        assert actions == []  # nothing was done to a swarm it could not read
    finally:
        controller.stop()
