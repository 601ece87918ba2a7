"""The controller's own verdict on a swarm update Swarm completed: what goes wrong after
Swarm's monitor period (a task that dies, a probe, a critical log line) makes the change
bad, and it is then rolled back (``auto``) or handed to a person (``notify``) as an
update Swarm paused is. A ``--force``, and an update completed long before the
controller looked, are not judged. On a fake engine and a fake manager."""

from __future__ import annotations

from dataclasses import replace

from controller.model import (
    Category,
    IssueState,
    RollbackMode,
    RollbackPolicy,
    RollbackScope,
    RollbackSettings,
    Severity,
    SwarmUpdate,
    to_datetime,
)
from controller.observe.swarmtasks import last_update
from tests.fakes import DEPLOYED, FakeStack, FakeWorld, desired
from tests.unit.test_remediator import Rig
from tests.unit.test_swarm_remediation import swarm_spec
from tests.unit.test_swarm_rollback import look

BAD = "change:web:bad-change"
ROLLED = "change:web:rolled-back"
WINDOW = 40.0


def updated_rig(
    mode: RollbackMode, *, forced: bool = False, completed_ago: float | None = None
) -> tuple[Rig, FakeWorld, FakeStack]:
    """web runs web:2, which a stack deploy Swarm completed just now (or
    ``completed_ago`` seconds ago) brought; its window is 40 s."""
    world = FakeWorld()
    stack = FakeStack(world)
    world.run("web", node="n1")
    web = swarm_spec("web", rollback=RollbackPolicy(mode=mode, window=WINDOW))
    rig = Rig(world, desired(web), stack=stack)
    stack.update("web", image="web:2", previous="web:1")
    if completed_ago is not None or forced:
        done = to_datetime(rig.clock() - (completed_ago or 0.0))
        update = stack.updated["web"]
        completed = done.isoformat().replace("+00:00", "Z")
        stack.updated["web"] = replace(update, completed=completed, forced=forced)
    return rig, world, stack


def pending(rig: Rig) -> list[str]:
    return rig.remediation.changes.pending()


def test_a_task_that_dies_after_swarm_completed_the_update_makes_it_bad():
    rig, world, _ = updated_rig(RollbackMode.NOTIFY)
    assert not look(rig)  # under watch: no verdict yet
    assert pending(rig) == ["web"]
    rig.clock.advance(12)  # past Swarm's monitor period: Swarm never looks again
    world.set("web", status="restarting", exit_code=3, restart_count=1)
    assert look(rig)
    issue = rig.issue(BAD)
    assert issue.severity.value == "high" and issue.blocking
    assert issue.title == (
        "a change made web worse: after Swarm completed its update, demo-web-1 exited with code 3"
    ), issue.title
    assert "changed its image from web:1 to web:2" in issue.detail
    assert "`docker service rollback demo_web`" in issue.detail
    assert pending(rig) == []
    rig.fix("web")
    assert world.actions == []  # notify: a person is told the command; no forced update
    issue = rig.issue(BAD)
    assert issue.state is IssueState.NEEDS_HUMAN
    assert "`docker service rollback demo_web`" in issue.resolution


def test_auto_rolls_back_an_update_that_went_bad_after_swarm_completed_it():
    rig, world, stack = updated_rig(RollbackMode.AUTO)
    look(rig)
    world.set("web", status="exited", exit_code=1)
    look(rig)
    rig.fix("web")
    assert world.actions == [("service rollback", "demo_web")]
    issue = rig.issue(BAD)
    assert issue.state is IssueState.RESOLVED
    assert issue.resolution.startswith(
        "rolled back from web:2 to web:1 because after Swarm completed its update, "
    ), issue.resolution
    assert "exited with code 1" in issue.resolution
    assert stack.updated["web"].state == "rollback_completed"
    assert look(rig)  # on the previous spec while the stack file asks for web:2
    assert rig.issue(ROLLED).active


def test_a_task_swarm_replaced_already_makes_it_bad_too():
    rig, world, _ = updated_rig(RollbackMode.NOTIFY)
    look(rig)
    world.set("web", restart_count=1)  # died, and its replacement runs
    look(rig)
    assert rig.issue(BAD).title.endswith("demo-web-1 died and Swarm restarted it (1 time(s))")


