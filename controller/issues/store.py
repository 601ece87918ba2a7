"""The issue store: one issue per fingerprint, its counts, and its state machine.

States and who moves them::

    open ──(worker takes it)──► remediating ──(verified)──► resolved
      ▲                              │
      │                              └──(not verified)──► failed ──(backoff over)──► remediating
      │                                                     │
      │                                   (budget spent)────┴──► needs-human
      └──(drift seen again after resolved: reopened, fresh budget)

Any active issue whose drift a pass no longer sees is resolved ("recovered"), except one
a worker is remediating: the worker's verification decides that one. The store is shared
by the pass and the workers, so every method takes the lock and hands out copies.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

# Beyond ARCHITECTURE.md's "issues imports model": a drift's detail can quote container
# text (a failed healthcheck's or exec probe's output), and every drift passes through
# sync_drifts, so the store is the one place that masks it before anything is kept.
from controller.detect.redact import redact
from controller.model import (
    Action,
    Attempt,
    Clock,
    DetectionSettings,
    Drift,
    Finding,
    Issue,
    IssueState,
    Outcome,
    ServiceCondition,
    ServiceHistory,
    ServiceStatus,
    Severity,
    issue_id,
    system_clock,
    to_datetime,
)

T = TypeVar("T")
ACTIONABLE = frozenset({IssueState.OPEN, IssueState.FAILED})
KEEP_RESOLVED = 200  # resolved issues kept as history in the JSON
KEEP_SAMPLES = 3  # distinct evidence samples kept per log issue
_NEXT_SEVERITY = {
    Severity.LOW: Severity.MEDIUM,
    Severity.MEDIUM: Severity.HIGH,
    Severity.HIGH: Severity.CRITICAL,
}


def _copy(issue: Issue) -> Issue:
    """An independent copy of an issue, for a reader: what ``model_copy(deep=True)`` gives,
    at an eighth of its cost (readers copy every issue several times a pass). Every field
    the store changes in place is copied; the rest are immutable values."""
    return issue.model_copy(
        update={
            "samples": list(issue.samples),
            "captures": dict(issue.captures),
            "caused_by": list(issue.caused_by),
            "waiting_for": list(issue.waiting_for),
            "attempts": [a.model_copy() for a in issue.attempts],
        }
    )


@dataclass
class SyncResult:
    opened: list[Issue] = field(default_factory=list)
    reopened: list[Issue] = field(default_factory=list)
    recovered: list[Issue] = field(default_factory=list)
    escalated: list[Issue] = field(default_factory=list)


class IssueStore:
    def __init__(
        self,
        env: str,
        clock: Clock = system_clock,
        on_resolved: Callable[[Issue], None] = lambda issue: None,
    ) -> None:
        self.env = env
        self._clock = clock
        self._on_resolved = on_resolved
        self._lock = threading.RLock()
        self._issues: dict[str, Issue] = {}
        self._services: dict[str, ServiceStatus] = {}
        self._recent: dict[str, deque[datetime]] = {}  # log issue -> recent sightings
        self._histories: dict[str, ServiceHistory] = {}
        self._changes = 0

    # --- reading ------------------------------------------------------------------------

    @property
    def changes(self) -> int:
        """A counter that moves whenever anything changed (to save only when needed)."""
        return self._changes

    def issues(self) -> list[Issue]:
        with self._lock:
            return [_copy(i) for i in self._issues.values()]

    def get(self, fingerprint: str) -> Issue | None:
        with self._lock:
            issue = self._issues.get(fingerprint)
            return _copy(issue) if issue else None

    def active(self) -> list[Issue]:
        return [i for i in self.issues() if i.active]

    def actionable(self, now: float | None = None) -> dict[str, list[Issue]]:
        """Open or failed issues whose backoff is over and that no upstream issue explains,
        by service."""
        at = to_datetime(self._clock() if now is None else now)
        by_service: dict[str, list[Issue]] = {}
        for issue in self.issues():
            if (
                issue.state in ACTIONABLE
                and not issue.caused_by
                and (issue.next_attempt_at is None or issue.next_attempt_at <= at)
            ):
                by_service.setdefault(issue.service, []).append(issue)
        return by_service

    def of_service(self, service: str) -> list[Issue]:
        """The active issues of one service."""
        with self._lock:
            return [_copy(i) for i in self._issues.values() if i.service == service and i.active]

    # --- loop protection per service (the remediator's policy edits it) -----------------

    def edit_history(self, service: str, change: Callable[[ServiceHistory], T]) -> T:
        """Apply ``change`` to the service's history under the store's lock."""
        with self._lock:
            history = self._histories.setdefault(service, ServiceHistory())
            before = history.model_dump()
            result = change(history)
            if history.model_dump() != before:  # most calls only read: no rewrite of files
                self._changes += 1
            return result

    def histories(self) -> dict[str, ServiceHistory]:
        with self._lock:
            return {k: v.model_copy(deep=True) for k, v in sorted(self._histories.items())}

    def restore_histories(self, histories: Mapping[str, ServiceHistory]) -> None:
        with self._lock:
            self._histories.update({k: v.model_copy(deep=True) for k, v in histories.items()})

    def link_causes(self, links: Mapping[str, list[str]]) -> list[Issue]:
        """Set every active issue's ``caused_by`` from ``links``; returns newly linked ones."""
        linked: list[Issue] = []
        with self._lock:
            for issue in self._issues.values():
                causes = sorted(links.get(issue.fingerprint, [])) if issue.active else []
                if causes != issue.caused_by:
                    if causes and not issue.caused_by:
                        linked.append(issue)
                    issue.caused_by = causes
                    self._changes += 1
            return [_copy(i) for i in linked]

    def defer(self, fingerprints: Iterable[str], until: datetime, plan: str) -> bool:
        """Back off: the issues wait until ``until``. True when that is news."""
        changed = False
        with self._lock:
            for fp in fingerprints:
                issue = self._issues.get(fp)
                if issue and issue.active and issue.next_attempt_at != until:
                    issue.next_attempt_at = until
                    issue.plan = plan
                    changed = True
            if changed:
                self._changes += 1
        return changed

    def release(self, service: str) -> list[Issue]:
        """A person acted on the service: issues that waited for a human may be fixed again."""
        released: list[Issue] = []
        with self._lock:
            for issue in self._issues.values():
                if issue.service == service and issue.state is IssueState.NEEDS_HUMAN:
                    issue.state = IssueState.OPEN
                    issue.resolution = ""
                    issue.next_attempt_at = None
                    released.append(_copy(issue))
            if released:
                self._changes += 1
        return released

    def services(self) -> list[ServiceStatus]:
        with self._lock:
            remediating = {
                i.service for i in self._issues.values() if i.state is IssueState.REMEDIATING
            }
            return [
                s.model_copy(update={"condition": ServiceCondition.REMEDIATING})
                if s.name in remediating
                else s.model_copy()
                for s in self._services.values()
            ]

    # --- the pass -----------------------------------------------------------------------

    def sync_drifts(
        self,
        drifts: Sequence[Drift],
        statuses: Iterable[ServiceStatus],
        busy: Iterable[str] = (),
    ) -> SyncResult:
        """Record one pass's drifts: open new issues, count repeats, resolve what recovered.

        Services in ``busy`` are being fixed right now: what a pass sees of them is the fix
        in progress (a restart shows an exited container for a moment), so their issues
        are left as they are; the worker's verification decides.
        """
        now = to_datetime(self._clock())
        result = SyncResult()
        frozen = set(busy)
        with self._lock:
            services = {s.name: s for s in statuses}
            changed = services != self._services
            self._services = services
            seen = set()
            for drift in drifts:
                if drift.service in frozen:
                    continue
                seen.add(drift.fingerprint)
                self._upsert(drift, now, result)
            for issue in self._issues.values():
                if (
                    issue.source == "drift"
                    and issue.active
                    and issue.fingerprint not in seen
                    and issue.service not in frozen
                    and issue.state is not IssueState.REMEDIATING
                ):
                    self._resolve(issue, now, "recovered without a fix from the controller")
                    result.recovered.append(_copy(issue))
            self._trim()
            if changed or seen or result.recovered:  # a quiet pass rewrites no file
                self._changes += 1
        return result

    def _upsert(self, drift: Drift, now: datetime, result: SyncResult) -> None:
        issue = self._issues.get(drift.fingerprint)
        if issue is None:
            self._open(
                drift.fingerprint,
                drift.service,
                now,
                result,
                kind=str(drift.kind),
                category=drift.category,
                severity=drift.severity,
                blocking=drift.blocking,
                title=drift.title,
                detail=redact(drift.detail),  # a healthcheck's output is container text
            )
            return
        reopened = issue.state is IssueState.RESOLVED
        if reopened:
            self._reopen(issue, now)
        issue.count += 1
        issue.last_seen = now
        issue.kind = str(drift.kind)  # failing-healthcheck becomes unhealthy
        issue.severity = drift.severity
        issue.category = drift.category
        issue.blocking = drift.blocking
        issue.title = drift.title
        issue.detail = redact(drift.detail)
        if reopened:
            result.reopened.append(_copy(issue))

    # --- log findings -------------------------------------------------------------------

    def record_findings(
        self, findings: Iterable[Finding], settings: DetectionSettings
    ) -> SyncResult:
        """Count findings into log issues; escalate what repeats too often in a window.

        Times are the log lines' own, so reading an old log does not look like a burst.
        A log issue blocks convergence (``--once``) only while it is critical.
        """
        result = SyncResult()
        with self._lock:
            for finding in findings:
                self._upsert_finding(finding, settings, result)
                self._changes += 1
        return result

    def _upsert_finding(
        self, finding: Finding, settings: DetectionSettings, result: SyncResult
    ) -> None:
        at = to_datetime(finding.ts)
        issue = self._issues.get(finding.fingerprint)
        if issue is None:
            self._open(
                finding.fingerprint,
                finding.service,
                at,
                result,
                source=finding.source,
                kind=finding.kind,
                pattern_id=finding.pattern_id,
                category=finding.category,
                severity=finding.severity,
                blocking=finding.severity is Severity.CRITICAL,
                title=finding.title,
                detail=finding.line,
                hint=finding.hint,
                suggested=finding.remediation,
                samples=[finding.evidence],
                captures=dict(finding.captures),
            )
            self._recent[finding.fingerprint] = deque([at], maxlen=settings.escalate_after)
            return
        if issue.state is IssueState.RESOLVED:
            self._reopen(issue, at)
            issue.severity = finding.severity
            issue.escalated_from = None
            self._recent.pop(finding.fingerprint, None)
            result.reopened.append(_copy(issue))
        issue.count += 1
        issue.last_seen = max(issue.last_seen, at)
        issue.detail = finding.line
        if finding.captures:
            issue.captures = dict(finding.captures)
        if finding.evidence not in issue.samples:
            issue.samples = [*issue.samples, finding.evidence][-KEEP_SAMPLES:]
        recent = self._recent.setdefault(finding.fingerprint, deque(maxlen=settings.escalate_after))
        recent.append(at)
        window = timedelta(seconds=settings.escalate_window)
        if (
            issue.escalated_from is None
            and issue.severity in _NEXT_SEVERITY
            and len(recent) >= settings.escalate_after
            and recent[-1] - recent[0] <= window
        ):
            issue.escalated_from = issue.severity
            issue.severity = _NEXT_SEVERITY[issue.severity]
            result.escalated.append(_copy(issue))
        issue.blocking = issue.severity is Severity.CRITICAL

    def expire_log_issues(self, quiet_seconds: float) -> list[Issue]:
        """Resolve log issues not seen for ``quiet_seconds`` (the error stopped)."""
        now = to_datetime(self._clock())
        quiet = timedelta(seconds=quiet_seconds)
        expired: list[Issue] = []
        with self._lock:
            for issue in self._issues.values():
                if (
                    issue.source != "drift"
                    and issue.active
                    and issue.state is not IssueState.REMEDIATING
                    and now - issue.last_seen >= quiet
                ):
                    self._resolve(issue, now, f"not seen for {quiet_seconds:g} s")
                    self._recent.pop(issue.fingerprint, None)
                    expired.append(_copy(issue))
            if expired:
                self._changes += 1
        return expired

    def _open(
        self, fingerprint: str, service: str, at: datetime, result: SyncResult, **fields: Any
    ) -> None:
        """A fault seen for the first time: a new issue, its id stable for env + fingerprint."""
        issue = Issue(
            id=issue_id(f"{self.env}:{fingerprint}"),
            fingerprint=fingerprint,
            env=self.env,
            service=service,
            first_seen=at,
            last_seen=at,
            opened_at=at,
            **fields,
        )
        self._issues[fingerprint] = issue
        result.opened.append(_copy(issue))

    def _reopen(self, issue: Issue, now: datetime) -> None:
        """A resolved fault is back: the same issue, a new occurrence, a fresh budget."""
        issue.state = IssueState.OPEN
        issue.occurrences += 1
        issue.opened_at = now
        issue.resolved_at = None
        issue.resolution = ""
        issue.next_attempt_at = None

    def _resolve(self, issue: Issue, now: datetime, resolution: str) -> None:
        issue.state = IssueState.RESOLVED
        issue.resolved_at = now
        issue.resolution = resolution
        issue.next_attempt_at = None
        issue.waiting_for = []
        issue.caused_by = []
        issue.plan = ""
        self._on_resolved(_copy(issue))

    def _trim(self) -> None:
        resolved = sorted(
            (i for i in self._issues.values() if i.state is IssueState.RESOLVED),
            key=lambda i: i.resolved_at or i.last_seen,
        )
        for issue in resolved[: max(0, len(resolved) - KEEP_RESOLVED)]:
            del self._issues[issue.fingerprint]

    # --- the workers --------------------------------------------------------------------

    def note(
        self, fingerprints: Iterable[str], *, plan: str = "", waiting_for: Sequence[str] = ()
    ) -> bool:
        """Say what the controller intends for issues it is not acting on yet.

        True when that is news (so a caller logs a decision once, not every pass).
        """
        changed = False
        with self._lock:
            for fp in fingerprints:
                issue = self._issues.get(fp)
                if issue and (issue.plan, issue.waiting_for) != (plan, list(waiting_for)):
                    issue.plan = plan
                    issue.waiting_for = list(waiting_for)
                    changed = True
            if changed:
                self._changes += 1
        return changed

    def escalate(self, fingerprints: Iterable[str], reason: str) -> bool:
        """Hand issues to a human without acting. True when that is news."""
        changed = False
        with self._lock:
            for fp in fingerprints:
                issue = self._issues.get(fp)
                if (
                    issue
                    and issue.active
                    and (issue.state, issue.resolution) != (IssueState.NEEDS_HUMAN, reason)
                ):
                    issue.state = IssueState.NEEDS_HUMAN
                    issue.resolution = reason
                    issue.plan = ""
                    issue.next_attempt_at = None
                    changed = True
            if changed:
                self._changes += 1
        return changed

    def begin(self, fingerprints: Iterable[str], action: Action) -> None:
        """A worker starts a step on these issues."""
        now = to_datetime(self._clock())
        with self._lock:
            for fp in fingerprints:
                if issue := self._issues.get(fp):
                    issue.state = IssueState.REMEDIATING
                    issue.waiting_for = []
                    issue.attempts.append(
                        Attempt(action=action, attempt=issue.failed_attempts() + 1, started_at=now)
                    )
            self._changes += 1

    def finish(
        self,
        fingerprints: Iterable[str],
        outcome: Outcome,
        detail: str,
        *,
        next_state: IssueState,
        next_attempt_at: float | None = None,
        reason: str = "",
    ) -> None:
        """A worker's step ended; the remediator's retry policy chose what comes next."""
        now = to_datetime(self._clock())
        with self._lock:
            for fp in fingerprints:
                issue = self._issues.get(fp)
                if issue is None:
                    continue
                if issue.attempts and issue.attempts[-1].outcome is None:
                    last = issue.attempts[-1]
                    last.finished_at = now
                    last.outcome = outcome
                    last.detail = detail
                if next_state is IssueState.RESOLVED:
                    self._resolve(issue, now, reason)
                    continue
                issue.state = next_state
                issue.resolution = reason
                issue.next_attempt_at = (
                    to_datetime(next_attempt_at) if next_attempt_at is not None else None
                )
            self._changes += 1

    # --- persistence --------------------------------------------------------------------

    def restore(self, issues: Iterable[Issue]) -> None:
        """Take back issues saved by an earlier run; a fix it was running counts as cut short."""
        now = to_datetime(self._clock())
        with self._lock:
            for issue in issues:
                if issue.env != self.env:
                    continue
                if issue.state is IssueState.REMEDIATING:
                    issue.state = IssueState.OPEN
                    if issue.attempts and issue.attempts[-1].outcome is None:
                        issue.attempts[-1].outcome = Outcome.CANCELLED
                        issue.attempts[-1].finished_at = now
                        issue.attempts[-1].detail = "the controller stopped during this step"
                self._issues[issue.fingerprint] = issue
            self._changes += 1
