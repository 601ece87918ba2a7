"""Precursors learned from history: log templates that come before a service's incidents.

Every record of a service's log that matched a pattern or looked like an error is a
sighting of its template (a pattern id, or a template drain3 mined). Sightings of one
template closer together than a tenth of the lookback, with no incident between them, are
one (a flood is one sighting).
A sighting is *before* an incident when one of the service's incidents (a crash, an OOM
kill, an unhealthy turn, a rollback) comes within the lookback after it, *otherwise* once
the lookback has passed without one. A template is learned when it came before at least
``min_incidents`` distinct incidents and at most ``OTHERWISE_SHARE`` of its settled
sightings came without one: it precedes trouble and rarely appears in healthy times.

Pure and single-threaded: ``foresight.learning`` feeds it under a lock and keeps it in
the state file (``dump``, ``load``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from controller.model import LearnSettings

OTHERWISE_SHARE = 0.25  # at most a quarter of its sightings without an incident
KEEP_INCIDENTS = 20  # incidents kept as evidence per template
KEEP_PENDING = 50  # sightings awaiting their lookback, per template
KEEP_TEMPLATES = 500  # templates per service (the quietest forgotten first)


@dataclass(frozen=True, slots=True)
class Preceded:
    """One incident a template came before."""

    at: float  # epoch seconds of the incident
    what: str  # "crash", "OOM kill", "unhealthy", "rollback"
    lead: float  # seconds from the template's first sighting in the lookback to it


@dataclass
class Template:
    service: str
    key: str  # a pattern id, or ``unclassified:<template id>``
    pattern_id: str
    text: str  # the pattern's title, or the template
    example: str  # the newest line (redacted)
    sightings: int = 0
    before: int = 0  # settled sightings an incident followed
    otherwise: int = 0  # settled sightings no incident followed
    last: float = 0.0  # epoch seconds of the newest sighting
    incidents: list[Preceded] = field(default_factory=list)
    pending: deque[float] = field(default_factory=lambda: deque(maxlen=KEEP_PENDING))

    def learned(self, settings: LearnSettings) -> bool:
        settled = self.before + self.otherwise
        return (
            len(self.incidents) >= settings.min_incidents
            and self.otherwise <= OTHERWISE_SHARE * settled
        )


class Learner:
    def __init__(self, settings: LearnSettings) -> None:
        self.settings = settings
        self._templates: dict[tuple[str, str], Template] = {}
        self._incidents: dict[str, deque[tuple[float, str]]] = {}  # recent, by service

    @property
    def _spacing(self) -> float:
        return max(1.0, self.settings.lookback / 10)

    def sighted(
        self, service: str, key: str, pattern_id: str, text: str, line: str, at: float
    ) -> Template:
        """One sighting; the template it is of (after it was counted)."""
        template = self._templates.get((service, key))
        if template is None:
            template = self._templates[(service, key)] = Template(
                service, key, pattern_id, text, line
            )
            self._bound(service)
        template.text, template.example = text, line
        recent = self._incidents.get(service, ())
        crashed_since = any(template.last < t <= at for t, _ in recent)
        if template.sightings and at - template.last < self._spacing and not crashed_since:
            template.last = max(template.last, at)
            return template  # the same flood
        template.sightings += 1
        template.last = max(template.last, at)
        followed = [
            (t, what)
            for t, what in self._incidents.get(service, ())
            if at < t <= at + self.settings.lookback
        ]
        if followed:  # its incident was recorded before the line was read
            template.before += 1
            self._preceded(template, followed[0][0], followed[0][1], at)
        else:
            template.pending.append(at)
        return template

    def incident(self, service: str, what: str, at: float) -> list[Template]:
        """An incident of ``service`` at ``at``: the templates it came after."""
        recent = self._incidents.setdefault(service, deque(maxlen=KEEP_INCIDENTS))
        recent.append((at, what))
        found = []
        for template in self._templates.values():
            if template.service != service:
                continue
            inside = [t for t in template.pending if at - self.settings.lookback <= t < at]
            if not inside:
                continue
            template.before += len(inside)
            template.pending = deque(
                (t for t in template.pending if t not in inside), maxlen=KEEP_PENDING
            )
            self._preceded(template, at, what, min(inside))
            found.append(template)
        return found

    def settle(self, now: float) -> list[Template]:
        """Sightings whose lookback passed without an incident count as otherwise; the
        templates that had such sightings."""
        settled = []
        for template in self._templates.values():
            expired = [t for t in template.pending if t + self.settings.lookback < now]
            if expired:
                template.otherwise += len(expired)
                template.pending = deque(
                    (t for t in template.pending if t + self.settings.lookback >= now),
                    maxlen=KEEP_PENDING,
                )
                settled.append(template)
        return settled

    def templates(self) -> list[Template]:
        """Every template, those before the most incidents first."""
        return sorted(
            self._templates.values(),
            key=lambda t: (-len(t.incidents), t.otherwise, t.service, t.key),
        )

    def learned(self) -> list[Template]:
        return [t for t in self.templates() if t.learned(self.settings)]

    def _preceded(self, template: Template, at: float, what: str, first: float) -> None:
        if any(abs(p.at - at) < 1e-6 for p in template.incidents):
            return  # the same incident (a later sighting of the same lookback)
        template.incidents = [*template.incidents, Preceded(at, what, at - first)][-KEEP_INCIDENTS:]

    def _bound(self, service: str) -> None:
        mine = [t for t in self._templates.values() if t.service == service]
        if len(mine) > KEEP_TEMPLATES:
            quietest = min(mine, key=lambda t: (len(t.incidents), t.last))
            del self._templates[(service, quietest.key)]

    # --- the state file -----------------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        return {
            "templates": [
                {
                    "service": t.service,
                    "key": t.key,
                    "pattern_id": t.pattern_id,
                    "text": t.text,
                    "example": t.example,
                    "sightings": t.sightings,
                    "before": t.before,
                    "otherwise": t.otherwise,
                    "last": t.last,
                    "incidents": [[p.at, p.what, p.lead] for p in t.incidents],
                    "pending": list(t.pending),
                }
                for t in self.templates()
            ],
            "incidents": {s: [list(i) for i in d] for s, d in sorted(self._incidents.items())},
        }

    def load(self, data: Mapping[str, Any]) -> None:
        """Take back what ``dump`` wrote (raises KeyError, TypeError or ValueError on a
        document of another shape)."""
        for item in data.get("templates") or []:
            template = Template(
                str(item["service"]),
                str(item["key"]),
                str(item["pattern_id"]),
                str(item["text"]),
                str(item["example"]),
                int(item["sightings"]),
                int(item["before"]),
                int(item["otherwise"]),
                float(item["last"]),
                [Preceded(float(a), str(w), float(lead)) for a, w, lead in item["incidents"]],
                deque((float(t) for t in item["pending"]), maxlen=KEEP_PENDING),
            )
            self._templates[(template.service, template.key)] = template
        incidents: Mapping[str, Iterable[Any]] = data.get("incidents") or {}
        for service, items in incidents.items():
            self._incidents[str(service)] = deque(
                ((float(t), str(w)) for t, w in items), maxlen=KEEP_INCIDENTS
            )
