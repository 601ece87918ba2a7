"""Log sightings and incidents to learned precursors, and their warnings.

The log pipeline hands over every sighting (``detect.detector``: each record that matched
a pattern or looked like an error) and every pass its incidents: a drift of a crash kind
that opened or came back (exited, restarting, dead, unhealthy, a failed job; an OOM kill
says so in its title), Docker's restart-policy restarts and the changes it judged bad
(what a rollback reverts), one incident per service per a tenth of the lookback (a crash
is both an exit and a restart, and a change judged bad for its crash is that crash).
``predict.precursors`` counts them. With ``learn: warn`` a learned precursor's appearance
opens a warning issue (kind ``precursor``) at once: resolved when its incident comes ("came
true"), or once the lookback passes without one.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from controller.issues.store import IssueStore, SyncResult
from controller.model import (
    PRECURSOR_PATTERN,
    Category,
    Clock,
    DetectionSettings,
    DriftKind,
    Finding,
    FindingKind,
    Issue,
    IssueSource,
    LearnMode,
    Severity,
    Sighting,
)
from controller.predict.precursors import Learner, Template
from controller.predict.promote import promoted
from controller.predict.words import about

INCIDENT_KINDS = frozenset(
    {
        DriftKind.EXITED,
        DriftKind.RESTARTING,
        DriftKind.DEAD,
        DriftKind.UNHEALTHY,
        DriftKind.JOB_FAILED,
    }
)
KEEP_CANDIDATES = 20  # templates before at least one incident, shown besides the learned


def incident_of(issue: Issue) -> tuple[str, float] | None:
    """What incident a drift issue that opened or came back is, and when it began."""
    if issue.source is not IssueSource.DRIFT or issue.kind not in INCIDENT_KINDS:
        return None
    if "OOM" in issue.title:
        what = "OOM kill"
    elif issue.kind is DriftKind.UNHEALTHY:
        what = "unhealthy"
    else:
        what = "crash"
    return what, issue.began.timestamp()


class Learning:
    def __init__(
        self,
        *,
        detection: DetectionSettings,
        store: IssueStore,
        clock: Clock,
        on_change: Callable[[SyncResult], None],
    ) -> None:
        self._detection = detection
        self._settings = detection.learn
        self._store = store
        self._clock = clock
        self._on_change = on_change
        self._lock = threading.Lock()
        self._learner = Learner(self._settings)
        self._last_incident: dict[str, float] = {}
        self._warnings: dict[str, tuple[str, float]] = {}  # fingerprint -> (service, at)
        self._seen: dict[str, int] = {}  # error-like records read, by service
        self._promoted: dict[tuple[str, str, str, str, int], dict[str, Any]] = {}

    @property
    def enabled(self) -> bool:
        return self._settings.mode is not LearnMode.OFF

    # --- what comes in ------------------------------------------------------------------

    def sightings(self, seen: Sequence[Sighting]) -> None:
        """Sightings from the log pipeline (counted, the rate of error-like records); with
        ``learn: warn`` a learned precursor's appearance opens its warning."""
        with self._lock:
            for s in seen:
                self._seen[s.service] = self._seen.get(s.service, 0) + 1
        if not self.enabled:
            return
        warn: list[Finding] = []
        with self._lock:
            for s in seen:
                template = self._learner.sighted(
                    s.service, s.key, s.pattern_id, s.text, s.line, s.ts
                )
                if self._settings.mode is LearnMode.WARN and template.learned(self._settings):
                    warn.append(self._warning(template, s))
        if warn:
            self._on_change(self._store.record_findings(warn, self._detection))

    def incidents(
        self,
        synced: SyncResult,
        restarts: Iterable[Finding],
        bad_changes: Iterable[tuple[str, float]] = (),
    ) -> None:
        """A pass's drifts that opened or came back, Docker's restarts it counted, and the
        changes it judged bad: (service, when)."""
        if not self.enabled:
            return
        found = [
            (issue.service, *incident)
            for issue in (*synced.opened, *synced.reopened)
            if (incident := incident_of(issue)) is not None
        ]
        found += [(f.service, "crash", f.ts) for f in restarts]
        found += [(service, "bad change", at) for service, at in bad_changes]
        came_true: dict[str, str] = {}
        spacing = max(5.0, self._settings.lookback / 10)
        with self._lock:
            for service, what, at in sorted(found, key=lambda i: i[2]):
                if at - self._last_incident.get(service, float("-inf")) < spacing:
                    continue
                self._last_incident[service] = at
                self._learner.incident(service, what, at)
                for fingerprint, (owner, seen_at) in list(self._warnings.items()):
                    if owner == service and seen_at <= at:
                        came_true[fingerprint] = (
                            f"came true: {what} of {service} {about(at - seen_at)} after it"
                        )
                        del self._warnings[fingerprint]
        if came_true:
            self._on_change(self._store.sync_predictions([], came_true))

    def settle(self) -> None:
        """Every pass: sightings whose lookback passed count as otherwise; warnings no
        incident followed resolve."""
        if not self.enabled:
            return
        now = self._clock()
        lookback = self._settings.lookback
        with self._lock:
            self._learner.settle(now)
            quiet = {
                fingerprint: f"no incident of {service} followed within {lookback:g} s"
                for fingerprint, (service, at) in self._warnings.items()
                if at + lookback < now
            }
            for fingerprint in quiet:
                del self._warnings[fingerprint]
        if quiet:
            self._on_change(self._store.sync_predictions([], quiet))

    def _warning(self, template: Template, seen: Sighting) -> Finding:
        digest = hashlib.sha256(template.key.encode()).hexdigest()[:10]
        fingerprint = f"predict:{seen.service}:{PRECURSOR_PATTERN}:{digest}"
        self._warnings.setdefault(fingerprint, (seen.service, seen.ts))  # the first one
        count = len(template.incidents)
        kinds = ", ".join(sorted({p.what for p in template.incidents}))
        leads = sorted(p.lead for p in template.incidents)
        return Finding(
            service=seen.service,
            container=seen.container,
            ts=seen.ts,
            kind=FindingKind.PRECURSOR,
            pattern_id=PRECURSOR_PATTERN,
            category=Category.PREDICTED,
            severity=Severity.HIGH,
            title=f"{seen.service} printed what came before {count} of its incidents ({kinds})",
            fingerprint=fingerprint,
            evidence=seen.line,
            line=seen.line,
            hint=(
                f"Learned from history: this came before {count} incidents of "
                f"{seen.service}, {about(leads[len(leads) // 2])} before them typically; "
                f"seen {template.otherwise} time(s) without one. `controller patterns` shows "
                "the evidence and how to declare it as a pattern."
            ),
            source=IssueSource.PREDICT,
        )

    # --- readers ------------------------------------------------------------------------

    def error_counts(self) -> dict[str, int]:
        """Error-like records read so far (each one, before any threshold), by service."""
        with self._lock:
            return dict(self._seen)

    def learned_counts(self) -> dict[str, int]:
        with self._lock:
            counts: dict[str, int] = {}
            for template in self._learner.learned():
                counts[template.service] = counts.get(template.service, 0) + 1
            return counts

    def summary(self) -> dict[str, Any]:
        """The document's ``learned``: the learned precursors and the closest candidates,
        each with its evidence and the pattern that would declare it."""
        with self._lock:
            learned = self._learner.learned()
            candidates = [t for t in self._learner.templates() if t.incidents and t not in learned][
                :KEEP_CANDIDATES
            ]
            return {
                "mode": str(self._settings.mode),
                "lookback_seconds": self._settings.lookback,
                "min_incidents": self._settings.min_incidents,
                "precursors": [self._entry(t, True) for t in learned]
                + [self._entry(t, False) for t in candidates],
            }

    def _entry(self, template: Template, learned: bool) -> dict[str, Any]:
        """A template for the document; its promoted pattern is checked once per text (a
        document is built at every save)."""
        key = (
            template.service,
            template.key,
            template.text,
            template.example,
            len(template.incidents),
        )
        spec = self._promoted.get(key)
        if spec is None:
            if len(self._promoted) > 4 * KEEP_CANDIDATES:
                self._promoted.clear()
            spec = self._promoted[key] = promoted(template, len(template.incidents))
        return _entry(template, learned, spec)

    def dump(self) -> dict[str, Any]:
        with self._lock:
            return self._learner.dump()

    def load(self, data: Mapping[str, Any]) -> None:
        with self._lock:
            self._learner.load(data)


def _entry(template: Template, learned: bool, promote: dict[str, Any]) -> dict[str, Any]:
    return {
        "service": template.service,
        "key": template.key,
        "pattern_id": template.pattern_id,
        "template": template.text,
        "example": template.example,
        "learned": learned,
        "sightings": template.sightings,
        "before_incidents": template.before,
        "otherwise": template.otherwise,
        "incidents": [
            {"at": p.at, "what": p.what, "lead_seconds": round(p.lead, 1)}
            for p in template.incidents
        ],
        "promote": promote,
    }
