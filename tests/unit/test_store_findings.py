"""Log findings in the issue store: dedupe, samples, escalation, expiry."""

from controller.issues.findings import KEEP_SAMPLES
from controller.issues.store import IssueStore
from controller.model import Category, DetectionSettings, Finding, IssueState, Severity
from tests.fakes import FakeClock

T = 1_800_000_000.0


def finding(ts: float, evidence: str = "boom", severity: Severity = Severity.HIGH) -> Finding:
    return Finding(
        service="web",
        container="demo-web-1",
        ts=ts,
        kind="log",
        pattern_id="conn-refused",
        category=Category.CONNECTION,
        severity=severity,
        title="Connection refused by a peer service",
        fingerprint="log:web:conn:1",
        evidence=evidence,
        line=evidence,
        hint="check it",
        suggested="none",
    )


SETTINGS = DetectionSettings(escalate_after=5, escalate_window=60.0, resolve_after_quiet=300.0)


def test_repeated_findings_are_one_issue_with_count_times_and_bounded_samples():
    store = IssueStore("dev", FakeClock(T))
    result = store.record_findings([finding(T + n, f"boom {n % 4}") for n in range(4)], SETTINGS)
    (issue,) = store.issues()
    assert [i.id for i in result.opened] == [issue.id]
    assert issue.count == 4 and issue.source == "log" and issue.kind == "log"
    assert issue.pattern_id == "conn-refused" and issue.hint == "check it"
    assert (issue.last_seen - issue.first_seen).total_seconds() == 3
    assert len(issue.samples) == KEEP_SAMPLES
    assert not issue.blocking  # high, not critical


def test_n_occurrences_within_the_window_raise_severity_one_level():
    store = IssueStore("dev", FakeClock(T))
    result = store.record_findings([finding(T + n) for n in range(5)], SETTINGS)
    (issue,) = store.issues()
    assert issue.severity is Severity.CRITICAL
    assert issue.escalated_from is Severity.HIGH
    assert issue.blocking  # critical now
    assert [i.id for i in result.escalated] == [issue.id]
    store.record_findings([finding(T + n) for n in range(5, 20)], SETTINGS)
    assert store.issues()[0].severity is Severity.CRITICAL  # one level, once


def test_the_same_count_spread_over_more_than_the_window_does_not_escalate():
    store = IssueStore("dev", FakeClock(T))
    store.record_findings([finding(T + 30 * n) for n in range(5)], SETTINGS)
    (issue,) = store.issues()
    assert issue.severity is Severity.HIGH and issue.escalated_from is None


def test_a_log_issue_not_seen_for_the_quiet_period_is_resolved_and_reopens_later():
    clock = FakeClock(T)
    store = IssueStore("dev", clock)
    store.record_findings([finding(T)], SETTINGS)
    clock.advance(299)
    assert store.expire_log_issues(300) == []
    clock.advance(1)
    (expired,) = store.expire_log_issues(300)
    assert expired.state is IssueState.RESOLVED and "not seen for 300 s" in expired.resolution
    result = store.record_findings([finding(T + 400)], SETTINGS)
    assert len(result.reopened) == 1
    assert store.issues()[0].occurrences == 2


def test_drift_passes_do_not_resolve_log_issues():
    store = IssueStore("dev", FakeClock(T))
    store.record_findings([finding(T)], SETTINGS)
    store.sync_drifts([], [])
    assert store.issues()[0].state is IssueState.OPEN
