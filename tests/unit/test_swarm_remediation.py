"""Remediation in Swarm's terms, on a fake engine and a fake manager (``FakeStack``):
what Swarm's restart policy replaces is left to it, what it does not is a forced update or
a scale, what a swarm cannot do is refused with its reason, runbooks run as on one
engine."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from controller.drift import service_drifts, service_ready, service_status
from controller.issues.report import render_markdown
from controller.model import (
    Action,
    Category,
    DriftKind,
    IssueState,
    ObservedState,
    Outcome,
    RemediationSettings,
    RestartPolicy,
    ServiceSpec,
    Severity,
    StepRecord,
)
from controller.observe.gateway import EngineError, NodeUnreachable
from controller.remediate.activity import left_half_done, operation_in
from controller.remediate.deference import SWARM_GRACE
from controller.remediate.results import RequeueAfter
from controller.remediate.strategies import StepFailed
from controller.remediate.swarmsteps import SwarmActuator
from controller.runtime import Settings, assemble
from controller.runtime.settings import on_swarm
from controller.status.render import Paint, describe
from tests.fakes import FakeClock, FakeStack, FakeWorld, container, desired, spec
from tests.unit.test_remediator import RUNBOOK, Rig, stamp


@pytest.mark.parametrize(
    ("policy", "docker", "said"),
    [
        (None, ("always", None), "condition any"),  # Swarm's default condition is any
        ({"condition": "any"}, ("always", None), "condition any"),
        (
            {"condition": "on-failure", "max_attempts": 3},
            ("on-failure", 3),
            "condition on-failure, max_attempts 3",
        ),
        ({"condition": "on-failure"}, ("on-failure", None), "condition on-failure"),
        ({"condition": "none"}, ("no", None), "condition none"),
    ],
)
def test_a_stacks_restart_policy_reads_as_dockers(
    policy: object, docker: tuple[str, int | None], said: str
):
    found = RestartPolicy.of_swarm(policy)
    assert (found.name, found.max_retries) == docker
    assert (found.by, str(found)) == ("Swarm", said)
    assert found.restarts is (docker[0] != "no")


def test_on_a_swarm_the_restart_policy_in_force_is_swarms():
    state = desired(
        ServiceSpec("web", restart=RestartPolicy("no"), swarm_restart=RestartPolicy("always")),
        ServiceSpec("job", restart=RestartPolicy("always"), swarm_restart=RestartPolicy("no")),
    )
    swarm = on_swarm(state)
    assert str(swarm.services["web"].restart) == "always"
    assert str(swarm.services["job"].restart) == "no"
    assert str(state.services["web"].restart) == "no"  # the compose reading is untouched


def swarm_spec(name: str, condition: str = "any", **fields: object) -> ServiceSpec:
    return spec(name, restart=RestartPolicy.of_swarm({"condition": condition}), **fields)


def test_a_task_swarm_is_replacing_gets_no_update_of_the_controllers():
    world = FakeWorld()
    stack = FakeStack(world)
    world.run("web", status="restarting", exit_code=137, restart_count=1)
    rig = Rig(world, desired(swarm_spec("web")), stack=stack)
    result = rig.fix("web", horizon=0)
    assert world.actions == []  # never two actors on one task
    assert isinstance(result, RequeueAfter)
    plan = rig.intended("drift:web:exited").plan
    assert "Swarm's restart policy (condition any) is restarting it" in plan


def test_the_plan_says_the_restart_count_controller_status_shows():
    """A loop the controller began to watch late (its count was 32 by then): the plan
    says the 32 `controller status` shows, and the loop's own count the budget is about,
    not "0 restart(s)" beside a status of 32."""
    world = FakeWorld()
    stack = FakeStack(world)
    world.run("web", status="restarting", exit_code=1, restart_count=32)
    rig = Rig(world, desired(swarm_spec("web")), stack=stack)
    rig.fix("web", horizon=0)
    status = service_status(swarm_spec("web"), rig.observer.observe())
    assert status.restarts == 32
    plan = rig.intended("drift:web:exited").plan
    assert f"({status.restarts} restart(s) so far, 0 in this loop)" in plan, plan
    world.set("web", restart_count=34)  # two more of Swarm's restarts
    rig.fix("web", horizon=0)
    plan = rig.intended("drift:web:exited").plan
    assert "(34 restart(s) so far, 2 in this loop)" in plan, plan


def test_a_task_swarm_leaves_ended_is_replaced_by_a_forced_update():
    world = FakeWorld()
    stack = FakeStack(world)
    world.run("web", status="exited", exit_code=1)
    rig = Rig(world, desired(swarm_spec("web", condition="none")), stack=stack)
    rig.fix("web")
    assert world.actions == [("service update --force", "demo_web")]
    issue = rig.issue("drift:web:exited")
    assert issue.state is IssueState.RESOLVED
    assert "docker service update --force demo_web" in issue.attempts[0].detail


def test_a_death_only_the_node_saw_gets_swarms_manager_seconds_to_replace_the_task():
    """The node's engine says a task died; the manager, busy, has not created its
    replacement yet: Swarm's restart policy still covers it (a forced update would make
    two actors). Only once Swarm's grace has passed does the controller act."""
    world = FakeWorld()
    stack = FakeStack(world)
    rig = Rig(world, desired(swarm_spec("web")), stack=stack)
    world.run("web", status="exited", exit_code=137, finished_at=stamp(rig.clock() - 3))
    result = rig.fix("web", horizon=0)
    assert isinstance(result, RequeueAfter) and result.why == "Swarm may restart it"
    assert 6 < result.seconds <= SWARM_GRACE - 3 + 1
    assert world.actions == []
    rig.clock.advance(SWARM_GRACE)
    rig.fix("web")
    assert world.actions == [("service update --force", "demo_web")]  # Swarm did not


