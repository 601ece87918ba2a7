"""The issues document as a person reads it: ``kubectl get`` (one row per service) and
``kubectl describe`` (one service, its issues, attempts, backoff and what it waits for).

Pure: the document, the time now and whether to colour are passed in. Only documented
fields of the issues file are read (docs/issues-file.md), so the output does not
depend on how the controller's core keeps them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

Doc = dict[str, Any]

_CONDITION_COLOUR = {"Ready": "32", "Progressing": "33", "Degraded": "31", "Remediating": "36"}
_SEVERITY_COLOUR = {"low": "2", "medium": "33", "high": "31", "critical": "1;31"}
_SEVERITY_RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}
ACTIVE = ("open", "remediating", "failed", "needs-human")  # the states of an active issue
COLUMNS = ["SERVICE", "CONDITION", "RUNNING", "HEALTHY", "RESTARTS", "ISSUES", "NEXT", "WHEN"]


class Paint:
    """ANSI colours, or nothing (not a terminal, NO_COLOR, ``--color never``)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, text: str, code: str | None) -> str:
        if not self.enabled or not code or not text:
            return text
        return f"\x1b[{code}m{text}\x1b[0m"


def parse_time(value: str | None) -> datetime | None:
    """A time of the document (ISO 8601, ``Z`` too); None when absent or unreadable."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def duration(seconds: float) -> str:
    """kubectl's way: 45s, 3m12s, 2h5m, 3d4h."""
    s = int(abs(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60}s" if s < 600 else f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h{(s % 3600) // 60}m"
    return f"{s // 86400}d{(s % 86400) // 3600}h"


def ago(value: str | None, now: datetime) -> str:
    at = parse_time(value)
    return "-" if at is None else f"{duration((now - at).total_seconds())} ago"


def until(value: str | None, now: datetime) -> str:
    at = parse_time(value)
    if at is None:
        return "-"
    left = (at - now).total_seconds()
    return f"in {duration(left)}" if left >= 1 else "now"


def active_issues(doc: Doc, service: str) -> list[Doc]:
    return [
        i for i in doc.get("issues", []) if i.get("service") == service and i.get("state") in ACTIVE
    ]


def next_action(doc: Doc, service: str, now: datetime) -> tuple[str, str]:
    """What the controller will do next about ``service``, and when."""
    issues = active_issues(doc, service)
    if not issues:
        return "-", "-"
    by_id = {i.get("id"): i for i in doc.get("issues", [])}
    for issue in issues:
        if issue.get("state") == "remediating":
            running = [a for a in issue.get("attempts", []) if not a.get("finished_at")]
            step = running[-1] if running else None
            if step is None:
                return "fixing", "now"
            label = f"{step['action']} (attempt {step['attempt']})"
            if step.get("acted_at"):  # its command returned: proven by the deadline or failed
                return f"proving {label}", until(issue.get("verifying_until"), now)
            return label, "now"
    if any(i.get("state") == "needs-human" for i in issues):
        return "needs a human", "-"
    waiting = sorted({w for i in issues for w in i.get("waiting_for", [])})
    if waiting:
        return f"wait for {', '.join(waiting)}", "-"
    upstream = sorted(
        {
            by_id[c].get("service", "?")
            for i in issues
            for c in i.get("caused_by", [])
            if c in by_id and by_id[c].get("service") != service
        }
    )
    if upstream and all(i.get("caused_by") for i in issues):
        return f"after {', '.join(upstream)} is fixed", "-"
    pending = sorted(
        (i.get("next_attempt_at") for i in issues if i.get("next_attempt_at")), key=str
    )
    if pending:
        return "fix (backing off)", until(pending[0], now)
    if all(not i.get("blocking", True) and not i.get("plan") for i in issues):
        return "report only", "-"
    return "fix", "now"


def _issues_cell(issues: list[Doc], paint: Paint) -> str:
    if not issues:
        return "0"
    worst = max(
        (str(i.get("severity", "low")) for i in issues), key=lambda s: _SEVERITY_RANK.get(s, 0)
    )
    return f"{len(issues)} ({paint(worst, _SEVERITY_COLOUR.get(worst))})"


def _grid(rows: list[list[str]], plain: list[list[str]]) -> list[str]:
    """Columns padded by their visible width (colour codes take none)."""
    widths = [max(len(r[c]) for r in plain) for c in range(len(plain[0]))]
    out = []
    for shown, bare in zip(rows, plain, strict=True):
        cells = [s + " " * (w - len(b)) for s, b, w in zip(shown, bare, widths, strict=True)]
        out.append("   ".join(cells).rstrip())
    return out


def header(doc: Doc, now: datetime, paint: Paint) -> str:
    engine = doc.get("engine") or {}
    verdict = paint("converged", "32") if doc.get("converged") else paint("not converged", "31")
    if waiting := doc.get("waiting_on"):
        verdict += f" ({'; '.join(waiting)})"
    active = (doc.get("summary") or {}).get("active", 0)
    line = (
        f"{doc.get('project', '?')} (env {doc.get('env', '?')}): {verdict}, "
        f"{active} active issue(s), observed {ago(doc.get('observed_at'), now)}"
    )
    if engine.get("reachable") is False:
        line += "\n" + paint(f"engine unreachable: {engine.get('detail', '')}", "31")
    if doc.get("dry_run"):
        line += " (dry run)"
    return line


def service_row(doc: Doc, service: Doc, now: datetime, paint: Paint) -> list[str]:
    """One service's cells under ``COLUMNS`` (the table's row, the status page's too)."""
    name = str(service.get("name"))
    issues = active_issues(doc, name)
    action, when = next_action(doc, name, now)
    healthy = service.get("healthy")
    condition = str(service.get("condition", "?"))
    return [
        name,
        paint(condition, _CONDITION_COLOUR.get(condition)),
        f"{service.get('running', 0)}/{service.get('replicas', 0)}",
        "-" if healthy is None else f"{healthy}/{service.get('replicas', 0)}",
        str(service.get("restarts", 0)),
        _issues_cell(issues, paint),
        action,
        when,
    ]


def sorted_services(doc: Doc) -> list[Doc]:
    return sorted(doc.get("services", []), key=lambda s: str(s.get("name")))


def table(doc: Doc, now: datetime, paint: Paint) -> str:
    """One row per service, like ``kubectl get``."""
    shown, plain = [COLUMNS], [COLUMNS]
    for s in sorted_services(doc):
        shown.append(service_row(doc, s, now, paint))
        plain.append(service_row(doc, s, now, Paint(False)))
    return header(doc, now, paint) + "\n\n" + "\n".join(_grid(shown, plain))


def describe(doc: Doc, service: Doc, now: datetime, paint: Paint) -> str:
    """One service in full, like ``kubectl describe``."""
    name = str(service.get("name"))
    condition = str(service.get("condition", "?"))
    healthy = service.get("healthy")
    replicas = service.get("replicas", 0)
    action, when = next_action(doc, name, now)
    throttle = ((doc.get("remediation") or {}).get(name) or {}).get("throttle")
    lines = [
        f"Name:         {name}",
        f"Env:          {doc.get('env', '?')} (project {doc.get('project', '?')})",
        f"Condition:    {paint(condition, _CONDITION_COLOUR.get(condition))}",
        f"Required:     {'yes' if service.get('required', True) else 'no'}",
        f"Containers:   {service.get('running', 0)}/{replicas} running"
        + ("" if healthy is None else f", {healthy}/{replicas} healthy"),
        f"Restarts:     {service.get('restarts', 0)} (by its restart policy)",
        *([f"Nodes:        {', '.join(nodes)}"] if (nodes := service.get("nodes")) else []),
        f"Next:         {action}" + ("" if when in ("-", "") else f" ({when})"),
        f"Backoff:      {_backoff(throttle, now)}",
        *rollback_lines(((doc.get("rollback") or {}).get(name)) or {}, now),
    ]
    issues = active_issues(doc, name)
    by_id = {i.get("id"): i for i in doc.get("issues", [])}
    lines.append(f"Issues:       {len(issues) or 'none open'}")
    for issue in issues:
        lines += _issue(issue, by_id, now, paint)
    resolved = [
        i
        for i in doc.get("issues", [])
        if i.get("service") == name and i.get("state") == "resolved"
    ]
    if resolved:
        lines.append(f"Resolved:     {len(resolved)} (newest first)")
        newest = sorted(resolved, key=lambda i: str(i.get("resolved_at") or ""), reverse=True)
        for issue in newest[:3]:
            lines.append(
                f"  {issue.get('id')}  {ago(issue.get('resolved_at'), now):>9}  "
                f"{issue.get('title')}: {issue.get('resolution') or 'resolved'}"
            )
    return "\n".join(lines)


def _identity(value: Doc | None) -> str:
    value = value or {}
    config = str(value.get("config_hash") or "?")[:12]
    image = str(value.get("image_id") or "?").removeprefix("sha256:")[:12]
    return f"config {config}, image {image}"


def rollback_lines(record: Doc, now: datetime) -> list[str]:
    """The service's rollback record (its ``rollback`` in the document) for a person: a
    rollback in force, its last good snapshot, its newest change and the verdict."""
    lines = []
    rolled = record.get("rolled_back")
    if rolled:
        how = (
            f"held back on snapshot {rolled.get('snapshot')}: the change never ran"
            if rolled.get("held")
            else f"rolled back from {_identity(rolled.get('bad'))} to snapshot "
            f"{rolled.get('snapshot')}"
        )
        lines.append(
            f"Rollback:     {how} because {rolled.get('because')} ({ago(rolled.get('at'), now)}); "
            "not at its declared config"
        )
    snapshots = record.get("snapshots") or []
    if snapshots:
        newest = snapshots[-1]
        lines.append(
            f"Last good:    snapshot {newest.get('number')} ({_identity(newest.get('identity'))}, "
            f"{newest.get('image') or '?'}), taken {ago(newest.get('taken_at'), now)}; "
            f"{len(snapshots)} kept"
        )
    change = record.get("change")
    if change:
        verdict = str(change.get("verdict"))
        said = "under watch" if verdict == "pending" else f"{verdict}: {change.get('reason')}"
        lines.append(
            f"Change:       by {change.get('by')} {ago(change.get('seen_at'), now)}, "
            f"{_identity(change.get('before'))} -> {_identity(change.get('after'))}; {said}"
        )
    return lines


def took(attempt: Doc) -> str:
    """How long a step took (``5.5s``), or ``running``."""
    started = parse_time(attempt.get("started_at"))
    finished = parse_time(attempt.get("finished_at"))
    if started is None or finished is None:
        return "running"
    return f"{(finished - started).total_seconds():.1f}s"


def _backoff(history: Doc | None, now: datetime) -> str:
    """The service's throttle (its record's ``throttle``) for a person."""
    if not history or not (history.get("steps") or history.get("exhausted_at")):
        return "none (no fix step in the budget window)"
    parts = []
    if history.get("exhausted_at"):
        parts.append(
            f"budget spent {ago(history['exhausted_at'], now)}; hands off until it recovers"
        )
    nxt = parse_time(history.get("next_step_at"))
    if nxt is not None and nxt > now:
        parts.append(f"next fix {until(history['next_step_at'], now)}")
    else:
        parts.append("a fix may run now")
    parts.append(
        f"{history.get('consecutive', 0)} fix step(s) since last stable, "
        f"{len(history.get('steps', []))} in the budget window"
    )
    if history.get("ready_since"):
        parts.append(f"ready since {ago(history['ready_since'], now)}")
    return "; ".join(parts)


def _issue(issue: Doc, by_id: dict[Any, Doc], now: datetime, paint: Paint) -> list[str]:
    severity = str(issue.get("severity", "?"))
    lines = [
        "",
        f"  {issue.get('id')}  {issue.get('kind')}  "
        f"{paint(severity, _SEVERITY_COLOUR.get(severity))}  {issue.get('state')}  "
        f"{issue.get('title')}",
        f"    Opened:       {ago(issue.get('opened_at'), now)} (occurrence "
        f"{issue.get('occurrences', 1)}, seen {issue.get('count', 1)} time(s))",
    ]
    fields = [
        ("Detail", issue.get("detail")),
        ("Escalated", f"from {issue['escalated_from']}" if issue.get("escalated_from") else ""),
        ("Plan", issue.get("plan")),
        ("Why", issue.get("resolution")),
        ("Waits for", ", ".join(issue.get("waiting_for", []))),
        (
            "Caused by",
            "; ".join(
                (f"{c} ({by_id[c].get('service')}: {by_id[c].get('title')})" if c in by_id else c)
                + (f": {why}" if (why := issue.get("cause_evidence", {}).get(c)) else "")
                for c in issue.get("caused_by", [])
            ),
        ),
        (
            "Next attempt",
            until(issue.get("next_attempt_at"), now) if issue.get("next_attempt_at") else "",
        ),
        ("Hint", issue.get("hint")),
    ]
    lines += [f"    {label + ':':<14}{value}" for label, value in fields if value]
    attempts = issue.get("attempts", [])
    if attempts:
        lines.append("    Attempts:")
        rows = [["#", "ACTION", "STARTED", "TOOK", "OUTCOME", "DETAIL"]]
        for a in attempts:
            rows.append(
                [
                    str(a.get("attempt", "?")),
                    str(a.get("action", "?")),
                    ago(a.get("started_at"), now),
                    took(a),
                    str(a.get("outcome") or "-"),
                    str(a.get("detail") or ""),
                ]
            )
        lines += ["      " + row for row in _grid(rows, rows)]
    return lines
