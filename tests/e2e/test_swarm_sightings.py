"""What only a node's own engine says, read on a real one-node swarm: the manager's tasks
say neither an OOM kill nor a failed healthcheck before Swarm's verdict (it kills the
task then). The controller reads the container events of the manager's own engine: an
OOM-killed task is critical and says so, and a task failing its checks is reported at
the first failure, left to Swarm (never a forced update of the controller's)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.e2e.conftest import STACKS, wait_for
from tests.e2e.swarm import Swarm
from tests.e2e.swarmctl import controlling

SIGHTINGS = STACKS / "swarm-sightings.yaml"

DESIRED = """\
project: {stack}
compose_files: [{file}]
remediation: {{budget: 2}}
services:
  hog: {{}}
  flaky: {{}}
"""


def test_an_oom_kill_and_failing_checks_are_read_from_the_nodes_engine(
    swarm1: Swarm, tmp_path: Path
):
    oom = read_from_the_node(swarm1, SIGHTINGS, tmp_path)
    assert f"on node {swarm1.manager.hostname}" in oom["detail"], oom


def test_on_workers_they_are_read_from_the_engine_given_for_each_worker(
    swarm3: Swarm, tmp_path: Path
):
    """The same on a three-node swarm whose tasks run on the workers: the manager's own
    engine sees none of it; each worker's engine, given with ``--node-engine``, does."""
    model = yaml.safe_load(SIGHTINGS.read_text())
    for spec in model["services"].values():
        spec["deploy"]["placement"] = {"constraints": ["node.role == worker"]}
    on_workers = tmp_path / "swarm-sightings-workers.yaml"
    on_workers.write_text(yaml.safe_dump(model, sort_keys=False))
    engines = ",".join(f"{n.hostname}={n.host}" for n in swarm3.workers)
    oom = read_from_the_node(swarm3, on_workers, tmp_path, "--node-engine", engines)
    assert any(f"on node {n.hostname}" in oom["detail"] for n in swarm3.workers), oom


def read_from_the_node(swarm: Swarm, stack_file: Path, root: Path, *flags: str) -> dict[str, Any]:
    """hog's OOM kill is critical and said, flaky's failing checks are reported before
    Swarm's verdict and left to Swarm; hog's OOM issue."""
    with controlling(swarm, stack_file, DESIRED, root, *flags) as (stack, controller):
        oom = wait_for(
            lambda: next(
                (
                    i
                    for i in controller.issues()
                    if i["service"] == "hog" and "exceeding its memory" in i["detail"]
                ),
                None,
            ),
            120,
            "the OOM kill of hog's task",
            1,
            controller.seen,
        )
        assert oom["severity"] == "critical", oom
        # the first failed checks, reported before Swarm's verdict (one issue, which
        # turns unhealthy at the engine's verdict)
        wait_for(
            lambda: (
                "flaky is failing its healthcheck [medium failing-healthcheck]" in controller.log()
            ),
            120,
            "flaky's failing checks, before Swarm's verdict",
            1,
            controller.seen,
        )
        # Swarm's verdict: it kills the task and replaces it; the controller adds nothing
        wait_for(
            lambda: (
                "unhealthy container"
                in swarm.docker(
                    "service", "ps", "--no-trunc", "--format", "{{.Error}}", f"{stack}_flaky"
                )
            ),
            120,
            "Swarm to kill flaky's task as unhealthy",
            1,
        )
        forced = [
            a
            for i in controller.issues()
            if i["service"] == "flaky"
            for a in i["attempts"]
            if "--force" in a["detail"]
        ]
        assert forced == [], forced
        # killed as unhealthy, not a crash: its death never reads as an exit of its own
        assert controller.issue("drift:flaky:exited") is None, controller.seen()
        return oom
