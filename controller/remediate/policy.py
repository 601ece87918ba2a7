"""The retry policy: backoff between fixes of an unstable service, and a budget per service.

Kubernetes' crash-loop numbers by default: the first fix of a fault comes at once; while
the service stays unstable each further fix of it waits twice as long as the one before
(10 s, 20 s, 40 s ... capped at 5 min), whichever rung of the ladder it is; being ready
for 10 min since the last fix makes it stable again. A different fault (another
fingerprint: the database a runbook created is there, then the API is SIGKILLed) is fixed
at once: its backoff starts afresh. Every fix
step counts against a budget (5 per hour by default); when it is spent the service needs a
human, and the controller keeps its hands off it until it recovers or a person acts.

The state lives in a ``ServiceHistory`` saved with the issues, so restarting the controller
does not reset loop protection. The functions here are pure: time comes in as an argument.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from controller.model import RemediationSettings, ServiceHistory, to_datetime


@dataclass(frozen=True, slots=True)
class Gate:
    allowed: bool
    wait_until: datetime | None = None  # backing off until then
    exhausted: str = ""  # why the budget is spent


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    budget: int = 5
    budget_window: float = 3600.0
    backoff_initial: float = 10.0
    backoff_max: float = 300.0
    backoff_reset: float = 600.0
    backoff_enabled: bool = True  # off in --once: a CI gate climbs without waiting

    @classmethod
    def of(cls, settings: RemediationSettings, backoff_enabled: bool = True) -> RetryPolicy:
        return cls(
            budget=settings.budget,
            budget_window=settings.budget_window,
            backoff_initial=settings.backoff_initial,
            backoff_max=max(settings.backoff_max, settings.backoff_initial),
            backoff_reset=settings.backoff_reset,
            backoff_enabled=backoff_enabled,
        )

    def backoff(self, consecutive: int) -> float:
        """The wait after the ``consecutive``-th fix of an unstable service (0 before any)."""
        if consecutive <= 0:
            return 0.0
        return min(self.backoff_initial * 2.0 ** min(consecutive - 1, 30), self.backoff_max)

    def steps_in_window(self, history: ServiceHistory, now: float) -> int:
        since = to_datetime(now) - timedelta(seconds=self.budget_window)
        history.steps = [t for t in history.steps if t > since]
        return len(history.steps)

    def gate(self, history: ServiceHistory, now: float, fault: str = "") -> Gate:
        """May the service be fixed now? The first fix of a new ``fault`` (another
        fingerprint than the steps so far were for) waits no backoff; the budget counts
        every step."""
        used = self.steps_in_window(history, now)
        if history.exhausted_at is not None or used >= self.budget:
            if history.exhausted_at is None:
                history.exhausted_at = to_datetime(now)
            minutes = self.budget_window / 60
            return Gate(
                False,
                exhausted=(
                    f"{used} fix step(s) in the last {minutes:g} min spent the budget of "
                    f"{self.budget}: needs a human (hands off until it recovers or a person "
                    "acts on it)"
                ),
            )
        wait = history.next_allowed_at
        new_fault = bool(fault) and fault != history.fault
        if self.backoff_enabled and not new_fault and wait is not None and wait > to_datetime(now):
            return Gate(False, wait_until=wait)
        return Gate(True)

    def record_step(self, history: ServiceHistory, now: float, fault: str = "") -> None:
        at = to_datetime(now)
        history.steps.append(at)
        if fault and fault != history.fault:  # a new fault: its own backoff, its own ladder
            history.fault = fault
            history.consecutive = 0
            history.tried = []
        history.consecutive += 1
        history.last_step_at = at
        history.ready_since = None

    def after_work(self, history: ServiceHistory, now: float) -> None:
        """A step ended (proven or not): the next step of this fault waits the backoff."""
        delay = self.backoff(history.consecutive)
        history.next_allowed_at = to_datetime(now + delay) if delay else None

    def observe(self, history: ServiceHistory, ready: bool, now: float) -> None:
        """A pass saw the service ready (or not): stability resets the backoff."""
        at = to_datetime(now)
        if not ready:
            history.ready_since = None
            return
        history.exhausted_at = None  # it recovered: the controller may act again later
        if history.ready_since is None:
            history.ready_since = at
        if history.consecutive and at - history.ready_since >= timedelta(
            seconds=self.backoff_reset
        ):
            history.consecutive = 0
            history.next_allowed_at = None
            history.fault = ""

    def person_acted(self, history: ServiceHistory) -> None:
        """A person started or recreated the service: a fresh start, a fresh budget."""
        history.steps.clear()
        history.consecutive = 0
        history.next_allowed_at = None
        history.exhausted_at = None
        history.fault = ""

    def budget_left(self, history: ServiceHistory, now: float) -> int:
        return max(0, self.budget - self.steps_in_window(history, now))