def test_an_update_ready_through_its_window_is_good_and_a_later_crash_is_no_change():
    rig, world, _ = updated_rig(RollbackMode.AUTO)
    look(rig)
    rig.clock.advance(WINDOW / 2)
    look(rig)
    assert pending(rig) == ["web"]  # the CI gate waits for the verdict
    rig.clock.advance(WINDOW / 2 + 1)
    look(rig)
    assert pending(rig) == []
    world.set("web", status="restarting", exit_code=3, restart_count=1)
    look(rig)
    assert rig.store.get(BAD) is None  # a crash, not the change's: the drift's own fix


def test_a_forced_update_is_a_restart_not_a_change():
    rig, world, _ = updated_rig(RollbackMode.AUTO, forced=True)
    look(rig)
    assert pending(rig) == []
    world.set("web", status="restarting", exit_code=3, restart_count=1)
    look(rig)
    assert rig.store.get(BAD) is None


def test_an_update_completed_before_the_controller_looked_is_not_judged():
    rig, world, _ = updated_rig(RollbackMode.AUTO, completed_ago=WINDOW + 5)
    world.set("web", status="restarting", exit_code=3, restart_count=1)
    look(rig)
    assert pending(rig) == [] and rig.store.get(BAD) is None
    # one that completed within the window is judged (a restarted controller's case)
    rig, world, _ = updated_rig(RollbackMode.AUTO, completed_ago=WINDOW - 5)
    world.set("web", status="restarting", exit_code=3, restart_count=1)
    look(rig)
    assert rig.issue(BAD).active


def test_a_task_that_turns_unhealthy_under_watch_makes_it_bad():
    rig, world, _ = updated_rig(RollbackMode.AUTO)
    look(rig)
    world.set("web", health="unhealthy")
    look(rig)
    assert "demo-web-1 turned unhealthy" in rig.issue(BAD).title


def test_a_drift_under_watch_waits_for_the_verdict_and_is_never_force_updated():
    rig, world, _ = updated_rig(RollbackMode.AUTO)
    look(rig)
    world.set("web", status="exited", exit_code=0)  # ended on its own; Swarm lets it be
    rig.fix("web")  # before the change watch's pass: the verdict decides
    assert world.actions == []
    assert rig.intended("drift:web:exited").plan == (
        "its new change is under watch: the verdict on it decides"
    )
    look(rig)
    rig.fix("web")
    assert world.actions == [("service rollback", "demo_web")]  # never a forced update


def test_scope_stack_rolls_back_the_deploy_with_an_update_judged_bad():
    world = FakeWorld()
    stack = FakeStack(world)
    policy = RollbackPolicy(mode=RollbackMode.AUTO, window=WINDOW)
    specs = [swarm_spec("db", rollback=policy), swarm_spec("web", rollback=policy)]
    for s in specs:
        world.run(s.name)
    state = replace(desired(*specs), rollback=RollbackSettings(scope=RollbackScope.STACK))
    rig = Rig(world, state, stack=stack)
    stack.update("db", image="db:2", previous="db:1")
    stack.update("web", image="web:2", previous="web:1", started="2026-12-05T20:00:01.7Z")
    look(rig)
    world.set("web", status="exited", exit_code=1)
    look(rig)
    look(rig)  # db comes before web in a pass: swept with it, its issue opens next pass
    db = rig.issue("change:db:bad-change")
    assert db.title == (
        "a change made db worse: web's update went bad after Swarm completed it: "
        f"{rig.issue(BAD).title.split('after Swarm completed its update, ', 1)[1]}"
    )
    rig.fix("db")
    rig.fix("web")
    assert world.actions == [("service rollback", "demo_db"), ("service rollback", "demo_web")]


