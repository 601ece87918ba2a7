"""A run's evidence, read back from its directory into plain records for the scorer.

- ``journal.jsonl`` (the injector): ``faults``, ``phases``;
- ``timeline.jsonl`` (``recorder.IssueWatcher``: each change of the controller's issues
  file): ``snapshots``, and from them ``openings``, ``steps``, ``humans``, ``links``;
- ``ours/controller.log`` (the controller, ``--log-format json``): the exact time of each
  opening ("drift:", "log:", "... again");
- ``notifications.jsonl`` (``recorder.NoticeLog``, the json:// receiver): ``notices``, one
  per line of a message;
- ``alerts.json`` (``recorder.fetch_alerts``, Prometheus' ALERTS): ``alerts``;
- ``status.json`` (the running controller's ``/status`` at the end): ``final_status``,
  which must agree with the newest issues file.

Openings come from the timeline (a new fingerprint, or its ``occurrences`` going up) and
take the controller's own log time when its log line for that issue is within 3 s before
(the file is written at most 0.5 s after a change; the log line at the moment).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from soak.journal import Fault, faults_from, phases_from, read_records

ACTIVE = frozenset({"open", "remediating", "failed", "needs-human"})
OPENING_LOG = re.compile(
    r"^(?P<service>[\w.-]+): (?:drift|drift again|log|log error again): .* "
    r"issue (?P<id>[0-9a-f]{12})\b"
)
NOTICE_LINE = re.compile(
    r"^(?P<event>opened again|opened|needs-human|escalated|resolved) \[(?P<severity>\w+)\] "
    r"(?P<title>.*) \(issue (?P<id>[0-9a-f]{12})\)$"
)


@dataclass(frozen=True)
class Snapshot:
    """One issue as one version of the issues file showed it."""

    t: float
    fingerprint: str
    id: str
    service: str
    source: str
    kind: str
    category: str
    severity: str
    state: str
    occurrences: int
    count: int
    last_seen: float | None
    caused_by: tuple[str, ...]
    detail: str = ""
    resolution: str = ""
    attempts: tuple[tuple[str, float, str | None], ...] = ()

    @property
    def active(self) -> bool:
        return self.state in ACTIVE


@dataclass(frozen=True)
class Opening:
    at: float
    fingerprint: str
    id: str
    service: str
    category: str
    severity: str
    detail: str
    occurrence: int
    kind: str = ""


@dataclass(frozen=True)
class Step:
    """One fix step (an attempt, once however many issues it addressed)."""

    service: str
    action: str
    started_at: float
    outcome: str | None
    fingerprints: tuple[str, ...]


@dataclass(frozen=True)
class Human:
    at: float
    fingerprint: str
    service: str
    category: str
    detail: str
    reason: str
    kind: str = ""


@dataclass(frozen=True)
class Link:
    at: float
    fingerprint: str
    service: str
    category: str
    detail: str
    cause: str  # the upstream issue's fingerprint ("?" if it never showed)
    seen: float | None = None  # the issue's newest evidence (last_seen) when it was linked
    kind: str = ""


@dataclass(frozen=True)
class Notice:
    at: float
    service: str
    event: str
    id: str
    title: str


@dataclass(frozen=True)
class AlertFiring:
    name: str
    service: str
    start: float
    end: float


@dataclass
class Evidence:
    faults: list[Fault] = field(default_factory=list)
    phases: dict[str, tuple[float, float]] = field(default_factory=dict)
    snapshots: list[Snapshot] = field(default_factory=list)
    log_openings: list[tuple[float, str]] = field(default_factory=list)  # (time, issue id)
    notices: list[Notice] = field(default_factory=list)
    alerts: list[AlertFiring] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    spontaneous: list[tuple[float, str]] = field(default_factory=list)  # failed checks
    final_status: dict[str, Any] = field(default_factory=dict)  # /status at the end
    _index: dict[str, list[Snapshot]] = field(default_factory=dict, repr=False)
    _index_of: int = field(default=-1, repr=False)

    # --- what the snapshots say ----------------------------------------------------------

    def by_fingerprint(self) -> dict[str, list[Snapshot]]:
        """Each issue's snapshots in time order (computed once per set of snapshots)."""
        if self._index_of != len(self.snapshots):
            found: dict[str, list[Snapshot]] = {}
            for snap in sorted(self.snapshots, key=lambda s: s.t):
                found.setdefault(snap.fingerprint, []).append(snap)
            self._index, self._index_of = found, len(self.snapshots)
        return self._index

    def fingerprint_of(self) -> dict[str, str]:
        return {s.id: s.fingerprint for s in self.snapshots}

    def openings(self) -> list[Opening]:
        """Every time an issue opened or opened again, at the controller's own time."""
        found: list[Opening] = []
        by_id: dict[str, list[float]] = {}
        for at, issue in self.log_openings:
            by_id.setdefault(issue, []).append(at)
        for history in self.by_fingerprint().values():
            previous: Snapshot | None = None
            for snap in history:
                opened = (
                    previous is None
                    or snap.occurrences > previous.occurrences
                    or (snap.active and not previous.active)
                )
                if opened and snap.active:
                    near = [t for t in by_id.get(snap.id, []) if snap.t - 3.0 <= t <= snap.t + 0.5]
                    found.append(
                        Opening(
                            min(near, default=snap.t),
                            snap.fingerprint,
                            snap.id,
                            snap.service,
                            snap.category,
                            snap.severity,
                            snap.detail,
                            snap.occurrences,
                            snap.kind,
                        )
                    )
                previous = snap
        return sorted(found, key=lambda o: o.at)

    def sightings(
        self, fingerprint: str, since: float, seen_as: Callable[[Snapshot], bool] = lambda s: True
    ) -> float | None:
        """The first time at or after ``since`` that the issue was active and seen anew
        (opened, or its count or last sighting moved), as ``seen_as`` accepts it then (an
        issue's detail is its newest line: what it says at that moment)."""
        previous: Snapshot | None = None
        for snap in self.by_fingerprint().get(fingerprint, []):
            moved = previous is None or (
                snap.count > previous.count
                or (snap.last_seen or 0) > (previous.last_seen or 0)
                or snap.occurrences > previous.occurrences
            )
            if snap.t >= since and snap.active and moved and seen_as(snap):
                return snap.t
            previous = snap
        return None

    def steps(self) -> list[Step]:
        seen: dict[tuple[str, str, float], Step] = {}
        for snap in self.snapshots:
            for action, started, outcome in snap.attempts:
                key = (snap.service, action, round(started, 3))
                old = seen.get(key)
                fps = tuple(sorted({*(old.fingerprints if old else ()), snap.fingerprint}))
                if outcome is None and old is not None:
                    outcome = old.outcome
                seen[key] = Step(snap.service, action, started, outcome, fps)
        return sorted(seen.values(), key=lambda s: s.started_at)

    def humans(self) -> list[Human]:
        found: list[Human] = []
        for history in self.by_fingerprint().values():
            before = ""
            for snap in history:
                if snap.state == "needs-human" and before != "needs-human":
                    found.append(
                        Human(
                            snap.t,
                            snap.fingerprint,
                            snap.service,
                            snap.category,
                            snap.detail,
                            snap.resolution,
                            snap.kind,
                        )
                    )
                before = snap.state
        return sorted(found, key=lambda h: h.at)

    def links(self) -> list[Link]:
        """Each time an issue was linked to an upstream issue (once per cause and
        occurrence of the issue)."""
        names = self.fingerprint_of()
        found: list[Link] = []
        for history in self.by_fingerprint().values():
            shown: set[tuple[int, str]] = set()
            for snap in history:
                for cause in snap.caused_by:
                    key = (snap.occurrences, names.get(cause, "?"))
                    if key in shown:
                        continue
                    shown.add(key)
                    found.append(
                        Link(
                            snap.t,
                            snap.fingerprint,
                            snap.service,
                            snap.category,
                            snap.detail,
                            key[1],
                            snap.last_seen,
                            snap.kind,
                        )
                    )
        return sorted(found, key=lambda link: link.at)

    def active_between(self, fingerprint: str, start: float, end: float) -> bool:
        """Whether the issue was active at some moment in [start, end]."""
        history = self.by_fingerprint().get(fingerprint, [])
        for n, snap in enumerate(history):
            until = history[n + 1].t if n + 1 < len(history) else float("inf")
            if snap.active and snap.t <= end and until >= start:
                return True
        return False

    def active_at(self, fingerprint: str, at: float) -> Snapshot | None:
        current: Snapshot | None = None
        for snap in self.by_fingerprint().get(fingerprint, []):
            if snap.t > at:
                break
            current = snap
        return current if current is not None and current.active else None


