"""Which transitions a new snapshot of the issues holds, compared with the last one.

Pure: no clock but the one passed in, no I/O. An issue is told only while it is at least
``min_severity`` and only for the events asked for; its resolution is told only when an
earlier transition of it was, so nobody hears "resolved" about something they never
heard of. The first snapshot is a baseline: an issue already open before the notifier
started (restored from the issues file) was told, or not, by an earlier run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from controller.model import Issue, IssueState, NotifyEvent, NotifySettings, Severity


@dataclass(frozen=True, slots=True)
class Transition:
    """One change of one issue, with what a message about it needs."""

    event: NotifyEvent
    service: str
    issue_id: str
    severity: Severity
    title: str
    detail: str  # why: the issue's detail, or how it ended, or why a human is needed
    occurrence: int = 1  # > 1: it opened again


@dataclass(frozen=True, slots=True)
class _Seen:
    active: bool
    state: IssueState
    severity: Severity
    told: bool  # some transition of this issue was told since it last opened


class Tracker:
    """Remembers each issue's last state, severity and whether it was told."""

    def __init__(self, settings: NotifySettings, started_at: datetime) -> None:
        self._settings = settings
        self._started_at = started_at
        self._seen: dict[str, _Seen] = {}
        self._baseline = True

    def update(self, issues: Sequence[Issue]) -> list[Transition]:
        """The transitions to tell since the last call, in the snapshot's order."""
        told: list[Transition] = []
        seen: dict[str, _Seen] = {}
        for issue in issues:
            before = self._seen.get(issue.id)
            events = self._events(issue, before)
            loud = issue.severity.rank >= self._settings.min_severity.rank
            was_told = before.told if before is not None and before.active else False
            if before is None and self._baseline and issue.opened_at < self._started_at:
                was_told = loud and issue.active  # an earlier run's business
            for event in events:
                if event not in self._settings.events:
                    continue
                if event is NotifyEvent.RESOLVED and not was_told:
                    continue
                if event is not NotifyEvent.RESOLVED and not loud:
                    continue
                told.append(_transition(event, issue))
                was_told = True
            seen[issue.id] = _Seen(issue.active, issue.state, issue.severity, was_told)
        self._seen = seen
        self._baseline = False
        return told

    def _events(self, issue: Issue, before: _Seen | None) -> list[NotifyEvent]:
        if before is None and self._baseline and issue.opened_at < self._started_at:
            return []
        newly_open = issue.active and (before is None or not before.active)
        events: list[NotifyEvent] = []
        if newly_open:
            events.append(NotifyEvent.OPENED)
        if issue.state is IssueState.NEEDS_HUMAN and (
            newly_open or before is None or before.state is not IssueState.NEEDS_HUMAN
        ):
            events.append(NotifyEvent.NEEDS_HUMAN)
        if (
            issue.active
            and before is not None
            and before.active
            and issue.severity.rank > before.severity.rank
        ):
            events.append(NotifyEvent.ESCALATED)
        if not issue.active and before is not None and before.active:
            events.append(NotifyEvent.RESOLVED)
        return events


def _transition(event: NotifyEvent, issue: Issue) -> Transition:
    if event is NotifyEvent.RESOLVED or event is NotifyEvent.NEEDS_HUMAN:
        why = issue.resolution or issue.detail
    elif event is NotifyEvent.ESCALATED and issue.escalated_from is not None:
        why = f"severity {issue.escalated_from} -> {issue.severity}; {issue.detail}".rstrip("; ")
    else:
        why = issue.detail
    return Transition(
        event=event,
        service=issue.service,
        issue_id=issue.id,
        severity=issue.severity,
        title=issue.title,
        detail=why,
        occurrence=issue.occurrences,
    )
