"""A dependent's health verdict that predates its dependency's return. Pure, no I/O.

A healthcheck that failed while a dependency was down (a person stopped it, it crashed)
says the dependency was down, not that the dependent is broken: the verdict on the
dependent after the dependency is ready again is its next check. Docker needs one passing
check to call a container healthy again, so a dependent restarted before that check comes
is a fix for nothing (a false action). ``judged_before`` says when a service's health
drifts were last judged before one of its dependencies came back, and how long until its
next check is due; past that (checks that stall are their own drift) it says nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from controller.model import ContainerSnapshot, Drift, DriftKind

HEALTH_KINDS = frozenset({DriftKind.UNHEALTHY, DriftKind.FAILING_HEALTHCHECK})
SLACK = 1.0  # seconds a busy machine may add to a check's due time


def judged_before(
    drifts: Sequence[Drift],
    containers: Sequence[ContainerSnapshot],
    back_at: Mapping[str, float],
    now: float,
) -> tuple[str, float] | None:
    """``(dependency, seconds until the dependent's next check is due)`` when every drift
    is a health verdict and the newest check of a container it is about ended before that
    dependency was ready again (``back_at``: epoch s each dependency became ready); None
    when the verdict is newer, or the next check is overdue (then it stands)."""
    if not drifts or any(d.kind not in HEALTH_KINDS for d in drifts):
        return None
    checked = [c for c in containers if c.status.running and c.health_interval and c.last_check_at]
    if not checked:
        return None
    last = min(c.last_check_at for c in checked)  # the oldest verdict decides
    every = max(c.health_interval + c.health_timeout for c in checked) + SLACK
    waits = [
        (dep, back + every - now)
        for dep, back in sorted(back_at.items())
        if back >= last and back + every > now  # ready no earlier than that pass
    ]
    return max(waits, key=lambda w: w[1], default=None)
