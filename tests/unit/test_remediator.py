"""The remediator on a fake engine: ladders, verification, budget and backoff per service,
runbooks, the hook, people, dependencies, dry run, concurrency."""

import itertools
import json
import sys
import threading
import time
from pathlib import Path

from prometheus_client import CollectorRegistry

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
)
from controller.observe.observer import Observer
from controller.reconcile import diff, service_status
from controller.remediate.policy import RetryPolicy
from controller.remediate.remediator import Remediator
from controller.remediate.strategies import Actuator
from tests.fakes import FakeClock, FakeWorld, desired, spec


class Rig:
    def __init__(self, world: FakeWorld, state: DesiredState, **options: object) -> None:
        self.world, self.state = world, state
        self.clock = FakeClock()
        self.store = IssueStore(state.env, self.clock)
        self.registry = CollectorRegistry()
        self.observer = Observer(world, "demo", self.clock)
        self.remediator = Remediator(
            desired=state,
            store=self.store,
            observe=self.observer.observe,
            actuator=Actuator(
                world, world, state.services, self.observer.observe, state.remediation.hook
            ),
            policy=RetryPolicy.of(state.remediation),
            metrics=Metrics(self.registry, state.env),
            clock=self.clock,
            wait=self.clock.wait,
            **options,  # type: ignore[arg-type]
        )

    def sync(self) -> None:
        observed = self.observer.observe()
        self.store.sync_drifts(
            diff(self.state, observed),
            [service_status(s, observed) for s in self.state.services.values()],
        )

    def fix(self, service: str) -> None:
        self.sync()
        self.remediator.handle(service)

    def log(self, service: str, pattern_id: str, category: Category, **extra: object) -> None:
        finding = Finding(
            service=service,
            container=f"demo-{service}-1",
            ts=self.clock(),
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


def test_a_fix_that_does_not_verify_climbs_the_ladder_then_backs_off():
    world = FakeWorld()
    world.crashing.add("web")
    world.run("web", status="exited", exit_code=1)
    rig = Rig(world, desired(spec("web")))
    rig.fix("web")
    assert [a for a, _ in world.actions] == ["restart", "recreate"]
    issue = rig.issue("drift:web:exited")
    assert issue.state is IssueState.FAILED
    assert [a.outcome for a in issue.attempts] == [Outcome.FAILURE, Outcome.FAILURE]
    wait = issue.next_attempt_at.timestamp() - rig.clock()
    assert 19 <= wait <= 20  # two fix steps: the second backoff step, 20 s
    rig.fix("web")  # still backing off: nothing happens
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
    assert issue.state is IssueState.OPEN and issue.plan.startswith("backing off")
    rig.clock.advance(10)
    rig.fix("web")
    assert len(world.actions) == 2


def test_backoff_survives_a_restart_of_the_controller():
    world = FakeWorld()
    world.crashing.add("web")
    world.run("web", status="exited", exit_code=1)
    first = Rig(world, desired(spec("web")))
    first.fix("web")
    saved_issues, saved_histories = first.store.issues(), first.store.histories()
    second = Rig(world, desired(spec("web")))
    second.clock.now = first.clock.now
    second.store.restore(saved_issues)
    second.store.restore_histories(saved_histories)
    second.fix("web")
    assert len(world.actions) == 2  # no new fix: the backoff was kept
    second.clock.advance(20)
    second.fix("web")
    assert len(world.actions) == 4  # the backoff over, the next work item climbs again


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
    rig.fix("web")
    assert [a for a, _ in world.actions] == ["restart", "recreate"]
    world.set("web", status="exited", exit_code=1)
    rig.clock.advance(700)
    rig.fix("web")
    assert [a for a, _ in world.actions][-1] == "recreate"
    assert len(world.actions) == 3


def test_a_crash_with_an_import_error_is_not_restarted_but_handed_over():
    world = FakeWorld()
    world.run("web", status="exited", exit_code=1)
    rig = Rig(world, desired(spec("web")))
    rig.log("web", "py-module-not-found", Category.IMPORT)
    rig.fix("web")
    assert world.actions == []
    issue = rig.issue("drift:web:exited")
    assert issue.state is IssueState.NEEDS_HUMAN
    assert "import error that a restart cannot fix" in issue.resolution
    assert rig.issue("log:web:py-module-not-found:x").state is IssueState.NEEDS_HUMAN


def test_an_import_error_of_a_service_with_build_is_rebuilt():
    world = FakeWorld()
    world.run("web", status="exited", exit_code=1)
    rig = Rig(world, desired(spec("web", has_build=True)))
    rig.log("web", "py-module-not-found", Category.IMPORT)
    rig.fix("web")
    assert world.actions == [("rebuild", "web")]


RUNBOOK = Runbook(
    name="create-db",
    pattern="pg-database-missing",
    step=RunbookStep(kind="exec", service="db", argv=("createdb", "-U", "postgres", "{database}")),
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
        kind="hook",
        argv=(sys.executable, "-c", f"import sys; open({str(out)!r}, 'w').write(sys.stdin.read())"),
    )
    world = FakeWorld()
    world.run("web", status="exited", exit_code=1)
    rig = Rig(world, desired(spec("web"), remediation=RemediationSettings(hook=hook, log_quiet=0)))
    rig.log("web", "env-var-missing", Category.CONFIG)
    rig.fix("web")
    payload = json.loads(out.read_text())
    assert payload["service"] == "web" and payload["fingerprint"] == "drift:web:exited"
    assert world.actions == []  # the hook replaced the hand-over; nothing else ran
    (attempt,) = rig.issue("drift:web:exited").attempts
    assert attempt.action == "hook"


def test_a_log_issue_acts_only_when_its_pattern_suggests_it_and_it_recurs():
    world = FakeWorld()
    world.run("web")
    rig = Rig(world, desired(spec("web")))
    rig.log("web", "python-traceback", Category.HEALTH, remediation="none")
    rig.fix("web")
    assert world.actions == []  # reported only
    rig.log("web", "gunicorn-worker-timeout", Category.PERFORMANCE, remediation="restart")
    rig.clock.advance(120)  # no longer recurring: left alone
    rig.fix("web")
    assert world.actions == []
    rig.log("web", "gunicorn-worker-timeout", Category.PERFORMANCE, remediation="restart")
    rig.fix("web")
    assert world.actions == [("restart", "demo-web-1")]
    assert rig.issue("log:web:gunicorn-worker-timeout:x").state is IssueState.RESOLVED


def test_a_fix_is_not_verified_while_the_triggering_error_recurs():
    world = FakeWorld()
    world.run("web")
    rig = Rig(world, desired(spec("web"), remediation=RemediationSettings(log_quiet=5)))
    rig.log("web", "gunicorn-worker-timeout", Category.PERFORMANCE, remediation="restart")
    rig.remediator._wait = lambda seconds: (  # type: ignore[method-assign]
        rig.clock.wait(seconds),
        rig.log("web", "gunicorn-worker-timeout", Category.PERFORMANCE, remediation="restart"),
    )[0]
    rig.fix("web")
    issue = rig.issue("log:web:gunicorn-worker-timeout:x")
    assert issue.attempts[0].outcome is Outcome.FAILURE
    assert "came back" in issue.attempts[0].detail


def test_an_error_logged_while_the_fix_runs_is_not_a_recurrence():
    # PostgreSQL logs a client's "database does not exist" while createdb is running
    world = FakeWorld()
    world.run("web")
    rig = Rig(world, desired(spec("web"), remediation=RemediationSettings(log_quiet=5)))
    rig.log("web", "gunicorn-worker-timeout", Category.PERFORMANCE, remediation="restart")
    original = world.restart

    def restart_while_a_client_still_fails(container_id, timeout):  # type: ignore[no-untyped-def]
        rig.clock.advance(1)
        rig.log("web", "gunicorn-worker-timeout", Category.PERFORMANCE, remediation="restart")
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
    assert issue.waiting_for == ["db"]
    assert issue.state is IssueState.OPEN
    rig.fix("db")
    rig.fix("web")
    assert world.actions == [("restart", "demo-db-1"), ("up", "web")]


def test_dry_run_changes_nothing_and_records_the_plan():
    world = FakeWorld()
    world.run("web", status="exited", exit_code=1)
    rig = Rig(world, desired(spec("web")), dry_run=True)
    rig.fix("web")
    assert world.actions == []
    issue = rig.issue("drift:web:exited")
    assert issue.state is IssueState.OPEN
    assert issue.plan.startswith(
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
    rig.remediator.on_event("web", "kill")
    rig.remediator.on_event("web", "die")
    rig.remediator.on_event("web", "stop")
    rig.clock.advance(5)  # the operation settled
    rig.fix("web")
    assert world.actions == []
    issue = rig.issue("drift:web:exited")
    assert issue.state is IssueState.NEEDS_HUMAN and "stopped by a person" in issue.resolution
    rig.remediator.on_event("web", "start")  # they start it again
    assert rig.issue("drift:web:exited").state is IssueState.OPEN


def test_a_persons_stop_is_theirs_even_when_a_worker_is_already_on_the_service():
    # docker stop sends kill, die, stop; the die may bring a worker before the stop arrives
    world = FakeWorld()
    world.run("web", status="exited", exit_code=0)
    rig = Rig(world, desired(spec("web")))
    stamped = rig.clock() - 0.01
    rig.remediator.queue.add("web")
    assert rig.remediator.queue.get() == "web"  # a worker has the service
    rig.remediator.on_event("web", "stop", stamped)
    assert rig.remediator.activity.stopped_by_person("web") == "stop"
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
        for action in ("kill", "die", "stop"):
            rig.remediator.on_event("web", action, rig.clock())  # delivered while it runs
        inside.append(rig.clock())
        original(container_id, timeout)
        rig.clock.advance(0.5)

    world.restart = restart_with_events  # type: ignore[method-assign]
    rig.fix("web")
    rig.remediator.on_event("web", "create", inside[0])  # stamped inside, delivered late
    assert rig.remediator.activity.stopped_by_person("web") is None
    assert rig.remediator.activity.held_for("web") == 0
    assert rig.issue("drift:web:exited").state is IssueState.RESOLVED
    rig.remediator.on_event("web", "stop", rig.clock())  # after the fix: a person
    assert rig.remediator.activity.stopped_by_person("web") == "stop"


def test_a_crash_is_not_mistaken_for_a_person():
    world = FakeWorld()
    world.run("web", status="exited", exit_code=137)
    rig = Rig(world, desired(spec("web")))
    rig.remediator.on_event("web", "kill")
    rig.remediator.on_event("web", "die")
    rig.fix("web")
    assert world.actions == [("restart", "demo-web-1")]


def test_a_service_in_the_middle_of_a_compose_operation_is_held():
    world = FakeWorld()
    world.run("web", status="created")
    later: list[float] = []
    rig = Rig(world, desired(spec("web")), retry_after=later.append)
    rig.remediator.on_event("web", "create")
    rig.fix("web")
    assert world.actions == [] and later and later[0] > 0
    rig.clock.advance(later[0])
    rig.fix("web")
    assert world.actions == [("restart", "demo-web-1")]


def test_how_long_an_operation_is_left_to_settle_is_declared():
    world = FakeWorld()
    world.run("web", status="created")
    later: list[float] = []
    settings = RemediationSettings(log_quiet=0, settle=20.0)
    rig = Rig(world, desired(spec("web"), remediation=settings), retry_after=later.append)
    rig.remediator.on_event("web", "create")
    rig.fix("web")
    assert later == [20.0]
    rig.clock.advance(19)
    rig.fix("web")
    assert world.actions == []  # still settling
    rig.clock.advance(1)
    rig.fix("web")
    assert world.actions == [("restart", "demo-web-1")]


def test_an_engine_error_during_a_fix_is_recorded_as_error():
    world = FakeWorld()
    rig = Rig(world, desired(spec("web")))
    rig.sync()
    world.reachable = False
    rig.remediator.handle("web")  # cannot even observe: nothing is attempted
    assert rig.issue("drift:web:missing").attempts == []
    world.reachable = True
    from controller.observe.gateway import ComposeError

    def failing_up(service, **kw):  # type: ignore[no-untyped-def]
        raise ComposeError("compose up exited 1: no such image")

    world.up = failing_up  # type: ignore[method-assign]
    rig.remediator.handle("web")
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
    rig = Rig(world, desired(*(spec(s) for s in services)), max_agents=2)
    rig.sync()
    rig.remediator.start()
    for name in services:
        rig.remediator.submit(name)
    assert rig.remediator.queue.wait_idle(timeout=30)
    rig.remediator.stop(timeout=5)
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
    assert worker.state is IssueState.RESOLVED
    assert "already ran" in worker.attempts[0].detail
