"""Backoff and budget per service (Kubernetes' crash-loop numbers by default)."""

from datetime import timedelta

from controller.model import ServiceHistory, to_datetime
from controller.remediate.policy import RetryPolicy

NOW = 1_800_000_000.0


def test_backoff_is_zero_before_any_fix_then_ten_seconds_doubling_to_five_minutes():
    policy = RetryPolicy()
    assert [policy.backoff(n) for n in range(0, 8)] == [0, 10, 20, 40, 80, 160, 300, 300]


def test_the_first_fix_is_immediate_and_each_further_one_waits_longer():
    policy, history = RetryPolicy(), ServiceHistory()
    waits = []
    now = NOW
    for _ in range(4):
        assert policy.gate(history, now).allowed
        policy.record_step(history, now)
        policy.after_work(history, now)
        gate = policy.gate(history, now)
        assert not gate.allowed and gate.wait_until is not None
        waits.append((gate.wait_until - to_datetime(now)).total_seconds())
        now = gate.wait_until.timestamp()
    assert waits == [10, 20, 40, 80]


def test_a_spent_budget_stops_all_fixes_with_a_reason():
    policy, history = RetryPolicy(budget=3, backoff_enabled=False), ServiceHistory()
    for n in range(3):
        assert policy.gate(history, NOW + n).allowed
        policy.record_step(history, NOW + n)
    gate = policy.gate(history, NOW + 3)
    assert not gate.allowed
    assert "budget of 3" in gate.exhausted and "needs a human" in gate.exhausted
    assert history.exhausted_at is not None


def test_fixes_older_than_the_window_leave_the_budget():
    policy, history = (
        RetryPolicy(budget=2, budget_window=3600, backoff_enabled=False),
        ServiceHistory(),
    )
    policy.record_step(history, NOW)
    policy.record_step(history, NOW + 10)
    assert not policy.gate(history, NOW + 20).allowed
    policy.observe(history, ready=True, now=NOW + 30)  # recovered: hands back on ...
    assert not policy.gate(history, NOW + 40).allowed  # ... but the budget is still spent
    policy.observe(history, ready=True, now=NOW + 3600)
    assert policy.gate(history, NOW + 3601).allowed  # the first fix left the window


def test_ten_minutes_ready_since_the_last_fix_make_the_service_stable_again():
    policy, history = RetryPolicy(), ServiceHistory()
    for n in range(3):
        policy.record_step(history, NOW + n)
    policy.after_work(history, NOW + 3)
    policy.observe(history, ready=True, now=NOW + 10)
    policy.observe(history, ready=True, now=NOW + 10 + 599)
    assert history.consecutive == 3
    policy.observe(history, ready=True, now=NOW + 10 + 600)
    assert history.consecutive == 0 and history.next_allowed_at is None


def test_not_ready_in_between_restarts_the_stability_clock():
    policy, history = RetryPolicy(), ServiceHistory()
    policy.record_step(history, NOW)
    policy.observe(history, ready=True, now=NOW + 10)
    policy.observe(history, ready=False, now=NOW + 300)
    policy.observe(history, ready=True, now=NOW + 400)
    policy.observe(history, ready=True, now=NOW + 700)
    assert history.consecutive == 1  # only 300 s ready in a row


def test_a_person_acting_gives_a_fresh_budget():
    policy, history = RetryPolicy(budget=1), ServiceHistory()
    policy.record_step(history, NOW)
    assert not policy.gate(history, NOW + 1).allowed
    policy.person_acted(history)
    assert policy.gate(history, NOW + 2).allowed


def test_without_backoff_the_gate_ignores_the_wait_but_not_the_budget():
    policy, history = RetryPolicy(budget=2, backoff_enabled=False), ServiceHistory()
    policy.record_step(history, NOW)
    policy.after_work(history, NOW)
    assert history.next_allowed_at == to_datetime(NOW) + timedelta(seconds=10)
    assert policy.gate(history, NOW).allowed
    policy.record_step(history, NOW)
    assert not policy.gate(history, NOW).allowed
