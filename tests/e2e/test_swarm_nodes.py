"""The controller on a stack spread over a three-node swarm (tests/e2e/swarm.py): its
tasks run on the two workers, the controller talks to the manager. A runbook's exec runs
in a task on a worker, through that worker's engine (``--node-engine``); a task killed on
a worker is diagnosed with its node and left to Swarm; a node a person drains is a
person's operation: Swarm moves its tasks, the controller adds nothing."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.e2e.conftest import CONTROLLER, STACKS, free_ports, wait_for
from tests.e2e.swarm import Swarm
from tests.e2e.swarmctl import Controller

STORE = STACKS / "swarm-store.yaml"

DESIRED = """\
project: {stack}
compose_files: [{file}]
environment:
  STORE_PORT: "{port}"
remediation:
  runbooks:
    - name: create-orders
      when: {{pattern: pg-database-missing, services: [app]}}
      exec:
        service: store
        argv: [touch, "/www/{{database}}"]
services:
  store: {{}}
  app: {{}}
"""


def running_on(swarm: Swarm, service: str) -> list[tuple[str, str]]:
    """(node host name, container id) of the service's running tasks."""
    return [
        (swarm.node(t["NodeID"]).hostname, t["Status"]["ContainerStatus"]["ContainerID"])
        for t in swarm.running(service)
    ]


def test_a_stack_on_workers_gets_its_runbook_on_a_worker_and_its_tasks_diagnosed_by_node(
    swarm3: Swarm, tmp_path: Path
):
    (port,) = free_ports(1)  # in the swarm's own network namespace: free there anyway
    workers = {node.hostname: node for node in swarm3.workers}
    with swarm3.stack(STORE, environment={"STORE_PORT": str(port)}) as stack:
        desired = tmp_path / "desired"
        desired.mkdir()
        (desired / "dev.yaml").write_text(DESIRED.format(stack=stack, file=STORE, port=port))
        engines = ",".join(f"{n.hostname}={n.host}" for n in swarm3.workers)
        controller = Controller(
            swarm3, tmp_path, "--desired-state-dir", str(desired), "--node-engine", engines
        )
        try:
            # the store's "orders" is missing: created in its task, on a worker
            fixed = wait_for(
                lambda: controller.resolved("log:app:pg-database-missing:"),
                180,
                "the runbook to create orders on the store's node",
                1,
                controller.seen,
            )
            assert fixed["resolution"].startswith("fixed by runbook create-orders"), fixed
            ((store_node, store_container),) = running_on(swarm3, f"{stack}_store")
            assert store_node in workers
            listing = swarm3.docker("exec", store_container, "ls", "/www", node=workers[store_node])
            assert listing.split() == ["orders"]
            wait_for(lambda: controller.status()["converged"], 120, "convergence", 1)

            # a task killed on a worker: diagnosed with its node, left to Swarm
            mark = max(i["last_seen"] for i in controller.issues())
            victim_node, victim = running_on(swarm3, f"{stack}_app")[0]
            swarm3.docker("kill", victim, node=workers[victim_node])
            killed = wait_for(
                lambda: controller.resolved("drift:app:", mark),
                180,
                "the killed task's issue to end",
                1,
                controller.seen,
            )
            assert f"on node {victim_node}" in killed["detail"], killed
            assert killed["attempts"] == [], killed

            # a person drains the other worker: Swarm moves its tasks (the store stays, and
            # its orders: a store moved would start empty, and the runbook run again)
            wait_for(lambda: controller.status()["converged"], 120, "convergence", 1)
            drained = next(n for n in workers if n != store_node)
            swarm3.docker("node", "update", "--availability", "drain", drained)
            wait_for(
                lambda: (
                    all(n != drained for n, _ in running_on(swarm3, f"{stack}_app"))
                    and len(running_on(swarm3, f"{stack}_app")) == 2
                ),
                120,
                "Swarm to move the drained node's tasks",
                1,
                lambda: swarm3.states(f"{stack}_app"),
            )
            wait_for(lambda: controller.status()["converged"], 180, "convergence", 1)
            steps = [
                (i["fingerprint"], a["detail"]) for i in controller.issues() for a in i["attempts"]
            ]
            assert steps == [(fixed["fingerprint"], fixed["attempts"][0]["detail"])], steps
            handed = [i for i in controller.issues() if i["state"] == "needs-human"]
            assert handed == [], handed
        finally:
            controller.stop()
            for node in workers:
                swarm3.docker("node", "update", "--availability", "active", node, check=False)


