"""The JSON document ``docker_issues_<env>.json``: building it and reading it back.

Its shape is documented in docs/issues-file.md; ``SCHEMA_VERSION`` changes
whenever a field changes meaning or goes away (new fields may appear without a bump).
Version 2 keeps each service's remediation record (``model.ServiceRecord``) under
``remediation`` and its rollback record (``model.RollbackRecord``: last-good snapshots,
the newest change and its verdict, a rollback in force) under ``rollback``; a version 1
file (the rate limiter's flat history there) is read back and carried over. Each issue's
``plan``, ``waiting_for``, ``next_attempt_at`` and ``verifying_until`` are derived from
those records as the document is built.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydantic_core
from pydantic import ValidationError

from controller import __version__

# Beyond ARCHITECTURE.md's "issues imports model": issues read back from a file an older
# version wrote are redacted again (see _scrubbed).
from controller.detect.redact import redact
from controller.issues.present import presented
from controller.model import (
    CrashPattern,
    Issue,
    IssueState,
    Ladder,
    ResourceTrend,
    RollbackRecord,
    ServiceCondition,
    ServiceRecord,
    ServiceStatus,
    StepRecord,
    Throttle,
    to_datetime,
)

SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)


class IssueFileError(Exception):
    """An issues file exists but cannot be read back; the message is one line."""


def ready_and_unblocked(issues: list[Issue], services: list[ServiceStatus]) -> bool:
    """Every required service of ``services`` ready, and no active issue that blocks.

    Only half of "converged": the controller adds the evidence (``Controller.converged``:
    the engine answered, every declared service was observed after the last change, each
    stayed ready for its hold).
    """
    return all(s.condition is ServiceCondition.READY for s in services if s.required) and not any(
        i.active and i.blocking for i in issues
    )


@dataclass(frozen=True, slots=True)
class SavedState:
    """What an earlier run left in its issues file."""

    issues: list[Issue] = field(default_factory=list)
    log_cursors: dict[str, int] = field(default_factory=dict)
    remediation: dict[str, ServiceRecord] = field(default_factory=dict)
    rollback: dict[str, RollbackRecord] = field(default_factory=dict)


def build_document(
    *,
    env: str,
    project: str,
    issues: list[Issue],
    services: list[ServiceStatus],
    generated_at: float,
    dry_run: bool,
    is_converged: bool,
    observed_at: float | None = None,
    engine: str = "",
    waiting_on: Sequence[str] = (),
    log_cursors: Mapping[str, int] | None = None,
    remediation: Mapping[str, ServiceRecord] | None = None,
    rollback: Mapping[str, RollbackRecord] | None = None,
    trends: Sequence[ResourceTrend] = (),
    learned: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The document; ``is_converged`` is the controller's verdict (it needs evidence the
    issues alone do not carry), ``observed_at`` when the newest completed pass began
    (None: never observed), ``engine`` why the engine is unreachable ("" when it answers),
    ``waiting_on`` what else keeps it from converged (a step at work, a change under watch),
    ``trends`` each service's resources as last sampled, ``learned`` the precursors learned
    from history (``foresight``)."""
    states = Counter(str(i.state) for i in issues)
    records = remediation or {}
    active = [i for i in issues if i.active]
    return {
        "schema_version": SCHEMA_VERSION,
        "generator": f"compose-controller {__version__}",
        "env": env,
        "project": project,
        "generated_at": to_datetime(generated_at).isoformat(),
        "observed_at": to_datetime(observed_at).isoformat() if observed_at else None,
        "engine": {"reachable": not engine, "detail": engine},
        "dry_run": dry_run,
        "converged": is_converged,
        "waiting_on": list(waiting_on),
        "summary": {
            "active": len(active),
            "by_state": {str(s): states.get(str(s), 0) for s in IssueState},
            "active_by_severity": dict(Counter(str(i.severity) for i in active)),
            "active_by_category": dict(Counter(str(i.category) for i in active)),
        },
        "services": [s.model_dump(mode="json") for s in services],
        "issues": [
            presented(i, records.get(i.service))
            for i in sorted(issues, key=lambda i: (not i.active, -i.severity.rank, i.first_seen))
        ],
        "trends": [t.model_dump(mode="json") for t in trends],
        "learned": dict(learned or {}),
        "remediation": {k: v.model_dump(mode="json") for k, v in records.items()},
        "rollback": {k: v.model_dump(mode="json") for k, v in (rollback or {}).items()},
        "log_cursors": dict(sorted((log_cursors or {}).items())),
    }


