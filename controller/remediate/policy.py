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

# A service is fixed only once it outlives the crash pattern it had: ready for as long as
# its runs lasted before they died, half that again and at least OUTLIVE_MARGIN more (a
# busy machine's jitter), plus Docker's next restart delay where a restart policy loops it.
# One crash since the service was last stable is held at most ONE_OFF_HOLD (a service
# SIGKILLed once after an hour is back, not looping); a second one proves a loop and is
# held for its whole length, up to the backoff reset (ready that long, it is stable).
OUTLIVE_MARGIN = 2.0
ONE_OFF_HOLD = 60.0
# Docker's restart manager waits 100 ms before restarting a container that died, doubling
# per death to 1 min, and starts again at 100 ms after a run of 10 s.
DOCKER_DELAY_FIRST = 0.1
DOCKER_DELAY_MAX = 60.0
DOCKER_DELAY_RESET = 10.0
KEEP_CRASHED_RUNS = 8


def docker_delay(crashes: int, lived: float) -> float:
    """Docker's wait before its next restart of a container whose runs lasted ``lived`` s
    and died ``crashes`` times in a row."""
    if crashes <= 0 or lived >= DOCKER_DELAY_RESET:
        return DOCKER_DELAY_FIRST
    return min(DOCKER_DELAY_FIRST * 2.0 ** min(crashes, 30), DOCKER_DELAY_MAX)


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
        if at - history.ready_since >= timedelta(seconds=self.backoff_reset):
            history.consecutive = 0
            history.next_allowed_at = None
            history.fault = ""
            self.stable_again(history)

    def crashed(self, history: ServiceHistory, run: str, lived: float) -> None:
        """A run of the service (``id@StartedAt``) crashed after ``lived`` seconds: part of
        its crash pattern since it was last stable, unless it lasted the backoff reset
        (then it was stable itself). Each run counts once."""
        if run in history.crashed_runs or lived < 0:
            return
        history.crashed_runs = [*history.crashed_runs, run][-KEEP_CRASHED_RUNS:]
        if lived >= self.backoff_reset:
            return
        history.crash_run = max(history.crash_run, lived)
        history.crashes += 1

    def crash_hold(self, history: ServiceHistory, restart_policy: bool) -> float:
        """How long the service must stay ready to have outlived its crash pattern (0: no
        crash since it was last stable): as long as its runs lasted, half that again and
        ``OUTLIVE_MARGIN`` at least, and, under a restart policy, Docker's next restart
        delay; at most ``ONE_OFF_HOLD`` after a single crash, and never more than the
        backoff reset."""
        if not history.crashes:
            return 0.0
        lived = history.crash_run
        hold = lived + max(OUTLIVE_MARGIN, lived / 2)
        if restart_policy:
            hold += docker_delay(history.crashes, lived)
        cap = ONE_OFF_HOLD if history.crashes == 1 else self.backoff_reset
        return min(hold, cap, self.backoff_reset)

    @staticmethod
    def stable_again(history: ServiceHistory) -> None:
        """The service has been ready for the backoff reset: its crash pattern is history."""
        history.crash_run = 0.0
        history.crashes = 0

    def person_acted(self, history: ServiceHistory) -> None:
        """A person started or recreated the service: a fresh start, a fresh budget."""
        history.steps.clear()
        history.consecutive = 0
        history.next_allowed_at = None
        history.exhausted_at = None
        history.fault = ""
        self.stable_again(history)

    def budget_left(self, history: ServiceHistory, now: float) -> int:
        return max(0, self.budget - self.steps_in_window(history, now))
