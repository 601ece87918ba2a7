"""How fast fix steps may come: backoff between steps of an unstable service, and a budget.

Kubernetes' crash-loop numbers by default: the first fix of a fault comes at once; while
the service stays unstable each further fix of it waits twice as long as the one before
(10 s, 20 s, 40 s ... capped at 5 min), counted from when the fix before it began (as the
kubelet counts from the last restart), whichever rung of the ladder it is; being ready for
10 min since the last fix makes it stable again. A different fault (another
fingerprint: the database a runbook created is there, then the API is SIGKILLed) is fixed
at once: its backoff starts afresh. Every fix step counts against a budget (5 per hour by
default); when it is spent the service needs a human, and the controller keeps its hands
off it until it recovers or a person acts.

Pure: each function takes a ``Throttle`` (the state, kept in the service's record by
``remediate.records``) and the time, and returns what to do and the state after it; the
caller keeps the result. Nothing here reads a clock or changes what it was given.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from controller.model import RemediationSettings, Throttle, to_datetime


@dataclass(frozen=True, slots=True)
class Permit:
    """Whether a step may be taken now: yes, not before ``wait_until``, or never (the
    budget is spent, ``exhausted`` says so to a person)."""

    wait_until: datetime | None = None
    exhausted: str = ""


@dataclass(frozen=True, slots=True)
class ThrottleRules:
    budget: int = 5
    budget_window: float = 3600.0
    backoff_initial: float = 10.0
    backoff_max: float = 300.0
    backoff_reset: float = 600.0
    backoff_enabled: bool = True  # off in --once: a CI gate climbs without waiting
    # on in --once: a crash that repeats the same way (exit code, time after start) ends
    # the fixing of that service at once, as `docker compose up --wait` fails it
    fail_fast: bool = False

    @classmethod
    def of(cls, settings: RemediationSettings, backoff_enabled: bool = True) -> ThrottleRules:
        return cls(
            budget=settings.budget,
            budget_window=settings.budget_window,
            backoff_initial=settings.backoff_initial,
            backoff_max=max(settings.backoff_max, settings.backoff_initial),
            backoff_reset=settings.backoff_reset,
            backoff_enabled=backoff_enabled,
            fail_fast=not backoff_enabled,
        )

    def backoff(self, consecutive: int) -> float:
        """The wait after the ``consecutive``-th fix of an unstable service (0 before any)."""
        if consecutive <= 0:
            return 0.0
        return min(self.backoff_initial * 2.0 ** min(consecutive - 1, 30), self.backoff_max)

    def in_window(self, throttle: Throttle, now: float) -> list[datetime]:
        """The steps that count against the budget at ``now``."""
        since = to_datetime(now) - timedelta(seconds=self.budget_window)
        return [t for t in throttle.steps if t > since]

    def budget_left(self, throttle: Throttle, now: float) -> int:
        return max(0, self.budget - len(self.in_window(throttle, now)))

    def permit(self, throttle: Throttle, now: float, fault: str) -> tuple[Permit, Throttle]:
        """May a step for ``fault`` be taken now? The first step of a new fault (another
        fingerprint than the steps so far were for) waits no backoff; the budget counts
        every step. The state after: the window trimmed, the budget marked spent."""
        steps = self.in_window(throttle, now)
        after = throttle.model_copy(update={"steps": steps})
        if throttle.exhausted_at is not None or len(steps) >= self.budget:
            if after.exhausted_at is None:
                after.exhausted_at = to_datetime(now)
            minutes = self.budget_window / 60
            reason = (
                f"{len(steps)} fix step(s) in the last {minutes:g} min spent the budget of "
                f"{self.budget}: needs a human (hands off until it recovers or a person acts "
                "on it)"
            )
            return Permit(exhausted=reason), after
        wait = throttle.next_step_at
        new_fault = bool(fault) and fault != throttle.fault
        if self.backoff_enabled and not new_fault and wait is not None and wait > to_datetime(now):
            return Permit(wait_until=wait), after
        return Permit(), after

    def step_taken(self, throttle: Throttle, now: float, fault: str) -> tuple[Throttle, bool]:
        """A step for ``fault`` begins: it counts from now. True when it is a new fault
        (its own backoff and ladder start afresh)."""
        at = to_datetime(now)
        new_fault = bool(fault) and fault != throttle.fault
        return (
            throttle.model_copy(
                update={
                    "steps": [*throttle.steps, at],
                    "fault": fault if new_fault else throttle.fault,
                    "consecutive": (0 if new_fault else throttle.consecutive) + 1,
                    "last_step_at": at,
                    "ready_since": None,
                }
            ),
            new_fault,
        )

    def step_ended(self, throttle: Throttle, now: float) -> Throttle:
        """A step ended (proven or not): the next step of this fault waits the backoff,
        counted from when this one began (as the kubelet counts from the last restart: a
        slow recreate is no reason to wait longer, a service that crashed a minute after
        its fix is restarted at once)."""
        delay = self.backoff(throttle.consecutive)
        began = throttle.last_step_at.timestamp() if throttle.last_step_at else now
        return throttle.model_copy(
            update={"next_step_at": to_datetime(began + delay) if delay else None}
        )

    def seen(self, throttle: Throttle, ready: bool, now: float) -> tuple[Throttle, bool]:
        """A pass saw the service ready (or not). True when it has now been ready for the
        backoff reset: stable again, the backoff starts afresh."""
        at = to_datetime(now)
        if not ready:
            return throttle.model_copy(update={"ready_since": None}), False
        since = throttle.ready_since or at
        after = throttle.model_copy(update={"exhausted_at": None, "ready_since": since})
        if at - since < timedelta(seconds=self.backoff_reset):
            return after, False
        return after.model_copy(update={"consecutive": 0, "next_step_at": None, "fault": ""}), True

    @staticmethod
    def person_acted(throttle: Throttle) -> Throttle:
        """A person started or recreated the service: a fresh start, a fresh budget."""
        return Throttle(ready_since=throttle.ready_since, last_step_at=throttle.last_step_at)
