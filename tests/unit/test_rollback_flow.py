"""Changes, verdicts, snapshots and rollbacks through the remediation side of the graph
(``build_remediation``) on a fake of our own gateway and Compose: passes see changes,
judge them and keep what was good; the reconciler rolls a bad change back as one step
(``auto``), tells a person the command (``notify``), never twice, dependencies first
(``scope: stack``), holds back a change whose image does not exist, and carries a rollback
cut short by the controller's death out to its end."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from controller.drift import diff, service_status
from controller.model import (
    Action,
    ChangeVerdict,
    DesiredState,
    IssueState,
    Outcome,
    RollbackMode,
    RollbackPolicy,
    RollbackScope,
    RollbackSettings,
    ServiceSpec,
)
from controller.remediate.keeper import name_part, pinned, service_document, tag_repository
from controller.remediate.reconciler import stable_after
from controller.remediate.results import RequeueAfter
from tests.fakes import FakeWorld, desired, spec
from tests.unit.test_remediator import Rig


class RollbackRig(Rig):
    """The remediation rig, whose passes also see changes (as the runtime's do) and the
    config hashes of the fake's compose model (an outdated container is a drift)."""

    def __init__(self, world: FakeWorld, state: DesiredState) -> None:
        self.declared: dict[str, str] = {}
        super().__init__(world, state, hashes=self.declared)

    def sync(self) -> None:
        """A pass, as the runtime's: drifts (a rolled-back service's config is not called
        outdated), then changes."""
        self.declared.clear()
        self.declared.update(self.world.rendered()[1])
        observed = self.observer.observe()
        statuses = [service_status(s, observed) for s in self.state.services.values()]
        self.store.sync_drifts(
            self.remediation.changes.declared_as(diff(self.state, observed)),
            statuses,
            holds={n: stable_after(s) for n, s in self.state.services.items()},
        )
        self.signals.pass_seen(statuses, observed)
        ready_for = {s.name: secs for s, secs in self.store.services_ready_for()}
        self.remediation.changes.pass_seen(observed, set(), ready_for)

    def settle(self, seconds: float = 3.0) -> None:
        """Passes over ``seconds`` of fake time (a service ready for its hold)."""
        for _ in range(int(seconds * 2)):
            self.sync()
            self.clock.advance(0.5)
        self.sync()

    def record(self, service: str = "web"):  # type: ignore[no-untyped-def]
        return self.remediation.lastgood.get(service)


def web(mode: RollbackMode = RollbackMode.AUTO, **fields: object) -> ServiceSpec:
    return spec("web", rollback=RollbackPolicy(mode=mode, window=30.0), **fields)


def scene(
    *specs: ServiceSpec, scope: RollbackScope = RollbackScope.SERVICE
) -> tuple[FakeWorld, RollbackRig]:
    """``web`` (and the other ``specs``' services) running a good image ``app:1``."""
    world = FakeWorld()
    world.add_image("sha256:good", "app:1")
    state = replace(desired(*specs), rollback=RollbackSettings(scope=scope, keep=2))
    for s in specs:
        deploy(world, s.name, "app:1", "sha256:good")
    return world, RollbackRig(world, state)


def deploy(world: FakeWorld, service: str, image: str, image_id: str, **fields: object) -> None:
    """A person's ``compose up``: the compose model declares ``image``, and a new
    container of it replaces the service's (``fields``: how it runs)."""
    config_hash = world.declare(service, image=image, environment={"MODE": image})
    for c in [c for c in world.containers.values() if c.service == service]:
        del world.containers[c.id]
    world.run(
        service,
        id=f"{service}-{image}-id",
        config_hash=config_hash,
        image_id=image_id,
        image=image,
        started_at="2027-01-15T08:00:00Z",
        created_at="2027-01-15T08:00:00Z",
        **fields,
    )


def test_what_stayed_ready_for_its_hold_is_kept_as_the_last_good_snapshot(tmp_path):
    world, rig = scene(web())
    rig.sync()
    assert rig.record().snapshots == []  # not ready for its hold yet
    rig.settle()
    (snapshot,) = rig.record().snapshots
    assert snapshot.number == 1 and snapshot.identity.image_id == "sha256:good"
    assert snapshot.tag == "compose-controller/lastgood/demo/web:1"
    assert world.tags[snapshot.tag] == "sha256:good"  # the tag keeps the image
    document = json.loads(Path(snapshot.file).read_text())
    assert document["services"]["web"]["image"] == snapshot.tag
    assert document["services"]["web"]["pull_policy"] == "never"
    assert document["name"] == "demo"
    assert snapshot.reverts_to.config_hash == world.hash_of(document["services"]["web"])
    assert oct(Path(snapshot.file).parent.stat().st_mode & 0o777) == "0o700"
    assert oct(Path(snapshot.file).stat().st_mode & 0o777) == "0o600"  # secrets inside
    rig.settle()
    assert len(rig.record().snapshots) == 1  # the same identity is kept once


def test_snapshots_are_kept_at_most_keep_and_the_oldest_lets_go_of_its_tag():
    world, rig = scene(web())
    rig.settle()
    for n, image in enumerate(("app:2", "app:3"), start=2):
        world.add_image(f"sha256:v{n}", image)
        deploy(world, "web", image, f"sha256:v{n}")
        rig.settle(32.0)  # its window: good, then kept
        assert rig.record().change.verdict is ChangeVerdict.GOOD
    numbers = [s.number for s in rig.record().snapshots]
    assert numbers == [2, 3]  # keep: 2
    assert ("untag", "compose-controller/lastgood/demo/web:1") in world.actions
    assert "compose-controller/lastgood/demo/web:1" not in world.tags


def test_a_bad_change_is_rolled_back_as_one_step_and_said_so_never_fixed():
    world, rig = scene(web())
    rig.settle()
    world.add_image("sha256:bad", "app:2")
    deploy(world, "web", "app:2", "sha256:bad", status="exited", exit_code=1)
    rig.fix("web")
    assert [a for a in world.actions if a[0] == "revert"] == [("revert", "web")]
    bad = rig.issue("change:web:bad-change")
    assert bad.state is IssueState.RESOLVED
    assert bad.resolution.startswith("rolled back from config ")
    assert "to snapshot 1 (config " in bad.resolution
    assert bad.resolution.endswith("because demo-web-1 exited with code 1")
    (attempt,) = bad.attempts
    assert attempt.action is Action.ROLLBACK and attempt.outcome is Outcome.SUCCESS
    exited = rig.issue("drift:web:exited")  # the change's doing: resolved with it
    assert exited.state is IssueState.RESOLVED and exited.resolution == bad.resolution
    record = rig.record()
    assert record.rolled_back is not None and record.rolled_back.snapshot == 1
    assert record.running == record.snapshots[0].reverts_to
    rig.sync()
    rolled = rig.issue("change:web:rolled-back")
    assert rolled.state is IssueState.OPEN and not rolled.blocking
    assert rolled.title.startswith("rolled back from config ")
    assert rolled.title.endswith(": not at its declared config")
    metric = rig.registry.get_sample_value(
        "compose_controller_rollbacks_total",
        {"env": "dev", "service": "web", "outcome": "rolled_back"},
    )
    assert metric == 1
    assert (
        rig.registry.get_sample_value(
            "compose_controller_changes_total", {"env": "dev", "service": "web", "verdict": "bad"}
        )
        == 1
    )
    steps = rig.records.get("web").throttle.steps
    assert len(steps) == 1  # counted in the budget


def test_a_change_judged_bad_is_an_incident_for_the_learner_once_and_one_that_never_ran_none():
    world, rig = scene(web())
    rig.settle()
    assert rig.remediation.changes.judged_bad() == []  # a first sight is no change
    world.add_image("sha256:bad", "app:2")
    deploy(world, "web", "app:2", "sha256:bad", status="exited", exit_code=1)
    rig.sync()
    assert rig.record().change.verdict is ChangeVerdict.BAD
    assert rig.remediation.changes.judged_bad() == [("web", rig.clock.now)]
    rig.sync()
    assert rig.remediation.changes.judged_bad() == []  # taken once

    world, rig = scene(web())
    rig.settle()
    world.declare("web", image="app:9", environment={"MODE": "app:9"})  # never pulled
    rig.sync()
    rig.clock.advance(31.0)
    rig.sync()
    assert rig.record().change.verdict is ChangeVerdict.BAD
    assert rig.remediation.changes.judged_bad() == []  # nothing of it ever ran


def test_notify_tells_the_command_and_changes_nothing():
    world, rig = scene(web(RollbackMode.NOTIFY))
    rig.settle()
    world.add_image("sha256:bad", "app:2")
    deploy(world, "web", "app:2", "sha256:bad", status="exited", exit_code=1)
    rig.fix("web")
    assert [a for a in world.actions if a[0] in ("revert", "restart", "recreate")] == []
    bad = rig.issue("change:web:bad-change")
    assert bad.state is IssueState.NEEDS_HUMAN
    assert "rollback: notify leaves it to a person: `docker compose --project-name demo" in (
        bad.resolution
    )
    assert "rolls it back to snapshot 1" in bad.resolution
    assert rig.issue("drift:web:exited").state is IssueState.NEEDS_HUMAN  # not restarted
    assert "exited with code 1" in bad.title and "last good: snapshot 1" in bad.detail


def test_the_same_bad_change_made_again_is_not_rolled_back_twice():
    world, rig = scene(web())
    rig.settle()
    world.add_image("sha256:bad", "app:2")
    deploy(world, "web", "app:2", "sha256:bad", status="exited", exit_code=1)
    rig.fix("web")
    assert rig.record().rolled_back is not None
    rig.clock.advance(60.0)
    deploy(world, "web", "app:2", "sha256:bad", status="exited", exit_code=1)  # again
    rig.fix("web")
    assert [a for a in world.actions if a[0] == "revert"] == [("revert", "web")]  # once
    bad = rig.issue("change:web:bad-change")
    assert bad.state is IssueState.NEEDS_HUMAN
    assert "rolled back once already and is not rolled back again" in bad.resolution


def test_a_change_that_never_got_ready_is_bad_at_its_deadline_and_rolled_back():
    world, rig = scene(
        spec(
            "web",
            check_health=True,
            rollback=RollbackPolicy(mode=RollbackMode.AUTO, window=30.0, deadline=20.0),
        )
    )
    world.set("web", health="healthy")
    rig.settle()
    world.add_image("sha256:slow", "app:2")
    deploy(world, "web", "app:2", "sha256:slow", health="starting")
    rig.settle(10.0)
    assert rig.record().change.verdict is ChangeVerdict.PENDING
    rig.clock.advance(11.0)
    rig.fix("web")
    bad = rig.issue("change:web:bad-change")
    assert "not ready 20 s after the change" in bad.resolution


def stack_scene():  # type: ignore[no-untyped-def]
    """db and app under ``scope: stack``, settled, with db:2 (good) and app:2 (bad) built."""
    db = spec("db", rollback=RollbackPolicy(mode=RollbackMode.AUTO, window=30.0))
    app = spec(
        "app", depends_on=("db",), rollback=RollbackPolicy(mode=RollbackMode.AUTO, window=30.0)
    )
    world, rig = scene(db, app, scope=RollbackScope.STACK)
    rig.settle()
    world.add_image("sha256:db2", "db:2")
    world.add_image("sha256:bad", "app:2")
    return world, rig


def test_scope_stack_rolls_back_the_whole_operation_dependencies_first():
    world, rig = stack_scene()
    deploy(world, "db", "db:2", "sha256:db2")  # good on its own
    deploy(world, "app", "app:2", "sha256:bad", status="exited", exit_code=1)
    rig.sync()
    assert rig.record("app").change.operation == rig.record("db").change.operation
    assert rig.record("db").change.verdict is ChangeVerdict.BAD
    assert rig.record("db").change.reason.startswith("changed by the same operation as app")
    assert rig.reconcile("app").why == "waiting for dependencies"  # db goes first
    assert rig.intended("change:app:bad-change").plan == "rolls back after db"
    rig.fix("db")
    rig.fix("app")
    reverts = [a for a in world.actions if a[0] == "revert"]
    assert reverts == [("revert", "db"), ("revert", "app")]
    for service in ("db", "app"):
        issue = rig.issue(f"change:{service}:bad-change")
        assert issue.resolution.startswith("rolled back from "), issue.resolution


def test_scope_stack_a_change_of_the_operation_seen_after_the_bad_one_is_bad_with_it():
    # a pass goes by name: app's crash was judged before db's change of the same
    # `compose up` was seen (CI, under load); db's change is bad with it all the same
    world, rig = stack_scene()
    deploy(world, "app", "app:2", "sha256:bad", status="exited", exit_code=1)
    rig.sync()
    assert rig.record("app").change.verdict is ChangeVerdict.BAD
    rig.clock.advance(0.5)
    deploy(world, "db", "db:2", "sha256:db2")  # the same operation, seen a pass later
    rig.sync()
    assert rig.record("app").change.operation == rig.record("db").change.operation
    assert rig.record("db").change.verdict is ChangeVerdict.BAD
    assert rig.record("db").change.reason.startswith("changed by the same operation as app")
    rig.fix("db")
    rig.fix("app")
    reverts = [a for a in world.actions if a[0] == "revert"]
    assert reverts == [("revert", "db"), ("revert", "app")]


def test_a_change_whose_image_does_not_exist_is_held_back_without_a_step():
    world, rig = scene(web(recreate_outdated=True))
    rig.settle()
    before = dict(world.containers)
    world.declare("web", image="app:9", environment={"MODE": "app:9"})  # never pulled
    rig.sync()
    change = rig.record().change
    assert change is not None and change.missing_image == "app:9"
    assert rig.reconcile("web").why == "a change under watch"  # no recreate onto nothing
    rig.clock.advance(31.0)
    rig.fix("web")
    assert world.containers == before  # the running container was kept, never touched
    assert [a for a in world.actions if a[0] in ("recreate", "revert", "up")] == []
    bad = rig.issue("change:web:bad-change")
    assert bad.state is IssueState.RESOLVED
    assert bad.resolution.startswith("held back on snapshot 1 (")
    assert "the change to app:9 never ran because its image app:9 does not exist" in (
        bad.resolution
    )
    rig.sync()
    held = rig.issue("change:web:rolled-back")
    assert held.title.startswith("held back on snapshot 1")
    assert (
        rig.store.get("drift:web:outdated") is None or not rig.issue("drift:web:outdated").active
    )  # the rolled-back issue says it; nothing recreates it


def test_a_rolled_back_service_is_recreated_from_its_snapshot_never_onto_the_bad_change():
    world, rig = scene(web())
    rig.settle()
    world.add_image("sha256:bad", "app:2")
    deploy(world, "web", "app:2", "sha256:bad", status="exited", exit_code=1)
    rig.fix("web")
    snapshot = rig.record().snapshots[0]
    reverted = len(world.reverted)
    actuator = rig.remediation.runner._actuator
    detail = actuator.run(Action.RECREATE, web(), [])
    assert "last-good snapshot" in detail
    assert world.reverted[reverted:] == [("web", snapshot.file)]


def test_a_rollback_cut_short_by_the_controllers_death_is_carried_out_once_as_the_same_step():
    # a step recorded and saved, its command begun, the controller killed
    world2, rig2 = scene(web())
    rig2.settle()
    world2.add_image("sha256:bad", "app:2")
    deploy(world2, "web", "app:2", "sha256:bad", status="exited", exit_code=1)
    rig2.sync()
    saved_records = {}

    def killed(*args: object, **kwargs: object) -> None:
        saved_records["records"] = rig2.records.snapshot()
        saved_records["lastgood"] = rig2.remediation.lastgood.snapshot()
        saved_records["issues"] = rig2.store.issues()
        raise SystemExit("killed")

    world2.revert = killed  # type: ignore[method-assign]
    with pytest.raises(SystemExit):
        rig2.reconcile("web")
    del world2.revert  # the engine is as the dead controller left it: the bad change runs

    # a new controller on the saved state
    rig3 = RollbackRig(world2, rig2.state)
    rig3.clock.now = rig2.clock.now
    rig3.store.restore(saved_records["issues"])
    rig3.records.restore(saved_records["records"])
    rig3.remediation.lastgood.restore(saved_records["lastgood"])
    step = rig3.records.step("web")
    assert step is not None and step.action is Action.ROLLBACK and step.finished_at is None
    rig3.records.assume_command("web", rig3.clock(), rig3.clock() + 15.0)
    assert isinstance(rig3.reconcile("web"), RequeueAfter)  # its command may still be at work
    assert world2.reverted == []
    rig3.clock.advance(16.0)
    rig3.fix("web")
    assert [s for s, _ in world2.reverted] == ["web"]  # carried out once, to its end
    bad = rig3.issue("change:web:bad-change")
    (attempt,) = bad.attempts  # the same step, one attempt
    assert attempt.outcome is Outcome.SUCCESS and "carried out to its end" in attempt.detail
    assert bad.resolution.startswith("rolled back from ")
    assert len(rig3.records.get("web").throttle.steps) == 1


def test_a_good_change_is_never_rolled_back_and_becomes_the_last_good():
    world, rig = scene(web())
    rig.settle()
    world.add_image("sha256:v2", "app:2")
    deploy(world, "web", "app:2", "sha256:v2")
    rig.settle(20.0)
    assert rig.record().change.verdict is ChangeVerdict.PENDING
    rig.settle(12.0)
    assert rig.record().change.verdict is ChangeVerdict.GOOD
    assert rig.store.get("change:web:bad-change") is None
    assert rig.record().snapshots[-1].identity.image_id == "sha256:v2"
    assert [a for a in world.actions if a[0] == "revert"] == []


def test_off_keeps_no_snapshot_and_gives_no_verdict():
    world, rig = scene(web(RollbackMode.OFF))
    rig.settle()
    world.add_image("sha256:bad", "app:2")
    deploy(world, "web", "app:2", "sha256:bad", status="exited", exit_code=1)
    rig.fix("web")
    assert rig.record().snapshots == [] and rig.record().change is None
    assert ("tag", "compose-controller/lastgood/demo/web:1") not in world.actions
    assert ("restart", "demo-web-1") in world.actions  # the ordinary ladder


def test_the_snapshot_document_keeps_what_the_service_names_and_drops_its_dependencies():
    model = {
        "name": "shop",
        "services": {
            "web": {"image": "web:1", "depends_on": {"db": {}}, "network_mode": "service:vpn"},
            "vpn": {"image": "vpn:1", "volumes_from": ["data:ro"], "depends_on": {"db": {}}},
            "data": {"image": "data:1"},
            "db": {"image": "db:1"},
        },
        "volumes": {"pg": {"name": "shop_pg"}},
    }
    document = service_document(model, "web", "shop")
    assert set(document["services"]) == {"web", "vpn", "data"}
    assert all("depends_on" not in c for c in document["services"].values())
    assert document["volumes"] == {"pg": {"name": "shop_pg"}}
    revert = pinned(document, "web", "compose-controller/lastgood/shop/web:4")
    assert revert["services"]["web"]["image"] == "compose-controller/lastgood/shop/web:4"
    assert document["services"]["web"]["image"] == "web:1"  # a copy
    assert tag_repository("My_Shop", "Web.API") == "compose-controller/lastgood/my_shop/web.api"
    assert name_part("--x--") == "x" and name_part("A B") == "a-b"


def test_no_rollback_while_a_persons_operation_is_in_progress():
    world, rig = scene(web())
    rig.settle()
    world.add_image("sha256:bad", "app:2")
    deploy(world, "web", "app:2", "sha256:bad", status="exited", exit_code=1)
    rig.sync()  # judged bad
    assert rig.record().change.verdict is ChangeVerdict.BAD
    world.run(
        "web",
        2,
        id="0123456789ab_demo-web-1",
        name="0123456789ab_demo-web-1",
        status="created",
        config_hash="x",
        image_id="sha256:x",
    )  # a person's recreate
    rig.reconcile("web")
    assert [a for a in world.actions if a[0] == "revert"] == []  # never mid-way
    del world.containers["0123456789ab_demo-web-1"]  # their operation is over
    rig.fix("web")
    assert [a for a in world.actions if a[0] == "revert"] == [("revert", "web")]


def test_the_secrets_a_snapshot_keeps_stay_in_its_own_files(tmp_path):
    world = FakeWorld()
    world.add_image("sha256:good", "app:1")
    state = desired(web())
    project = replace(state.compose, files=(tmp_path / "compose.yaml",), workdir=tmp_path)
    (tmp_path / "compose.yaml").write_text(
        "services:\n  web:\n    image: app:1\n    env_file: [web.env, {path: extra.env}]\n"
    )
    (tmp_path / ".env").write_text("TAG=1\n")
    (tmp_path / "web.env").write_text("DB_PASSWORD=hunter2-secret\n")
    (tmp_path / "extra.env").write_text("API_KEY=k3y-secret\n")
    config = world.declare("web", image="app:1", environment={"DB_PASSWORD": "hunter2-secret"})
    world.run("web", config_hash=config, image_id="sha256:good", image="app:1")
    rig = RollbackRig(world, replace(state, compose=project))
    rig.settle()
    (snapshot,) = rig.record().snapshots
    assert set(snapshot.env_files) == {
        str(tmp_path / ".env"),
        str(tmp_path / "web.env"),
        str(tmp_path / "extra.env"),
    }
    kept = json.loads((Path(snapshot.file).parent / "env-files.json").read_text())
    assert kept[str(tmp_path / "web.env")] == "DB_PASSWORD=hunter2-secret\n"
    saved = json.dumps(rig.remediation.lastgood.snapshot()["web"].model_dump(mode="json"))
    assert "hunter2" not in saved and "k3y" not in saved  # digests only
    issues = json.dumps([i.model_dump(mode="json") for i in rig.store.issues()])
    assert "hunter2" not in issues


def test_a_missing_image_reported_is_over_once_the_files_ask_for_something_else():
    world, rig = scene(web(RollbackMode.NOTIFY))
    rig.settle()
    world.declare("web", image="app:9", environment={"MODE": "app:9"})
    rig.sync()
    rig.clock.advance(31.0)
    rig.fix("web")
    bad = rig.issue("change:web:bad-change")
    assert bad.state is IssueState.NEEDS_HUMAN and "app:9" in bad.title
    world.declare("web", image="app:1", environment={"MODE": "app:1"})  # the person's fix
    rig.sync()
    bad = rig.issue("change:web:bad-change")
    assert bad.state is IssueState.RESOLVED
    assert bad.resolution == "the compose files no longer ask for app:9"
    assert rig.record().change is None


def test_a_person_who_runs_the_command_they_were_told_has_rolled_it_back():
    world, rig = scene(web(RollbackMode.NOTIFY))
    rig.settle()
    world.add_image("sha256:bad", "app:2")
    deploy(world, "web", "app:2", "sha256:bad", status="exited", exit_code=1)
    rig.fix("web")
    assert rig.issue("change:web:bad-change").state is IssueState.NEEDS_HUMAN
    snapshot = rig.record().snapshots[0]
    world.revert(Path(snapshot.file), "web")  # the person's `docker compose ... up`
    rig.sync()
    bad = rig.issue("change:web:bad-change")
    assert bad.state is IssueState.RESOLVED
    assert bad.resolution.startswith("rolled back from config ")
    assert bad.resolution.endswith("(by a person, with the command it was told)")
    assert rig.record().rolled_back is not None and rig.record().change.verdict is ChangeVerdict.BAD
    assert rig.issue("change:web:rolled-back").active