LEFT_ALONE = (
    "web was scaled to 0 of 2 replicas by a person: the controller leaves it alone "
    "(declare services.web.enforce: true to have it brought back)"
)


def test_a_persons_scale_down_is_left_alone_said_and_never_paged():
    world = FakeWorld()
    stack = FakeStack(world, replicas={"web": 0})  # docker service scale demo_web=0
    rig = Rig(world, desired(swarm_spec("web", replicas=2)), stack=stack)
    rig.fix("web", horizon=0)
    assert world.actions == []  # the controller never scales it back on its own
    issue = rig.issue("drift:web:scaled-down")
    assert issue.state is IssueState.OPEN  # said, not handed to a human: no page
    assert issue.severity is Severity.LOW and issue.blocking
    assert issue.title == "web was scaled to 0 of 2 replicas"
    assert rig.intended("drift:web:scaled-down").plan == f"reported: {LEFT_ALONE}"
    assert rig.store.get("drift:web:missing") is None


def test_a_person_who_scales_it_back_up_gets_a_fresh_budget_and_the_issue_resolves():
    world = FakeWorld()
    stack = FakeStack(world, replicas={"web": 1})
    world.run("web")
    rig = Rig(world, desired(swarm_spec("web", replicas=2)), stack=stack)
    rig.records.permit("web", "drift:web:exited")  # an earlier fix spent some budget
    rig.records.step_started("web", _step(rig), "drift:web:exited")
    rig.records.step_ended("web", fixed=True)
    assert rig.records.budget_left("web") < rig.state.remediation.budget
    rig.fix("web", horizon=0)
    assert rig.issue("drift:web:scaled-down").title == "web was scaled to 1 of 2 replicas"
    assert rig.records.budget_left("web") < rig.state.remediation.budget
    stack.replicas["web"] = 2  # docker service scale demo_web=2, by a person
    world.run("web", replicas=2)
    rig.clock.advance(30)
    rig.fix("web")
    assert world.actions == []
    assert rig.records.budget_left("web") == rig.state.remediation.budget
    assert rig.issue("drift:web:scaled-down").state is IssueState.RESOLVED


def _step(rig: Rig) -> StepRecord:
    at = datetime.fromtimestamp(rig.clock(), UTC)
    return StepRecord(action=Action.START, label="start", started_at=at, finished_at=at, until=at)


