"""A bad change on a swarm is one Swarm itself judged bad: it paused the update (tasks of
the new spec failed). The service's bad-change issue says so, with what changed and the
command that reverts it; ``rollback: auto`` has the controller run that rollback, and no
other step ever pushes the paused update on. On a fake engine and a fake manager."""

from __future__ import annotations

from dataclasses import replace

import pytest

from controller.model import (
    Action,
    IssueState,
    RollbackMode,
    RollbackPolicy,
    RollbackScope,
    RollbackSettings,
    ServiceSpec,
    SwarmPause,
    SwarmUpdate,
)
from controller.observe.swarmtasks import last_update, paused_update
from controller.remediate.changes import OPERATION_SECONDS
from controller.remediate.swarmchanges import (
    dependencies_first,
    operation_of,
    paused_text,
    rolled_back_from,
)
from controller.remediate.swarmsteps import SwarmActuator
from tests.fakes import FakeStack, FakeWorld, desired
from tests.unit.test_remediator import Rig
from tests.unit.test_swarm_remediation import swarm_spec

BAD = "change:web:bad-change"
ROLLED = "change:web:rolled-back"
SAID = "update paused due to failure or early termination of task abc"


def paused_rig(mode: RollbackMode) -> tuple[Rig, FakeWorld, FakeStack]:
    world = FakeWorld()
    stack = FakeStack(world)
    world.run("web", node="n1")
    web: ServiceSpec = swarm_spec("web", rollback=RollbackPolicy(mode=mode))
    rig = Rig(world, desired(web), stack=stack)
    stack.pause("web", image="cc-busybox:2", previous="cc-busybox:1", message=SAID)
    return rig, world, stack


def look(rig: Rig) -> bool:
    """One pass of the change watch (the controller's, after its sync)."""
    rig.sync()
    return rig.remediation.changes.pass_seen(rig.observer.observe(), set(), {})


def test_an_update_swarm_paused_is_a_bad_change_with_the_command_that_reverts_it():
    rig, world, _ = paused_rig(RollbackMode.NOTIFY)
    assert look(rig)
    issue = rig.issue(BAD)
    assert issue.severity.value == "high" and issue.blocking
    assert issue.title == f"a change made web worse: Swarm paused its update: {SAID}"
    assert "changed its image from cc-busybox:1 to cc-busybox:2" in issue.detail
    assert "`docker service rollback demo_web`" in issue.detail
    rig.fix("web")
    assert world.actions == []  # notify: no step of the controller's, no forced update
    issue = rig.issue(BAD)
    assert issue.state is IssueState.NEEDS_HUMAN
    assert "rollback: notify leaves it to a person" in issue.resolution
    assert "`docker service rollback demo_web`" in issue.resolution
    rig.fix("web")
    assert world.actions == []  # handed over: still no forced update of the paused update


def test_auto_rolls_it_back_through_swarm_and_says_from_what_to_what():
    rig, world, stack = paused_rig(RollbackMode.AUTO)
    look(rig)
    rig.fix("web")
    assert world.actions == [("service rollback", "demo_web")]
    assert stack.pauses == {}
    issue = rig.issue(BAD)
    assert issue.state is IssueState.RESOLVED
    assert issue.resolution.startswith(
        f"rolled back from cc-busybox:2 to cc-busybox:1 because Swarm paused its update: {SAID}"
    )
    assert "fixed" not in issue.resolution
    assert look(rig)  # no longer paused, but on the previous spec: the rolled-back issue
    assert rig.issue(BAD).state is IssueState.RESOLVED
    rolled = rig.issue(ROLLED)
    assert rolled.active and not rolled.blocking
    assert rolled.title.startswith("rolled back from cc-busybox:2 to cc-busybox:1 (Swarm's")


def test_a_person_who_rolls_it_back_settles_the_issue():
    rig, world, stack = paused_rig(RollbackMode.NOTIFY)
    look(rig)
    stack.rollback("demo", "web")  # docker service rollback demo_web, by a person
    world.actions.clear()
    assert look(rig)
    issue = rig.issue(BAD)
    assert issue.state is IssueState.RESOLVED
    assert issue.resolution == "Swarm's update of it is no longer paused (rollback_completed)"


