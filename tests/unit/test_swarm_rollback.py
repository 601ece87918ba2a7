"""A bad change on a swarm is one Swarm itself judged bad: it paused the update (tasks of
the new spec failed). The service's bad-change issue says so, with what changed and the
command that reverts it; ``rollback: auto`` has the controller run that rollback, and no
other step ever pushes the paused update on. On a fake engine and a fake manager."""

from __future__ import annotations

import pytest

from controller.model import (
    Action,
    IssueState,
    RollbackMode,
    RollbackPolicy,
    ServiceSpec,
    SwarmPause,
)
from controller.observe.swarmtasks import paused_update
from controller.remediate.swarmchanges import paused_text, rolled_back_from
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
