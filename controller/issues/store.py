"""The issue store: one issue per fingerprint, its counts, and its state machine.

States and who moves them (docs/architecture.md draws the whole life of an issue):

- open -> remediating: a worker begins a step;
- remediating -> resolved: the step is proven; -> failed: a new fault, the error back,
  or the proof's deadline passed;
- failed -> remediating: the next step, once the backoff is over;
- open or failed -> needs-human: the budget is spent, nothing fits, a person stopped
  the service, Docker's own restart loop does not converge;
- needs-human -> open: a person starts or recreates the service;
- open, failed or needs-human -> resolved: the drift is gone and the service stayed
  ready for its hold ("recovered"), a log error not seen for its quiet time;
- resolved -> open: seen again (a new occurrence, the same issue).

A change's issues (``change:<service>:bad-change``, ``change:<service>:rolled-back``) are
raised and settled by the pass that sees changes (``raise_change``, ``settle``); a
bad change's is acted on like any other (a rollback step, or a human), and resolved by
its step's proof as "rolled back from X to Y because Z".
A ``predicted`` issue (a forecast of exhaustion, ``sync_predictions``) opens, is updated
and resolves as its forecast says; it never blocks convergence and is acted on only
when its service declares an action before exhaustion (its ``suggested`` is not none).

What the controller intends for an issue (its plan, the next attempt, the proof's
deadline) is not kept here: it lives in the service's remediation record, and the
documents derive it when they are built (``issues.present``).
A drift a pass no longer sees is resolved once its service has stayed ready for its hold
("recovered"), or at once when the service has another fault instead; an issue whose
step is being proven is left to that proof. The store is shared by the passes, the log
pipeline and the workers, so every method takes the lock and hands out copies.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

# Beyond the first sketch's "issues imports model" (docs/architecture.md says why): a
# drift's detail can quote container text (a failed healthcheck's output), and so can a
# step's outcome (compose stderr, an engine error, a runbook's output); every drift passes
# through sync_drifts and every step through acted and finish, so the store masks them.
from controller.causes import STARTING_GRACE
from controller.detect.redact import redact
from controller.issues.findings import (
    Sightings,
    count_repeat,
    expected,
    left_at,
    new_issue_fields,
)
from controller.issues.readiness import Readiness
from controller.model import (
    Action,
    Attempt,
    Category,
    Clock,
    DetectionSettings,
    Drift,
    DriftKind,
    Finding,
    FindingKind,
    Issue,
    IssueSource,
    IssueState,
    Outcome,
    Prediction,
    ServiceCondition,
    ServiceStatus,
    Severity,
    issue_id,
    system_clock,
    to_datetime,
)

ACTIONABLE = frozenset({IssueState.OPEN, IssueState.FAILED})
KEEP_RESOLVED = 200  # resolved issues kept as history in the JSON


def _copy(issue: Issue) -> Issue:
    """An independent copy of an issue, for a reader: what ``model_copy(deep=True)`` gives,
    at an eighth of its cost (readers copy every issue several times a pass). Every field
    the store changes in place is copied; the rest are immutable values."""
    return issue.model_copy(
        update={
            "samples": list(issue.samples),
            "captures": dict(issue.captures),
            "caused_by": list(issue.caused_by),
            "cause_evidence": dict(issue.cause_evidence),
            "named": list(issue.named),
            "while_starting": list(issue.while_starting),
            "clients_left": dict(issue.clients_left),
            "attempts": [a.model_copy() for a in issue.attempts],
        }
    )


def _started_text(issue: Issue, ready: datetime | None) -> str:
    """How an issue logged while services were starting ended: "its dependency was
    starting (db, ready since 20:53:31)", "it was starting (ready since ...)"; ``ready``
    None: none of them is declared any more."""
    deps = ", ".join(s for s in issue.while_starting if s != issue.service)
    since = f"ready since {ready:%H:%M:%S}" if ready is not None else "no longer declared"
    if issue.service not in issue.while_starting:
        return f"its dependency was starting ({deps}, {since})"
    return f"it was starting{f' with {deps}' if deps else ''} ({since})"


def _acted_on(issue: Issue) -> bool:
    """Whether remediation may act on the issue at all: a forecast or a precursor only
    when its service declares what to do before exhaustion; a node's drain report never
    (draining a node is a person's call); an error logged while its dependencies were
    starting, or when a client of it left, never (it ends when they are ready or the
    client's leaving is past, or is raised to the service's own problem when logged
    after)."""
    if issue.kind is FindingKind.NODE_FAILING or _expected(issue):
        return False
    return issue.source is not IssueSource.PREDICT or issue.suggested not in ("", "none")


def _expected(issue: Issue) -> bool:
    """Whether a start or a client leaving explains the issue (it is low for that)."""
    return bool(issue.while_starting or issue.clients_left)


def _left_text(issue: Issue) -> str:
    """How an issue logged when clients of its service left ended: "its client api went
    away at 22:03:31", "its clients went away (api at ..., worker at ...)"."""
    left = sorted(issue.clients_left.items(), key=lambda item: item[1])
    if len(left) == 1:
        ((client, at),) = left
        return f"its client {client} went away at {at:%H:%M:%S}"
    return "its clients went away (" + ", ".join(f"{c} at {t:%H:%M:%S}" for c, t in left) + ")"


def _since(drift: Drift, now: datetime) -> datetime | None:
    """When the drift's fault began by the engine's record, if before ``now``."""
    if drift.since is None:
        return None
    began = to_datetime(drift.since)
    return began if began < now else None


@dataclass
class SyncResult:
    opened: list[Issue] = field(default_factory=list)
    reopened: list[Issue] = field(default_factory=list)
    recovered: list[Issue] = field(default_factory=list)
    escalated: list[Issue] = field(default_factory=list)
    # escalated because logged after the dependencies it waited for were ready (in
    # ``escalated`` too)
    outlived: list[Issue] = field(default_factory=list)


class IssueStore:
    """Every issue of the environment, under one lock.

    Long on purpose: each method is one transition of the state machine above, and they
    must share one lock so that a reader never sees an issue half-moved; what is not a
    transition lives elsewhere (``readiness``, ``findings``, ``present``)."""

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
        self._readiness = Readiness()  # the newest pass's statuses, how long each is ready
        self._sightings = Sightings()  # recent sightings of log issues, for escalation
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
        with self._lock:
            return [_copy(i) for i in self._issues.values() if i.active]

    def actionable(self) -> dict[str, list[Issue]]:
        """Open or failed issues that no upstream issue explains, by service (whether a
        step may be taken now is the rate limiter's to say, not the store's)."""
        by_service: dict[str, list[Issue]] = {}
        with self._lock:
            for issue in self._issues.values():
                if issue.state in ACTIONABLE and not issue.caused_by and _acted_on(issue):
                    by_service.setdefault(issue.service, []).append(_copy(issue))
        return by_service

    def of_service(self, service: str) -> list[Issue]:
        """The active issues of one service."""
        with self._lock:
            return [_copy(i) for i in self._issues.values() if i.service == service and i.active]

    def link_causes(self, links: Mapping[str, Mapping[str, str]]) -> list[Issue]:
        """Set every active issue's ``caused_by`` and ``cause_evidence`` from ``links``
        (fingerprint -> upstream issue id -> why); returns the newly linked ones."""
        linked: list[Issue] = []
        with self._lock:
            for issue in self._issues.values():
                evidence = dict(sorted(links.get(issue.fingerprint, {}).items()))
                if not issue.active:
                    evidence = {}
                causes = list(evidence)
                if causes != issue.caused_by or evidence != issue.cause_evidence:
                    if causes and not issue.caused_by:
                        linked.append(issue)
                    issue.caused_by = causes
                    issue.cause_evidence = evidence
                    self._changes += 1
            return [_copy(i) for i in linked]

    def resolve_with_causes(self) -> list[Issue]:
        """Resolve the log issues whose every upstream cause has recovered (its issue
        resolved and its service has no active drift) and that were not seen since it
        did: "could not connect to db" ends with db's incident, not 300 s of quiet later.
        One seen after its cause recovered stays open (and is its own problem now)."""
        now = to_datetime(self._clock())
        resolved: list[Issue] = []
        with self._lock:
            by_id = {i.id: i for i in self._issues.values()}
            drifting = {
                i.service
                for i in self._issues.values()
                if i.active and i.source is IssueSource.DRIFT
            }
            for issue in self._issues.values():
                if issue.source is not IssueSource.LOG or not issue.caused_by:
                    continue
                if not issue.active or issue.state is IssueState.REMEDIATING:
                    continue
                causes = [by_id.get(cause) for cause in issue.caused_by]
                if not all(
                    c is not None
                    and c.resolved_at is not None
                    and c.service not in drifting
                    and issue.last_seen <= c.resolved_at
                    for c in causes
                ):
                    continue
                names = ", ".join(sorted({c.service for c in causes if c is not None}))
                self._resolve(issue, now, f"its cause recovered ({names})")
                self._sightings.forget(issue.fingerprint)
                resolved.append(_copy(issue))
            if resolved:
                self._changes += 1
        return resolved

    def without_drift(self, services: Iterable[str]) -> dict[str, float | None]:
        """Each of ``services`` with no active drift issue and no restart by Docker's
        restart policy (a crash the engine brought back at once leaves no drift to see),
        with the epoch seconds it became ready (None: not ready yet): those that may be
        starting (``causes.while_starting``). One no pass reported (none ran yet: the log
        follower may read first) is not known to be starting: its error keeps its own
        severity rather than be hidden as expected."""
        with self._lock:
            drifting = {
                i.service
                for i in self._issues.values()
                if i.active and i.source in (IssueSource.DRIFT, IssueSource.ENGINE)
            }
            found: dict[str, float | None] = {}
            for service in services:
                if service not in drifting and service in self._readiness.statuses:
                    since = self._readiness.since(service)
                    found[service] = None if since is None else since.timestamp()
            return found

    def resolve_started(self) -> list[Issue]:
        """Resolve the log issues logged only while dependencies were starting, once each
        of them has been ready for ``STARTING_GRACE`` seconds and nothing was logged
        after the first of those seconds: "its dependency was starting (db, ready since
        ...)". One logged later was raised to its own severity when it was
        (``_upsert_finding``)."""
        now = to_datetime(self._clock())
        grace = timedelta(seconds=STARTING_GRACE)
        resolved: list[Issue] = []
        with self._lock:
            for issue in self._issues.values():
                if not issue.while_starting or not issue.active:
                    continue
                if issue.state is IssueState.REMEDIATING:
                    continue
                # one no pass reports any more (a reload removed it) is not waited for
                reported = [d for d in issue.while_starting if d in self._readiness.statuses]
                since = [self._readiness.since(d) for d in reported]
                if any(s is None or now - s < grace for s in since):
                    continue
                ready = max((s for s in since if s is not None), default=None)
                self._resolve(issue, now, _started_text(issue, ready))
                self._sightings.forget(issue.fingerprint)
                resolved.append(_copy(issue))
            if resolved:
                self._changes += 1
        return resolved

    def resolve_departed(self) -> list[Issue]:
        """Resolve the log issues a server logged only when clients of it left, once
        ``STARTING_GRACE`` seconds passed after the last line and after each client left
        with nothing logged: "its client api went away at 22:03:31". One logged later was
        raised to its own severity when it was (``_upsert_finding``)."""
        now = to_datetime(self._clock())
        grace = timedelta(seconds=STARTING_GRACE)
        resolved: list[Issue] = []
        with self._lock:
            for issue in self._issues.values():
                if not issue.clients_left or issue.while_starting or not issue.active:
                    continue  # one a start explains too ends with the start
                if issue.state is IssueState.REMEDIATING:
                    continue
                if now - max(issue.last_seen, *issue.clients_left.values()) < grace:
                    continue
                self._resolve(issue, now, _left_text(issue))
                self._sightings.forget(issue.fingerprint)
                resolved.append(_copy(issue))
            if resolved:
                self._changes += 1
        return resolved

    def release(self, service: str) -> list[Issue]:
        """A person acted on the service: issues that waited for a human may be fixed again."""
        released: list[Issue] = []
        with self._lock:
            for issue in self._issues.values():
                if (
                    issue.service == service
                    and issue.state is IssueState.NEEDS_HUMAN
                    and issue.kind is not FindingKind.NODE_FAILING  # the node's, not the service's
                ):
                    issue.state = IssueState.OPEN
                    issue.resolution = ""
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
                for s in self._readiness.statuses.values()
            ]

    # --- the pass -----------------------------------------------------------------------

    def sync_drifts(
        self,
        drifts: Sequence[Drift],
        statuses: Iterable[ServiceStatus],
        frozen: Iterable[str] = (),
        holds: Mapping[str, float] | None = None,
    ) -> SyncResult:
        """Record one pass's drifts: open new issues, count repeats, resolve what recovered.

        Observation never pauses: a service being fixed or proven is recorded like any
        other. Only services in ``frozen`` are skipped, while a command of the controller
        (or a person's operation) runs on them: what a pass sees then is that command at
        work (a restart shows an exited container for a moment).

        A drift no longer seen resolves once its service has been ready for its hold
        (``holds``, seconds; ``min_ready`` and, under a restart policy, past Docker's next
        restart), or at once when the service shows another fault instead (missing, then
        unhealthy); not in between, so a crash loop is one open incident with a count, not
        one per cycle. An issue a step of the controller is proving is left to that proof.
        """
        now = to_datetime(self._clock())
        result = SyncResult()
        skipped = set(frozen)
        holds = holds or {}
        with self._lock:
            changed = self._readiness.observe(statuses, now)
            seen = set()
            for drift in drifts:
                if drift.service in skipped:
                    continue
                seen.add(drift.fingerprint)
                self._upsert(drift, now, result)
            faulty = {d.service for d in drifts if d.blocking}
            for issue in self._issues.values():
                if (
                    issue.source is not IssueSource.DRIFT
                    or not issue.active
                    or issue.fingerprint in seen
                    or issue.service in skipped
                    or issue.state is IssueState.REMEDIATING
                ):
                    continue
                if self._readiness.stable(issue.service, now, holds.get(issue.service, 0.0)):
                    reason = "recovered without a fix from the controller"
                elif issue.service in faulty:
                    reason = "no longer seen: the service has another fault now"
                else:
                    continue  # gone for now, not yet for good (a crash loop between crashes)
                self._resolve(issue, now, reason)
                result.recovered.append(_copy(issue))
            self._trim()
            if changed or seen or result.recovered:  # a quiet pass rewrites no file
                self._changes += 1
        return result

    def recovering(self) -> list[str]:
        """Services that are ready again while an issue of theirs waits out its hold."""
        with self._lock:
            return sorted(
                {
                    i.service
                    for i in self._issues.values()
                    if i.source is IssueSource.DRIFT
                    and i.active
                    and self._readiness.is_ready(i.service)
                }
            )

    def ready_since(self, service: str) -> float | None:
        """Epoch seconds ``service`` became ready, as the passes saw it (None: not ready)."""
        with self._lock:
            since = self._readiness.since(service)
        return None if since is None else since.timestamp()

    def services_ready_for(self) -> list[tuple[ServiceStatus, float]]:
        """Each service's status with the seconds it has been ready without a restart, as
        the newest pass saw it (0 when not ready): the evidence that a service stays up,
        not only came up. One snapshot (a verdict taken from two reads could pair a stale
        "ready" with a fresh crash)."""
        with self._lock:
            return [(s, self._readiness.ready_for(s.name)) for s in self.services()]

    def _upsert(self, drift: Drift, now: datetime, result: SyncResult) -> None:
        issue = self._issues.get(drift.fingerprint)
        if issue is None:
            self._open(
                drift.fingerprint,
                drift.service,
                now,
                result,
                kind=drift.kind,
                category=drift.category,
                severity=drift.severity,
                blocking=drift.blocking,
                title=drift.title,
                detail=redact(drift.detail),  # a healthcheck's output is container text
                fault_since=_since(drift, now),
            )
            return
        reopened = issue.state is IssueState.RESOLVED
        if reopened:
            self._reopen(issue, now)
            issue.fault_since = _since(drift, now)
        issue.count += 1
        issue.last_seen = now
        issue.kind = drift.kind  # failing-healthcheck becomes unhealthy
        issue.severity = drift.severity
        issue.category = drift.category
        issue.blocking = drift.blocking
        issue.title = drift.title
        issue.detail = redact(drift.detail)
        if reopened:
            result.reopened.append(_copy(issue))

    # --- changes and rollbacks -----------------------------------------------------------

    def raise_change(
        self,
        fingerprint: str,
        service: str,
        kind: FindingKind,
        *,
        severity: Severity,
        blocking: bool,
        title: str,
        detail: str,
        source: IssueSource = IssueSource.CHANGE,
        category: Category = Category.CONFIG,
    ) -> bool:
        """An issue about a change of ``service`` (a bad one, a rollback in force), or any
        other a watch of its own raises (a node's drain report): opened, opened again, or
        brought up to date. True when it (re)opened."""
        now = to_datetime(self._clock())
        result = SyncResult()
        with self._lock:
            issue = self._issues.get(fingerprint)
            if issue is None:
                self._open(
                    fingerprint,
                    service,
                    now,
                    result,
                    source=source,
                    kind=kind,
                    category=category,
                    severity=severity,
                    blocking=blocking,
                    title=redact(title),
                    detail=redact(detail),
                )
                self._changes += 1
                return True
            fresh = (redact(title), redact(detail), severity, blocking)
            if (
                issue.active
                and (issue.title, issue.detail, issue.severity, issue.blocking) == fresh
            ):
                return False
            reopened = not issue.active
            if reopened:
                self._reopen(issue, now)
            issue.title, issue.detail, issue.severity, issue.blocking = fresh
            issue.last_seen = now
            self._changes += 1
            return reopened

    def settle(self, fingerprint: str, reason: str) -> bool:
        """Resolve an active issue with ``reason`` (one a step is proving is left to the
        proof); True when it was active."""
        now = to_datetime(self._clock())
        with self._lock:
            issue = self._issues.get(fingerprint)
            if issue is None or not issue.active or issue.state is IssueState.REMEDIATING:
                return False
            self._resolve(issue, now, redact(reason))
            self._changes += 1
            return True

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
            fields = new_issue_fields(finding)
            self._open(finding.fingerprint, finding.service, at, result, **fields)
            self._sightings.first(finding.fingerprint, at, settings)
            return
        if issue.state is IssueState.RESOLVED:
            if issue.resolved_at is not None and at <= issue.resolved_at:
                return  # logged before it ended, read late: part of what ended
            self._reopen(issue, at)
            issue.named = []  # what this occurrence's errors name
            issue.severity = new_issue_fields(finding)["severity"]
            issue.while_starting = list(finding.while_starting)
            issue.clients_left = left_at(finding)
            issue.escalated_from = None
            self._sightings.forget(finding.fingerprint)
            result.reopened.append(_copy(issue))
        elif _expected(issue) and not expected(finding):
            # logged after its dependencies were ready, or long after its client left:
            # the service's own problem now
            issue.while_starting = []
            issue.clients_left = {}
            raised = finding.severity.rank > issue.severity.rank
            if raised:
                issue.escalated_from = issue.severity
            issue.severity = finding.severity
            issue.blocking = new_issue_fields(finding)["blocking"]
            count_repeat(issue, finding, at)
            if raised:
                result.escalated.append(_copy(issue))
                result.outlived.append(_copy(issue))
            return
        count_repeat(issue, finding, at)
        if _expected(issue):
            issue.clients_left = {**issue.clients_left, **left_at(finding)}
            return  # a burst while a dependency starts or a client leaves is no cause
        if self._sightings.escalate(issue, at, settings):
            result.escalated.append(_copy(issue))

    # --- forecasts ----------------------------------------------------------------------

    def sync_predictions(
        self, predictions: Iterable[Prediction], ended: Mapping[str, str]
    ) -> SyncResult:
        """Record one round of forecasts: open or update a ``predicted`` issue for each of
        ``predictions``, resolve the active ones ``ended`` names (fingerprint -> why: the
        trend turned, the run ended). An issue a step is proving is left to the proof."""
        now = to_datetime(self._clock())
        result = SyncResult()
        with self._lock:
            for prediction in predictions:
                self._upsert_prediction(prediction, now, result)
            for fingerprint, reason in ended.items():
                issue = self._issues.get(fingerprint)
                if (
                    issue is not None
                    and issue.active
                    and issue.source is IssueSource.PREDICT
                    and issue.state is not IssueState.REMEDIATING
                ):
                    self._resolve(issue, now, redact(reason))
                    result.recovered.append(_copy(issue))
            self._trim()
            self._changes += 1
        return result

    def _upsert_prediction(self, prediction: Prediction, now: datetime, result: SyncResult) -> None:
        fields: dict[str, Any] = {
            "title": prediction.title,
            "detail": prediction.detail,
            "severity": prediction.severity,
            "forecast": prediction.forecast,
            "suggested": prediction.suggested,
            "container": prediction.forecast.container,
        }
        issue = self._issues.get(prediction.fingerprint)
        if issue is None:
            self._open(
                prediction.fingerprint,
                prediction.service,
                now,
                result,
                source=IssueSource.PREDICT,
                kind=FindingKind.PREDICTED,
                category=Category.PREDICTED,
                blocking=False,
                pattern_id=prediction.pattern_id,
                **fields,
            )
            return
        if issue.state is IssueState.REMEDIATING:
            return  # a restart before exhaustion is being proven: its proof decides
        reopened = issue.state is IssueState.RESOLVED
        if reopened:
            self._reopen(issue, now)
        rose = issue.severity.rank < prediction.severity.rank
        issue.count += 1
        issue.last_seen = now
        for name, value in fields.items():
            setattr(issue, name, value)
        if reopened:
            result.reopened.append(_copy(issue))
        elif rose:
            result.escalated.append(_copy(issue))

    def resolve_cause(
        self, pattern_id: str, captures: Mapping[str, str], before: datetime, reason: str
    ) -> list[Issue]:
        """A runbook fixed a cause: every active log issue of that pattern and those
        captures, in any service, not seen again since ``before``, is resolved with it."""
        return self._resolve_where(
            lambda issue: (
                issue.source is IssueSource.LOG
                and issue.active
                and issue.state is not IssueState.REMEDIATING
                and issue.pattern_id == pattern_id
                and issue.captures == dict(captures)
                and issue.last_seen <= before
            ),
            reason,
        )

    def retire(self, service: str, reason: str) -> list[Issue]:
        """A service a reload took out of the declaration: its active issues are resolved
        with ``reason`` (an orphan drift, about what still runs undeclared, stays)."""
        return self._resolve_where(
            lambda i: i.service == service and i.active and i.kind is not DriftKind.ORPHAN,
            reason,
        )

    def _resolve_where(self, which: Callable[[Issue], bool], reason: str) -> list[Issue]:
        """Resolve every issue ``which`` picks with ``reason``; copies of them."""
        resolved: list[Issue] = []
        now = to_datetime(self._clock())
        with self._lock:
            for issue in self._issues.values():
                if which(issue):
                    self._resolve(issue, now, reason)
                    self._sightings.forget(issue.fingerprint)
                    resolved.append(_copy(issue))
            if resolved:
                self._changes += 1
        return resolved

    def expire_log_issues(self, quiet_seconds: float) -> list[Issue]:
        """Resolve log issues not seen for ``quiet_seconds`` (the error stopped)."""
        now = to_datetime(self._clock())
        quiet = timedelta(seconds=quiet_seconds)
        expired: list[Issue] = []
        with self._lock:
            for issue in self._issues.values():
                if (
                    issue.source is not IssueSource.DRIFT
                    and issue.forecast is None  # a forecast ends when its trend turns
                    and issue.active
                    and issue.state is not IssueState.REMEDIATING
                    and now - issue.last_seen >= quiet
                ):
                    self._resolve(issue, now, f"not seen for {quiet_seconds:g} s")
                    self._sightings.forget(issue.fingerprint)
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
        issue.fault_since = None
        issue.resolved_at = None
        issue.resolution = ""

    def _resolve(self, issue: Issue, now: datetime, resolution: str) -> None:
        issue.state = IssueState.RESOLVED
        issue.resolved_at = now
        issue.resolution = resolution
        issue.caused_by = []
        issue.cause_evidence = {}
        self._on_resolved(_copy(issue))

    def _trim(self) -> None:
        resolved = sorted(
            (i for i in self._issues.values() if i.state is IssueState.RESOLVED),
            key=lambda i: i.resolved_at or i.last_seen,
        )
        for issue in resolved[: max(0, len(resolved) - KEEP_RESOLVED)]:
            del self._issues[issue.fingerprint]

    # --- the workers --------------------------------------------------------------------

    def escalate(self, fingerprints: Iterable[str], reason: str) -> bool:
        """Hand issues to a human without acting. True when that is news."""
        changed = False
        masked = redact(reason)  # it may quote what a container said
        with self._lock:
            for fp in fingerprints:
                issue = self._issues.get(fp)
                if (
                    issue
                    and issue.active
                    and (issue.state, issue.resolution) != (IssueState.NEEDS_HUMAN, masked)
                ):
                    issue.state = IssueState.NEEDS_HUMAN
                    issue.resolution = masked
                    changed = True
            if changed:
                self._changes += 1
        return changed

    def begin(self, fingerprints: Iterable[str], action: Action) -> None:
        """A step starts on these issues."""
        now = to_datetime(self._clock())
        with self._lock:
            for fp in fingerprints:
                if issue := self._issues.get(fp):
                    issue.state = IssueState.REMEDIATING
                    issue.attempts.append(
                        Attempt(action=action, attempt=issue.failed_attempts() + 1, started_at=now)
                    )
            self._changes += 1

    def acted(self, fingerprints: Iterable[str], detail: str) -> None:
        """The step's command returned (it is being proven: the service's record says
        until when)."""
        with self._lock:
            for fp in fingerprints:
                issue = self._issues.get(fp)
                if issue is None or issue.state is not IssueState.REMEDIATING:
                    continue
                if issue.attempts and issue.attempts[-1].outcome is None:
                    issue.attempts[-1].detail = redact(detail)  # a runbook's output ...
                    issue.attempts[-1].acted_at = to_datetime(self._clock())
            self._changes += 1

    def finish(
        self,
        fingerprints: Iterable[str],
        outcome: Outcome,
        detail: str,
        *,
        next_state: IssueState,
        reason: str = "",
    ) -> None:
        """A step ended (proven, failed, errored or cut short); ``detail`` is added to what
        its command said."""
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
                    detail = redact(detail)  # compose stderr, an engine error ...
                    last.detail = f"{last.detail}; {detail}" if last.detail else detail
                if next_state is IssueState.RESOLVED:
                    self._resolve(issue, now, redact(reason))
                    continue
                if not issue.active:
                    continue  # it recovered meanwhile; the outcome is history
                issue.state = next_state
                issue.resolution = redact(reason)  # it may quote what the step said
            self._changes += 1

    # --- persistence --------------------------------------------------------------------

    def restore(self, issues: Iterable[Issue]) -> None:
        """Take back issues saved by an earlier run. A step it was running or proving stays
        as it was: the service's saved record has it, and the reconcile proves it (a
        restart that ran before the controller died is a fix, not a recovery)."""
        with self._lock:
            for issue in issues:
                if issue.env != self.env:
                    continue
                self._issues[issue.fingerprint] = issue
            self._changes += 1
