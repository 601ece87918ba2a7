"""The issue store: dedupe, counts, the state machine, restore after a restart."""

from controller.issues.store import KEEP_RESOLVED, IssueStore
from controller.model import (
    Action,
    Category,
    Drift,
    DriftKind,
    IssueState,
    Outcome,
    ServiceCondition,
    ServiceStatus,
    Severity,
)
from tests.fakes import FakeClock


def status(name: str, condition: ServiceCondition) -> ServiceStatus:
    return ServiceStatus(
        name=name,
        condition=condition,
        required=True,
        replicas=1,
        containers=1,
        running=1,
        healthy=None,
        restarts=0,
    )


def drift(service: str = "web", kind: DriftKind = DriftKind.EXITED) -> Drift:
    return Drift(service, kind, Severity.HIGH, Category.HEALTH, f"{service} {kind}")


def test_the_same_drift_in_many_passes_is_one_issue_with_a_count():
    clock = FakeClock()
    store = IssueStore("dev", clock)
    first = store.sync_drifts([drift()], [])
    clock.advance(5)
    store.sync_drifts([drift()], [])
    (issue,) = store.issues()
    assert [i.id for i in first.opened] == [issue.id]
    assert issue.count == 2
    assert (issue.last_seen - issue.first_seen).total_seconds() == 5
    assert issue.state is IssueState.OPEN


def test_issue_ids_are_stable_and_distinct_per_env():
    a = IssueStore("dev").sync_drifts([drift()], []).opened[0]
    b = IssueStore("dev").sync_drifts([drift()], []).opened[0]
    c = IssueStore("test").sync_drifts([drift()], []).opened[0]
    assert a.id == b.id != c.id


def test_a_drift_that_disappears_is_resolved_as_recovered():
    store = IssueStore("dev", FakeClock())
    store.sync_drifts([drift()], [])
    result = store.sync_drifts([], [])
    (issue,) = store.issues()
    assert issue.state is IssueState.RESOLVED
    assert "recovered" in issue.resolution
    assert [i.id for i in result.recovered] == [issue.id]


def test_an_issue_being_remediated_is_left_to_its_worker():
    store = IssueStore("dev", FakeClock())
    store.sync_drifts([drift()], [])
    store.begin(["drift:web:exited"], Action.RESTART)
    store.sync_drifts([], [])
    assert store.issues()[0].state is IssueState.REMEDIATING


def test_a_resolved_issue_that_comes_back_reopens_with_a_fresh_budget():
    clock = FakeClock()
    store = IssueStore("dev", clock)
    store.sync_drifts([drift()], [])
    store.begin(["drift:web:exited"], Action.RESTART)
    store.finish(["drift:web:exited"], Outcome.FAILURE, "no", next_state=IssueState.FAILED)
    assert store.issues()[0].failed_attempts() == 1
    store.sync_drifts([], [])
    clock.advance(60)
    result = store.sync_drifts([drift()], [])
    (issue,) = store.issues()
    assert [i.id for i in result.reopened] == [issue.id]
    assert issue.state is IssueState.OPEN and issue.occurrences == 2
    assert issue.failed_attempts() == 0  # the budget counts from the reopening
    assert len(issue.attempts) == 1  # history is kept


def test_attempts_record_start_end_and_outcome():
    clock = FakeClock()
    store = IssueStore("dev", clock)
    store.sync_drifts([drift()], [])
    store.begin(["drift:web:exited"], Action.RESTART)
    clock.advance(3)
    store.finish(
        ["drift:web:exited"],
        Outcome.SUCCESS,
        "ok",
        next_state=IssueState.RESOLVED,
        reason="fixed by restart",
    )
    (issue,) = store.issues()
    (attempt,) = issue.attempts
    assert attempt.outcome is Outcome.SUCCESS and attempt.attempt == 1
    assert attempt.finished_at is not None
    assert (attempt.finished_at - attempt.started_at).total_seconds() == 3
    assert issue.state is IssueState.RESOLVED and issue.resolution == "fixed by restart"