def test_the_last_update_says_whether_it_was_only_a_force():
    template = {"ContainerSpec": {"Image": "db:2"}}
    # the SDK's update (the controller's --force) writes empty values a deploy leaves unset
    written = {"ContainerSpec": {"Image": "db:2", "DNSConfig": {}}, "Resources": {}}
    inspect = {
        "Spec": {"Name": "demo_db", "TaskTemplate": {**written, "ForceUpdate": 2}},
        "PreviousSpec": {"TaskTemplate": {**template, "ForceUpdate": 1}},
        "UpdateStatus": {
            "State": "completed",
            "StartedAt": DEPLOYED,
            "CompletedAt": "2026-12-05T20:00:09Z",
        },
    }
    assert last_update(inspect) == SwarmUpdate(
        "demo_db", "completed", DEPLOYED, "db:2", "db:2", "2026-12-05T20:00:09Z", forced=True
    )
    inspect["PreviousSpec"] = {"TaskTemplate": {"ContainerSpec": {"Image": "db:1"}}}
    found = last_update(inspect)
    assert found is not None and not found.forced


def test_a_critical_line_of_a_task_the_update_shut_down_is_not_the_changes():
    """An old task's last words (a critical line on the SIGTERM Swarm's update sends it,
    after the update's first new task started: a rolling update of several replicas, or
    ``order: start-first``) are the old spec's, not the change's; the update's own task
    saying the same is."""
    rig, _, _ = updated_rig(RollbackMode.AUTO)
    web = replace(
        rig.state.services["web"],
        rollback=RollbackPolicy(mode=RollbackMode.AUTO, window=WINDOW, severity=Severity.HIGH),
    )
    rig.state = desired(web)
    look(rig)
    rig.log("web", "fatal-on-term", Category.CODE, container="demo-web-1.old")
    look(rig)
    assert rig.store.get(BAD) is None and pending(rig) == ["web"]
    rig.clock.advance(1)
    rig.log("web", "fatal-on-term", Category.CODE)  # the update's own task, demo-web-1
    look(rig)
    assert "fatal-on-term happened" in rig.issue(BAD).title


def test_a_service_swept_with_an_update_judged_bad_is_no_longer_under_watch():
    """``scope: stack`` with ``notify``: db's update is bad with web's, and that is db's
    verdict; still "under watch", it held the CI gate until its timeout."""
    world = FakeWorld()
    stack = FakeStack(world)
    policy = RollbackPolicy(mode=RollbackMode.NOTIFY, window=WINDOW)
    specs = [swarm_spec("db", rollback=policy), swarm_spec("web", rollback=policy)]
    for s in specs:
        world.run(s.name)
    state = replace(desired(*specs), rollback=RollbackSettings(scope=RollbackScope.STACK))
    rig = Rig(world, state, stack=stack)
    stack.update("db", image="db:2", previous="db:1")
    stack.update("web", image="web:2", previous="web:1", started="2026-12-05T20:00:01.7Z")
    look(rig)
    assert pending(rig) == ["db", "web"]
    world.set("web", status="exited", exit_code=1)
    look(rig)
    look(rig)  # db is swept with web
    assert rig.issue("change:db:bad-change").active
    assert pending(rig) == []
    rig.clock.advance(WINDOW * 2)
    look(rig)
    assert pending(rig) == [] and rig.issue("change:db:bad-change").active


def reset(world: FakeWorld, stack: FakeStack, service: str = "web") -> None:
    """A second ``docker stack deploy`` of the same file (or a ``docker service scale``):
    Swarm resets the update's record, ``PreviousSpec`` becomes the spec it runs, and it
    replaces no task."""
    stack.updated.pop(service)
    world.set(service, update="", update_started="")


def test_a_redeploy_of_the_same_file_in_the_window_keeps_the_verdict_for_a_person():
    """The update's tasks still run after a redeploy, so they are still judged; but
    ``docker service rollback`` would go to the spec they run: a person's, in words."""
    rig, world, stack = updated_rig(RollbackMode.AUTO)
    look(rig)
    reset(world, stack)
    look(rig)
    assert pending(rig) == ["web"]  # the CI gate still waits for the verdict
    world.set("web", status="restarting", exit_code=3, restart_count=1)
    look(rig)
    issue = rig.issue(BAD)
    assert issue.title.endswith("demo-web-1 exited with code 3"), issue.title
    assert "Swarm no longer keeps the spec before it" in issue.detail
    assert "deploy the stack file that asks for web:1 again" in issue.detail
    rig.fix("web")
    assert world.actions == []  # not a rollback to the spec it runs
    issue = rig.issue(BAD)
    assert issue.state is IssueState.NEEDS_HUMAN
    assert "deploy the stack file that asks for web:1 again" in issue.resolution


