"""The fault journal: one JSON object per line, written as the run goes.

Three kinds of line (``event``):

- ``inject``: a fault as it is injected: its id, kind, service, parameters, the time of
  injection (``t0``, epoch seconds) and what a correct controller does (``expect``);
- ``done``: the same fault once its outcome was reached (or timed out): when its effect
  began (``effect_at``: the death, the first failed check, the line's engine timestamp),
  when the service was ready again (``recovered_at``), when a person's part of it ended
  (``ended_at``), when the controller had settled (``settled_at``) and notes;
- ``phase``: the run's stretches (``quiet``, ``faults``) with their start and end.

``read_faults`` merges ``inject`` and ``done`` lines into ``Fault`` records, which is all
the scorer needs from the journal.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class IssueExpect:
    """An issue a correct controller opens (or counts up) for a fault.

    ``prefix`` matches the fingerprint's start (``drift:api:exited``,
    ``log:api:conn-refused:``); ``categories``, when set, admits only issues of those
    categories (``log:worker:`` in connection or database: collateral errors of a
    dependency's outage).
    ``required`` issues make the fault detected (recall); the others are allowed
    collateral. ``cause`` is the fingerprint prefix of the upstream issue it must be
    linked to ("" means it must not be linked at all). ``human``: a correct controller
    hands it to a person (needs-human). ``text``, when set, must appear in the issue's
    title or detail (two errors of one pattern are told apart by what they name).
    ``low``: only a low issue matches (one the controller opens as expected, as a server's
    "the peer went away" when a client of it left: the same line at its own severity is a
    fault no restart explains)."""

    service: str
    prefix: str
    required: bool = True
    categories: tuple[str, ...] = ()
    cause: str = ""
    human: bool = False
    text: str = ""
    kinds: tuple[str, ...] = ()  # when set, the issue's kind must be one of these
    low: bool = False

    def matches(
        self,
        service: str,
        fingerprint: str,
        category: str = "",
        detail: str = "",
        kind: str = "",
        severity: str = "",  # "": not known where it is asked (no filter then)
    ) -> bool:
        if service != self.service or (self.text and self.text not in detail):
            return False
        if self.low and severity and severity != "low":
            return False
        if self.kinds and kind not in self.kinds:
            return False
        if self.categories and category not in self.categories:
            return False
        return fingerprint.startswith(self.prefix)


@dataclass(frozen=True)
class Expectation:
    """What a correct controller does about one fault, and why (the documented rule, or
    what an operator paged at night expects where the docs are silent)."""

    issues: tuple[IssueExpect, ...] = ()
    # service -> actions that may be taken on it for this fault
    actions: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # (service, action): must happen for the fault to be handled
    required_action: tuple[str, str] | None = None
    why: str = ""

    @property
    def needs_detection(self) -> bool:
        return any(i.required for i in self.issues)

    @property
    def human(self) -> bool:
        return any(i.human for i in self.issues)

    @property
    def services(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys([i.service for i in self.issues] + list(self.actions)))


@dataclass
class Fault:
    id: str
    kind: str
    service: str
    params: dict[str, Any]
    expect: Expectation
    t0: float = 0.0
    effect_at: float | None = None
    recovered_at: float | None = None
    ended_at: float | None = None
    settled_at: float | None = None
    notes: list[str] = field(default_factory=list)
    person: bool = False  # a person's own operation (what the controller must leave alone)
    recovery_expected: bool = False  # the service goes down and must come back

    @property
    def effect(self) -> float:
        return self.effect_at if self.effect_at is not None else self.t0

    @property
    def end(self) -> float:
        times = [self.t0, self.effect_at, self.recovered_at, self.ended_at, self.settled_at]
        return max(t for t in times if t is not None)


def expectation_from(data: dict[str, Any]) -> Expectation:
    return Expectation(
        issues=tuple(
            IssueExpect(
                **{
                    **i,
                    "categories": tuple(i.get("categories", ())),
                    "kinds": tuple(i.get("kinds", ())),
                }
            )
            for i in data.get("issues", [])
        ),
        actions={k: tuple(v) for k, v in data.get("actions", {}).items()},
        required_action=(str(data["required_action"][0]), str(data["required_action"][1]))
        if data.get("required_action")
        else None,
        why=data.get("why", ""),
    )


class Journal:
    """Appends JSON lines, one writer per run, safe across the injector's threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, sort_keys=True)
        with self._lock, open(self.path, "a") as out:
            out.write(line + "\n")

    def injected(self, fault: Fault) -> None:
        self.write(
            {
                "event": "inject",
                "id": fault.id,
                "kind": fault.kind,
                "service": fault.service,
                "params": fault.params,
                "t0": fault.t0,
                "person": fault.person,
                "recovery_expected": fault.recovery_expected,
                "expect": asdict(fault.expect),
            }
        )

    def done(self, fault: Fault) -> None:
        self.write(
            {
                "event": "done",
                "id": fault.id,
                "effect_at": fault.effect_at,
                "recovered_at": fault.recovered_at,
                "ended_at": fault.ended_at,
                "settled_at": fault.settled_at,
                "notes": fault.notes,
            }
        )

    def phase(self, name: str, start: float, end: float) -> None:
        self.write({"event": "phase", "phase": name, "start": start, "end": end})


def read_records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def faults_from(records: list[dict[str, Any]]) -> list[Fault]:
    faults: dict[str, Fault] = {}
    for record in records:
        if record.get("event") == "inject":
            faults[record["id"]] = Fault(
                id=record["id"],
                kind=record["kind"],
                service=record["service"],
                params=record.get("params", {}),
                expect=expectation_from(record.get("expect", {})),
                t0=float(record["t0"]),
                person=bool(record.get("person", False)),
                recovery_expected=bool(record.get("recovery_expected", False)),
            )
        elif record.get("event") == "done" and record["id"] in faults:
            fault = faults[record["id"]]
            for key in ("effect_at", "recovered_at", "ended_at", "settled_at"):
                setattr(fault, key, record.get(key))
            fault.notes = list(record.get("notes", []))
    return sorted(faults.values(), key=lambda f: f.t0)


def phases_from(records: list[dict[str, Any]]) -> dict[str, tuple[float, float]]:
    return {
        r["phase"]: (float(r["start"]), float(r["end"]))
        for r in records
        if r.get("event") == "phase"
    }
