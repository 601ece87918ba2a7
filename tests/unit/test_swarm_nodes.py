"""A node whose tasks keep failing while the same services run fine on other nodes gets a
drain report: one issue per node, handed to a human at once with the command that drains
it; a service that fails on every node is its own fault, not a node's; the report
resolves when the failures stop, when a person drains the node, or when it leaves the
swarm. On a fake engine and a fake manager."""

from __future__ import annotations

from datetime import UTC, datetime

from controller.model import IssueState, SwarmNode, TaskFailure, TaskRun
from controller.observe.swarmnodes import swarm_nodes, task_failures
from controller.remediate.nodes import WINDOW, node_failing
from tests.fakes import FakeStack, FakeWorld, desired
from tests.unit.test_remediator import Rig
from tests.unit.test_swarm_remediation import swarm_spec

NODES = ("n1", "n2", "n3")
DRAIN = "`docker node update --availability drain n2`"
UNDO = "`docker node update --availability active n2`"


def rig_of(*services: str) -> tuple[Rig, FakeStack]:
    world = FakeWorld()
    stack = FakeStack(world, {s: 3 for s in services})
    for service in services:
        world.run(service, replicas=3, node="n1")
    rig = Rig(world, desired(*(swarm_spec(s, replicas=3) for s in services)), stack=stack)
    stack.nodes = [SwarmNode(n) for n in NODES]
    return rig, stack


def fail(rig: Rig, stack: FakeStack, service: str, node: str, times: int, slot: int = 2) -> None:
    """``times`` tasks of ``service`` failed on ``node``, a second apart, until now."""
    now = rig.clock()
    for n in range(times):
        task = f"{service}{node}{n}".ljust(25, "x")
        error = "task: non-zero exit (7)"
        stack.failures.append(TaskFailure(service, slot, task, node, 7, error, now - times + n))


def run(rig: Rig, stack: FakeStack, service: str, *nodes: str, since: float = 120.0) -> None:
    """A task of ``service`` runs on each of ``nodes``, for ``since`` seconds."""
    stack.runs += [TaskRun(service, node, rig.clock() - since) for node in nodes]


def look(rig: Rig) -> bool:
    """One pass of the node watch (the controller's, after its sync)."""
    rig.sync()
    return rig.remediation.nodes.pass_seen(rig.observer.observe())


def test_the_node_where_tasks_keep_failing_gets_a_drain_report_handed_to_a_human():
    rig, stack = rig_of("app")
    run(rig, stack, "app", "n1", "n3")
    fail(rig, stack, "app", "n2", 3)
    assert look(rig)
    issue = rig.issue(node_failing("n2"))
    assert issue.fingerprint == "node:n2:failing"
    assert (issue.kind.value, issue.severity.value, issue.service) == (
        "node-failing",
        "high",
        "app",
    )
    assert issue.state is IssueState.NEEDS_HUMAN
    assert issue.title == (
        "tasks keep failing on node n2: 3 failed there in the last 10 minutes while app "
        "run(s) on other nodes"
    )
    assert "app slot 2 (task appn22xxxxxx) exit 7 at " in issue.detail
    assert ": task: non-zero exit (7)" in issue.detail
    assert "app runs on n1, n3: the node is the likely cause" in issue.detail
    assert DRAIN in issue.detail and UNDO in issue.detail
    assert "a person's call, not the controller's" in issue.resolution
    assert DRAIN in issue.resolution
    for other in ("n1", "n3"):
        assert rig.store.get(node_failing(other)) is None
    rig.store.release("app")  # a person acted on app: the node's report stays theirs
    rig.fix("app")
    assert rig.world.actions == []  # the controller never drains, nor acts on the report
    assert rig.issue(node_failing("n2")).state is IssueState.NEEDS_HUMAN
    assert not look(rig)  # the same report: no news


def test_two_failures_are_not_enough_nor_a_service_that_just_started_elsewhere():
    rig, stack = rig_of("app")
    run(rig, stack, "app", "n1", since=5)  # not yet proven to run fine there
    fail(rig, stack, "app", "n2", 3)
    assert not look(rig)
    stack.runs.clear()
    run(rig, stack, "app", "n1")
    stack.failures.pop()
    assert not look(rig)
    assert rig.store.get(node_failing("n2")) is None