def test_a_rollback_swarm_paused_is_a_persons_even_with_auto():
    rig, world, stack = paused_rig(RollbackMode.AUTO)
    stack.pauses["web"] = SwarmPause("demo_web", "rollback_paused", "", "cc-busybox:2", "x:1")
    world.set("web", update="rollback_paused")
    look(rig)
    assert (
        rig.issue(BAD).title == "a change made web worse: Swarm paused the rollback of its update"
    )
    rig.fix("web")
    assert world.actions == []
    assert rig.issue(BAD).state is IssueState.NEEDS_HUMAN


def test_rollback_off_opens_nothing_and_never_pushes_the_paused_update_on():
    rig, world, _ = paused_rig(RollbackMode.OFF)
    look(rig)
    assert rig.store.get(BAD) is None
    rig.fix("web")
    assert world.actions == []


def test_the_paused_update_of_a_service_inspect():
    inspect = {
        "ID": "s1",
        "Spec": {"Name": "demo_web", "TaskTemplate": {"ContainerSpec": {"Image": "a:2@sha256:f"}}},
        "PreviousSpec": {"TaskTemplate": {"ContainerSpec": {"Image": "a:1"}}},
        "UpdateStatus": {"State": "paused", "Message": SAID},
    }
    assert paused_update(inspect) == SwarmPause("demo_web", "paused", SAID, "a:2", "a:1")
    assert paused_update({**inspect, "UpdateStatus": {"State": "completed"}}) is None
    assert paused_update({"ID": "s1", "Spec": {"Name": "demo_web"}}) is None
    # a --force moves a counter of the task template, and changes nothing else
    template = {"ContainerSpec": {"Image": "a:1"}}
    forced = {
        **inspect,
        "Spec": {"Name": "demo_web", "TaskTemplate": {**template, "ForceUpdate": 3}},
        "PreviousSpec": {"TaskTemplate": {**template, "ForceUpdate": 2}},
    }
    found = paused_update(forced)
    assert found is not None and found.forced


def test_a_forced_update_swarm_paused_is_no_change_and_goes_to_a_person():
    """The controller's restart (``--force``) of a task that cannot start: Swarm pauses
    that update too. Not a bad change (rolling a restart back changes nothing): the
    service's issue goes to a person at once, and no step pushes the update on."""
    rig, world, stack = paused_rig(RollbackMode.AUTO)
    stack.pauses["web"] = replace(stack.pauses["web"], previous="cc-busybox:2", forced=True)
    look(rig)
    assert rig.store.get(BAD) is None
    rig.fix("web")
    assert world.actions == []
    issue = rig.issue("drift:web:exited")
    assert issue.state is IssueState.NEEDS_HUMAN
    assert "Swarm paused the forced update of demo_web" in issue.resolution, issue.resolution


@pytest.mark.parametrize("paused", [True, False])
def test_the_rollback_step_is_swarms_rollback(paused: bool):
    world = FakeWorld()
    stack = FakeStack(world)
    world.run("web")
    if paused:
        stack.pause("web", image="b:2", previous="b:1", message="m")
    actuator = SwarmActuator(
        stack,
        "demo",
        world,
        world,
        lambda: {"web": swarm_spec("web")},
        lambda: None,  # type: ignore[arg-type,return-value]
        lambda: None,
        None,  # type: ignore[arg-type]
    )
    said = actuator.run(Action.ROLLBACK, swarm_spec("web"), world.list_containers("demo"))
    assert world.actions == [("service rollback", "demo_web")]
    assert said.startswith(
        "rolled back from b:2 to b:1 because Swarm paused its update: m" if paused else "docker"
    )


def test_an_update_that_kept_the_image_says_its_spec_changed():
    same = SwarmPause("demo_web", "paused", "m", "a:1", "a:1")
    _, detail = paused_text(same)
    assert detail.startswith("the update changed its spec, not its image (a:1)")
    assert rolled_back_from(same).startswith(
        "rolled back from its new spec (a:1) to its previous spec because Swarm paused"
    )