def test_a_runbook_on_a_node_whose_engine_does_not_answer_goes_to_a_person_at_once(
    swarm3: Swarm, tmp_path: Path
):
    """``--node-engine`` names an engine that does not answer (a port nothing listens
    on): the runbook's exec cannot reach the store's node, and no retry would; the issue
    goes to a person at once, saying which node and where it was looked for."""
    port, closed = free_ports(2)
    with swarm3.stack(STORE, environment={"STORE_PORT": str(port)}) as stack:
        desired = tmp_path / "desired"
        desired.mkdir()
        (desired / "dev.yaml").write_text(DESIRED.format(stack=stack, file=STORE, port=port))
        engines = ",".join(f"{n.hostname}=tcp://127.0.0.1:{closed}" for n in swarm3.workers)
        controller = Controller(
            swarm3, tmp_path, "--desired-state-dir", str(desired), "--node-engine", engines
        )
        try:
            handed = wait_for(
                lambda: next(
                    (
                        i
                        for i in controller.issues()
                        if i["fingerprint"].startswith("log:app:pg-database-missing:")
                        and i["state"] == "needs-human"
                    ),
                    None,
                ),
                180,
                "the runbook's issue to go to a person",
                1,
                controller.seen,
            )
            ((store_node, _),) = running_on(swarm3, f"{stack}_store")
            said = f"cannot reach node {store_node}'s engine at tcp://127.0.0.1:{closed}: "
            assert handed["resolution"].startswith(f"runbook create-orders cannot run: {said}")
            assert len(handed["attempts"]) == 1, handed  # not tried again
        finally:
            controller.stop()


BADNODE = STACKS / "swarm-badnode.yaml"


def test_a_node_where_tasks_keep_failing_gets_a_drain_report_naming_that_node_only(
    swarm3: Swarm, tmp_path: Path
):
    bad = swarm3.workers[0]
    stack_file = tmp_path / "badnode.yaml"
    stack_file.write_text(BADNODE.read_text().replace("BAD_NODE", bad.hostname))
    others = sorted(n.hostname for n in swarm3.nodes if n is not bad)
    with swarm3.stack(stack_file) as stack:
        controller = Controller(swarm3, tmp_path, "-f", str(stack_file), "-p", stack)
        try:
            runs = f"flaky runs on {', '.join(others)}: the node is the likely cause"
            # the report names each node once a task of flaky has run there for 30 s
            report = wait_for(
                lambda: (
                    (i := controller.issue(f"node:{bad.hostname}:failing"))
                    and i["state"] == "needs-human"
                    and runs in i["detail"]
                    and i
                ),
                240,
                f"a drain report of {bad.hostname} naming {others}",
                1,
                controller.seen,
            )
            drain = f"`docker node update --availability drain {bad.hostname}`"
            assert report["severity"] == "high" and report["service"] == "flaky", report
            assert f"tasks keep failing on node {bad.hostname}: " in report["title"], report
            assert "exit 7" in report["detail"] and drain in report["detail"], report
            undo = f"`docker node update --availability active {bad.hostname}`"
            assert undo in report["detail"], report
            assert drain in report["resolution"], report  # why it is a person's
            reports = [i for i in controller.issues() if i["fingerprint"].startswith("node:")]
            assert [i["fingerprint"] for i in reports] == [f"node:{bad.hostname}:failing"]
            assert report["attempts"] == [], report  # the controller never drains
            markdown = (tmp_path / "docker_issues_report_dev.md").read_text()
            assert f"tasks keep failing on node {bad.hostname}" in markdown
            described = subprocess.run(
                [CONTROLLER, "status", "flaky", "--file", str(controller.file), "--color", "never"],
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            ).stdout
            assert (
                f"node-failing  high  needs-human  tasks keep failing on node {bad.hostname}"
                in (described)
            ), described
            assert drain in described, described
            # a person drains it: Swarm moves the slot away, the report resolves
            swarm3.docker("node", "update", "--availability", "drain", bad.node_id)
            try:
                done = wait_for(
                    lambda: controller.resolved(f"node:{bad.hostname}:failing"),
                    120,
                    "the report to resolve once the node is drained",
                    1,
                    controller.seen,
                )
                assert done["resolution"] == (
                    f"node {bad.hostname} is drained (its availability is drain)"
                ), done
            finally:
                swarm3.docker("node", "update", "--availability", "active", bad.node_id)
        finally:
            controller.stop()
