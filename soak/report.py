"""The soak's one table (ours, and the baselines beside it where they apply), the list of
what went wrong under it, and the same as one JSON line."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from bench.latency import percentile
from soak.score import Score

BASELINES = (("autoheal", "autoheal (5 s)"), ("docker", "docker on-failure"))


def _pair(values: list[float]) -> str:
    p50, p95 = percentile(values, 0.5), percentile(values, 0.95)
    return "n/a" if p50 is None or p95 is None else f"{p50:.2f} / {p95:.2f}"


def _ratio(ours: list[float], theirs: list[float]) -> str:
    mine = [percentile(ours, q) for q in (0.5, 0.95)]
    other = [percentile(theirs, q) for q in (0.5, 0.95)]
    if None in mine or None in other or not all(other):
        return ""
    return " ({:.2f}x / {:.2f}x)".format(*(m / o for m, o in zip(mine, other, strict=True)))  # type: ignore[operator]


def _percent(value: float | None, num: int, den: int) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} % ({num}/{den})"


def render(score: Score, meta: dict[str, Any]) -> str:
    rows: list[list[str]] = []
    base = score.baselines

    def row(name: str, ours: str, *others: str) -> None:
        rows.append([name, ours, *(others or ("",) * len(BASELINES))])

    def theirs(field: str) -> list[str]:
        out = []
        for name, _ in BASELINES:
            b = base.get(name)
            if b is None or field not in b:
                out.append("n/a")
            else:
                out.append(_pair(b[field]) + _ratio(getattr(score, field), b[field]))
        return out

    counts = [str(base[n]["faults"]) if n in base else "n/a" for n, _ in BASELINES]
    row("injected faults", str(score.faults), *counts)
    row("issues opened (collateral)", f"{score.issues_opened} ({score.collateral_openings})")
    recall_base = []
    for name, _ in BASELINES:
        b = base.get(name)
        if b is None or "detected" not in b:
            recall_base.append("n/a")
        else:
            recall_base.append(
                _percent(
                    b["detected"] / b["faults"] if b["faults"] else None, b["detected"], b["faults"]
                )
            )
    row("recall", _percent(score.recall, score.detected, score.needing_detection), *recall_base)
    row(
        "precision",
        _percent(
            score.precision,
            score.backed_openings + score.backed_steps,
            score.issues_opened + score.steps,
        ),
    )
    row("false actions", str(score.false_actions))
    pages = ", ".join(f"{k} {v}" for k, v in sorted(score.false_pages_by.items())) or "none"
    row("false pages", f"{score.false_pages} ({pages})")
    row("missed faults", str(score.missed))
    row("fixed while still failing", str(score.fixed_early))
    row("missing actions", str(score.missing_actions))
    row(
        "root-cause links right/wrong",
        f"{score.links_right}/{score.links_wrong} (missing {score.links_missing})",
    )
    row("time to detect p50/p95 (s)", _pair(score.detect))
    row("a person's stop reported p50/p95 (s)", _pair(score.person_report))
    row("time to recover p50/p95 (s)", _pair(score.recover))
    row("crash detect p50/p95 (s)", _pair(score.crash_detect), *theirs("crash_detect"))
    row("crash recover p50/p95 (s)", _pair(score.crash_recover), *theirs("crash_recover"))
    row("  first fix in 10 min p50/p95 (s)", _pair(score.crash_recover_first))
    row("healthcheck detect p50/p95 (s)", _pair(score.health_detect), *theirs("health_detect"))
    row("healthcheck recover p50/p95 (s)", _pair(score.health_recover), *theirs("health_recover"))
    q = score.quiet
    row(
        "quiet stretch issues/actions/notes/alerts",
        "/".join(str(q.get(k, "n/a")) for k in ("issues", "actions", "notifications", "alerts")),
    )
    header = ["", "ours", *(label for _, label in BASELINES)]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        f"soak seed {meta.get('seed')} ({meta.get('mode')}): {score.faults} faults in "
        f"{score.fault_seconds / 60:.1f} min after a quiet stretch of "
        f"{score.quiet_seconds / 60:.1f} min ({score.spontaneous} healthcheck(s) failed on "
        "their own); ratios are ours/theirs (p50 / p95)",
        "",
        "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip(),
    ]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


def render_faults(score: Score) -> str:
    """One line per fault: what it was, how fast it was seen and fixed, what was done."""

    def seconds(value: object) -> str:
        if value is None:
            return "MISSED"
        return f"{value:.2f}" if isinstance(value, float) else str(value)

    lines = ["fault  kind              service   detect  recover  actions / problems"]
    for f in score.per_fault:
        params = " ".join(f"{k}={v}" for k, v in f["params"].items())
        recover = "" if f["recover"] is None else f"{f['recover']:.2f}"
        lines.append(
            f"{f['id']:<6} {f['kind']:<17} {f['service']:<9} {seconds(f['detect']):>6}  "
            f"{recover:>7}  {', '.join(f['actions']) or '-'}"
            + (f" / {f['problems']} problem(s)" if f["problems"] else "")
            + (f"  [{params}]" if params else "")
        )
    return "\n".join(lines)


def render_problems(score: Score) -> str:
    if not score.problems and not score.notes:
        return "no problem found"
    lines = []
    for p in score.problems:
        when = datetime.fromtimestamp(p.at, UTC).strftime("%H:%M:%S.%f")[:-3]
        lines.append(f"{when} {p.what}: {p.service} {p.fault}: {p.detail}".replace("  ", " "))
    lines += [f"note: {n}" for n in score.notes]
    return "\n".join(lines)


def json_line(score: Score, meta: dict[str, Any]) -> str:
    return json.dumps({"soak": {**meta, **score.as_dict()}}, sort_keys=True, default=str)