def test_an_enforced_service_a_person_scaled_down_is_scaled_back():
    world = FakeWorld()
    stack = FakeStack(world, replicas={"web": 1})
    world.run("web")
    rig = Rig(world, desired(swarm_spec("web", replicas=2, enforce=True)), stack=stack)
    rig.fix("web")
    assert world.actions == [("service scale", "demo_web=2")]
    assert len([c for c in world.list_containers("demo") if c.status.running]) == 2
    issue = rig.issue("drift:web:scaled-down")
    assert issue.state is IssueState.RESOLVED
    assert issue.attempts[0].detail.startswith("docker service scale demo_web=2 (it was 1)")
    assert not rig.records.get("web").activity.scaled_down  # its own scale, not a person's


def test_replicas_swarm_already_wants_are_left_to_swarm_and_said_so():
    world = FakeWorld()
    stack = FakeStack(world, replicas={"web": 2})
    world.run("web")  # one of two: Swarm cannot place the other
    rig = Rig(world, desired(swarm_spec("web", replicas=2)), stack=stack)
    rig.fix("web", horizon=0)
    assert world.actions == [("service scale", "demo_web=2")]
    assert stack.replicas == {"web": 2}
    (attempt,) = rig.issue("drift:web:replicas").attempts
    assert "Swarm already keeps 2 replica(s) of demo_web" in attempt.detail


def test_a_service_not_deployed_goes_to_a_human_at_once_with_the_command_that_deploys_it():
    world = FakeWorld()
    stack = FakeStack(world)
    stack.missing.add("web")  # docker service rm demo_web
    rig = Rig(world, desired(swarm_spec("web")), stack=stack)
    rig.fix("web", horizon=0)
    assert world.actions == []  # a scale cannot bring back a service that does not exist
    issue = rig.issue("drift:web:undeployed")
    assert issue.state is IssueState.NEEDS_HUMAN
    assert issue.resolution == (
        "service demo_web is not deployed: run docker stack deploy -c /srv/demo/stack.yaml demo"
    )
    assert rig.store.get("drift:web:missing") is None
    # docker stack deploy again: a person's start, and the service runs
    stack.missing.clear()
    world.run("web")
    rig.signals.event("web", "create")
    rig.clock.advance(30)
    rig.fix("web")
    assert world.actions == []
    assert rig.issue("drift:web:undeployed").state is IssueState.RESOLVED


NO_NODE = "no suitable node (scheduling constraints not satisfied on 1 node)"


def test_a_task_swarm_cannot_place_goes_to_a_human_at_once_in_swarms_words():
    world = FakeWorld()
    stack = FakeStack(world)
    world.run("web", status="created", pending="pending", error=NO_NODE, started_at="")
    rig = Rig(world, desired(swarm_spec("web")), stack=stack)
    rig.fix("web", horizon=0)
    assert world.actions == []
    issue = rig.issue("drift:web:unplaceable")
    assert issue.state is IssueState.NEEDS_HUMAN
    assert issue.title == "Swarm cannot place 1 task(s) of web"
    assert issue.detail == (
        f"1 task(s) pending, placed on no node (the swarm has 1 node(s) and none fits); "
        f"Swarm: {NO_NODE}"
    )
    assert "the controller cannot change where Swarm places tasks" in issue.resolution
    assert NO_NODE in issue.resolution
    assert rig.store.get("drift:web:exited") is None  # never "created but never started"
    # placed (the constraint relaxed) and running: the issue resolves
    world.set("web", status="running", pending="", error="", started_at="2026-01-01T00:00:09Z")
    rig.clock.advance(30)
    rig.fix("web")
    assert world.actions == []
    assert rig.issue("drift:web:unplaceable").state is IssueState.RESOLVED


def test_a_task_swarm_is_preparing_is_its_work_not_a_persons_half_done_recreate():
    preparing = container(
        "web", status="created", pending="preparing", node="n1", started_at="", created_at=""
    )
    assert service_drifts(swarm_spec("web"), [preparing]) == []  # not "never started"
    assert not service_ready(swarm_spec("web"), [preparing])  # nor ready
    assert operation_in([preparing]) == ""  # nor a person's operation
    assert left_half_done([preparing]) == []
    # a container created and not started on one engine is still both
    created = container("web", status="created")
    assert service_drifts(spec("web"), [created])[0].title == "web was created but never started"
    assert operation_in([created]) == "container demo-web-1 is created but not started"


