"""The verdict on a change, pure: bad at once when it goes wrong, good after its window,
never blamed for what a person did, and the healthcheck's start period honoured."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from controller.model import (
    Category,
    Change,
    ChangeVerdict,
    Identity,
    Issue,
    IssueSource,
    IssueState,
    ProbeView,
    RollbackPolicy,
    Severity,
)
from controller.remediate.verdict import deadline, judge, judge_missing, telling
from tests.fakes import container, spec

T0 = datetime(2027, 1, 1, tzinfo=UTC)
BEFORE = Identity(config_hash="old", image_id="sha256:old")
AFTER = Identity(config_hash="new", image_id="sha256:new")


def change(**fields: object) -> Change:
    base = Change(
        id="c1",
        before=BEFORE,
        after=AFTER,
        by="a person",
        operation="op",
        seen_at=T0,
        started_at=T0,
        restarts={"web-1-id": 0},
    )
    return base.model_copy(update=fields)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def finding(severity: Severity, seen: float, **fields: object) -> Issue:
    issue = Issue(
        id="i",
        fingerprint="log:web:go-panic:x",
        env="dev",
        service="web",
        source=IssueSource.LOG,
        kind="log",
        category=Category.HEALTH,
        severity=severity,
        title="A Go program panicked",
        detail="panic: runtime error: invalid memory address",
        first_seen=at(seen),
        last_seen=at(seen),
        opened_at=at(seen),
    )
    return issue.model_copy(update=fields)


WEB = spec("web", check_health=True, rollback=RollbackPolicy(window=30.0))


def run(**fields: object):  # type: ignore[no-untyped-def]
    return container("web", **{"health": "healthy", **fields})


def judged(c: Change, now: float, *containers, findings=(), probe=None, person=False):  # type: ignore[no-untyped-def]
    return judge(
        c,
        WEB,
        containers or (run(),),
        probe,
        list(findings),
        at(now),
        hold=2.0,
        stopped_by_person=person,
    )


def test_a_replica_that_exits_makes_the_change_bad_at_once():
    verdict = judged(change(), 0.5, run(status="exited", exit_code=1, health=None))
    assert verdict.verdict is ChangeVerdict.BAD
    assert verdict.reason == "demo-web-1 exited with code 1"


def test_dockers_restart_of_a_replica_makes_it_bad_even_when_it_runs_again():
    verdict = judged(change(), 25.0, run(restart_count=1))
    assert verdict.verdict is ChangeVerdict.BAD
    assert "Docker restarted it (1 time(s))" in verdict.reason


def test_unhealthy_oom_and_a_failing_probe_are_bad():
    unhealthy = judged(change(), 3.0, run(health="unhealthy", health_output="no /tmp/ready"))
    assert unhealthy.reason == "demo-web-1 turned unhealthy (its check said: no /tmp/ready)"
    oom = judged(change(), 3.0, run(status="exited", oom_killed=True, exit_code=137))
    assert oom.reason == "demo-web-1 was OOM-killed"
    probe = judged(change(), 3.0, probe=ProbeView(False, "http 503"))
    assert probe.verdict is ChangeVerdict.BAD and probe.reason == "its probe fails: http 503"


def test_a_finding_of_the_declared_severity_since_the_change_is_bad_a_lesser_one_is_not():
    strict = replace(WEB, rollback=RollbackPolicy(window=30.0, severity=Severity.HIGH))
    issues = [
        finding(Severity.HIGH, 4.0),
        finding(Severity.MEDIUM, 5.0, fingerprint="log:web:m:x"),
        finding(Severity.CRITICAL, -60.0, fingerprint="log:web:old:x"),  # before the change
        finding(Severity.CRITICAL, 6.0, fingerprint="log:web:dep:x", caused_by=["db"]),
        finding(Severity.CRITICAL, 6.0, fingerprint="log:web:gone:x", state=IssueState.RESOLVED),
    ]
    told = telling(issues, strict, T0)
    assert [i.fingerprint for i in told] == ["log:web:go-panic:x"]
    verdict = judged(change(), 6.0, findings=told)
    assert verdict.verdict is ChangeVerdict.BAD
    assert verdict.reason.startswith("it logged A Go program panicked (high): panic: runtime")
    default = telling(issues, WEB, T0)  # critical by default: the panic (high) is not enough
    assert default == []


def test_ready_through_the_window_is_good_and_not_before():
    first = judged(change(), 1.0)
    assert first.verdict is ChangeVerdict.PENDING and first.ready_since == at(1.0)
    assert first.recheck == 30.0
    held = judged(change(ready_since=at(1.0)), 20.0)
    assert held.verdict is ChangeVerdict.PENDING and held.recheck == 11.0
    good = judged(change(ready_since=at(1.0)), 31.0)
    assert good.verdict is ChangeVerdict.GOOD
    assert good.reason == "every replica ready for 30 s"


def test_the_window_is_the_hold_at_least_30_s_unless_set():
    assert RollbackPolicy().window_for(2.0) == 30.0
    assert RollbackPolicy().window_for(45.0) == 45.0
    assert RollbackPolicy(window=5.0).window_for(45.0) == 5.0


def test_a_persons_stop_is_not_the_changes_fault_and_readiness_starts_its_window_over():
    # Docker 20.10 calls a container a person stopped "unhealthy" (its checks stopped
    # passing as it went down): that is the stop, not the change (the soak's false page)
    stopped = judged(
        change(ready_since=at(1.0)),
        10.0,
        run(status="exited", exit_code=143, health="unhealthy"),
        person=True,
    )
    assert stopped.verdict is ChangeVerdict.PENDING
    # the same container exited on its own is bad for its exit, never for its health
    exited = judged(change(), 10.0, run(status="exited", exit_code=3, health="unhealthy"))
    assert exited.reason == "demo-web-1 exited with code 3"
    # back from a person's restart, still starting: the window waits for it to be ready
    starting = judged(change(ready_since=at(1.0)), 12.0, run(health="starting"))
    assert starting.verdict is ChangeVerdict.PENDING and starting.ready_since is None


def test_never_ready_by_the_deadline_is_bad_and_the_start_period_extends_the_deadline():
    quick = replace(WEB, rollback=RollbackPolicy(window=30.0, deadline=20.0))
    slow = run(health="starting", health_interval=1.0, health_timeout=1.0, health_retries=2)
    assert deadline(quick, [slow]) == 20.0
    late = judge(change(), quick, [slow], None, [], at(21.0), hold=2.0, stopped_by_person=False)
    assert late.verdict is ChangeVerdict.BAD and late.reason == "not ready 20 s after the change"
    patient = replace(slow, health_start_period=60.0)
    assert deadline(quick, [patient]) == 66.0  # its start period, then every retry
    inside = judge(
        change(), quick, [patient], None, [], at(40.0), hold=2.0, stopped_by_person=False
    )
    assert inside.verdict is ChangeVerdict.PENDING  # a slow starter inside its start period


def test_a_declared_image_that_does_not_exist_is_bad_once_its_window_passed():
    missing = change(after=Identity(config_hash="new"), missing_image="app:9", started_at=None)
    assert judge_missing(missing, WEB, at(10.0), hold=2.0).verdict is ChangeVerdict.PENDING
    verdict = judge_missing(missing, WEB, at(30.0), hold=2.0)
    assert verdict.verdict is ChangeVerdict.BAD
    assert verdict.reason.startswith("its image app:9 does not exist here (30 s after")
