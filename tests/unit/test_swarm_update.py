"""Swarm's own updates: while Swarm carries out an update or a rollback of a service (a
``docker stack deploy``), the controller takes no step on it (never two actors), says so,
and treats one that lasts past the operation timeout as abandoned; the update its own
forced update started is not held."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import pytest

from controller.model import (
    Action,
    Activity,
    ContainerSnapshot,
    IssueState,
    RemediationSettings,
    StepRecord,
    to_datetime,
)
from controller.observe.swarm import SwarmEngine
from controller.remediate.activity import after_look
from controller.remediate.results import RequeueAfter
from controller.remediate.verify import instance, prove
from tests.fakes import FakeStack, FakeWorld, container, desired
from tests.unit.test_remediator import Rig, stamp
from tests.unit.test_swarm_remediation import swarm_spec
from tests.unit.test_swarm_tasks import NODES, by_service, services, tasks


def test_a_tasks_snapshot_carries_its_services_update_status():
    seen = by_service("deployed")
    crasher = seen["crasher"][0]
    assert (crasher.update, crasher.update_started) == (
        "paused",
        "2026-12-05T07:24:54.675723333Z",
    )
    assert {c.update for c in seen["everywhere"]} == {"completed"}
    assert (seen["sick"][0].update, seen["sick"][0].update_started) == ("", "")


def rig_with_an_ended_task() -> tuple[FakeWorld, Rig]:
    """A task Swarm does not replace (condition none), its issue open: without Swarm at
    work, the controller's step is a forced update."""
    world = FakeWorld()
    world.run("web", status="exited", exit_code=1)
    state = desired(
        swarm_spec("web", condition="none"),
        remediation=RemediationSettings(operation_timeout=60.0),
    )
    rig = Rig(world, state, stack=FakeStack(world))
    rig.sync()
    assert rig.issue("drift:web:exited").state is IssueState.OPEN
    return world, rig


@pytest.mark.parametrize(
    ("state", "verb"), [("updating", "updating"), ("rollback_started", "rolling back")]
)
def test_while_swarm_updates_a_service_the_controller_takes_no_step(state: str, verb: str):
    world, rig = rig_with_an_ended_task()
    started = rig.clock() - 12
    world.set("web", update=state, update_started=stamp(started))
    result = rig.fix("web", horizon=0)
    assert world.actions == []  # no forced update over Swarm's own
    assert isinstance(result, RequeueAfter)
    when = time.strftime("%H:%M:%S UTC", time.gmtime(started))
    plan = rig.intended("drift:web:exited").plan
    assert plan == (
        f"Swarm is {verb} the service (started {when}): the controller waits and takes no "
        "step of its own"
    )
    # Swarm is done (completed with the task still ended): the controller acts (an update
    # Swarm paused is a bad change, never carried on: tests/unit/test_swarm_rollback.py)
    world.set("web", update="completed")
    rig.fix("web")
    assert world.actions == [("service update --force", "demo_web")]


def test_a_swarm_update_past_the_operation_timeout_goes_to_a_person():
    world, rig = rig_with_an_ended_task()
    world.set("web", update="updating", update_started=stamp(rig.clock()))
    rig.fix("web", horizon=0)
    rig.clock.advance(61)
    rig.fix("web", horizon=0)
    assert world.actions == []
    issue = rig.issue("drift:web:exited")
    assert issue.state is IssueState.NEEDS_HUMAN
    assert "for longer than the operation timeout: it looks stuck" in issue.resolution


def test_the_update_the_controllers_own_command_started_is_not_held():
    now = 1_800_000_000.0
    ours = Activity(command_started=now - 3, command_ended=now - 2)
    # Swarm began the update a moment after the command returned: the controller's own
    task = container("web", update="updating", update_started=stamp(now - 1))
    assert after_look(ours, [task], now)[1] == ""
    # a stack deploy long after the command: Swarm's, held
    later = container("web", update="updating", update_started=stamp(now + 30))
    assert after_look(ours, [later], now + 31)[1].startswith("Swarm is updating the service")
    # nothing of the controller's: held
    assert after_look(Activity(), [task], now)[1].startswith("Swarm is updating")
    # an update Swarm paused, or completed, holds nothing
    for state in ("paused", "completed", "rollback_completed", ""):
        assert after_look(Activity(), [container("web", update=state)], now)[1] == ""


class Recorded(SwarmEngine):
    """A ``SwarmEngine`` whose manager answers are the recorded ones (no socket)."""

    def __init__(self, found: list[dict[str, Any]]) -> None:
        super().__init__("unix:///nonexistent/docker.sock")
        self.found = found

    def _services(self, project: str) -> list[dict[str, Any]]:
        return self.found

    def _tasks(self, project: str) -> list[dict[str, Any]]:
        return tasks("deployed")

    def _nodes(self) -> dict[str, str]:
        return NODES


def test_a_task_is_read_afresh_when_swarms_update_of_its_service_begins_or_ends():
    found = services()
    engine = Recorded(found)
    before = {s.id: s.marks for s in engine.list_summaries("obs")}
    sick = next(s for s in found if s["Spec"]["Name"] == "obs_sick")
    sick["UpdateStatus"] = {"State": "updating", "StartedAt": "2026-12-05T07:30:00.5Z"}
    after = {s.id: s.marks for s in engine.list_summaries("obs")}
    changed = {c.id for c in engine.list_containers("obs") if c.service == "sick"}
    assert changed and {cid for cid in before if before[cid] != after[cid]} == changed