def test_the_controller_waits_for_swarms_work_in_progress_and_says_so_within_a_limit():
    world = FakeWorld()
    stack = FakeStack(world, replicas={"web": 2})
    world.run("web", replicas=2, status="exited", exit_code=1)
    rig = Rig(world, desired(swarm_spec("web", condition="none", replicas=2)), stack=stack)
    created = stamp(rig.clock())
    world.set("web", created_at=created)
    world.containers["web-2-id"] = replace(
        world.containers["web-2-id"], status="created", pending="preparing", node="n1", exit_code=0
    )
    result = rig.fix("web", horizon=0)
    assert world.actions == [] and isinstance(result, RequeueAfter)  # never two actors
    plan = rig.intended("drift:web:exited").plan
    assert plan == "waits: Swarm is preparing task demo-web-2 on node n1 (state preparing)"
    assert rig.issue("drift:web:exited").state is IssueState.OPEN
    rig.clock.advance(301)  # past operation_timeout: Swarm never started it
    rig.fix("web", horizon=0)
    assert world.actions == []
    issue = rig.issue("drift:web:exited")
    assert issue.state is IssueState.NEEDS_HUMAN
    assert issue.resolution.startswith(
        "Swarm is preparing task demo-web-2 on node n1 (state preparing) for 301 s"
    )


def test_a_persons_start_while_a_step_is_proven_opens_its_issues_again():
    world = FakeWorld()
    world.run("web", status="exited", exit_code=1)
    rig = Rig(world, desired(spec("web", min_ready=60)))
    rig.fix("web", horizon=0)
    assert rig.issue("drift:web:exited").state is IssueState.REMEDIATING
    rig.clock.advance(1)
    rig.signals.event("web", "create")  # docker compose up --force-recreate, by a person
    issue = rig.issue("drift:web:exited")
    assert issue.state is IssueState.OPEN  # not left remediating with no step to prove it
    assert issue.attempts[-1].outcome is Outcome.CANCELLED
    assert rig.records.step("web") is None


def test_a_runbook_runs_in_a_task_as_in_a_container():
    world = FakeWorld()
    stack = FakeStack(world)
    world.run("db")
    world.run("web")
    state = desired(
        swarm_spec("db"),
        swarm_spec("web"),
        remediation=RemediationSettings(runbooks=(RUNBOOK,), log_quiet=0),
    )
    rig = Rig(world, state, stack=stack)
    rig.log("web", "pg-database-missing", Category.DATABASE, captures={"database": "orders"})
    rig.fix("web")
    assert world.actions == [("exec", "demo-db-1: createdb -U postgres orders")]


@pytest.mark.parametrize(
    ("action", "reason"),
    [
        (Action.REBUILD, "build and push the image, then docker stack deploy"),
        (Action.UNPAUSE, "docker unpause it there"),
    ],
)
def test_what_a_swarm_cannot_do_is_refused_with_its_reason(action: Action, reason: str):
    world = FakeWorld()
    stack = FakeStack(world)
    world.run("web")
    actuator = SwarmActuator(
        stack,
        "demo",
        world,
        world,
        lambda: {"web": spec("web")},
        lambda: None,  # type: ignore[arg-type,return-value]
        lambda: None,
        None,  # type: ignore[arg-type]
    )
    with pytest.raises(StepFailed, match=reason):
        actuator.run(action, spec("web"), world.list_containers("demo"))
    assert world.actions == []


UNHEALTHY_KILL = "task: non-zero exit (137): dockerexec: unhealthy container"


def test_a_task_swarm_killed_as_unhealthy_is_unhealthy_not_a_crash():
    killed = container(
        "web",
        status="restarting",
        health="unhealthy",
        exit_code=137,
        node="n2",
        error=UNHEALTHY_KILL,
    )
    (drift,) = service_drifts(swarm_spec("web", check_health=True), [killed])
    assert (drift.kind, drift.title) == (DriftKind.UNHEALTHY, "web is unhealthy")
    assert drift.detail.endswith(f"; on node n2; Swarm: {UNHEALTHY_KILL}")
    # declared not to be judged by its health: a death like any other
    (drift,) = service_drifts(swarm_spec("web", check_health=False), [killed])
    assert drift.kind is DriftKind.RESTARTING