def _scrubbed(issue: Issue) -> Issue:
    """An issue read back with its container text redacted again: a file an older version
    wrote may hold secrets its redaction missed, and every save would write them anew."""
    return issue.model_copy(
        update={
            "title": redact(issue.title),
            "detail": redact(issue.detail),
            "resolution": redact(issue.resolution),
            "samples": [redact(s) for s in issue.samples],
            "captures": {k: redact(v) for k, v in issue.captures.items()},
            "attempts": [a.model_copy(update={"detail": redact(a.detail)}) for a in issue.attempts],
        }
    )


def render_json(document: dict[str, Any]) -> str:
    """The document as indented JSON, by pydantic's encoder: a quarter of the CPU of the
    standard library's, which indents in Python (a flood saves twice a second)."""
    return pydantic_core.to_json(document, indent=2).decode("utf-8") + "\n"


def load_state(path: Path) -> SavedState:
    """Issues and log cursors saved by an earlier run (empty if there is no file)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return SavedState()
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IssueFileError(f"{path}: cannot read issues: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("issues"), list):
        raise IssueFileError(f"{path}: issues: expected a list under 'issues'")
    version = raw.get("schema_version")
    if version not in READABLE_VERSIONS:
        raise IssueFileError(f"{path}: schema_version: expected {SCHEMA_VERSION}")
    issues = []
    for index, item in enumerate(raw["issues"]):
        try:
            issues.append(_scrubbed(Issue.model_validate(item)))
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in (index, *first["loc"]))
            raise IssueFileError(f"{path}: issues.{loc}: {first['msg']}") from exc
    cursors = raw.get("log_cursors") or {}
    if not isinstance(cursors, dict) or not all(
        isinstance(k, str) and isinstance(v, int) for k, v in cursors.items()
    ):
        raise IssueFileError(f"{path}: log_cursors: expected container ids to integers")
    records: dict[str, ServiceRecord] = {}
    for service, item in (raw.get("remediation") or {}).items():
        try:
            records[str(service)] = (
                _record_of_version_1(item) if version == 1 else ServiceRecord.model_validate(item)
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in (service, *first["loc"]))
            raise IssueFileError(f"{path}: remediation.{loc}: {first['msg']}") from exc
    rollback: dict[str, RollbackRecord] = {}
    for service, item in (raw.get("rollback") or {}).items():
        try:
            rollback[str(service)] = RollbackRecord.model_validate(item)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in (service, *first["loc"]))
            raise IssueFileError(f"{path}: rollback.{loc}: {first['msg']}") from exc
    return SavedState(issues, cursors, records, rollback)


def _record_of_version_1(item: Any) -> ServiceRecord:
    """A service's record from a version 1 file, where the rate limiter's history was
    kept flat (``next_allowed_at``, ``verifying``, ``policy_restarts_from`` ...)."""
    old = item if isinstance(item, dict) else {}
    return ServiceRecord(
        throttle=Throttle.model_validate(
            {
                "steps": old.get("steps", []),
                "exhausted_at": old.get("exhausted_at"),
                "consecutive": old.get("consecutive", 0),
                "fault": old.get("fault", ""),
                "last_step_at": old.get("last_step_at"),
                "next_step_at": old.get("next_allowed_at"),
                "ready_since": old.get("ready_since"),
            }
        ),
        ladder=Ladder.model_validate(
            {"learned": old.get("learned", {}), "tried": old.get("tried", [])}
        ),
        step=StepRecord.model_validate(old["verifying"]) if old.get("verifying") else None,
        crashes=CrashPattern(),
        docker_loop_from=old.get("policy_restarts_from"),
    )
