"""What a log finding does to its issue: the fields of a new one, the counting of a
repeat, and escalation of an error that repeats too often in a window.

The issue store owns the issues and their states; this module knows what a log issue
holds. Times are the log lines' own, so reading an old log does not look like a burst.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta
from typing import Any

from controller.model import (
    DetectionSettings,
    Finding,
    Issue,
    IssueSource,
    Severity,
    to_datetime,
)

KEEP_SAMPLES = 3  # distinct evidence samples kept per log issue
KEEP_NAMED = 8  # distinct hosts and ports its errors named, newest last
_NEXT_SEVERITY = {
    Severity.LOW: Severity.MEDIUM,
    Severity.MEDIUM: Severity.HIGH,
    Severity.HIGH: Severity.CRITICAL,
}


def new_issue_fields(finding: Finding) -> dict[str, Any]:
    """The fields of the issue a finding opens (a log issue blocks only while critical)."""
    # an error logged while a dependency it is about was starting, or when a client of it
    # left, is expected: low
    severity = Severity.LOW if expected(finding) else finding.severity
    return {
        "source": finding.source,
        "kind": finding.kind,
        "pattern_id": finding.pattern_id,
        "category": finding.category,
        "severity": severity,
        # a critical log error blocks convergence; what is coming (a precursor) never does
        "blocking": severity is Severity.CRITICAL and finding.source is not IssueSource.PREDICT,
        "title": finding.title,
        "detail": finding.line,
        "hint": finding.hint,
        "suggested": finding.suggested,
        "samples": [finding.evidence],
        "captures": dict(finding.captures),
        "container": finding.container,
        "named": list(finding.named),
        "while_starting": list(finding.while_starting),
        "clients_left": left_at(finding),
    }


def expected(finding: Finding) -> bool:
    """Whether a start or a client leaving explains the finding's error."""
    return bool(finding.while_starting or finding.clients_left)


def left_at(finding: Finding) -> dict[str, datetime]:
    """When each client whose leaving explains the finding left."""
    return {client: to_datetime(at) for client, at in finding.clients_left.items()}


def count_repeat(issue: Issue, finding: Finding, at: datetime) -> None:
    """One more sighting of ``issue``'s error: its count, newest line and samples."""
    issue.count += 1
    if at >= issue.last_seen:
        issue.container = finding.container
    issue.last_seen = max(issue.last_seen, at)
    issue.detail = finding.line
    if finding.captures:
        issue.captures = dict(finding.captures)
    if finding.evidence not in issue.samples:
        issue.samples = [*issue.samples, finding.evidence][-KEEP_SAMPLES:]
    if finding.named and issue.named[-len(finding.named) :] != list(finding.named):
        kept = [n for n in issue.named if n not in finding.named]
        issue.named = [*kept, *finding.named][-KEEP_NAMED:]


class Sightings:
    """The latest sightings of each log issue (``escalate_after`` of them): an error
    seen that many times within ``escalate_window`` goes up one severity, once."""

    def __init__(self) -> None:
        self._recent: dict[str, deque[datetime]] = {}

    def first(self, fingerprint: str, at: datetime, settings: DetectionSettings) -> None:
        self._recent[fingerprint] = deque([at], maxlen=settings.escalate_after)

    def forget(self, fingerprint: str) -> None:
        self._recent.pop(fingerprint, None)

    def escalate(self, issue: Issue, at: datetime, settings: DetectionSettings) -> bool:
        """Record a sighting at ``at``; True when ``issue`` was escalated by it."""
        recent = self._recent.setdefault(issue.fingerprint, deque(maxlen=settings.escalate_after))
        recent.append(at)
        window = timedelta(seconds=settings.escalate_window)
        escalates = (
            issue.escalated_from is None
            and issue.severity in _NEXT_SEVERITY
            and len(recent) >= settings.escalate_after
            and recent[-1] - recent[0] <= window
        )
        if escalates:
            issue.escalated_from = issue.severity
            issue.severity = _NEXT_SEVERITY[issue.severity]
        issue.blocking = (
            issue.severity is Severity.CRITICAL and issue.source is not IssueSource.PREDICT
        )
        return escalates
