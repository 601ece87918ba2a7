"""Pure decisions of a reconcile: is a step proven, and which log error explains a crash."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from controller.model import (
    Action,
    Category,
    Issue,
    IssueSource,
    ServiceRunState,
    Severity,
    StepRecord,
    to_datetime,
)
from controller.remediate.blame import explains, why_not
from controller.remediate.verify import deadline, instance, prove
from tests.fakes import container, spec

NOW = to_datetime(1_800_000_000.0)


def step(*containers, hold: float = 2.0, until: float = 30.0) -> StepRecord:  # type: ignore[no-untyped-def]
    return StepRecord(
        action=Action.RESTART,
        label="restart",
        addresses=["drift:web:exited"],
        started_at=NOW - timedelta(seconds=1),
        finished_at=NOW,
        until=NOW + timedelta(seconds=until),
        hold=hold,
        instances=[instance(c) for c in containers],
    )


def test_a_step_is_proven_once_ready_for_its_hold():
    web = container("web")
    record = step(web)
    first = prove(record, spec("web"), [web], None, NOW)
    assert first.pending and first.ready_since == NOW and first.recheck == 2.0
    later = record.model_copy(update={"ready_since": NOW})
    assert prove(later, spec("web"), [web], None, NOW + timedelta(seconds=2)).proven


def test_a_container_that_dies_after_the_step_fails_it_at_once():
    web = container("web")
    record = step(web)
    dead = container("web", status="exited", exit_code=137)
    proof = prove(record, spec("web"), [dead], None, NOW + timedelta(seconds=1))
    assert proof.failed == "demo-web-1 exited with code 137 after the fix"


def test_a_container_docker_started_again_died_in_between():
    web = container("web")
    record = step(web)
    again = container("web", started_at="2026-01-01T00:00:09Z", restart_count=1)
    proof = prove(record, spec("web"), [again], None, NOW + timedelta(seconds=1))
    assert "died and was started again" in proof.failed


def test_oom_and_unhealthy_fail_it_too():
    web = container("web")
    record = step(web)
    oom = container("web", status="exited", exit_code=137, oom_killed=True)
    assert "OOM" in prove(record, spec("web"), [oom], None, NOW).failed
    sick = container("web", health="unhealthy")
    assert "unhealthy" in prove(record, spec("web", check_health=True), [sick], None, NOW).failed


def test_the_error_coming_back_fails_it():
    web = container("web")
    proof = prove(step(web), spec("web"), [web], None, NOW, recurred="conn refused")
    assert proof.failed == "the error came back: conn refused"


def test_not_ready_by_the_deadline_fails_it_with_what_was_seen():
    starting = container("web", health="starting")
    record = step(starting, until=5)
    pending = prove(record, spec("web", check_health=True), [starting], None, NOW)
    assert pending.pending and pending.recheck == 1.0
    late = prove(
        record, spec("web", check_health=True), [starting], None, NOW + timedelta(seconds=5)
    )
    assert late.failed.startswith("not verified in time")


def test_a_job_that_exits_0_after_being_started_is_proven():
    job = container("migrate", status="running")
    record = step(job, hold=0)
    done = container("migrate", status="exited", exit_code=0)
    job_spec = spec("migrate", state=ServiceRunState.COMPLETED)
    assert prove(record, job_spec, [done], None, NOW).proven
    failed = container("migrate", status="exited", exit_code=2)
    assert prove(record, job_spec, [failed], None, NOW).failed


def log_issue(container_name: str, seconds_before: float, category: Category) -> Issue:
    at = NOW - timedelta(seconds=seconds_before)
    return Issue(
        id="x",
        fingerprint="log:web:e:x",
        env="dev",
        service="web",
        source=IssueSource.LOG,
        kind="log",
        category=category,
        severity=Severity.HIGH,
        title="e",
        first_seen=at,
        last_seen=at,
        opened_at=at,
        container=container_name,
    )


def crashed(started_before: float):  # type: ignore[no-untyped-def]
    started = (NOW - timedelta(seconds=started_before)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    finished = NOW.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return container("web", status="exited", started_at=started, finished_at=finished)


def test_an_error_of_the_run_that_died_at_start_explains_the_crash():
    issue = log_issue("demo-web-1", 2, Category.AUTH)
    assert explains(issue, [crashed(5)], never_ready=lambda c: True)


def test_a_run_the_engine_stamped_finished_before_started_is_an_instant_one():
    """A process that exits at once may be stamped finished before the engine stamps its
    start (2 of 15 runs of `false` on this machine; an import error on a busy CI one,
    which was then restarted in a loop): its error still explains its death."""
    issue = log_issue("demo-web-1", 0.5, Category.IMPORT)
    at = (NOW - timedelta(seconds=0.2)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    later = (NOW - timedelta(seconds=0.1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    quick = container("web", status="exited", started_at=later, finished_at=at)
    assert why_not(issue, [quick], never_ready=lambda c: True) == ""


def test_an_error_of_a_run_that_was_ready_does_not():
    issue = log_issue("demo-web-1", 2, Category.AUTH)
    assert not explains(issue, [crashed(5)], never_ready=lambda c: False)


def test_an_error_long_before_the_death_or_before_the_run_or_of_another_container_does_not():
    never = lambda c: True  # noqa: E731
    assert not explains(log_issue("demo-web-1", 90, Category.AUTH), [crashed(100)], never)
    assert not explains(log_issue("demo-web-1", 20, Category.AUTH), [crashed(5)], never)
    assert not explains(log_issue("demo-web-2", 2, Category.AUTH), [crashed(5)], never)


def test_a_long_run_was_not_failing_to_start_even_if_never_seen_ready():
    assert not explains(log_issue("demo-web-1", 2, Category.AUTH), [crashed(600)], lambda c: True)


def test_why_an_error_does_not_explain_a_crash_is_said_in_words():
    never = lambda c: True  # noqa: E731
    assert why_not(log_issue("demo-web-1", 2, Category.AUTH), [crashed(5)], never) == ""
    assert "the run was ready once" in why_not(
        log_issue("demo-web-1", 2, Category.AUTH), [crashed(5)], lambda c: False
    )
    assert "outside the run that died" in why_not(
        log_issue("demo-web-1", 20, Category.AUTH), [crashed(5)], never
    )
    assert "last seen in demo-web-2" in why_not(
        log_issue("demo-web-2", 2, Category.AUTH), [crashed(5)], never
    )
    assert "more than 120 s" in why_not(
        log_issue("demo-web-1", 2, Category.AUTH), [crashed(600)], never
    )


def test_an_image_healthcheck_gets_the_time_of_its_first_verdict():
    now = datetime(2026, 12, 2, tzinfo=UTC)
    slow = container(
        "web",
        health="starting",
        health_interval=30.0,
        health_timeout=5.0,
        health_start_period=120.0,
        health_retries=3,
    )
    undeclared = spec("web", check_health=None, verify_timeout=15.0)
    first_verdict = 120 + (30 + 5) * (3 + 1) + 5  # start period, then retries + 1 checks
    assert deadline(undeclared, 2.0, now, [slow]) == now + timedelta(seconds=first_verdict)
    assert deadline(undeclared, 2.0, now, [container("web")]) == now + timedelta(seconds=15)
    declared = spec("web", check_health=True, verify_timeout=15.0)  # compose's own timing
    assert deadline(declared, 2.0, now, [slow]) == now + timedelta(seconds=15)
