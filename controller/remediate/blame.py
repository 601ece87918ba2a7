"""Which log errors explain a crash: blame only what does.

A config, import or auth error in a service's log means a restart cannot fix a crash,
but only if that error is why it crashed. One stale ``password authentication failed``
line from a client, logged while the service ran healthy, must never keep the service
down after an unrelated SIGKILL. So a log issue explains a crash only when its latest
finding came from the very container that died, during the run that died, shortly
(``WINDOW`` seconds) before it died, and that run never became ready: a start-up failure.
A run longer than ``STARTUP`` seconds was not failing to start, whether a pass saw it
ready or not.

The same evidence decides whether a crash is a dependency's fault
(``explained_crashes``, for ``causes.root_causes``): a crash explained by a connection
error is linked where that error is, one explained by a config error is its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from controller.model import (
    ContainerSnapshot,
    DriftKind,
    Issue,
    IssueSource,
    ObservedState,
    engine_ns,
    to_datetime,
)

WINDOW = 60.0  # seconds between the error and the death
STARTUP = 120.0  # a run longer than this was not failing to start, seen or not
SLACK = 1.0  # log and state time stamps come from different clocks of the engine


def _when(stamp: str) -> datetime | None:
    nanos = engine_ns(stamp) if stamp else None
    return None if nanos is None else to_datetime(nanos / 1e9)


def explains(
    issue: Issue,
    crashed: Sequence[ContainerSnapshot],
    never_ready: Callable[[ContainerSnapshot], bool],
) -> bool:
    """True when ``issue`` (a log issue) explains the death of one of ``crashed``."""
    return not why_not(issue, crashed, never_ready)


def why_not(
    issue: Issue,
    crashed: Sequence[ContainerSnapshot],
    never_ready: Callable[[ContainerSnapshot], bool],
) -> str:
    """Why ``issue`` explains none of the deaths of ``crashed``, in words ("" when it
    explains one): what a person reads when a service is restarted despite an error
    that a restart cannot fix."""
    slack = timedelta(seconds=SLACK)
    reasons: list[str] = []
    for container in crashed:
        if not issue.container or issue.container != container.name:
            reasons.append(f"last seen in {issue.container or 'no container'}")
            continue
        started, finished = _when(container.started_at), _when(container.finished_at)
        if started is None or finished is None:
            reasons.append(f"{container.name} has no start and end times")
            continue
        # a process that exits at once may be stamped finished before the engine stamps
        # its start (seen: 2 of 15 `false` runs, and an import error on a busy machine):
        # a run shorter than the engine's bookkeeping, not a run without times
        started = min(started, finished)
        seen = issue.last_seen
        if not started - slack <= seen <= finished + slack:
            reasons.append(
                f"last seen at {seen:%H:%M:%S.%f}, outside the run that died "
                f"({started:%H:%M:%S.%f} to {finished:%H:%M:%S.%f})"
            )
        elif (finished - seen).total_seconds() > WINDOW:
            reasons.append(f"last seen more than {WINDOW:g} s before it died")
        elif (finished - started).total_seconds() > STARTUP:
            reasons.append(f"the run lasted more than {STARTUP:g} s")
        elif not never_ready(container):
            reasons.append("the run was ready once")
        else:
            return ""
    return "; ".join(reasons) or "no container died"


_CRASH_KINDS = frozenset(
    {DriftKind.EXITED, DriftKind.RESTARTING, DriftKind.DEAD, DriftKind.JOB_FAILED}
)


def explained_crashes(
    issues: Sequence[Issue],
    observed: ObservedState,
    never_ready: Callable[[ContainerSnapshot], bool],
) -> dict[str, list[str]]:
    """Fingerprint of each active crash drift -> the fingerprints of the active log
    issues of the same service that explain it (``explains``); crashes none explains
    are left out."""
    logs: dict[str, list[Issue]] = {}
    for issue in issues:
        if issue.active and issue.source is IssueSource.LOG:
            logs.setdefault(issue.service, []).append(issue)
    found: dict[str, list[str]] = {}
    for issue in issues:
        if (
            not (issue.active and issue.source is IssueSource.DRIFT)
            or issue.kind not in _CRASH_KINDS
        ):
            continue
        crashed = [c for c in observed.of(issue.service) if c.status.down]
        causes = [
            i.fingerprint for i in logs.get(issue.service, []) if explains(i, crashed, never_ready)
        ]
        if crashed and causes:
            found[issue.fingerprint] = causes
    return found
