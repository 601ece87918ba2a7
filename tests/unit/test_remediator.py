"""The remediator on a fake engine: ladders, verification, budget and backoff per service,
runbooks, the hook, people, dependencies, dry run, concurrency."""

import contextlib
import itertools
import json
import shutil
import sys
import tempfile
import threading
import time
import weakref
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from controller.drift import diff, service_status
from controller.issues.present import Intended, intended
from controller.issues.store import IssueStore
from controller.metrics import Metrics
from controller.model import (
    Category,
    DesiredState,
    DetectionSettings,
    Finding,
    IssueState,
    Outcome,
    RemediationSettings,
    Runbook,
    RunbookStep,
    Severity,
    StepKind,
)
from controller.observe.observer import Observer
from controller.remediate.activity import RESTART_GRACE
from controller.remediate.reconciler import stable_after
from controller.remediate.results import Failed, RequeueAfter
from controller.remediate.revert import DeclaredModel
from controller.remediate.swarmsteps import StackControl
from controller.remediate.throttle import ThrottleRules
from controller.runtime.assembly import build_remediation
from tests.fakes import FakeClock, FakeStack, FakeWorld, container, desired, spec


class Rig:
    """The remediation side of a controller on a fake engine, built by the composition
    root, driven by hand: each ``fix`` is a pass and then the service's reconciles, the
    fake clock jumping to each requeue, until the key is done or due later than
    ``horizon`` seconds. No thread, no sleep."""

    def __init__(
        self,
        world: FakeWorld,
        state: DesiredState,
        *,
        dry_run: bool = False,
        blip: float = 0.0,
        max_agents: int = 3,
        settle_logs: object = None,
        backoff_enabled: bool = True,
        hashes: dict[str, str] | None = None,
        stack: StackControl | None = None,
    ) -> None:
        self.world, self.state = world, state
        self.clock = FakeClock()
        self.store = IssueStore(state.env, self.clock)
        self.registry = CollectorRegistry()
        self.observer = Observer(
            world,
            "demo",
            self.clock,
            config_hashes=lambda containers: dict(hashes or {}),
            stack=stack.view if isinstance(stack, FakeStack) else None,
        )
        self.saves = 0
        self.changes: list[bool] = []
        snapshots = Path(tempfile.mkdtemp(prefix="lastgood"))
        weakref.finalize(self, shutil.rmtree, snapshots, True)  # gone with the rig
        self.remediation = build_remediation(
            desired=lambda: self.state,
            store=self.store,
            observe=self.observer.observe,
            gateway=world,
            compose=world,
            declared=DeclaredModel(
                lambda: world.rendered()[1],
                lambda service: str(world.model["services"].get(service, {}).get("image", "")),
                lambda service: False,
                lambda image: world.image(image) is not None,
            ),
            snapshots=snapshots,
            metrics=Metrics(self.registry, state.env),
            rules=lambda: ThrottleRules.of(self.state.remediation, backoff_enabled),
            clock=self.clock,
            max_agents=max_agents,
            dry_run=dry_run,
            blip=blip,
            save_now=self._saved,
            on_change=self.changes.append,
            settle_logs=settle_logs or (lambda containers, timeout: True),  # type: ignore[arg-type]
            stack=stack,
        )
        self.records = self.remediation.records
        self.pool = self.remediation.pool
        self.signals = self.remediation.signals
        self.results: list[object] = []

    def _saved(self) -> None:
        self.saves += 1

    def sync(self) -> None:
        observed = self.observer.observe()
        statuses = [service_status(s, observed) for s in self.state.services.values()]
        self.store.sync_drifts(
            self.signals.dated(diff(self.state, observed)),
            statuses,
            self.signals.frozen(observed),
            holds={n: stable_after(s) for n, s in self.state.services.items()},
        )
        self.signals.pass_seen(statuses, observed)

    def reconcile(self, service: str) -> object:
        result = self.remediation.reconciler.reconcile(service)
        self.results.append(result)
        return result

    def fix(self, service: str, horizon: float = 5.0) -> object:
        self.sync()
        for _ in range(500):
            result = self.reconcile(service)
            if not isinstance(result, RequeueAfter) or result.seconds > horizon:
                return result
            self.clock.advance(max(result.seconds, 0.01))
            self.sync()
        raise AssertionError("the reconcile never settled")

    def log(self, service: str, pattern_id: str, category: Category, **extra: object) -> None:
        finding = Finding(
            service=service,
            container=str(extra.pop("container", f"demo-{service}-1")),
            ts=float(extra.pop("ts", self.clock())),  # type: ignore[arg-type]
            kind="log",
            pattern_id=pattern_id,
            category=category,
            severity=Severity.HIGH,
            title=f"{pattern_id} happened",
            fingerprint=f"log:{service}:{pattern_id}:x",
            evidence="e",
            line=f"{pattern_id} line",
            **extra,
        )  # type: ignore[arg-type]
        self.store.record_findings([finding], DetectionSettings())

    def issue(self, fingerprint: str):  # type: ignore[no-untyped-def]
        issue = self.store.get(fingerprint)
        assert issue is not None
        return issue

    def intended(self, fingerprint: str) -> Intended:
        """What the outputs say the controller intends for the issue."""
        issue = self.issue(fingerprint)
        return intended(issue, self.records.get(issue.service))


