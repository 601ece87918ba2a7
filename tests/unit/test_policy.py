"""Backoff and budget (Kubernetes' numbers by default)."""

from controller.model import IssueState
from controller.remediate.policy import RetryPolicy


def test_backoff_starts_at_ten_seconds_doubles_and_caps_at_five_minutes():
    policy = RetryPolicy()
    assert [policy.backoff(n) for n in range(1, 8)] == [10, 20, 40, 80, 160, 300, 300]


def test_a_failure_within_budget_waits_out_the_backoff():
    verdict = RetryPolicy(max_attempts=3).after_failure(2, now=1000.0)
    assert verdict.state is IssueState.FAILED
    assert verdict.next_attempt_at == 1020.0


def test_a_spent_budget_hands_the_issue_to_a_human():
    verdict = RetryPolicy(max_attempts=3).after_failure(3, now=1000.0)
    assert verdict.state is IssueState.NEEDS_HUMAN
    assert verdict.next_attempt_at is None
    assert "budget" in verdict.reason


def test_without_backoff_the_next_attempt_may_come_at_once():
    verdict = RetryPolicy(backoff_enabled=False).after_failure(1, now=1000.0)
    assert verdict.next_attempt_at == 1000.0
