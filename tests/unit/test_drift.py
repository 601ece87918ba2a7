"""reconcile.diff: every kind of drift, and what counts as ready."""

from dataclasses import replace

from controller.drift import diff, service_drifts, service_ready, service_status
from controller.model import Category, DriftKind, ObservedState, ServiceRunState, Severity
from tests.fakes import container, desired, spec


def kinds(drifts):
    return [d.kind for d in drifts]


def test_a_running_service_as_declared_has_no_drift():
    assert service_drifts(spec("web"), [container("web")]) == []


def test_a_service_without_containers_is_missing():
    (drift,) = service_drifts(spec("web"), [])
    assert drift.kind is DriftKind.MISSING
    assert drift.severity is Severity.HIGH and drift.blocking


def test_an_exited_container_is_exited_with_its_code():
    (drift,) = service_drifts(spec("web"), [container("web", status="exited", exit_code=137)])
    assert drift.kind is DriftKind.EXITED
    assert "137" in drift.title
    assert drift.containers == ("demo-web-1",)


def test_an_oom_killed_container_is_critical_and_a_performance_issue():
    (drift,) = service_drifts(
        spec("web"), [container("web", status="exited", exit_code=137, oom_killed=True)]
    )
    assert drift.severity is Severity.CRITICAL
    assert drift.category is Category.PERFORMANCE
    assert "OOM" in drift.title


def test_a_created_but_never_started_container_counts_as_exited():
    assert kinds(service_drifts(spec("web"), [container("web", status="created")])) == [
        DriftKind.EXITED
    ]


def test_a_healthcheck_that_begins_to_fail_is_reported_before_the_verdict():
    checked = spec("web", check_health=True)
    failing = [container("web", health="healthy", failing_streak=1)]
    (drift,) = service_drifts(checked, failing)
    assert drift.kind is DriftKind.FAILING_HEALTHCHECK
    assert drift.severity is Severity.MEDIUM and drift.blocking
    assert "1 check(s) failed" in drift.detail
    said = [container("web", health="unhealthy", failing_streak=2, health_output="HTTP 503")]
    (verdict,) = service_drifts(checked, said)
    assert verdict.detail == "its healthcheck fails; last check said: HTTP 503"
    assert not service_ready(checked, failing)
    # the verdict replaces it: one drift per container state, never both
    verdict = [container("web", health="unhealthy", failing_streak=3)]
    assert kinds(service_drifts(checked, verdict)) == [DriftKind.UNHEALTHY]
    two = replace(checked, replicas=2)
    mixed = [*verdict, container("web", 2, health="healthy", failing_streak=1)]
    assert kinds(service_drifts(two, mixed)) == [DriftKind.UNHEALTHY]
    assert service_drifts(checked, [container("web", health="healthy")]) == []


def test_unhealthy_counts_only_when_health_is_checked():
    sick = [container("web", health="unhealthy")]
    assert kinds(service_drifts(spec("web", check_health=True), sick)) == [DriftKind.UNHEALTHY]
    assert service_drifts(spec("web", check_health=False), sick) == []


def test_restarting_paused_and_dead_are_their_own_kinds():
    assert kinds(service_drifts(spec("a"), [container("a", status="restarting")])) == [
        DriftKind.RESTARTING
    ]
    assert kinds(service_drifts(spec("a"), [container("a", status="paused")])) == [DriftKind.PAUSED]
    assert kinds(service_drifts(spec("a"), [container("a", status="dead")])) == [DriftKind.DEAD]


def test_a_first_death_under_a_restart_policy_is_not_called_a_loop():
    def title(restarts: int) -> str:
        restarting = [container("a", status="restarting", restart_count=restarts)]
        (drift,) = service_drifts(spec("a"), restarting)
        return drift.title

    assert title(0) == title(1) == "a died and is being restarted"
    assert title(2) == "a is restarting in a loop"


def test_too_few_and_too_many_replicas_are_replica_drift():
    one = [container("web", 1)]
    three = [container("web", n) for n in (1, 2, 3)]
    assert kinds(service_drifts(spec("web", replicas=2), one)) == [DriftKind.REPLICAS]
    assert kinds(service_drifts(spec("web", replicas=2), three)) == [DriftKind.REPLICAS]


def test_one_exited_replica_of_two_is_exited_not_a_replica_count_drift():
    pair = [container("web", 1), container("web", 2, status="exited", exit_code=1)]
    assert kinds(service_drifts(spec("web", replicas=2), pair)) == [DriftKind.EXITED]


def test_zero_replicas_declared_means_running_ones_are_drift():
    assert kinds(service_drifts(spec("web", replicas=0), [container("web")])) == [
        DriftKind.REPLICAS
    ]
    assert service_drifts(spec("web", replicas=0), []) == []


def test_optional_service_drifts_are_low_and_do_not_block():
    (drift,) = service_drifts(spec("web", required=False), [])
    assert drift.severity is Severity.LOW
    assert not drift.blocking


def test_a_completed_job_that_exited_zero_is_as_declared():
    job = spec("migrate", state=ServiceRunState.COMPLETED)
    assert service_drifts(job, [container("migrate", status="exited", exit_code=0)]) == []
    assert service_ready(job, [container("migrate", status="exited", exit_code=0)])


def test_a_failed_job_is_job_failed_and_a_job_never_run_is_missing():
    job = spec("migrate", state=ServiceRunState.COMPLETED)
    failed = [container("migrate", status="exited", exit_code=3)]
    assert kinds(service_drifts(job, failed)) == [DriftKind.JOB_FAILED]
    assert kinds(service_drifts(job, [])) == [DriftKind.MISSING]


def test_a_running_job_is_not_a_drift_but_not_ready_either():
    job = spec("migrate", state=ServiceRunState.COMPLETED)
    assert service_drifts(job, [container("migrate")]) == []
    assert not service_ready(job, [container("migrate")])


def test_health_still_starting_is_no_drift_but_not_ready():
    starting = [container("web", health="starting")]
    checked = spec("web", check_health=True)
    assert service_drifts(checked, starting) == []
    assert not service_ready(checked, starting)
    assert service_status(checked, ObservedState("demo", 0.0, tuple(starting))).condition == (
        "Progressing"
    )


def test_diff_covers_every_declared_service_and_ignores_one_off_containers():
    state = desired(spec("db"), spec("web"))
    observed = ObservedState(
        "demo", 0.0, (container("db"), container("web", oneoff=True, status="exited"))
    )
    drifts = diff(state, observed)
    assert [(d.service, d.kind) for d in drifts] == [("web", DriftKind.MISSING)]


def test_fingerprint_is_stable_per_service_and_kind():
    a = service_drifts(spec("web"), [container("web", status="exited", exit_code=1)])[0]
    b = service_drifts(spec("web"), [container("web", status="exited", exit_code=2)])[0]
    assert a.fingerprint == b.fingerprint == "drift:web:exited"


def test_an_image_healthcheck_counts_when_nothing_is_declared():
    undeclared = spec("web", check_health=None)
    sick = [container("web", health="unhealthy")]
    assert kinds(service_drifts(undeclared, sick)) == [DriftKind.UNHEALTHY]
    assert service_ready(undeclared, [container("web", health="healthy")], None)
    assert not service_ready(undeclared, [container("web", health="starting")], None)
    assert service_ready(undeclared, [container("web")], None)  # no healthcheck at all
    assert service_drifts(spec("web", check_health=False), sick) == []  # declared off