# --- rollback scope: stack: the services one docker stack deploy updated ----------------

LONG_AGO = "2026-12-05T19:00:00Z"  # an update of an earlier deploy


def stack_rig(mode: RollbackMode, scope: RollbackScope) -> tuple[Rig, FakeWorld, FakeStack]:
    """One deploy updated db, api (depends on db) and web (depends on api); Swarm paused
    api's update. cache was updated by an earlier deploy, old was rolled back already."""
    world = FakeWorld()
    stack = FakeStack(world)
    policy = RollbackPolicy(mode=mode)
    specs = [
        swarm_spec("db", rollback=policy),
        swarm_spec("api", rollback=policy, depends_on=("db",)),
        swarm_spec("web", rollback=policy, depends_on=("api",)),
        swarm_spec("cache", rollback=policy),
        swarm_spec("old", rollback=policy),
    ]
    for s in specs:
        world.run(s.name)
    state = replace(desired(*specs), rollback=RollbackSettings(scope=scope))
    rig = Rig(world, state, stack=stack)
    stack.update("db", image="db:2", previous="db:1")
    stack.pause("api", image="api:2", previous="api:1", message=SAID)
    stack.update("web", image="web:2", previous="web:1", started="2026-12-05T20:00:01.7Z")
    stack.update("cache", image="cache:2", previous="cache:1", started=LONG_AGO)
    stack.update("old", image="old:2", previous="old:1")
    stack.rollback("demo", "old")
    world.actions.clear()
    return rig, world, stack


def test_the_operation_is_the_services_whose_update_began_with_the_paused_ones():
    def update(state: str, started: str) -> SwarmUpdate:
        return SwarmUpdate("demo_x", state, started, "x:2", "x:1")

    updates = {
        "db": update("completed", "2026-12-05T20:00:00.2Z"),
        "api": update("paused", "2026-12-05T20:00:01Z"),
        "web": update("updating", "2026-12-05T20:00:02Z"),
        "cache": update("completed", LONG_AGO),
        "old": update("rollback_completed", "2026-12-05T20:00:30Z"),
    }
    assert operation_of("api", updates, OPERATION_SECONDS) == ["api", "db", "web"]
    assert operation_of("cache", updates, OPERATION_SECONDS) == ["cache"]
    assert operation_of("gone", updates, OPERATION_SECONDS) == []
    specs = {
        "web": swarm_spec("web", depends_on=("api",)),
        "api": swarm_spec("api", depends_on=("db",)),
        "db": swarm_spec("db"),
    }
    assert dependencies_first(["web", "db", "api"], specs) == ["db", "api", "web"]
    assert dependencies_first(["web", "db"], specs) == ["db", "web"]  # through api


def test_the_last_update_of_a_service_inspect():
    inspect = {
        "ID": "s1",
        "Spec": {"Name": "demo_db", "TaskTemplate": {"ContainerSpec": {"Image": "db:2@sha:1"}}},
        "PreviousSpec": {"TaskTemplate": {"ContainerSpec": {"Image": "db:1"}}},
        "UpdateStatus": {"State": "completed", "StartedAt": "2026-12-05T20:00:00Z"},
    }
    assert last_update(inspect) == SwarmUpdate(
        "demo_db", "completed", "2026-12-05T20:00:00Z", "db:2", "db:1"
    )
    # a deploy that left its spec as it was resets UpdateStatus: no update of that deploy
    assert last_update({**inspect, "UpdateStatus": None}) is None
    assert last_update({**inspect, "PreviousSpec": None}) is None


