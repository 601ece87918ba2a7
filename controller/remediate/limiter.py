"""The rate limiter: the one place where backoff and budget live, per service, persisted.

Two kinds of waiting, both here:

- **between fix steps** (``RetryPolicy``, Kubernetes' crash-loop numbers): the first step
  of an incident comes at once, each further step of an unstable service waits twice as
  long (10 s, 20 s ... 5 min), ready for 10 min resets it; a budget of steps per window,
  then a human. This state (``ServiceHistory``) is saved with the issues, so a restarted
  controller keeps it; a step is recorded *before* it is taken.
- **after a reconcile that failed** (the engine did not answer): the key is retried after
  0.5 s, doubling to 30 s, until a reconcile succeeds (controller-runtime's per-item
  exponential limiter). In memory only.

The work queue asks it how long a key waits (``WorkQueue.add_rate_limited``); the
reconciler asks it whether a step may be taken now (``gate``) and tells it what happened.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from controller.model import ServiceHistory, Verification, to_datetime
from controller.remediate.policy import Gate, RetryPolicy

T = TypeVar("T")
ERROR_RETRY_FIRST = 0.5
ERROR_RETRY_MAX = 30.0


class RateLimiter:
    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self._lock = threading.Lock()
        self._histories: dict[str, ServiceHistory] = {}
        self._failures: dict[str, int] = {}
        self.changes = 0  # moves whenever a history changed (the runtime saves then)

    # --- state --------------------------------------------------------------------------

    def edit(self, service: str, change: Callable[[ServiceHistory], T]) -> T:
        """Apply ``change`` to the service's history under the lock."""
        with self._lock:
            history = self._histories.setdefault(service, ServiceHistory())
            before = history.model_dump()
            result = change(history)
            if history.model_dump() != before:  # most calls only read: no rewrite of files
                self.changes += 1
            return result

    def history(self, service: str) -> ServiceHistory:
        return self.edit(service, lambda h: h.model_copy(deep=True))

    def snapshot(self) -> dict[str, ServiceHistory]:
        with self._lock:
            return {k: v.model_copy(deep=True) for k, v in sorted(self._histories.items())}

    def restore(self, histories: Mapping[str, ServiceHistory]) -> None:
        with self._lock:
            self._histories.update({k: v.model_copy(deep=True) for k, v in histories.items()})
            self.changes += 1

    # --- fix steps ----------------------------------------------------------------------

    def gate(self, service: str, now: float, fault: str = "") -> Gate:
        """May a fix step for ``fault`` be taken on ``service`` now?"""
        return self.edit(service, lambda h: self.policy.gate(h, now, fault))

    def budget_left(self, service: str, now: float) -> int:
        return self.edit(service, lambda h: self.policy.budget_left(h, now))

    def step_started(
        self, service: str, verification: Verification, now: float, fault: str = ""
    ) -> None:
        """A step for ``fault`` begins: it counts (budget, backoff) from now, even if the
        controller dies while it runs; its proof is pending."""

        def start(history: ServiceHistory) -> None:
            self.policy.record_step(history, now, fault)
            history.verifying = verification

        self.edit(service, start)

    def step_carried_out(self, service: str, verification: Verification) -> None:
        """The step's command returned: what it is to be proven against."""
        self.edit(service, lambda h: setattr(h, "verifying", verification))

    def step_ended(
        self, service: str, now: float, *, fixed: bool, fingerprints: Sequence[str] = ()
    ) -> None:
        """The step is proven (``fixed``) or failed: the next step waits the backoff; what
        fixed a fault is tried first next time, a failed rung is not tried again in this
        incident (it resets once every rung was tried)."""

        def end(history: ServiceHistory) -> None:
            verifying = history.verifying
            history.verifying = None
            self.policy.after_work(history, now)
            if verifying is None:
                return
            if fixed:
                history.tried = []
                for fp in fingerprints or verifying.addresses:
                    history.learned[fp] = verifying.action
            elif verifying.label not in history.tried:
                history.tried.append(verifying.label)

        self.edit(service, end)

    def new_ladder(self, service: str) -> None:
        """Every rung was tried: the ladder starts over (after the backoff)."""
        self.edit(service, lambda h: h.tried.clear())

    def crashed(self, service: str, runs: Sequence[tuple[str, float]]) -> None:
        """Runs of the service (``id@StartedAt``, seconds each lasted) that crashed: the
        incident's crash pattern, which a fix must outlive (``hold``)."""

        def count(history: ServiceHistory) -> None:
            for run, lived in runs:
                self.policy.crashed(history, run, lived)

        if runs:
            self.edit(service, count)

    def hold(self, service: str, stable_after: float, restart_policy: bool) -> float:
        """Seconds the service must stay ready for its incident to be over: ``stable_after``
        and long enough to outlive its crash pattern."""
        crash = self.edit(service, lambda h: self.policy.crash_hold(h, restart_policy))
        return max(stable_after, crash)

    def observe(
        self, service: str, ready: bool, now: float, stable_after: float, restart_policy: bool
    ) -> None:
        """A pass saw the service ready (or not): ready for its hold (``stable_after``, and
        its crash pattern outlived) ends an incident (its rungs and Docker's restarts
        counted afresh next time); ready for ``backoff_reset`` resets the backoff and
        forgets the crash pattern."""

        def seen(history: ServiceHistory) -> None:
            self.policy.observe(history, ready=ready, now=now)
            since = history.ready_since
            hold = max(stable_after, self.policy.crash_hold(history, restart_policy))
            if since is not None and now - since.timestamp() >= hold:
                history.tried = []
                history.policy_restarts_from = None

        self.edit(service, seen)

    def person_acted(self, service: str) -> None:
        """A person started or recreated the service: a fresh start, a fresh budget."""

        def fresh(history: ServiceHistory) -> None:
            self.policy.person_acted(history)
            history.tried = []
            history.verifying = None
            history.policy_restarts_from = None

        self.edit(service, fresh)

    def next_allowed(self, service: str) -> float | None:
        history = self.history(service)
        at = history.next_allowed_at
        return at.timestamp() if at is not None and self.policy.backoff_enabled else None

    # --- failed reconciles --------------------------------------------------------------

    def when_failed(self, key: str) -> float:
        """Seconds until a key whose reconcile failed is retried (doubling per failure)."""
        with self._lock:
            failures = self._failures.get(key, 0)
            self._failures[key] = failures + 1
        return min(ERROR_RETRY_FIRST * 2.0 ** min(failures, 16), ERROR_RETRY_MAX)

    def forget(self, key: str) -> None:
        """A reconcile succeeded: the key's error retries start afresh."""
        with self._lock:
            self._failures.pop(key, None)


def at(epoch: float) -> str:
    """A time for a person, in UTC (``12:04:05 UTC``)."""
    return to_datetime(epoch).strftime("%H:%M:%S UTC")