def test_a_drift_of_tasks_names_their_nodes_and_what_swarm_said_beyond_the_exit_code():
    tasks = [
        container(
            "web", 1, status="exited", exit_code=1, node="n3", error="task: non-zero exit (1)"
        ),
        container("web", 2, status="exited", exit_code=-1, node="n2", error="No such image: app:2"),
    ]
    (drift,) = service_drifts(swarm_spec("web", replicas=2), tasks)
    assert drift.kind is DriftKind.EXITED
    assert drift.detail.endswith("; on nodes n2, n3; Swarm: No such image: app:2")
    # on one engine, nothing is added
    (drift,) = service_drifts(spec("web"), [container("web", status="exited", exit_code=1)])
    assert drift.detail == "exit code 1, restart count 0"


def test_a_task_swarm_killed_as_unhealthy_is_left_to_swarm_to_replace():
    world = FakeWorld()
    stack = FakeStack(world)
    world.healthchecked.add("web")
    world.run("web", status="restarting", health="unhealthy", exit_code=137, error=UNHEALTHY_KILL)
    rig = Rig(world, desired(swarm_spec("web", check_health=True)), stack=stack)
    result = rig.fix("web", horizon=0)
    assert world.actions == [] and isinstance(result, RequeueAfter)
    plan = rig.intended("drift:web:unhealthy").plan
    assert "Swarm's restart policy (condition any) is restarting it" in plan
    # Swarm's replacement runs healthy: recovered, and the controller never acted
    world.set("web", status="running", health="healthy", exit_code=0, error="", restart_count=1)
    rig.clock.advance(120)
    rig.fix("web")
    assert world.actions == []
    assert rig.issue("drift:web:unhealthy").state is IssueState.RESOLVED


def test_a_running_task_its_node_calls_unhealthy_is_left_to_swarm_to_kill():
    # the node's engine says unhealthy before Swarm has killed the task: Swarm will
    world = FakeWorld()
    stack = FakeStack(world)
    world.healthchecked.add("web")
    world.run("web", health="unhealthy")
    rig = Rig(world, desired(swarm_spec("web", check_health=True)), stack=stack)
    result = rig.fix("web", horizon=0)
    assert world.actions == [] and isinstance(result, RequeueAfter)
    assert rig.issue("drift:web:unhealthy").state is IssueState.OPEN


def test_an_unhealthy_container_on_one_engine_is_still_restarted_by_the_controller():
    world = FakeWorld()
    world.healthchecked.add("web")
    world.run("web", health="unhealthy")  # Docker leaves it running unhealthy
    rig = Rig(world, desired(spec("web", check_health=True, restart="always")))
    rig.fix("web")
    assert world.actions == [("restart", "demo-web-1")]


def test_a_stacks_services_name_their_nodes_in_the_document_report_and_status():
    observed = ObservedState(
        "demo",
        0.0,
        (container("web", 1, node="n2"), container("web", 2, node="n3")),
    )
    status = service_status(swarm_spec("web", replicas=2), observed)
    assert status.nodes == ["n2", "n3"]
    one_host = service_status(spec("web"), ObservedState("demo", 0.0, (container("web"),)))
    assert one_host.nodes == []
    doc = {
        "env": "dev",
        "project": "demo",
        "generator": "test",
        "generated_at": "2026-12-05T00:00:00Z",
        "observed_at": "2026-12-05T00:00:00Z",
        "converged": True,
        "dry_run": False,
        "engine": {"reachable": True, "detail": ""},
        "summary": {"active": 0},
        "services": [status.model_dump(mode="json")],
        "issues": [],
    }
    report = render_markdown(doc)
    assert "| service | condition | containers | running | healthy | restarts | nodes |" in report
    assert "| 2 | - | 0 | n2, n3 |" in report
    now = datetime(2026, 12, 5, tzinfo=UTC)
    assert "Nodes:        n2, n3" in describe(doc, doc["services"][0], now, Paint(False))