# --- reading a run directory ---------------------------------------------------------------


def snapshot(line: dict[str, Any]) -> Snapshot:
    return Snapshot(
        t=float(line["t"]),
        fingerprint=line["fingerprint"],
        id=line["id"],
        service=line["service"],
        source=line["source"],
        kind=line["kind"],
        category=line.get("category", ""),
        severity=line.get("severity", ""),
        state=line["state"],
        occurrences=int(line.get("occurrences", 1)),
        count=int(line.get("count", 0)),
        last_seen=line.get("last_seen"),
        caused_by=tuple(line.get("caused_by", ())),
        detail=line.get("detail", ""),
        resolution=line.get("resolution", ""),
        attempts=tuple(
            (str(a[0]), float(a[1]), a[2]) for a in line.get("attempts", []) if a[1] is not None
        ),
    )


def log_openings(path: Path) -> list[tuple[float, str]]:
    """(time, issue id) of each line where the controller says an issue opened."""
    found: list[tuple[float, str]] = []
    if not path.exists():
        return found
    for raw in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(raw)["record"]
        except (ValueError, KeyError, TypeError):
            continue
        match = OPENING_LOG.match(record.get("message", ""))
        if match:
            found.append((float(record["time"]["timestamp"]), match.group("id")))
    return found


def notices(path: Path) -> list[Notice]:
    found: list[Notice] = []
    for record in read_records(path):
        title = str(record.get("title", ""))
        service = title.split("] ", 1)[-1].split(":", 1)[0] if "] " in title else ""
        for line in str(record.get("message", "")).splitlines():
            match = NOTICE_LINE.match(line.strip())
            if match:
                found.append(
                    Notice(
                        float(record["t"]),
                        service,
                        match.group("event"),
                        match.group("id"),
                        match.group("title"),
                    )
                )
    return found


def alerts(path: Path) -> list[AlertFiring]:
    if not path.exists():
        return []
    found: list[AlertFiring] = []
    for series in json.loads(path.read_text()):
        for start, end in series["intervals"]:
            found.append(AlertFiring(series["alertname"], series.get("service", ""), start, end))
    return found


def load(run: Path) -> Evidence:
    records = read_records(run / "journal.jsonl")
    return Evidence(
        faults=faults_from(records),
        phases=phases_from(records),
        snapshots=[
            snapshot(line)
            for line in read_records(run / "timeline.jsonl")
            if line.get("type") == "issue"
        ],
        log_openings=log_openings(run / "ours" / "controller.log"),
        notices=notices(run / "notifications.jsonl"),
        alerts=alerts(run / "alerts.json"),
        skipped=[r for r in records if r.get("event") == "skip"],
        spontaneous=[
            (float(r["t"]), str(r["service"]))
            for r in records
            if r.get("event") == "engine" and r.get("what") == "check-failed"
        ],
        final_status=json.loads((run / "status.json").read_text())
        if (run / "status.json").exists()
        else {},
    )
