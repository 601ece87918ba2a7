"""The Markdown report ``docker_issues_report_<env>.md``, rendered from the JSON document.

Rendering from the document (not from the store) keeps the two outputs consistent: the
report never says anything the JSON does not.
"""

from __future__ import annotations

import re
from typing import Any

RECENT_ACTIONS = 30


def cell(value: object) -> str:
    """Text safe inside a Markdown table cell."""
    text = "" if value is None else str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _time(value: str | None) -> str:
    return value[:19].replace("T", " ") if value else ""


def _table(headers: list[str], rows: list[list[object]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return lines


def _evidence(doc: dict[str, Any]) -> list[str]:
    """What the verdict rests on: when the stack was last observed, or why it was not."""
    engine = doc.get("engine") or {}
    lines = []
    if engine.get("detail"):
        lines.append(f"**The engine could not be reached:** {cell(engine['detail'])}")
    observed = doc.get("observed_at")
    lines.append(f"Last observed {_time(observed)} UTC." if observed else "**Never observed.**")
    return [*lines, ""]


def render_markdown(doc: dict[str, Any]) -> str:
    issues: list[dict[str, Any]] = doc["issues"]
    active = [i for i in issues if i["state"] != "resolved"]
    resolved = [i for i in issues if i["state"] == "resolved"]
    out = [
        f"# Docker issues report: {doc['env']}",
        "",
        f"Project `{doc['project']}`, generated {_time(doc['generated_at'])} UTC by "
        f"{doc['generator']}." + (" **Dry run: nothing was changed.**" if doc["dry_run"] else ""),
        "",
        f"**Converged: {'yes' if doc['converged'] else 'no'}"
        + (f" ({'; '.join(doc['waiting_on'])})" if doc.get("waiting_on") else "")
        + ".** "
        f"{len(active)} active issue(s), {len(resolved)} resolved.",
        "",
        *_evidence(doc),
        "## Services",
        "",
    ]
    swarm = any(s.get("nodes") for s in doc["services"])  # a stack: where its tasks run
    out += _table(
        ["service", "condition", "containers", "running", "healthy", "restarts"]
        + (["nodes"] if swarm else []),
        [
            [
                s["name"] + ("" if s["required"] else " (optional)"),
                s["condition"],
                f"{s['containers']}/{s['replicas']}",
                s["running"],
                "-" if s["healthy"] is None else s["healthy"],
                s["restarts"],
            ]
            + ([", ".join(s.get("nodes") or []) or "-"] if swarm else [])
            for s in doc["services"]
        ],
    )
    out += _rollback(doc)
    out += _resources(doc.get("trends") or [])
    out += _learned(doc.get("learned") or {})
    out += ["", "## Active issues", ""]
    if not active:
        out.append("None.")
    for issue in active:
        out += _issue_section(issue)
    out += ["", "## Remediation log", ""]
    attempts = sorted(
        ((a, i) for i in issues for a in i["attempts"]),
        key=lambda pair: pair[0]["started_at"],
        reverse=True,
    )[:RECENT_ACTIONS]
    if attempts:
        out += _table(
            ["started", "service", "issue", "action", "attempt", "outcome", "detail"],
            [
                [
                    _time(a["started_at"]),
                    i["service"],
                    i["id"],
                    a["action"],
                    a["attempt"],
                    a["outcome"] or "running",
                    a["detail"],
                ]
                for a, i in attempts
            ],
        )
    else:
        out.append("No actions taken.")
    out += ["", "## Resolved issues", ""]
    if resolved:
        out += _table(
            ["id", "service", "title", "occurrences", "resolved", "resolution"],
            [
                [
                    i["id"],
                    i["service"],
                    i["title"],
                    i["occurrences"],
                    _time(i["resolved_at"]),
                    i["resolution"],
                ]
                for i in resolved
            ],
        )
    else:
        out.append("None.")
    return "\n".join(out) + "\n"


def _short(identity: dict[str, Any] | None) -> str:
    identity = identity or {}
    image = str(identity.get("image_id") or "?").removeprefix("sha256:")[:12]
    return f"config {str(identity.get('config_hash') or '?')[:12]}, image {image}"


def _rollback(doc: dict[str, Any]) -> list[str]:
    """Each service's last good snapshot, its newest change and verdict, and whether it
    runs a snapshot instead of its declared config ("rolled back from X to Y because Z")."""
    records: dict[str, Any] = doc.get("rollback") or {}
    rows: list[list[object]] = []
    for service, record in sorted(records.items()):
        snapshots = record.get("snapshots") or []
        change = record.get("change") or {}
        rolled = record.get("rolled_back")
        if not (snapshots or change or rolled):
            continue
        newest = snapshots[-1] if snapshots else None
        if rolled and rolled.get("held"):
            now = f"held back on snapshot {rolled['snapshot']} because {rolled['because']}"
        elif rolled:
            now = (
                f"rolled back from {_short(rolled.get('bad'))} to snapshot {rolled['snapshot']} "
                f"because {rolled['because']}: not at its declared config"
            )
        else:
            now = "as declared"
        rows.append(
            [
                service,
                f"{newest['number']} ({_short(newest['identity'])}, {_time(newest['taken_at'])})"
                if newest
                else "none",
                f"{change['verdict']}, by {change['by']}: {change.get('reason') or 'under watch'}"
                if change
                else "-",
                now,
            ]
        )
    if not rows:
        return []
    return [
        "",
        "## Rollback",
        "",
        *_table(["service", "last good snapshot", "newest change", "runs"], rows),
    ]


_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def _amount(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit != "bytes":
        return f"{value:.0f}"
    amount, index = float(value), 0
    while amount >= 1024 and index < len(_UNITS) - 1:
        amount, index = amount / 1024, index + 1
    return f"{amount:.1f} {_UNITS[index]}".replace(".0 ", " ")


def _minutes(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds / 60:.0f} min" if seconds < 48 * 3600 else f"{seconds / 86400:.0f} days"


def _resources(trends: list[dict[str, Any]]) -> list[str]:
    """Each service's resources as last sampled: use, limit, trend, time left, and the
    memory limit Kubernetes' VPA would set (max(peak + 100 MiB, peak x 1.2))."""
    if not trends:
        return []
    rows = []
    for t in trends:
        unit = t["unit"]
        slope = t.get("slope_per_second")
        per_min = "-" if slope is None else f"{_amount(abs(slope) * 60, unit)}/min"
        if slope is not None and unit != "bytes":
            per_min = f"{abs(slope) * 60:.2g} {unit}/min"
        if slope is not None and slope < 0:
            per_min = "-" + per_min
        limit = _amount(t["limit"], unit) + f" ({t['limit_source']})" if t["limit"] else "none"
        rows.append(
            [
                t["service"],
                t["resource"],
                _amount(t["usage"], unit),
                limit,
                f"{t['trend']}; {per_min}",
                _minutes(t.get("seconds_left")),
                _amount(t["peak"], unit),
                _amount(t.get("suggested_limit"), unit),
            ]
        )
    return [
        "",
        "## Resources",
        "",
        *_table(
            [
                "service",
                "resource",
                "now",
                "limit",
                "trend",
                "limit reached in",
                "peak",
                "suggested limit (VPA)",
            ],
            rows,
        ),
    ]


def _learned(learned: dict[str, Any]) -> list[str]:
    """The precursors learned from history (``controller patterns`` says more)."""
    found = [p for p in learned.get("precursors") or [] if p.get("learned")]
    if not found:
        return []
    out = ["", "## Learned precursors", ""]
    for p in found:
        leads = sorted(i["lead_seconds"] for i in p["incidents"])
        out.append(
            f"- `{p['service']}`: {cell(p['template'])}: before {len(p['incidents'])} "
            f"incidents ({', '.join(sorted({i['what'] for i in p['incidents']}))}), "
            f"{leads[len(leads) // 2]:.0f} s ahead typically; seen {p['otherwise']} time(s) "
            f"without one (learn: {learned.get('mode')})"
        )
    return out


def _fenced(text: str) -> list[str]:
    """A code block that the text itself cannot close."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence, text, fence]


def _issue_section(issue: dict[str, Any]) -> list[str]:
    kind = issue["kind"]
    if issue.get("pattern_id") and issue["pattern_id"] != kind:
        kind = f"{kind} (pattern `{issue['pattern_id']}`)"
    lines = [
        f"### `{issue['id']}` {issue['severity'].upper()} {cell(issue['title'])}",
        "",
        f"- service `{issue['service']}`, category {issue['category']}, "
        f"kind {kind}, state **{issue['state']}**",
        f"- seen {issue['count']} time(s), first {_time(issue['first_seen'])}, "
        f"last {_time(issue['last_seen'])}",
    ]
    if issue.get("escalated_from"):
        lines.append(
            f"- escalated from {issue['escalated_from']} to {issue['severity']}: it repeated "
            "too often"
        )
    if issue["detail"]:
        lines.append(f"- detail: {cell(issue['detail'])}")
    if issue.get("hint"):
        lines.append(f"- hint: {cell(issue['hint'])}")
    if issue.get("suggested") and issue["suggested"] != "none":
        lines.append(f"- suggested remediation: {issue['suggested']}")
    if issue.get("caused_by"):
        evidence = issue.get("cause_evidence") or {}
        causes = "; ".join(
            f"`{c}`" + (f" ({cell(evidence[c])})" if evidence.get(c) else "")
            for c in issue["caused_by"]
        )
        lines.append(f"- caused by {causes}: not fixed on its own; that is fixed first")
    if issue["waiting_for"]:
        lines.append(f"- waiting for: {', '.join(issue['waiting_for'])} to be ready first")
    if issue["plan"]:
        lines.append(f"- plan: {cell(issue['plan'])}")
    if issue["next_attempt_at"]:
        lines.append(f"- next attempt not before {_time(issue['next_attempt_at'])} UTC")
    if issue.get("verifying_until"):
        lines.append(
            f"- a step was carried out; verifying until {_time(issue['verifying_until'])} UTC"
        )
    if issue["resolution"]:
        lines.append(f"- why: {cell(issue['resolution'])}")
    if issue.get("samples"):
        lines += ["", "Latest evidence (secrets masked):", "", *_fenced(issue["samples"][-1])]
    lines.append("")
    return lines