def stamp(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + ".000000000Z"


def test_an_exited_service_is_restarted_and_verified():
    world = FakeWorld()
    world.run("web", status="exited", exit_code=137)
    rig = Rig(world, desired(spec("web")))
    rig.fix("web")
    assert world.actions == [("restart", "demo-web-1")]
    issue = rig.issue("drift:web:exited")
    assert issue.state is IssueState.RESOLVED
    assert issue.resolution == "fixed by restart"
    assert issue.attempts[0].outcome is Outcome.SUCCESS
    assert (
        rig.registry.get_sample_value(
            "compose_controller_remediation_actions_total",
            {"env": "dev", "service": "web", "action": "restart", "outcome": "success"},
        )
        == 1
    )


def test_a_missing_service_is_started_with_compose():
    world = FakeWorld()
    rig = Rig(world, desired(spec("web", replicas=2)))
    rig.fix("web")
    assert world.actions == [("up", "web")]
    assert len(world.list_containers("demo")) == 2
    assert rig.issue("drift:web:missing").state is IssueState.RESOLVED


def test_an_unhealthy_service_is_restarted_until_its_healthcheck_passes():
    world = FakeWorld()
    world.healthchecked.add("web")
    world.run("web", health="unhealthy")
    rig = Rig(world, desired(spec("web", check_health=True)))
    rig.fix("web")
    assert world.actions == [("restart", "demo-web-1")]
    assert rig.issue("drift:web:unhealthy").state is IssueState.RESOLVED


def test_a_healthcheck_that_begins_to_fail_is_reported_but_left_to_the_engines_verdict():
    world = FakeWorld()
    world.healthchecked.add("web")
    world.run("web", health="healthy", failing_streak=1)
    rig = Rig(world, desired(spec("web", check_health=True)))
    rig.fix("web")
    assert world.actions == []  # not restarted, not handed to a human: the engine decides
    issue = rig.issue("drift:web:unhealthy")  # one incident from the first failed check on
    assert (issue.kind, issue.severity) == ("failing-healthcheck", Severity.MEDIUM)
    assert issue.state is IssueState.OPEN and issue.attempts == []
    world.set("web", health="unhealthy", failing_streak=2)
    rig.fix("web")
    assert world.actions == [("restart", "demo-web-1")]
    issue = rig.issue("drift:web:unhealthy")
    assert (issue.kind, issue.severity) == ("unhealthy", Severity.HIGH)
    assert issue.state is IssueState.RESOLVED and len(issue.attempts) == 1


def test_a_fix_that_does_not_verify_climbs_the_ladder_with_the_backoff_between_rungs():
    world = FakeWorld()
    world.crashing.add("web")
    world.run("web", status="exited", exit_code=1)
    rig = Rig(world, desired(spec("web")))
    result = rig.fix("web", horizon=15)
    assert [a for a, _ in world.actions] == ["restart", "recreate"]  # 10 s apart
    issue = rig.issue("drift:web:exited")
    assert issue.state is IssueState.FAILED
    assert [a.outcome for a in issue.attempts] == [Outcome.FAILURE, Outcome.FAILURE]
    assert "exited with code 1 after the fix" in issue.attempts[0].detail  # at once
    assert isinstance(result, RequeueAfter) and 19 <= result.seconds <= 20  # then 20 s
    assert rig.intended("drift:web:exited").next_attempt_at is not None
    rig.clock.advance(5)
    rig.fix("web", horizon=1)  # still backing off: nothing happens
    assert len(world.actions) == 2


def test_an_always_crashing_service_gets_growing_gaps_then_a_human():
    world = FakeWorld()
    world.crashing.add("web")
    world.run("web", status="exited", exit_code=1)
    rig = Rig(world, desired(spec("web"), remediation=RemediationSettings(budget=5, log_quiet=0)))
    starts = []
    for _ in range(60):  # the pass keeps coming back, every 5 s of fake time
        before = len(world.actions)
        rig.fix("web")
        if len(world.actions) > before:
            starts.append(rig.clock())
        rig.clock.advance(5)
    assert len(world.actions) == 5  # the budget, never more
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert gaps == sorted(gaps) and gaps[-1] > gaps[0]  # growing gaps: no storm
    issue = rig.issue("drift:web:exited")
    assert issue.state is IssueState.NEEDS_HUMAN
    assert "budget of 5" in issue.resolution


def test_a_service_that_flaps_after_each_fix_still_backs_off():
    world = FakeWorld()
    world.run("web", status="exited", exit_code=1)
    rig = Rig(world, desired(spec("web")))
    rig.fix("web")  # fixed at once
    assert rig.issue("drift:web:exited").state is IssueState.RESOLVED
    world.set("web", status="exited", exit_code=1)  # and down again a moment later
    rig.fix("web")
    assert len(world.actions) == 1  # the second fix waits for the backoff
    issue = rig.issue("drift:web:exited")
    assert issue.state is IssueState.OPEN
    assert rig.intended("drift:web:exited").plan.startswith("backing off")
    rig.clock.advance(10)
    rig.fix("web")
    assert len(world.actions) == 2


def test_backoff_survives_a_restart_of_the_controller():
    world = FakeWorld()
    world.crashing.add("web")
    world.run("web", status="exited", exit_code=1)
    first = Rig(world, desired(spec("web")))
    first.fix("web", horizon=1)
    assert len(world.actions) == 1
    saved_issues, saved = first.store.issues(), first.records.snapshot()
    second = Rig(world, desired(spec("web")))
    second.clock.now = first.clock.now
    second.store.restore(saved_issues)
    second.records.restore(saved)
    second.fix("web", horizon=1)
    assert len(world.actions) == 1  # no new fix: the backoff was kept
    second.clock.advance(10)
    second.fix("web", horizon=1)
    assert len(world.actions) == 2  # the backoff over, the next rung


def test_a_step_counts_before_it_runs_so_a_controller_killed_mid_step_keeps_its_backoff():
    world = FakeWorld()
    world.run("web", status="exited", exit_code=1)
    rig = Rig(world, desired(spec("web")))
    saved: list[object] = []
    original = world.restart

    def killed_while_restarting(container_id, timeout):  # type: ignore[no-untyped-def]
        saved.append(rig.records.snapshot())  # what a save_now wrote
        raise KeyboardInterrupt  # stands in for the SIGKILL: nothing after this runs

    world.restart = killed_while_restarting  # type: ignore[method-assign]
    with contextlib.suppress(KeyboardInterrupt):
        rig.fix("web")
    assert rig.saves == 1
    (record,) = saved[0].values()  # type: ignore[attr-defined]
    assert record.throttle.consecutive == 1 and len(record.throttle.steps) == 1
    assert record.step is not None and record.step.finished_at is None
    world.restart = original  # type: ignore[method-assign]
    # a new controller reads it back: the step that may have run is proven, not repeated
    world.set("web", status="running", exit_code=0)
    second = Rig(world, desired(spec("web")))
    second.clock.now = rig.clock.now + 1
    second.store.restore(rig.store.issues())
    second.records.restore(saved[0])  # type: ignore[arg-type]
    second.fix("web")
    assert world.actions == []  # nothing repeated
    issue = second.issue("drift:web:exited")
    assert issue.state is IssueState.RESOLVED and issue.resolution == "fixed by restart"


def test_a_restored_step_whose_command_may_still_run_is_waited_for_not_failed():
    """Killed during a ``docker restart`` of a service with a 30 s stop grace period: the
    engine is still stopping it when the new controller starts. That is the command at
    work, not a failed fix; nothing is repeated, and the proof follows once it is done."""
    world = FakeWorld()
    world.run("web", status="exited", exit_code=1)
    web = spec("web", stop_timeout=30.0)
    rig = Rig(world, desired(web))
    saved: list[object] = []

    def killed_while_restarting(container_id, timeout):  # type: ignore[no-untyped-def]
        saved.append(rig.records.snapshot())
        raise KeyboardInterrupt

    world.restart = killed_while_restarting  # type: ignore[method-assign]
    with contextlib.suppress(KeyboardInterrupt):
        rig.fix("web")
    del world.restart  # the fake's own restart again
    second = Rig(world, desired(web))
    second.clock.now = rig.clock.now + 1
    second.store.restore(rig.store.issues())
    second.records.restore(saved[0])  # type: ignore[arg-type]
    (record,) = saved[0].values()  # type: ignore[attr-defined]
    started = record.step.started_at.timestamp()
    second.records.assume_command("web", started, started + 35.0)  # as restore does
    second.sync()
    waited = second.reconcile("web")
    assert isinstance(waited, RequeueAfter) and "still be at work" in waited.why
    second.clock.advance(20)
    world.set("web", status="running", exit_code=0)  # the engine's restart completed
    second.fix("web", horizon=40)
    assert world.actions == []  # nothing repeated, nothing failed
    issue = second.issue("drift:web:exited")
    assert issue.state is IssueState.RESOLVED and issue.resolution == "fixed by restart"


def test_the_action_that_fixed_a_fault_is_tried_first_next_time():
    world = FakeWorld()
    world.run("web", status="exited", exit_code=1)
    world.crashing.add("web")
    rig = Rig(world, desired(spec("web")))
    original = world.up

    def recreate_cures(service, **kw):  # type: ignore[no-untyped-def]
        world.crashing.discard(service)
        return original(service, **kw)

    world.up = recreate_cures  # type: ignore[method-assign]
    rig.fix("web", horizon=15)
    assert [a for a, _ in world.actions] == ["restart", "recreate"]
    assert rig.issue("drift:web:exited").resolution == "fixed by recreate"
    world.set("web", status="exited", exit_code=1)
    rig.clock.advance(700)
    rig.fix("web")
    assert [a for a, _ in world.actions][-1] == "recreate"
    assert len(world.actions) == 3


def crashed_at_start(world: FakeWorld, rig: Rig, service: str = "web") -> None:
    """The service's run started 5 s ago and died just now, never ready."""
    now = rig.clock()
    world.set(
        service, status="exited", exit_code=1, started_at=stamp(now - 5), finished_at=stamp(now)
    )


def test_a_crash_with_an_import_error_is_not_restarted_but_handed_over():
    world = FakeWorld()
    world.run("web")
    rig = Rig(world, desired(spec("web")))
    rig.log("web", "py-module-not-found", Category.IMPORT, ts=rig.clock() - 2)
    crashed_at_start(world, rig)
    rig.fix("web")
    assert world.actions == []
    issue = rig.issue("drift:web:exited")
    assert issue.state is IssueState.NEEDS_HUMAN
    assert "import error that a restart cannot fix" in issue.resolution
    assert rig.issue("log:web:py-module-not-found:x").state is IssueState.NEEDS_HUMAN


def test_a_crash_whose_last_lines_are_read_late_waits_for_them_then_is_handed_over():
    """A busy engine delivers the dead run's log after the 2 s a reconcile waits: the
    reconcile is queued again (no restart meanwhile) and decides once the import error is
    in; lines that never come are given up 15 s after the death (then a restart)."""
    world = FakeWorld()
    world.run("web")
    read: list[bool] = [False]
    rig = Rig(world, desired(spec("web")), settle_logs=lambda containers, timeout: read[0])
    crashed_at_start(world, rig)
    rig.sync()
    assert isinstance(rig.reconcile("web"), RequeueAfter) and world.actions == []
    rig.clock.advance(3)
    assert isinstance(rig.reconcile("web"), RequeueAfter) and world.actions == []
    rig.log("web", "py-module-not-found", Category.IMPORT, ts=rig.clock() - 4)
    read[0] = True
    rig.fix("web")
    assert world.actions == []
    assert "import error that a restart cannot fix" in rig.issue("drift:web:exited").resolution


def test_a_crash_whose_last_lines_never_come_is_restarted_15_s_after_the_death():
    world = FakeWorld()
    world.run("web")
    rig = Rig(world, desired(spec("web")), settle_logs=lambda containers, timeout: False)
    crashed_at_start(world, rig)
    died = rig.clock()
    rig.fix("web", horizon=1.0)
    assert world.actions == [("restart", "demo-web-1")]
    assert rig.clock() - died >= 15.0  # not before


def test_an_import_error_of_a_service_with_build_is_rebuilt():
    world = FakeWorld()
    world.run("web")
    rig = Rig(world, desired(spec("web", has_build=True)))
    rig.log("web", "py-module-not-found", Category.IMPORT, ts=rig.clock() - 2)
    crashed_at_start(world, rig)
    rig.fix("web")
    assert world.actions[0] == ("rebuild", "web")


def test_a_stale_auth_line_from_a_healthy_run_never_keeps_a_killed_service_down():
    world = FakeWorld()
    world.run("web")
    rig = Rig(world, desired(spec("web")))
    rig.sync()  # a pass sees it ready
    rig.log("web", "pg-auth-failed", Category.AUTH)  # a client with a bad password
    rig.clock.advance(30)  # it runs on
    world.set("web", status="exited", exit_code=137, finished_at=stamp(rig.clock()))
    rig.fix("web")
    assert world.actions == [("restart", "demo-web-1")]  # at once
    assert rig.issue("drift:web:exited").state is IssueState.RESOLVED
    log = rig.issue("log:web:pg-auth-failed:x")
    assert log.state is IssueState.OPEN and log.attempts == []  # reported on its own


def test_an_error_of_another_container_does_not_explain_a_crash():
    world = FakeWorld()
    world.run("web")
    rig = Rig(world, desired(spec("web")))
    rig.log("web", "env-var-missing", Category.CONFIG, container="demo-web-2", ts=rig.clock() - 2)
    crashed_at_start(world, rig)
    rig.fix("web")
    assert world.actions == [("restart", "demo-web-1")]


RUNBOOK = Runbook(
    name="create-db",
    pattern="pg-database-missing",
    step=RunbookStep(
        kind=StepKind.EXEC, service="db", argv=("createdb", "-U", "postgres", "{database}")
    ),
)


def test_a_runbook_runs_first_with_its_validated_capture_and_is_verified():
    world = FakeWorld()
    world.healthchecked.update({"db", "web"})
    world.run("db")
    world.run("web", health="unhealthy")
    world.cured_by_exec.add("web")
    state = desired(
        spec("db"),
        spec("web", check_health=True),
        remediation=RemediationSettings(runbooks=(RUNBOOK,), log_quiet=0),
    )
    rig = Rig(world, state)
    rig.log("web", "pg-database-missing", Category.DATABASE, captures={"database": "orders"})
    original = world.exec

    def exec_heals(*args, **kw):  # type: ignore[no-untyped-def]
        result = original(*args, **kw)
        world.set("web", health="healthy")
        return result

    world.exec = exec_heals  # type: ignore[method-assign]
    rig.fix("web")
    assert world.actions == [("exec", "demo-db-1: createdb -U postgres orders")]
    assert rig.issue("log:web:pg-database-missing:x").resolution == "fixed by runbook create-db"
    assert rig.issue("drift:web:unhealthy").state is IssueState.RESOLVED


def test_a_captured_value_outside_the_strict_pattern_never_reaches_an_argv():
    world = FakeWorld()
    world.run("db")
    world.run("web")
    state = desired(
        spec("db"), spec("web"), remediation=RemediationSettings(runbooks=(RUNBOOK,), log_quiet=0)
    )
    rig = Rig(world, state)
    rig.log("web", "pg-database-missing", Category.DATABASE, captures={"database": "x; rm -rf /"})
    rig.fix("web")
    assert world.actions == []  # nothing ran
    (attempt,) = rig.issue("log:web:pg-database-missing:x").attempts
    assert attempt.outcome is Outcome.ERROR and "rejected" in attempt.detail


def test_the_hook_gets_the_issue_as_json_on_stdin(tmp_path: Path):
    out = tmp_path / "issue.json"
    hook = RunbookStep(
        kind=StepKind.HOOK,
        argv=(sys.executable, "-c", f"import sys; open({str(out)!r}, 'w').write(sys.stdin.read())"),
    )
    world = FakeWorld()
    world.run("web")
    rig = Rig(world, desired(spec("web"), remediation=RemediationSettings(hook=hook, log_quiet=0)))
    rig.log("web", "env-var-missing", Category.CONFIG, ts=rig.clock() - 2)
    crashed_at_start(world, rig)
    rig.fix("web", horizon=0)
    payload = json.loads(out.read_text())
    assert payload["service"] == "web" and payload["fingerprint"] == "drift:web:exited"
    assert world.actions == []  # the hook replaced the hand-over; nothing else ran
    (attempt,) = rig.issue("drift:web:exited").attempts
    assert attempt.action == "hook"


def test_a_log_issue_acts_only_when_its_pattern_suggests_it_and_it_recurs():
    world = FakeWorld()
    world.run("web")
    rig = Rig(world, desired(spec("web")))
    rig.log("web", "python-traceback", Category.HEALTH, suggested="none")
    rig.fix("web")
    assert world.actions == []  # reported only
    rig.log("web", "gunicorn-worker-timeout", Category.PERFORMANCE, suggested="restart")
    rig.clock.advance(120)  # no longer recurring: left alone
    rig.fix("web")
    assert world.actions == []
    rig.log("web", "gunicorn-worker-timeout", Category.PERFORMANCE, suggested="restart")
    rig.fix("web")
    assert world.actions == [("restart", "demo-web-1")]
    assert rig.issue("log:web:gunicorn-worker-timeout:x").state is IssueState.RESOLVED


def test_a_fix_is_not_verified_while_the_triggering_error_recurs():
    world = FakeWorld()
    world.run("web")
    rig = Rig(world, desired(spec("web"), remediation=RemediationSettings(log_quiet=5)))
    rig.log("web", "gunicorn-worker-timeout", Category.PERFORMANCE, suggested="restart")
    rig.sync()
    assert isinstance(rig.reconcile("web"), RequeueAfter)  # restarted; proof pending
    rig.clock.advance(1)
    rig.log("web", "gunicorn-worker-timeout", Category.PERFORMANCE, suggested="restart")
    rig.reconcile("web")
    issue = rig.issue("log:web:gunicorn-worker-timeout:x")
    assert issue.attempts[0].outcome is Outcome.FAILURE
    assert "came back" in issue.attempts[0].detail


def test_an_error_logged_while_the_fix_runs_is_not_a_recurrence():
    # PostgreSQL logs a client's "database does not exist" while createdb is running
    world = FakeWorld()
    world.run("web")
    rig = Rig(world, desired(spec("web"), remediation=RemediationSettings(log_quiet=5)))
    rig.log("web", "gunicorn-worker-timeout", Category.PERFORMANCE, suggested="restart")
    original = world.restart

    def restart_while_a_client_still_fails(container_id, timeout):  # type: ignore[no-untyped-def]
        rig.clock.advance(1)
        rig.log("web", "gunicorn-worker-timeout", Category.PERFORMANCE, suggested="restart")
        original(container_id, timeout)

    world.restart = restart_while_a_client_still_fails  # type: ignore[method-assign]
    rig.fix("web")
    issue = rig.issue("log:web:gunicorn-worker-timeout:x")
    assert [a.outcome for a in issue.attempts] == [Outcome.SUCCESS]
    assert issue.state is IssueState.RESOLVED


def test_a_dependent_waits_for_its_dependency_to_be_ready():
    world = FakeWorld()
    world.run("db", status="exited", exit_code=1)
    rig = Rig(world, desired(spec("db"), spec("web", depends_on=("db",))))
    rig.fix("web")
    assert world.actions == []
    issue = rig.issue("drift:web:missing")
    assert rig.intended("drift:web:missing").waiting_for == ["db"]
    assert issue.state is IssueState.OPEN
    rig.fix("db")
    rig.fix("web")
    assert world.actions == [("restart", "demo-db-1"), ("up", "web")]


def test_a_dependents_health_verdict_from_before_its_dependency_came_back_waits_a_check():
    # db was down; api's healthcheck failed meanwhile. db is ready again: api's verdict
    # is its next check, not the one that failed while db was down
    world = FakeWorld()
    world.healthchecked.update({"db", "api"})
    world.run("db", status="exited", exit_code=0)
    checked = dict(health_interval=5.0, health_timeout=1.0)
    world.run("api", health="unhealthy", last_check_at=1.0, **checked)
    rig = Rig(world, desired(spec("db"), spec("api", depends_on=("db",), check_health=True)))
    world.set("api", last_check_at=rig.clock())
    rig.sync()  # db not ready: api waits for it
    rig.clock.advance(1.0)
    world.set("db", status="running", health="healthy")
    rig.sync()
    result = rig.fix("api", horizon=1.0)
    assert isinstance(result, RequeueAfter) and 0 < result.seconds <= 6.0 + 1.0
    assert world.actions == []
    assert (
        "waits for its next healthcheck: db was ready again"
        in rig.intended("drift:api:unhealthy").plan
    )
    rig.clock.advance(3.0)
    world.set("api", last_check_at=rig.clock())  # its next check: still failing
    rig.fix("api")
    assert world.actions == [("restart", "demo-api-1")]


def test_a_verdict_newer_than_the_dependencys_return_is_acted_on_at_once():
    world = FakeWorld()
    world.healthchecked.update({"db", "api"})
    world.run("db")
    rig = Rig(world, desired(spec("db"), spec("api", depends_on=("db",), check_health=True)))
    rig.sync()  # db ready since long before api's check
    rig.clock.advance(1.0)
    world.run("api", health="unhealthy", last_check_at=rig.clock(), health_interval=5.0)
    rig.fix("api")
    assert world.actions == [("restart", "demo-api-1")]


def test_a_dependent_waits_while_a_person_stops_its_dependency_and_is_linked_to_that_stop():
    # docker stop db: PostgreSQL refuses clients for its whole stop timeout; api's check
    # fails from the signal on; db's fault began at the signal, not at its death
    world = FakeWorld()
    world.healthchecked.update({"db", "api"})
    world.run("db")
    world.run("api")
    rig = Rig(world, desired(spec("db"), spec("api", depends_on=("db",), check_health=True)))
    rig.sync()
    signalled = rig.clock()
    rig.signals.event("db", "kill", signalled, 15)
    rig.clock.advance(2.0)
    world.set("api", health="unhealthy", failing_streak=3, last_check_at=rig.clock())
    rig.fix("api")
    assert world.actions == []
    assert rig.intended("drift:api:unhealthy").waiting_for == ["db"]
    rig.clock.advance(8.0)
    world.set("db", status="exited", exit_code=137, finished_at=stamp(rig.clock()))
    for action in ("kill", "die", "stop"):
        rig.signals.event("db", action, rig.clock(), 9 if action == "kill" else None)
    rig.clock.advance(RESTART_GRACE)
    rig.sync()
    db = rig.issue("drift:db:exited")
    assert db.fault_since is not None and db.fault_since.timestamp() == pytest.approx(signalled)


def test_dry_run_changes_nothing_and_records_the_plan():
    world = FakeWorld()
    world.run("web", status="exited", exit_code=1)
    rig = Rig(world, desired(spec("web")), dry_run=True)
    rig.fix("web")
    assert world.actions == []
    issue = rig.issue("drift:web:exited")
    assert issue.state is IssueState.OPEN
    assert rig.intended("drift:web:exited").plan.startswith(
        "would restart then recreate web because web exited with code 1 (fix 1 of 5 allowed"
    )
    assert issue.attempts == []


def test_a_paused_service_is_left_to_a_human_unless_enforced():
    world = FakeWorld()
    world.run("web", status="paused")
    rig = Rig(world, desired(spec("web")))
    rig.fix("web")
    assert world.actions == []
    issue = rig.issue("drift:web:paused")
    assert issue.state is IssueState.NEEDS_HUMAN
    assert "enforce" in issue.resolution

    enforced = Rig(world, desired(spec("web", enforce=True)))
    enforced.fix("web")
    assert world.actions == [("unpause", "demo-web-1")]


def test_a_service_a_person_stopped_is_left_alone_until_they_start_it():
    world = FakeWorld()
    world.run("web", status="exited", exit_code=0)
    rig = Rig(world, desired(spec("web")))
    rig.signals.event("web", "kill")
    rig.signals.event("web", "die")
    rig.signals.event("web", "stop")
    rig.clock.advance(5)  # the operation settled
    rig.fix("web")
    assert world.actions == []
    issue = rig.issue("drift:web:exited")
    assert issue.state is IssueState.NEEDS_HUMAN and "stopped by a person" in issue.resolution
    rig.signals.event("web", "start")  # they start it again
    assert rig.issue("drift:web:exited").state is IssueState.OPEN


def test_a_persons_stop_is_theirs_even_when_a_worker_is_already_on_the_service():
    # docker stop sends kill, die, stop; the die may bring a worker before the stop arrives
    world = FakeWorld()
    world.run("web", status="exited", exit_code=0)
    rig = Rig(world, desired(spec("web")))
    stamped = rig.clock() - 0.01
    rig.pool.queue.add("web")
    assert rig.pool.queue.get() == "web"  # a worker has the service
    rig.signals.event("web", "stop", stamped)
    assert rig.records.stopped_by_person("web") == "stop"
    rig.clock.advance(5)
    rig.fix("web")
    assert world.actions == []
    assert rig.issue("drift:web:exited").state is IssueState.NEEDS_HUMAN


def test_the_events_of_the_controllers_own_fix_are_not_a_person():
    world = FakeWorld()
    world.run("web", status="exited", exit_code=1)
    rig = Rig(world, desired(spec("web")))
    original = world.restart
    inside: list[float] = []

    def restart_with_events(container_id, timeout):  # type: ignore[no-untyped-def]
        rig.clock.advance(0.5)
        rig.signals.event("web", "kill", rig.clock(), 15)  # delivered while it runs
        for action in ("die", "stop"):
            rig.signals.event("web", action, rig.clock())
        inside.append(rig.clock())
        original(container_id, timeout)
        rig.clock.advance(0.5)

    world.restart = restart_with_events  # type: ignore[method-assign]
    rig.fix("web")
    rig.signals.event("web", "create", inside[0])  # stamped inside, delivered late
    assert rig.records.stopped_by_person("web") == ""
    assert rig.records.operation("web", world.list_containers("demo")) == ""
    assert rig.issue("drift:web:exited").state is IssueState.RESOLVED
    rig.signals.event("web", "stop", rig.clock())  # after the fix: a person
    assert rig.records.stopped_by_person("web") == "stop"


def test_a_persons_signal_then_death_is_a_stop_even_without_a_stop_event():
    world = FakeWorld()
    world.run("web", status="exited", exit_code=143)
    rig = Rig(world, desired(spec("web")))
    rig.signals.event("web", "kill", rig.clock(), 15)
    rig.signals.event("web", "die", rig.clock())
    rig.clock.advance(RESTART_GRACE)  # no start followed: not a restart
    rig.fix("web")
    assert world.actions == []
    assert "stopped by a person" in rig.issue("drift:web:exited").resolution


def test_a_persons_restart_is_never_taken_for_a_stop_in_the_moment_between():
    # docker restart / docker compose restart: kill, die, stop, then start in one call
    world = FakeWorld()
    world.run("web", status="exited", exit_code=0)
    rig = Rig(world, desired(spec("web")))
    for action in ("kill", "die", "stop"):
        rig.signals.event("web", action, rig.clock(), 15 if action == "kill" else None)
    assert rig.records.restart_left("web") == pytest.approx(RESTART_GRACE)
    rig.sync()  # a pass in the gap records nothing
    assert rig.store.issues() == []
    rig.clock.advance(0.3)
    world.set("web", status="running")
    rig.signals.event("web", "start", rig.clock())
    assert rig.records.stopped_by_person("web") == "" and rig.records.restart_left("web") == 0
    rig.fix("web")
    assert world.actions == [] and rig.store.issues() == []


def test_a_pass_that_read_a_restarts_gap_before_its_start_was_read_records_nothing():
    # compose restart of two services: the events of one ask for a pass, which reads the
    # other exited in its gap; that other's start is read before the pass judges (it ends
    # the grace); the pass must not take what it read for a stop or a crash
    world = FakeWorld()
    world.run("web", status="exited", exit_code=0)
    rig = Rig(world, desired(spec("web")))
    for action in ("kill", "die", "stop"):
        rig.signals.event("web", action, rig.clock(), 15 if action == "kill" else None)
    observed = rig.observer.observe()  # the gap
    rig.clock.advance(0.05)
    world.set("web", status="running")
    rig.signals.event("web", "start", rig.clock())
    assert rig.records.restart_left("web") == 0  # the start ended the grace
    assert "web" in rig.signals.frozen(observed)
    rig.clock.advance(0.05)
    assert "web" not in rig.signals.frozen(rig.observer.observe())  # the pass after: fresh
    rig.fix("web")
    assert world.actions == [] and rig.store.issues() == []


def test_a_restart_whose_stop_timed_out_is_still_a_persons_restart():
    # under load the process outlives the stop's timeout: the engine says kill 15, kill 9,
    # die, stop, start; the die after the timeout's SIGKILL triggers a pass at once, before
    # the stop event is read: it must find the service in the person's operation
    world = FakeWorld()
    world.run("web", status="exited", exit_code=137)
    rig = Rig(world, desired(spec("web")))
    rig.signals.event("web", "kill", rig.clock(), 15)
    rig.signals.event("web", "kill", rig.clock(), 9)
    rig.signals.event("web", "die", rig.clock())
    assert rig.records.stopped_by_person("web") == "stop"
    rig.sync()  # the pass the death requested
    assert rig.store.issues() == []
    rig.signals.event("web", "stop", rig.clock())
    world.set("web", status="running")
    rig.signals.event("web", "start", rig.clock())
    rig.fix("web")
    assert world.actions == [] and rig.store.issues() == []


def test_a_persons_kill_alone_is_not_a_stop():
    world = FakeWorld()
    world.run("web", status="exited", exit_code=137)
    rig = Rig(world, desired(spec("web")))
    rig.signals.event("web", "kill", rig.clock(), 9)
    rig.signals.event("web", "die", rig.clock())
    assert rig.records.stopped_by_person("web") == ""


def test_the_grace_of_a_restart_counts_from_when_its_stop_was_read():
    # a busy machine delivers the stop event 2 s after the engine stamped it
    world = FakeWorld()
    world.run("web", status="exited", exit_code=0)
    rig = Rig(world, desired(spec("web")))
    stamped = rig.clock()
    rig.clock.advance(2.0)
    for action in ("kill", "die", "stop"):
        rig.signals.event("web", action, stamped, 15 if action == "kill" else None)
    assert rig.records.restart_left("web") == pytest.approx(RESTART_GRACE)
    rig.sync()
    assert rig.store.issues() == []


def test_a_persons_stop_that_no_start_follows_is_theirs_after_the_grace():
    world = FakeWorld()
    world.run("web", status="exited", exit_code=0)
    rig = Rig(world, desired(spec("web")))
    for action in ("kill", "die", "stop"):
        rig.signals.event("web", action, rig.clock(), 15 if action == "kill" else None)
    rig.sync()
    assert rig.store.issues() == []
    rig.clock.advance(RESTART_GRACE)
    rig.fix("web")
    assert world.actions == []
    issue = rig.issue("drift:web:exited")
    assert issue.state is IssueState.NEEDS_HUMAN and "stopped by a person" in issue.resolution


def test_a_crash_is_not_mistaken_for_a_person():
    world = FakeWorld()
    world.run("web", status="exited", exit_code=137)
    rig = Rig(world, desired(spec("web")))
    rig.signals.event("web", "kill")
    rig.signals.event("web", "die")
    rig.fix("web")
    assert world.actions == [("restart", "demo-web-1")]


def test_a_persons_compose_recreate_is_theirs_until_the_engine_shows_it_done():
    # docker compose up -d with a changed environment, as Compose 2.40 does it: the new
    # container created under a temporary name, the old one sent SIGTERM (its process
    # ignores it for the stop timeout), killed, removed, the new one renamed and started
    world = FakeWorld()
    world.run("web", config_hash="old")
    rig = Rig(world, desired(spec("web")))
    rig.sync()
    world.containers["new-id"] = container(
        "web", 1, id="new-id", name="0123456789ab_demo-web-1", status="created", config_hash="new"
    )
    rig.signals.event("web", "create", rig.clock())
    rig.signals.event("web", "kill", rig.clock(), 15)
    for _ in range(10):  # the 10 s stop timeout: passes and reconciles keep coming
        rig.clock.advance(1)
        rig.fix("web", horizon=0)
    del world.containers["web-1-id"]  # killed (SIGKILL), died, stopped, removed
    rig.signals.event("web", "kill", rig.clock(), 9)
    rig.signals.event("web", "die", rig.clock())
    rig.signals.event("web", "stop", rig.clock())
    rig.fix("web", horizon=0)
    world.containers["new-id"] = container("web", 1, id="new-id", config_hash="new")
    rig.signals.event("web", "rename", rig.clock())
    rig.signals.event("web", "start", rig.clock())
    rig.fix("web")
    assert world.actions == []  # zero actions, during and after
    assert [c.name for c in world.list_containers("demo")] == ["demo-web-1"]
    assert all(i.attempts == [] for i in rig.store.issues())


def test_an_operation_the_engine_still_shows_after_its_timeout_goes_to_a_human():
    world = FakeWorld()
    world.run("web", status="created")
    settings = RemediationSettings(log_quiet=0, operation_timeout=20.0)
    rig = Rig(world, desired(spec("web"), remediation=settings))
    rig.signals.event("web", "create", rig.clock())
    rig.fix("web", horizon=0)  # its passes record nothing while it is in progress
    rig.clock.advance(19)
    rig.fix("web", horizon=0)
    assert rig.store.issues() == [] and world.actions == []  # still a person's
    rig.clock.advance(2)
    rig.fix("web", horizon=0)
    issue = rig.issue("drift:web:exited")
    assert issue.state is IssueState.NEEDS_HUMAN and "abandoned" in issue.resolution
    assert world.actions == []


def test_an_engine_error_during_a_fix_is_recorded_as_error():
    world = FakeWorld()
    rig = Rig(world, desired(spec("web")))
    rig.sync()
    world.reachable = False
    result = rig.reconcile("web")  # cannot even observe: nothing is attempted
    assert isinstance(result, Failed)
    assert rig.issue("drift:web:missing").attempts == []
    world.reachable = True
    from controller.observe.gateway import ComposeError

    def failing_up(service, **kw):  # type: ignore[no-untyped-def]
        raise ComposeError("compose up exited 1: no such image")

    world.up = failing_up  # type: ignore[method-assign]
    rig.reconcile("web")
    issue = rig.issue("drift:web:missing")
    assert issue.attempts[0].outcome is Outcome.ERROR
    assert "no such image" in issue.attempts[0].detail


def test_workers_never_exceed_max_agents_nor_share_a_service():
    world = FakeWorld()
    services = [f"s{n}" for n in range(6)]
    for name in services:
        world.run(name, status="exited", exit_code=1)
    lock = threading.Lock()
    in_flight: list[str] = []
    peak = [0]
    original = world.restart

    def slow_restart(container_id: str, timeout: float) -> None:
        service = container_id.split("-")[0]
        with lock:
            assert service not in in_flight
            in_flight.append(service)
            peak[0] = max(peak[0], len(in_flight))
        time.sleep(0.05)  # hold the worker so that others could overlap if allowed
        with lock:
            in_flight.remove(service)
        original(container_id, timeout)

    world.restart = slow_restart  # type: ignore[method-assign]
    rig = Rig(world, desired(*(spec(s, min_ready=0.0) for s in services)), max_agents=2)
    rig.sync()
    rig.pool.start()
    for name in services:
        rig.pool.submit(name)
    assert rig.pool.queue.wait_idle(timeout=30)
    rig.pool.stop(timeout=5)
    assert 1 <= peak[0] <= 2
    assert all(rig.issue(f"drift:{s}:exited").state is IssueState.RESOLVED for s in services)


def test_a_runbook_runs_once_for_a_cause_several_services_report():
    world = FakeWorld()
    for name in ("db", "web", "worker"):
        world.run(name)
    state = desired(
        spec("db"),
        spec("web"),
        spec("worker"),
        remediation=RemediationSettings(runbooks=(RUNBOOK,), log_quiet=0),
    )
    rig = Rig(world, state)
    for service in ("web", "worker"):
        rig.log(service, "pg-database-missing", Category.DATABASE, captures={"database": "orders"})
    rig.fix("web")
    rig.clock.advance(1)
    rig.fix("worker")
    assert [a for a in world.actions if a[0] == "exec"] == [
        ("exec", "demo-db-1: createdb -U postgres orders")
    ]
    worker = rig.issue("log:worker:pg-database-missing:x")
    assert worker.attempts == []  # not a step of its own: the cause is gone, fixed with it
    assert worker.state is IssueState.RESOLVED
    assert worker.resolution == "fixed by runbook create-db (run for web)"


def test_two_services_reconciled_at_once_run_a_runbook_for_one_cause_once():
    world = FakeWorld()
    for name in ("db", "web", "worker"):
        world.run(name)
    state = desired(
        spec("db"),
        spec("web"),
        spec("worker"),
        remediation=RemediationSettings(runbooks=(RUNBOOK,), log_quiet=0),
    )
    rig = Rig(world, state)
    for service in ("web", "worker"):
        rig.log(service, "pg-database-missing", Category.DATABASE, captures={"database": "orders"})
    rig.sync()
    inside, release = threading.Event(), threading.Event()
    original = world.exec

    def slow_exec(*args, **kw):  # type: ignore[no-untyped-def]
        inside.set()
        assert release.wait(10)
        return original(*args, **kw)

    world.exec = slow_exec  # type: ignore[method-assign]
    first = threading.Thread(target=rig.reconcile, args=("web",))
    first.start()
    assert inside.wait(10)
    busy = rig.reconcile("worker")  # while web's step runs the runbook
    assert isinstance(busy, RequeueAfter) and "runs for the same cause elsewhere" in busy.why
    release.set()
    first.join(10)
    rig.clock.advance(1)
    rig.fix("worker")
    assert [a for a in world.actions if a[0] == "exec"] == [
        ("exec", "demo-db-1: createdb -U postgres orders")
    ]
    assert rig.issue("log:worker:pg-database-missing:x").attempts == []


# --- level-triggered: nothing waits, every fault counts at once -----------------------------


def test_while_a_step_is_proven_the_issue_says_verifying_until_and_no_worker_waits():
    world = FakeWorld()
    world.healthchecked.add("web")
    world.run("web", health="unhealthy")
    rig = Rig(world, desired(spec("web", check_health=True, min_ready=5.0)))
    rig.sync()
    result = rig.reconcile("web")  # restarted: the reconcile returns at once
    assert isinstance(result, RequeueAfter) and result.seconds <= 1.0
    issue = rig.issue("drift:web:unhealthy")
    view = rig.intended("drift:web:unhealthy")
    assert issue.state is IssueState.REMEDIATING and view.verifying_until is not None
    assert view.plan.startswith("verifying until")
    assert rig.records.step("web") is not None


def test_a_crash_during_the_proof_fails_the_step_at_once_and_the_next_fix_waits_its_backoff():
    world = FakeWorld()
    world.run("web", status="exited", exit_code=137)
    rig = Rig(world, desired(spec("web", min_ready=5.0, verify_timeout=60.0)))
    rig.sync()
    rig.reconcile("web")  # restart; proof pending
    rig.clock.advance(1)
    world.set("web", status="exited", exit_code=137)  # SIGKILLed again before proven
    rig.sync()
    result = rig.reconcile("web")
    issue = rig.issue("drift:web:exited")
    assert issue.attempts[0].outcome is Outcome.FAILURE  # 1 s after, not at the 60 s deadline
    assert "exited with code 137 after the fix" in issue.attempts[0].detail
    assert isinstance(result, RequeueAfter) and 9 <= result.seconds <= 10  # same fault: backoff
    rig.clock.advance(result.seconds)
    rig.fix("web")
    assert [a for a, _ in world.actions] == ["restart", "recreate"]
    assert rig.issue("drift:web:exited").state is IssueState.RESOLVED


def test_the_first_fix_of_a_new_fault_waits_no_backoff():
    # a runbook created the missing database; then the service is SIGKILLed
    world = FakeWorld()
    world.healthchecked.update({"db", "web"})
    world.run("db")
    world.run("web", health="unhealthy")
    state = desired(
        spec("db"),
        spec("web", check_health=True),
        remediation=RemediationSettings(runbooks=(RUNBOOK,), log_quiet=0),
    )
    rig = Rig(world, state)
    rig.log("web", "pg-database-missing", Category.DATABASE, captures={"database": "orders"})
    original = world.exec

    def exec_heals(*args, **kw):  # type: ignore[no-untyped-def]
        result = original(*args, **kw)
        world.set("web", health="healthy")
        return result

    world.exec = exec_heals  # type: ignore[method-assign]
    rig.fix("web")
    assert rig.issue("drift:web:unhealthy").state is IssueState.RESOLVED
    rig.clock.advance(2)
    world.set("web", status="exited", exit_code=137, health=None, finished_at=stamp(rig.clock()))
    rig.sync()
    rig.reconcile("web")
    assert world.actions[-1] == ("restart", "demo-web-1")  # at once: a new fault
    assert len([a for a in world.actions if a[0] == "exec"]) == 1  # no runbook re-run


def test_a_runbook_that_already_ran_for_the_cause_is_skipped_without_waiting():
    world = FakeWorld()
    for name in ("db", "web"):
        world.run(name)
    state = desired(
        spec("db"), spec("web"), remediation=RemediationSettings(runbooks=(RUNBOOK,), log_quiet=0)
    )
    rig = Rig(world, state)
    rig.log("web", "pg-database-missing", Category.DATABASE, captures={"database": "orders"})
    rig.fix("web")
    assert world.actions == [("exec", "demo-db-1: createdb -U postgres orders")]
    world.set(
        "web",
        status="exited",
        exit_code=1,
        started_at=stamp(rig.clock() - 1),
        finished_at=stamp(rig.clock()),
    )
    rig.fix("web")  # the same old finding: the runbook is not a step again
    assert world.actions[-1] == ("restart", "demo-web-1")
    assert len(world.actions) == 2


def policy_service(**fields: object):  # type: ignore[no-untyped-def]
    return spec("web", restart="unless-stopped", **fields)


def test_while_dockers_restart_policy_loops_a_service_the_controller_adds_no_restart():
    world = FakeWorld()
    world.run("web", status="restarting", exit_code=1, restart_count=3)
    rig = Rig(world, desired(policy_service(), remediation=RemediationSettings(budget=3)))
    result = rig.fix("web", horizon=0)
    assert world.actions == []
    assert isinstance(result, RequeueAfter)
    issue = rig.issue("drift:web:exited")  # restarting and exited are one incident
    assert "Docker's restart policy (unless-stopped) is restarting it" in (
        rig.intended("drift:web:exited").plan
    )
    for restarts in (4, 5, 6):  # Docker keeps restarting it, it keeps dying
        rig.clock.advance(3)
        world.set("web", status="running", restart_count=restarts)
        rig.fix("web", horizon=0)
        rig.clock.advance(2)
        world.set("web", status="restarting", restart_count=restarts)
        rig.fix("web", horizon=0)
    assert world.actions == []  # never a restart or recreate of its own
    (issue,) = [i for i in rig.store.issues() if i.source == "drift"]
    assert issue.occurrences == 1  # one incident, not one per cycle
    assert issue.state is IssueState.NEEDS_HUMAN
    assert "restarted web 3 times" in issue.resolution


def test_a_policy_service_docker_does_not_restart_is_restarted_by_the_controller():
    # `docker kill` (or the limit of on-failure:N): exited, and Docker leaves it so
    world = FakeWorld()
    rig = Rig(world, desired(policy_service()))
    world.run("web", status="exited", exit_code=137, finished_at=stamp(rig.clock()))
    result = rig.fix("web", horizon=0)
    assert world.actions == [] and isinstance(result, RequeueAfter)  # Docker's moment
    rig.clock.advance(2.5)
    rig.fix("web")
    assert world.actions == [("restart", "demo-web-1")]


def test_a_sigkill_from_a_person_is_a_crash_not_a_stop():
    world = FakeWorld()
    world.run("web", status="exited", exit_code=137)
    rig = Rig(world, desired(spec("web")))
    rig.signals.event("web", "kill", rig.clock(), 9)  # docker kill
    rig.signals.event("web", "die", rig.clock())
    rig.fix("web")
    assert world.actions == [("restart", "demo-web-1")]


def test_a_restart_waits_for_the_services_stop_grace_period():
    world = FakeWorld()
    world.run("web", status="exited", exit_code=1)
    timeouts: list[float] = []
    original = world.restart

    def recorded(container_id: str, timeout: float) -> None:
        timeouts.append(timeout)
        original(container_id, timeout)

    world.restart = recorded  # type: ignore[method-assign]
    Rig(world, desired(spec("web", stop_timeout=45.0))).fix("web")
    assert timeouts == [45.0]


def test_an_outdated_config_the_controller_may_not_apply_is_reported_never_paged():
    world = FakeWorld()
    world.run("web", config_hash="old")
    rig = Rig(world, desired(spec("web")), hashes={"web": "new"})
    rig.sync()
    result = rig.reconcile("web")
    assert world.actions == []
    issue = rig.issue("drift:web:outdated")
    assert issue.state is IssueState.OPEN  # not needs-human: web runs well
    view = rig.intended("drift:web:outdated")
    assert view.plan.startswith("reported: web runs a config older than the compose model")
    assert "docker compose up -d web" in view.plan
    assert getattr(result, "why", "") == "reported only"
