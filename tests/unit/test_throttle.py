"""Backoff and budget per service (Kubernetes' crash-loop numbers by default), as pure
functions of a service's throttle: nothing given is changed, the state after is returned."""

from datetime import timedelta

from controller.model import Throttle, to_datetime
from controller.remediate.throttle import ThrottleRules

NOW = 1_800_000_000.0


def allowed(rules: ThrottleRules, throttle: Throttle, now: float, fault: str = "f") -> bool:
    permit, _ = rules.permit(throttle, now, fault)
    return not permit.exhausted and permit.wait_until is None


def steps(rules: ThrottleRules, throttle: Throttle, *times: float) -> Throttle:
    for at in times:
        throttle, _ = rules.step_taken(throttle, at, "f")
    return throttle


def test_backoff_is_zero_before_any_fix_then_ten_seconds_doubling_to_five_minutes():
    rules = ThrottleRules()
    assert [rules.backoff(n) for n in range(0, 8)] == [0, 10, 20, 40, 80, 160, 300, 300]


def test_the_first_fix_is_immediate_and_each_further_one_waits_longer():
    rules, throttle = ThrottleRules(), Throttle()
    waits = []
    now = NOW
    for _ in range(4):
        assert allowed(rules, throttle, now)
        throttle = rules.step_ended(steps(rules, throttle, now), now)
        permit, throttle = rules.permit(throttle, now, "f")
        assert permit.wait_until is not None and not permit.exhausted
        waits.append((permit.wait_until - to_datetime(now)).total_seconds())
        now = permit.wait_until.timestamp()
    assert waits == [10, 20, 40, 80]


def test_a_new_fault_waits_no_backoff_and_starts_its_own_count():
    rules = ThrottleRules()
    throttle = rules.step_ended(steps(rules, Throttle(), NOW), NOW)
    assert not allowed(rules, throttle, NOW + 1, "f")
    assert allowed(rules, throttle, NOW + 1, "another")
    after, new_fault = rules.step_taken(throttle, NOW + 1, "another")
    assert new_fault and after.consecutive == 1 and after.fault == "another"


def test_a_spent_budget_stops_all_fixes_with_a_reason_and_the_state_says_so():
    rules = ThrottleRules(budget=3, backoff_enabled=False)
    throttle = steps(rules, Throttle(), NOW, NOW + 1, NOW + 2)
    permit, after = rules.permit(throttle, NOW + 3, "f")
    assert "budget of 3" in permit.exhausted and "needs a human" in permit.exhausted
    assert after.exhausted_at is not None
    assert throttle.exhausted_at is None  # what it was given is unchanged


def test_fixes_older_than_the_window_leave_the_budget():
    rules = ThrottleRules(budget=2, budget_window=3600, backoff_enabled=False)
    throttle = steps(rules, Throttle(), NOW, NOW + 10)
    permit, throttle = rules.permit(throttle, NOW + 20, "f")
    assert permit.exhausted
    throttle, _ = rules.seen(throttle, ready=True, now=NOW + 30)  # recovered: hands back on
    assert not allowed(rules, throttle, NOW + 40)  # ... but the budget is still spent
    assert allowed(rules, throttle, NOW + 3601)  # the first fix left the window


def test_ten_minutes_ready_since_the_last_fix_make_the_service_stable_again():
    rules = ThrottleRules()
    throttle = rules.step_ended(steps(rules, Throttle(), NOW, NOW + 1, NOW + 2), NOW + 3)
    throttle, stable = rules.seen(throttle, ready=True, now=NOW + 10)
    throttle, stable = rules.seen(throttle, ready=True, now=NOW + 10 + 599)
    assert throttle.consecutive == 3 and not stable
    throttle, stable = rules.seen(throttle, ready=True, now=NOW + 10 + 600)
    assert stable and throttle.consecutive == 0 and throttle.next_step_at is None


def test_not_ready_in_between_restarts_the_stability_clock():
    rules = ThrottleRules()
    throttle = steps(rules, Throttle(), NOW)
    for at, ready in ((NOW + 10, True), (NOW + 300, False), (NOW + 400, True), (NOW + 700, True)):
        throttle, _ = rules.seen(throttle, ready=ready, now=at)
    assert throttle.consecutive == 1  # only 300 s ready in a row


def test_a_person_acting_gives_a_fresh_budget():
    rules = ThrottleRules(budget=1)
    throttle = steps(rules, Throttle(), NOW)
    assert not allowed(rules, throttle, NOW + 1)
    assert allowed(rules, rules.person_acted(throttle), NOW + 2)


def test_without_backoff_the_permit_ignores_the_wait_but_not_the_budget():
    rules = ThrottleRules(budget=2, backoff_enabled=False)
    throttle = rules.step_ended(steps(rules, Throttle(), NOW), NOW)
    assert throttle.next_step_at == to_datetime(NOW) + timedelta(seconds=10)
    assert allowed(rules, throttle, NOW)
    assert not allowed(rules, steps(rules, throttle, NOW), NOW)


def test_the_backoff_counts_from_when_the_step_before_began():
    # the kubelet counts from the last restart: a slow step adds no wait of its own, and a
    # service that lived past the backoff after its fix is fixed again at once
    rules = ThrottleRules()
    began = steps(rules, Throttle(), NOW)
    slow = rules.step_ended(began, NOW + 15)  # a recreate that took 15 s
    assert allowed(rules, slow, NOW + 15)
    quick = rules.step_ended(began, NOW + 1)
    permit, _ = rules.permit(quick, NOW + 1, "f")
    assert permit.wait_until == to_datetime(NOW + 10)
    assert allowed(rules, quick, NOW + 10)
