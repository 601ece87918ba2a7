"""The retry policy: exponential backoff between failed fixes, and a budget per issue.

Backoff follows Kubernetes' numbers by default (10 s, doubling, capped at 5 min). The budget
counts failed steps since the issue last opened; when it is spent the issue needs a human
and the controller stops touching it until it recovers or reopens.
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.model import IssueState


@dataclass(frozen=True, slots=True)
class Verdict:
    state: IssueState
    next_attempt_at: float | None
    reason: str


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 3
    backoff_initial: float = 10.0
    backoff_max: float = 300.0
    backoff_enabled: bool = True  # off in --once: a CI gate climbs the ladder without waiting

    def backoff(self, failed_attempts: int) -> float:
        """Delay before the next try after ``failed_attempts`` failures (>= 1)."""
        exponent = max(0, failed_attempts - 1)
        return min(self.backoff_initial * (2.0 ** min(exponent, 30)), self.backoff_max)

    def budget_left(self, failed_attempts: int) -> bool:
        return failed_attempts < self.max_attempts

    def after_failure(self, failed_attempts: int, now: float) -> Verdict:
        if not self.budget_left(failed_attempts):
            return Verdict(
                IssueState.NEEDS_HUMAN,
                None,
                f"{failed_attempts} fix attempt(s) failed; the budget is {self.max_attempts}: "
                "needs a human",
            )
        delay = self.backoff(failed_attempts) if self.backoff_enabled else 0.0
        return Verdict(
            IssueState.FAILED,
            now + delay,
            f"{failed_attempts} of {self.max_attempts} attempt(s) failed; next in {delay:.0f} s",
        )