# --- the proof of the controller's own forced update -------------------------------------

BEGAN = 1_800_000_000.0  # the step's command began; it returned a second later


def forced_step(*tasks: ContainerSnapshot) -> StepRecord:
    return StepRecord(
        action=Action.RESTART,
        label="restart",
        addresses=["drift:web:exited"],
        started_at=to_datetime(BEGAN),
        finished_at=to_datetime(BEGAN + 1),
        until=to_datetime(BEGAN + 31),
        hold=2.0,
        instances=[instance(c) for c in tasks],  # what the listing showed on its return
    )


def task(number: int, **fields: object) -> ContainerSnapshot:
    return container("web", number, node="n1", **fields)


def test_a_forced_update_is_not_judged_before_swarm_has_carried_it_out():
    # the command returned; Swarm has not begun the update (its last one is older): the
    # task that failed before the step is still the slot's
    old = task(
        1, status="exited", exit_code=1, update="completed", update_started=stamp(BEGAN - 90)
    )
    record = forced_step(old)
    at = to_datetime(BEGAN + 2)
    assert prove(record, swarm_spec("web"), [old], None, at).pending
    # Swarm carries it out: still not judged, even past the proof's deadline
    updating = replace(old, update="updating", update_started=stamp(BEGAN + 1.5))
    assert prove(record, swarm_spec("web"), [updating], None, at).pending
    assert prove(record, swarm_spec("web"), [updating], None, to_datetime(BEGAN + 60)).pending
    # over: the task the update started runs, and is proven after its hold
    new = task(1, id="new", update="completed", update_started=stamp(BEGAN + 1.5))
    new = replace(new, created_at=stamp(BEGAN + 2))
    ready = prove(record, swarm_spec("web"), [new], None, to_datetime(BEGAN + 10))
    assert ready.pending and ready.ready_since is not None
    later = record.model_copy(update={"ready_since": ready.ready_since})
    assert prove(later, swarm_spec("web"), [new], None, to_datetime(BEGAN + 13)).proven


def test_a_task_the_forced_update_started_that_ends_fails_the_step():
    old = task(
        1, status="exited", exit_code=1, update="completed", update_started=stamp(BEGAN - 90)
    )
    record = forced_step(old)
    died = task(1, id="new", status="exited", exit_code=1, update="completed")
    died = replace(died, update_started=stamp(BEGAN + 1.5), created_at=stamp(BEGAN + 2))
    proof = prove(record, swarm_spec("web"), [died], None, to_datetime(BEGAN + 5))
    assert proof.failed == f"{died.name} exited with code 1 after the fix"
    # Swarm never began the update: judged at the proof's deadline as any step
    late = prove(record, swarm_spec("web"), [old], None, to_datetime(BEGAN + 31))
    assert late.failed.startswith(f"{old.name} exited with code 1")


def test_the_tasks_swarm_creates_for_the_controllers_forced_update_are_not_a_persons():
    world = FakeWorld()
    world.run("web", status="exited", exit_code=1, node="n1")
    rig = Rig(world, desired(swarm_spec("web", condition="none")), stack=FakeStack(world))
    rig.sync()
    rig.reconcile("web")
    assert world.actions == [("service update --force", "demo_web")]
    assert rig.records.step("web") is not None  # proven once Swarm has carried it out
    # Swarm creates and starts the update's task after the command returned
    rig.signals.event("web", "create", rig.clock() + 2)
    rig.signals.event("web", "start", rig.clock() + 3)
    step = rig.records.step("web")
    assert step is not None and step.label == "restart"  # still the controller's step


def test_a_rollback_swarm_calls_completed_at_once_is_judged_on_the_tasks_it_started():
    # the bad spec's task had ended: Swarm calls the rollback completed at once, and the
    # slot still shows that task until Swarm replaces it
    bad = task(1, status="exited", exit_code=1, created_at=stamp(BEGAN - 5))
    record = forced_step(bad).model_copy(update={"action": Action.ROLLBACK})
    done = replace(bad, update="rollback_completed", update_started=stamp(BEGAN + 0.2))
    assert prove(record, swarm_spec("web"), [done], None, to_datetime(BEGAN + 2)).pending
    # the task of the previous spec the rollback started runs: proven after its hold
    back = task(1, id="back", update="rollback_completed", update_started=stamp(BEGAN + 0.2))
    back = replace(back, created_at=stamp(BEGAN + 1))
    ready = prove(record, swarm_spec("web"), [back], None, to_datetime(BEGAN + 3))
    assert ready.pending and ready.ready_since is not None
    later = record.model_copy(update={"ready_since": ready.ready_since})
    assert prove(later, swarm_spec("web"), [back], None, to_datetime(BEGAN + 6)).proven
    # never replaced: judged at the proof's deadline
    assert prove(record, swarm_spec("web"), [done], None, to_datetime(BEGAN + 31)).failed