def test_a_service_that_fails_on_every_node_is_its_own_fault_not_a_nodes():
    rig, stack = rig_of("app", "web")
    for node in NODES:
        fail(rig, stack, "app", node, 3)
    run(rig, stack, "app", "n1")  # runs there again now, but failed there too
    assert not look(rig)
    assert [i for i in rig.store.issues() if i.fingerprint.startswith("node:")] == []
    # another service that runs fine elsewhere and fails on n2 alone: n2 again
    run(rig, stack, "web", "n1", "n3")
    fail(rig, stack, "web", "n2", 3, slot=1)
    assert look(rig)
    issue = rig.issue(node_failing("n2"))
    assert issue.service == "web"
    assert "web runs on n1, n3" in issue.detail and "app" not in issue.title
    assert rig.store.get(node_failing("n1")) is None


def test_the_report_resolves_once_the_failures_stop_for_the_window():
    rig, stack = rig_of("app")
    run(rig, stack, "app", "n1", "n3")
    fail(rig, stack, "app", "n2", 4)
    look(rig)
    rig.clock.advance(WINDOW - 10)
    assert not look(rig)
    assert rig.issue(node_failing("n2")).state is IssueState.NEEDS_HUMAN
    rig.clock.advance(20)
    assert look(rig)
    issue = rig.issue(node_failing("n2"))
    assert issue.state is IssueState.RESOLVED
    assert issue.resolution == "no task has failed on node n2 for 10 minutes"
    # failing again: the same issue opens again
    fail(rig, stack, "app", "n2", 3)
    assert look(rig)
    issue = rig.issue(node_failing("n2"))
    assert (issue.state, issue.occurrences) == (IssueState.NEEDS_HUMAN, 2)
    rig.clock.advance(WINDOW - 2.5)  # the oldest of the three is out of the window
    assert look(rig)
    assert rig.issue(node_failing("n2")).resolution == (
        "only 2 task(s) failed on node n2 in the last 10 minutes (fewer than 3)"
    )


def test_a_person_who_drains_the_node_or_removes_it_resolves_the_report():
    rig, stack = rig_of("app")
    run(rig, stack, "app", "n1", "n3")
    fail(rig, stack, "app", "n2", 3)
    look(rig)
    stack.nodes[1] = SwarmNode("n2", availability="drain")
    assert look(rig)
    issue = rig.issue(node_failing("n2"))
    assert issue.state is IssueState.RESOLVED
    assert issue.resolution == "node n2 is drained (its availability is drain)"
    stack.nodes[1] = SwarmNode("n2")  # a person makes it active again: still failing
    assert look(rig)
    assert rig.issue(node_failing("n2")).state is IssueState.NEEDS_HUMAN
    del stack.nodes[1]  # docker node rm
    assert look(rig)
    assert rig.issue(node_failing("n2")).resolution == "node n2 left the swarm"


def test_failures_and_runs_of_the_stacks_tasks_by_node():
    services = [
        {
            "ID": "s1",
            "Spec": {"Name": "demo_app", "Labels": {"com.docker.stack.namespace": "demo"}},
        },
        {"ID": "s9", "Spec": {"Name": "other_x", "Labels": {"com.docker.stack.namespace": "x"}}},
    ]

    def task(id_: str, state: str, node: str, **fields: object) -> dict[str, object]:
        status = {"State": state, "Timestamp": "2027-01-15T08:00:00.5Z", **fields}
        return {"ID": id_, "ServiceID": "s1", "Slot": 2, "NodeID": node, "Status": status}

    tasks = [
        task("t1", "failed", "N2", Err="task: non-zero exit (7)"),
        task("t2", "rejected", "N2", Err="No such image: app:2"),
        task("t3", "complete", "N2"),  # ended 0: no failure
        task("t4", "shutdown", "N1"),  # swarm took it: no failure
        {**task("t5", "running", "N1"), "DesiredState": "running"},
        {**task("t6", "failed", "N3"), "ServiceID": "s9"},  # another stack's
    ]
    failures, runs = task_failures("demo", services, tasks, {"N1": "n1", "N2": "n2"})
    assert [(f.task, f.service, f.slot, f.node, f.exit_code, f.error) for f in failures] == [
        ("t1", "app", 2, "n2", 7, "task: non-zero exit (7)"),
        ("t2", "app", 2, "n2", -1, "No such image: app:2"),
    ]
    assert failures[0].at == datetime(2027, 1, 15, 8, 0, 0, 500000, UTC).timestamp()
    assert runs == (TaskRun("app", "n1", failures[0].at),)
    listed = [
        {"ID": "N1", "Description": {"Hostname": "n1"}, "Spec": {"Availability": "active"},
         "Status": {"State": "ready"}},
        {"ID": "N2", "Description": {"Hostname": "n2"}, "Spec": {"Availability": "drain"},
         "Status": {"State": "down"}},
    ]  # fmt: skip
    assert swarm_nodes(listed) == (SwarmNode("n1"), SwarmNode("n2", "drain", "down"))