def test_auto_with_scope_stack_rolls_back_every_service_of_the_deploy_dependencies_first():
    rig, world, stack = stack_rig(RollbackMode.AUTO, RollbackScope.STACK)
    look(rig)
    look(rig)  # the services before api in the pass are seen bad in the next
    for name in ("db", "web"):
        issue = rig.issue(f"change:{name}:bad-change")
        assert issue.title == f"a change made {name} worse: api's update was paused: {SAID}"
    assert rig.store.get("change:cache:bad-change") is None  # an earlier deploy's
    assert rig.store.get("change:old:bad-change") is None  # rolled back already
    rig.fix("web")
    rig.fix("api")
    assert world.actions == []  # their dependencies first
    assert "rolls back after api" in rig.intended("change:web:bad-change").plan
    rig.fix("db")
    rig.fix("api")
    look(rig)
    rig.fix("web")
    rolled = [a for a in world.actions if a[0] == "service rollback"]
    assert rolled == [
        ("service rollback", "demo_db"),
        ("service rollback", "demo_api"),
        ("service rollback", "demo_web"),
    ]
    for name in ("db", "web"):
        issue = rig.issue(f"change:{name}:bad-change")
        assert issue.state is IssueState.RESOLVED, issue
        assert issue.resolution.startswith(
            f"rolled back from {name}:2 to {name}:1 because api's update was paused: {SAID}"
        )
        assert "fixed" not in issue.resolution
        assert stack.updated[name].state == "rollback_completed"
    assert rig.issue(BAD.replace("web", "api")).resolution.startswith(
        "rolled back from api:2 to api:1 because Swarm paused its update"
    )
    assert stack.updated["cache"].state == "completed"  # untouched
    look(rig)
    assert all(
        i.state is IssueState.RESOLVED for i in rig.store.issues() if "bad-change" in i.fingerprint
    )


def test_the_paused_service_waits_for_a_dependency_swept_before_its_own_issue_opened():
    """The first pass that sees api paused sweeps db into its operation, but db's own
    bad-change issue opens a pass later (db comes first in the pass): api's reconcile in
    between rolled api back before db (seen on a real swarm in CI)."""
    rig, world, _ = stack_rig(RollbackMode.AUTO, RollbackScope.STACK)
    look(rig)
    assert rig.store.get("change:db:bad-change") is None  # not yet
    rig.fix("api")
    assert world.actions == []
    assert "rolls back after db" in rig.intended("change:api:bad-change").plan


def test_scope_service_rolls_back_the_paused_service_alone():
    rig, world, _ = stack_rig(RollbackMode.AUTO, RollbackScope.SERVICE)
    look(rig)
    look(rig)
    for name in ("db", "web", "cache", "old"):
        assert rig.store.get(f"change:{name}:bad-change") is None
    for name in ("db", "api", "web"):
        rig.fix(name)
    assert world.actions == [("service rollback", "demo_api")]
    assert "same operation" not in rig.issue("change:api:bad-change").detail


def test_notify_with_scope_stack_names_every_service_of_the_deploy_and_the_commands():
    rig, world, _ = stack_rig(RollbackMode.NOTIFY, RollbackScope.STACK)
    look(rig)
    look(rig)
    commands = (
        "`docker service rollback demo_db`, `docker service rollback demo_api`, "
        "`docker service rollback demo_web`"
    )
    issue = rig.issue("change:api:bad-change")
    assert "the same operation updated demo_db, demo_web (rollback scope: stack)" in issue.detail
    assert issue.detail.endswith(f"dependencies first: {commands}")
    for name in ("db", "api", "web"):
        rig.fix(name)
        issue = rig.issue(f"change:{name}:bad-change")
        assert issue.state is IssueState.NEEDS_HUMAN
        assert f"`docker service rollback demo_{name}` rolls it back to {name}:1" in (
            issue.resolution
        )
        assert issue.resolution.endswith(commands)
    assert world.actions == []


def test_a_person_who_rolls_back_a_service_of_the_deploy_settles_its_issue():
    rig, _, stack = stack_rig(RollbackMode.NOTIFY, RollbackScope.STACK)
    look(rig)
    look(rig)
    stack.rollback("demo", "web")  # by a person
    look(rig)
    issue = rig.issue("change:web:bad-change")
    assert issue.state is IssueState.RESOLVED
    assert issue.resolution == (
        "it no longer runs the update of the operation Swarm paused (rollback_completed)"
    )
    assert rig.issue("change:db:bad-change").active