@pytest.mark.parametrize("node", ["n2", ""])
def test_the_nodes_of_a_service_are_a_metric_on_a_swarm_only(tmp_path: Path, node: str):
    world = FakeWorld()
    world.run("web", node=node)
    registry = CollectorRegistry()
    controller = assemble(
        Settings(env="dev", state_dir=tmp_path, shutdown_timeout=5.0),
        desired(spec("web")),
        gateway=world,
        compose=world,
        hashes=world,
        registry=registry,
        clock=FakeClock(),
    )
    controller.run_pass(submit=False)
    samples = [
        s.labels
        for metric in registry.collect()
        if metric.name == "compose_controller_service_node"
        for s in metric.samples
    ]
    assert samples == ([{"env": "dev", "service": "web", "node": "n2"}] if node else [])


@pytest.mark.parametrize(
    ("error", "among"),
    [
        (NO_NODE, " (the swarm has 1 node(s) and none fits)"),
        (
            "no suitable node (scheduling constraints not satisfied on 1 node; "
            "insufficient resources on 2 nodes)",
            " (the swarm has 3 node(s) and none fits)",
        ),
        ("no suitable node (1 node not available for new tasks)", ""),
    ],
)
def test_a_task_no_node_fits_names_the_nodes_swarm_ruled_out(error: str, among: str):
    pending = container("web", status="created", pending="pending", error=error)
    (drift,) = service_drifts(swarm_spec("web"), [pending])
    assert drift.kind is DriftKind.UNPLACEABLE
    assert drift.detail == f"1 task(s) pending, placed on no node{among}; Swarm: {error}"
    # a task pending for another reason (no error yet) is Swarm's work in progress
    assert service_drifts(swarm_spec("web"), [replace(pending, error="")]) == []


@pytest.mark.parametrize(
    "said",
    [
        "cannot reach node n2's engine at tcp://n2:2375: ping: engine unreachable",
        "no engine known for node n2, where the task runs: pass --node-engine n2=URL",
    ],
)
def test_a_runbook_whose_node_cannot_be_reached_goes_to_a_person_at_once(said: str):
    world = FakeWorld()
    stack = FakeStack(world)
    world.run("db", node="n2")
    world.run("web")
    state = desired(
        swarm_spec("db"),
        swarm_spec("web"),
        remediation=RemediationSettings(runbooks=(RUNBOOK,), log_quiet=0),
    )

    def unreachable(container_id: str, argv: object, **_: object) -> tuple[int, bytes]:
        world.actions.append(("exec", container_id))
        raise NodeUnreachable(said)

    world.exec = unreachable  # type: ignore[method-assign]
    rig = Rig(world, state, stack=stack)
    rig.log("web", "pg-database-missing", Category.DATABASE, captures={"database": "orders"})
    rig.fix("web", horizon=3600)
    issue = rig.issue("log:web:pg-database-missing:x")
    assert issue.state is IssueState.NEEDS_HUMAN
    assert issue.resolution == f"runbook create-db cannot run: {said}"
    assert len(world.actions) == 1  # no retry: none would reach the node
    for _ in range(3):  # nor a later pass
        rig.clock.advance(600)
        rig.fix("web", horizon=3600)
    assert len(world.actions) == 1


def test_a_runbook_whose_exec_fails_otherwise_is_tried_again_after_its_backoff():
    world = FakeWorld()
    stack = FakeStack(world)
    world.run("db", node="n2")
    world.run("web")
    state = desired(
        swarm_spec("db"),
        swarm_spec("web"),
        remediation=RemediationSettings(runbooks=(RUNBOOK,), log_quiet=0),
    )

    def refused(container_id: str, argv: object, **_: object) -> tuple[int, bytes]:
        world.actions.append(("exec", container_id))
        raise EngineError("exec in abc: container is restarting")

    world.exec = refused  # type: ignore[method-assign]
    rig = Rig(world, state, stack=stack)
    rig.log("web", "pg-database-missing", Category.DATABASE, captures={"database": "orders"})
    rig.fix("web", horizon=3600)
    assert rig.issue("log:web:pg-database-missing:x").state is not IssueState.NEEDS_HUMAN
    assert len(world.actions) > 1