def test_a_redeploy_after_the_bad_verdict_keeps_the_issue_open():
    rig, world, stack = updated_rig(RollbackMode.NOTIFY)
    look(rig)
    world.set("web", status="restarting", exit_code=3, restart_count=1)
    look(rig)
    assert rig.issue(BAD).active
    reset(world, stack)  # the same bad file deployed again: it still runs web:2
    look(rig)
    issue = rig.issue(BAD)
    assert issue.active, issue.resolution
    rig.fix("web")
    assert world.actions == []
    assert "deploy the stack file that asks for web:1 again" in rig.issue(BAD).resolution


FORCED = "2026-12-05T20:01:00Z"


def test_a_persons_force_in_the_window_restarts_the_change_it_is_still_judged():
    """``docker service update --force`` by a person right after a deploy: Swarm restarts
    the change's tasks (a restart, not a change); the change is still judged, and a bad
    one is a person's (``PreviousSpec`` is the change itself now)."""
    rig, world, stack = updated_rig(RollbackMode.AUTO)
    look(rig)
    world.set("web", update="updating", update_started=FORCED)
    look(rig)
    assert pending(rig) == ["web"]  # the verdict waits for Swarm's restart
    stack.updated["web"] = SwarmUpdate(
        "demo_web", "completed", FORCED, "web:2", "web:2", "", forced=True
    )
    world.up("web", force_recreate=True)
    world.actions.clear()
    world.set("web", update="completed", update_started=FORCED, image="web:2")
    look(rig)
    assert pending(rig) == ["web"]
    world.set("web", status="restarting", exit_code=3, restart_count=1)
    look(rig)
    issue = rig.issue(BAD)
    assert "changed its image from web:1 to web:2" in issue.detail
    assert "Swarm no longer keeps the spec before it" in issue.detail
    rig.fix("web")
    assert world.actions == []
    assert rig.issue(BAD).state is IssueState.NEEDS_HUMAN


def test_a_persons_force_after_the_bad_verdict_keeps_the_issue_open():
    rig, world, stack = updated_rig(RollbackMode.NOTIFY)
    look(rig)
    world.set("web", status="restarting", exit_code=3, restart_count=1)
    look(rig)
    stack.updated["web"] = SwarmUpdate(
        "demo_web", "completed", FORCED, "web:2", "web:2", "", forced=True
    )
    world.set("web", update="completed", update_started=FORCED, restart_count=0)
    look(rig)
    issue = rig.issue(BAD)
    assert issue.active, issue.resolution


def test_a_paused_update_after_the_watch_ends_it():
    rig, world, stack = updated_rig(RollbackMode.NOTIFY)
    look(rig)
    world.set("web", update="updating", update_started=FORCED)
    look(rig)
    stack.pause("web", "web:3", "web:2", "update paused due to failure", started=FORCED)
    look(rig)
    assert pending(rig) == []


def test_a_persons_scale_down_in_the_window_ends_the_watch_without_a_verdict():
    """``docker service scale web=0`` resets the update's record too; the service then
    has fewer replicas than declared by a person's hand, not the change's fault."""
    rig, world, stack = updated_rig(RollbackMode.AUTO)
    look(rig)
    reset(world, stack)
    world.containers.clear()
    look(rig)
    assert pending(rig) == []
    rig.clock.advance(400)  # past the change's deadline
    look(rig)
    assert rig.store.get(BAD) is None


def test_the_way_back_of_a_change_that_kept_its_image_names_no_image():
    rig, world, stack = updated_rig(RollbackMode.NOTIFY)
    stack.updated["web"] = replace(stack.updated["web"], previous="web:2")  # env only
    look(rig)
    reset(world, stack)
    world.set("web", status="restarting", exit_code=3, restart_count=1)
    look(rig)
    detail = rig.issue(BAD).detail
    assert "deploy the stack file of the spec before it again" in detail, detail
