"""A service Swarm rolled back (its own ``failure_action: rollback``, a ``docker service
rollback``, the controller's ``rollback: auto``) runs its previous spec while the stack
file still asks for the change: its ``rolled-back`` issue says so and how to get back to
the declaration, and the CI gate exits 5 (ROLLED BACK), not 0, until a new deploy. On a
fake engine and a fake manager."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry

from controller.gate.run import Verdict, run_gate
from controller.model import (
    IssueState,
    RemediationSettings,
    RollbackMode,
    RollbackPolicy,
    Severity,
    SwarmPause,
    system_clock,
)
from controller.observe.swarmtasks import rolled_back_update
from controller.runtime.assembly import assemble
from controller.runtime.controller import Controller
from controller.runtime.settings import Settings
from tests.fakes import FakeStack, FakeWorld, desired
from tests.unit.test_gate import no_sleep
from tests.unit.test_remediator import Rig
from tests.unit.test_swarm_remediation import swarm_spec
from tests.unit.test_swarm_rollback import look

ROLLED = "change:web:rolled-back"
WEB = swarm_spec("web", min_ready=0.0, rollback=RollbackPolicy(mode=RollbackMode.NOTIFY))
SAID = "rolled back from cc-busybox:2 to cc-busybox:1 (Swarm's rollback: rollback completed)"


def rolled_back_rig() -> tuple[Rig, FakeWorld, FakeStack]:
    world = FakeWorld()
    stack = FakeStack(world)
    world.run("web", node="n1", image="cc-busybox:1")
    rig = Rig(world, desired(WEB), stack=stack)
    return rig, world, stack


def test_a_service_swarm_rolled_back_has_its_rolled_back_issue_with_the_way_back():
    rig, _, stack = rolled_back_rig()
    assert not look(rig)
    assert rig.store.get(ROLLED) is None  # never updated: as declared
    stack.roll_back("web", image="cc-busybox:2", previous="cc-busybox:1")
    assert look(rig)
    issue = rig.issue(ROLLED)
    assert issue.kind.value == "rolled-back"
    assert issue.severity is Severity.MEDIUM and not issue.blocking  # no page, not a fault
    assert issue.title == f"{SAID}: not at its declared config"
    assert issue.detail.startswith("demo_web runs its previous spec (cc-busybox:1)")
    assert "the stack file still asks for it" in issue.detail
    assert issue.detail.endswith("`docker stack deploy -c /srv/demo/stack.yaml demo`")
    assert rig.remediation.changes.swarm_rolled_back() == {"web": SAID}
    assert not look(rig)  # the same rollback: no news, and the manager is not asked again
    rig.fix("web")
    assert rig.world.actions == []  # nothing for the controller to do about it


def test_a_new_deploy_resolves_it():
    rig, _, stack = rolled_back_rig()
    stack.roll_back("web", image="cc-busybox:2", previous="cc-busybox:1")
    look(rig)
    stack.deploy("web", "cc-busybox:3")
    assert look(rig)
    issue = rig.issue(ROLLED)
    assert issue.state is IssueState.RESOLVED
    assert issue.resolution.startswith("Swarm updated it again (its update is completed)")
    assert rig.remediation.changes.swarm_rolled_back() == {}


def test_the_rollback_swarm_completed_of_a_service_inspect():
    inspect = {
        "ID": "s1",
        "Spec": {"Name": "demo_web", "TaskTemplate": {"ContainerSpec": {"Image": "a:1@sha256:f"}}},
        "PreviousSpec": {"TaskTemplate": {"ContainerSpec": {"Image": "a:2"}}},
        "UpdateStatus": {"State": "rollback_completed", "Message": "rollback completed"},
    }
    assert rolled_back_update(inspect) == SwarmPause(
        "demo_web", "rollback_completed", "rollback completed", "a:1", "a:2"
    )
    assert rolled_back_update({**inspect, "UpdateStatus": {"State": "paused"}}) is None
    assert rolled_back_update({**inspect, "UpdateStatus": {"State": "completed"}}) is None


def test_after_swarms_own_rollback_the_change_is_the_task_that_failed_before_it():
    """Swarm's own rollback drops ``PreviousSpec`` and keeps the update's start: the
    change rolled back is the image of the newest task since then that is not the spec's
    (the rollback's tasks run the spec's)."""
    inspect = {
        "ID": "s1",
        "Spec": {"Name": "demo_web", "TaskTemplate": {"ContainerSpec": {"Image": "a:1"}}},
        "UpdateStatus": {
            "State": "rollback_completed",
            "StartedAt": "2026-01-01T00:00:10.5Z",
            "Message": "rollback completed",
        },
    }

    def task(image: str, created: str) -> dict[str, object]:
        return {"CreatedAt": created, "Spec": {"ContainerSpec": {"Image": image}}}

    before = [task("a:0", "2026-01-01T00:00:01Z"), task("a:1", "2026-01-01T00:00:02Z")]
    changed = task("a:2@sha256:f", "2026-01-01T00:00:10.75Z")  # the change's, failed
    back = task("a:1", "2026-01-01T00:00:11Z")  # the rollback's
    assert rolled_back_update(inspect, [*before, changed, back]) == SwarmPause(
        "demo_web", "rollback_completed", "rollback completed", "a:1", "a:2"
    )
    same = task("a:1", "2026-01-01T00:00:10.75Z")  # a change of its command, not image
    assert rolled_back_update(inspect, [*before, same, back]).previous == "a:1"
    assert rolled_back_update(inspect, before).previous == ""  # not known: said as "?"


def swarm_gate(tmp_path: Path, world: FakeWorld, stack: FakeStack) -> Controller:
    return assemble(
        Settings(env="dev", state_dir=tmp_path, once=True, shutdown_timeout=5.0),
        desired(WEB, remediation=RemediationSettings(log_quiet=0.0)),
        gateway=world,
        compose=world,
        hashes=world,
        manager=stack,
        registry=CollectorRegistry(),
        clock=system_clock,
    )


def test_the_gate_exits_5_while_a_service_runs_the_spec_swarm_rolled_back_to(tmp_path):
    world = FakeWorld()
    stack = FakeStack(world)
    world.run("web", node="n1", image="cc-busybox:1")
    first = run_gate(
        swarm_gate(tmp_path, world, stack), timeout=30, engine_timeout=5, sleep=no_sleep
    )
    assert first.verdict is Verdict.CONVERGED, first.reason

    stack.roll_back("web", image="cc-busybox:2", previous="cc-busybox:1")
    controller = swarm_gate(tmp_path, world, stack)
    result = run_gate(controller, timeout=30, engine_timeout=5, sleep=no_sleep)
    assert result.verdict is Verdict.ROLLED_BACK and int(result.verdict) == 5, result.reason
    assert result.reason == f"every required service is ready, but not as declared: web {SAID}"
    assert controller.converged()  # ready, with evidence; not as declared
    assert world.actions == []

    stack.deploy("web", "cc-busybox:3")  # the file fixed, and deployed again
    again = run_gate(
        swarm_gate(tmp_path, world, stack), timeout=30, engine_timeout=5, sleep=no_sleep
    )
    assert again.verdict is Verdict.CONVERGED, again.reason
