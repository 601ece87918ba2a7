"""What the controller says about what it sees: one log line per decision, and the time
it took to notice a fault (the ``time to detect`` histogram).

Used by the pass (drifts opened, seen again, recovered) and by the log pipeline (findings
opened, seen again, escalated); kept apart so the wiring reads as wiring.
"""

from __future__ import annotations

from collections.abc import Sequence

from controller.issues.store import SyncResult
from controller.logfields import of_issue
from controller.metrics import Metrics
from controller.model import ContainerSnapshot, DriftKind, IssueSource, ObservedState, engine_ns

_EXITS = frozenset({DriftKind.EXITED, DriftKind.DEAD, DriftKind.RESTARTING})
_HEALTH = frozenset({DriftKind.UNHEALTHY, DriftKind.FAILING_HEALTHCHECK})


def fault_started(kind: str, containers: Sequence[ContainerSnapshot]) -> float | None:
    """When the fault behind a drift began, as the engine recorded it (epoch seconds)."""
    stamps: list[str] = []
    if kind in _EXITS:
        stamps = [c.finished_at for c in containers if not c.status.running and c.finished_at]
    elif kind in _HEALTH:
        stamps = [c.failing_since for c in containers if c.failing_since]
    parsed = [t for t in (engine_ns(s) for s in stamps) if t is not None]
    if not parsed:
        return None
    # an exit: the latest one is this fault; a failing streak: the earliest start
    return (max(parsed) if kind in _EXITS else min(parsed)) / 1e9


def time_detection(
    metrics: Metrics, synced: SyncResult, observed: ObservedState, now: float
) -> None:
    """Time to detect, for drifts whose start the engine recorded (an exit, the first
    failing healthcheck of the current streak)."""
    for issue in (*synced.opened, *synced.reopened):
        started = fault_started(issue.kind, observed.of(issue.service))
        if started is not None:
            metrics.detected(issue.service, now - started)


def log_drifts(result: SyncResult) -> None:
    """Drifts a pass opened, saw again after they were resolved, or saw end."""
    for issue in result.opened:
        of_issue(issue).warning(
            "{}: drift: {} [{} {}] issue {}",
            issue.service,
            issue.title,
            issue.severity,
            issue.kind,
            issue.id,
        )
    for issue in result.reopened:
        of_issue(issue).warning(
            "{}: drift again: {} (occurrence {}) issue {}",
            issue.service,
            issue.title,
            issue.occurrences,
            issue.id,
        )
    for issue in result.recovered:
        of_issue(issue).info(
            "{}: {}: {} issue {}", issue.service, issue.resolution, issue.title, issue.id
        )


def log_findings(metrics: Metrics, result: SyncResult, now: float) -> None:
    """Findings that opened, came back or escalated an issue: logged, and timed from the
    log line to the store."""
    for issue in (*result.opened, *result.reopened):  # from the line to the store
        if issue.source is not IssueSource.PREDICT:  # a forecast is no fault yet
            metrics.detected(issue.service, now - issue.last_seen.timestamp())
    for issue in result.opened:
        if issue.while_starting or issue.clients_left:
            why = (
                f"while {', '.join(issue.while_starting)} was starting (expected until it is ready)"
                if issue.while_starting
                else f"when its client {', '.join(issue.clients_left)} went away (expected)"
            )
            of_issue(issue).info(
                "{}: log: {} [{} {}] issue {}, {}: {}",
                issue.service,
                issue.title,
                issue.severity,
                issue.category,
                issue.id,
                why,
                issue.detail,
            )
            continue
        of_issue(issue).warning(
            "{}: {}: {} [{} {}] issue {}: {}",
            issue.service,
            "foresight" if issue.source is IssueSource.PREDICT else "log",
            issue.title,
            issue.severity,
            issue.category,
            issue.id,
            issue.detail,
        )
    for issue in result.reopened:
        of_issue(issue).warning(
            "{}: log error again: {} issue {}", issue.service, issue.title, issue.id
        )
    for issue in result.recovered:  # forecasts and precursor warnings that ended
        of_issue(issue).info(
            "{}: {}: {} issue {}", issue.service, issue.resolution, issue.title, issue.id
        )
    outlived = {i.id for i in result.outlived}
    for issue in result.outlived:
        of_issue(issue).warning(
            # what it waited for is ready for the grace, or at fault (crashed, unhealthy:
            # the issue then links to that one's), or its client left long before: either
            # way no start and no client leaving explains it now
            "{}: {} is logged while what it waited for is no longer starting (nor a client "
            "leaving), severity {} -> {} issue {}",
            issue.service,
            issue.title,
            issue.escalated_from,
            issue.severity,
            issue.id,
        )
    for issue in (i for i in result.escalated if i.id not in outlived):
        of_issue(issue).warning(
            "{}: {} repeats: severity {} -> {} issue {}",
            issue.service,
            issue.title,
            issue.escalated_from,
            issue.severity,
            issue.id,
        )