def test_a_crash_loop_is_one_incident_until_the_service_stays_ready_for_its_hold():
    clock = FakeClock()
    store = IssueStore("dev", clock)
    holds = {"web": 10.0}
    for _ in range(5):  # exits, runs two seconds, exits again ...
        store.sync_drifts([drift()], [status("web", ServiceCondition.DEGRADED)], holds=holds)
        clock.advance(1)
        store.sync_drifts([], [status("web", ServiceCondition.READY)], holds=holds)
        clock.advance(2)
    (issue,) = store.issues()
    assert issue.state is IssueState.OPEN and issue.occurrences == 1 and issue.count == 5
    store.sync_drifts([], [status("web", ServiceCondition.READY)], holds=holds)
    clock.advance(10)
    result = store.sync_drifts([], [status("web", ServiceCondition.READY)], holds=holds)
    assert [i.fingerprint for i in result.recovered] == ["drift:web:exited"]


def test_needs_human_is_not_actionable():
    store = IssueStore("dev", FakeClock())
    store.sync_drifts([drift()], [])
    store.escalate(["drift:web:exited"], "paused by a person")
    assert store.actionable() == {}
    assert store.issues()[0].state is IssueState.NEEDS_HUMAN


def test_restore_keeps_a_step_being_proven_as_it_was():
    clock = FakeClock()
    old = IssueStore("dev", clock)
    old.sync_drifts([drift()], [])
    old.begin(["drift:web:exited"], Action.RESTART)
    new = IssueStore("dev", clock)
    new.restore(old.issues())
    (issue,) = new.issues()
    assert issue.state is IssueState.REMEDIATING  # the reconcile proves it, or fails it
    assert issue.attempts[-1].outcome is None


def test_restore_ignores_issues_of_another_env():
    old = IssueStore("test", FakeClock())
    old.sync_drifts([drift()], [])
    new = IssueStore("dev", FakeClock())
    new.restore(old.issues())
    assert new.issues() == []


def test_resolved_history_is_bounded():
    clock = FakeClock()
    store = IssueStore("dev", clock)
    for n in range(KEEP_RESOLVED + 20):
        store.sync_drifts([drift(f"s{n}")], [])
        clock.advance(1)
        store.sync_drifts([], [])
    assert len(store.issues()) == KEEP_RESOLVED
    assert "s0" not in {i.service for i in store.issues()}


def test_what_a_pass_sees_while_a_command_runs_on_a_service_is_not_recorded():
    store = IssueStore("dev", FakeClock())
    store.sync_drifts([drift("web", DriftKind.UNHEALTHY), drift("web", DriftKind.REPLICAS)], [])
    store.begin(["drift:web:unhealthy"], Action.RESTART)
    # mid-restart the container shows as exited, and the replica drift is not seen
    result = store.sync_drifts([drift("web", DriftKind.EXITED)], [], frozen={"web"})
    assert result.opened == [] and result.recovered == []
    states = {i.fingerprint: i.state for i in store.issues()}
    assert states == {
        "drift:web:unhealthy": IssueState.REMEDIATING,
        "drift:web:replicas": IssueState.OPEN,
    }


def test_a_new_fault_while_a_step_is_proven_is_recorded_at_once():
    store = IssueStore("dev", FakeClock())
    store.sync_drifts([drift("web", DriftKind.UNHEALTHY)], [])
    store.begin(["drift:web:unhealthy"], Action.RESTART)
    store.acted(["drift:web:unhealthy"], "restarted")
    result = store.sync_drifts([drift("web", DriftKind.EXITED)], [])
    assert [i.fingerprint for i in result.opened] == ["drift:web:exited"]
    unhealthy = store.get("drift:web:unhealthy")
    assert unhealthy is not None and unhealthy.state is IssueState.REMEDIATING
    assert unhealthy.attempts[-1].acted_at is not None


def test_a_quiet_pass_changes_nothing_to_save():
    store = IssueStore("dev", FakeClock())
    store.sync_drifts([drift()], [])
    store.sync_drifts([], [])  # the drift recovered: that is a change
    before = store.changes
    store.sync_drifts([], [])
    assert store.changes == before


def test_a_drifts_detail_is_redacted_before_it_is_kept():
    # a healthcheck's or exec probe's output is the container's text, as untrusted as its log
    store = IssueStore("dev", FakeClock())
    said = "its healthcheck fails; last check said: GET http://admin:s3cr3t@127.0.0.1/health"
    sick = Drift("web", DriftKind.UNHEALTHY, Severity.HIGH, Category.HEALTH, "web", said)
    store.sync_drifts([sick], [])
    store.sync_drifts([sick], [])  # the update path too
    (issue,) = store.issues()
    assert "s3cr3t" not in issue.detail and "admin:***@" in issue.detail
