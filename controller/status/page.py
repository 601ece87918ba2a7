"""The status page: the issues document as HTML, at ``/`` and ``/service/<name>`` of the
controller's HTTP server (``controller.http`` serves what this draws).

Pure: the document, the time now and the root of the page's links are passed in; out
comes one HTML page. The data is what ``controller status`` shows, from the same
functions (``status.render``: the table's rows, ``describe`` for a service), so the page,
the CLI and ``/status`` cannot disagree. Beside them: the open issues, the newest steps
with their outcome, the changes and their verdicts, and a timeline per service of the
last ``TIMELINE_HOURS`` (incidents as bars, steps as dots, rollbacks as diamonds) drawn
as inline SVG.

Every text from the document passes ``detect.redact`` (a second net: the store masked it
already) and then ``html.escape``: log text is data, never markup. No external asset:
the CSS and the few lines of script are inline, allowed by hash in
``CONTENT_SECURITY_POLICY`` and by nothing else. The script fetches the page it is on
every ``POLL_MS`` and swaps its ``<main>`` in place (no reload, the scroll kept); without
script a ``<noscript>`` refresh does the same every 2 s. Links are relative to ``root``
(``./`` or ``../``, or the ``X-Forwarded-Prefix`` a reverse proxy sent), so the page
works on a sub-path.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from html import escape
from typing import Any

from controller.detect.redact import redact
from controller.status.render import (
    ACTIVE,
    COLUMNS,
    Paint,
    ago,
    describe,
    header,
    parse_time,
    rollback_lines,
    service_row,
    sorted_services,
    took,
)

Doc = dict[str, Any]

TIMELINE_HOURS = 3  # how far back a timeline reaches
POLL_MS = 1000  # how often the page fetches itself: an event shows within about a second
STEPS_SHOWN = 10  # the overview's newest steps
_SEVERITY_RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}
_PLAIN = Paint(False)

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d232a;background:#f6f7f9}
header{background:#1d232a;color:#fff;padding:.5em 1em;display:flex;gap:1em}
header a{color:#fff;font-weight:600;text-decoration:none}
.live{margin-left:auto;color:#8fd19e}
body.stale .live{color:#f2a3a3}
body.stale .live::after{content:": the controller does not answer"}
main{padding:0 1em 2em;max-width:1200px}
h1{font-size:1.4em;margin:.6em 0 .2em}h2{font-size:1.1em;margin:1.2em 0 .4em}
h1 small{font-weight:400;color:#5b6570}
table{border-collapse:collapse;background:#fff;width:100%}
th,td{border-bottom:1px solid #e3e6ea;padding:.25em .6em;text-align:left;vertical-align:top}
th{font-size:.8em;color:#5b6570}
td.detail{max-width:32em;overflow-wrap:anywhere}
pre{background:#fff;padding:.8em;overflow-x:auto;border:1px solid #e3e6ea}
.none{color:#5b6570}
.verdict.ok{color:#1e7b34}.verdict.bad{color:#b3261e}
.cond-ready{color:#1e7b34}.cond-progressing{color:#8a6d00}
.cond-degraded{color:#b3261e;font-weight:600}.cond-remediating{color:#0b6e8a}
.sev-critical,.sev-high{color:#b3261e}.sev-medium{color:#8a6d00}
.outcome-success{color:#1e7b34}.outcome-failure,.outcome-error{color:#b3261e}
.tl{display:grid;grid-template-columns:10em 1fr;gap:.2em 1em;align-items:center}
svg.timeline{width:100%;max-width:900px;height:auto;background:#fff}
svg .axis{stroke:#c4cad1}svg text{font-size:9px;fill:#5b6570}
svg rect.incident{fill:#e8a23a}svg rect.sev-high,svg rect.sev-critical{fill:#d9534f}
svg rect.sev-low{fill:#b7c0c9}svg rect.active{stroke:#1d232a;stroke-width:1}
svg circle.step{fill:#0b6e8a}svg circle.outcome-success{fill:#2e9e4b}
svg circle.outcome-failure,svg circle.outcome-error{fill:#d9534f}
svg circle.outcome-cancelled{fill:#b7c0c9}svg .rollback{fill:#7b3fa0}
.legend{font-size:.8em;color:#5b6570}
"""

SCRIPT = (
    "(function(){var busy=false;setInterval(function(){if(busy)return;busy=true;"
    'fetch(location.href,{cache:"no-store"}).then(function(r){'
    "if(!r.ok)throw new Error(r.status);return r.text();}).then(function(t){"
    'var d=new DOMParser().parseFromString(t,"text/html"),m=d.querySelector("main");'
    'if(m){document.querySelector("main").replaceWith(m);document.title=d.title;}'
    'document.body.classList.remove("stale");}).catch(function(){'
    'document.body.classList.add("stale");}).finally(function(){busy=false;});},'
    f"{POLL_MS});}})();"
)


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


# The page's own style and script run, nothing else: an injected tag would not.
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src {_sha256(STYLE)}; script-src {_sha256(SCRIPT)}; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


class StatusPages:
    """The pages ``controller.http`` serves, with the clock they are drawn at."""

    content_security_policy = CONTENT_SECURITY_POLICY

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock

    def overview(self, doc: Doc, root: str) -> str:
        return overview(doc, self._clock(), root)

    def service(self, doc: Doc, name: str, root: str) -> str | None:
        """The service's page; None when the document has no such service."""
        found = next((s for s in doc.get("services", []) if s.get("name") == name), None)
        return None if found is None else service_page(doc, found, self._clock(), root)


# --- text ---------------------------------------------------------------------------


def text(value: object) -> str:
    """Document text for HTML: redacted line by line, then escaped (quotes too)."""
    shown = "\n".join(redact(line) for line in str(value).split("\n"))
    return escape(shown, quote=True)


def _cls(value: object) -> str:
    """A CSS class from a document value: lower-case letters, digits and dashes."""
    return re.sub(r"[^a-z0-9-]", "", str(value).lower())


def path_segment(name: str) -> str:
    """``name`` as one URL path segment (percent-encoded but for unreserved characters)."""
    safe = re.compile(r"[A-Za-z0-9._~-]")
    return "".join(
        c if safe.fullmatch(c) else "".join(f"%{b:02X}" for b in c.encode()) for c in name
    )


def service_href(root: str, name: str) -> str:
    return escape(f"{root}service/{path_segment(name)}", quote=True)


def _when(value: str | None, now: datetime) -> str:
    """``3m ago`` with the exact time on hover."""
    return (
        f'<time datetime="{text(value or "")}" title="{text(value or "")}">{ago(value, now)}</time>'
    )


def _table(titles: list[str], rows: list[str]) -> str:
    head = "".join(f"<th>{escape(t)}</th>" for t in titles)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


# --- the pages --------------------------------------------------------------------------


def _page(title: str, root: str, main: str) -> str:
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{title}</title><style>{STYLE}</style>"
        '<noscript><meta http-equiv="refresh" content="2"></noscript></head><body>'
        f'<header><a href="{escape(root, quote=True)}">compose-controller</a>'
        '<span class="live">live</span></header>'
        f"<main>{main}</main><script>{SCRIPT}</script></body></html>\n"
    )


def _summary(doc: Doc, now: datetime) -> str:
    lines = header(doc, now, _PLAIN).split("\n")
    verdict = "ok" if doc.get("converged") else "bad"
    return f'<p class="verdict {verdict}">' + "<br>".join(text(line) for line in lines) + "</p>"


def overview(doc: Doc, now: datetime, root: str) -> str:
    """``/``: every service with its state, the open issues, the newest steps, changes and
    rollbacks, and a timeline per service."""
    project, env = text(doc.get("project", "?")), text(doc.get("env", "?"))
    main = [
        f"<h1>{project} <small>env {env}</small></h1>",
        _summary(doc, now),
        "<section><h2>Services</h2>",
        _services(doc, now, root),
        "</section>",
        _open_issues(doc, now, root),
        _steps(doc, now, root, STEPS_SHOWN, "Last steps"),
        _changes(doc, now, root),
        f"<section><h2>Timeline, last {TIMELINE_HOURS} h</h2>",
        '<div class="tl">',
        *(
            f'<a href="{service_href(root, str(s.get("name")))}">{text(s.get("name"))}</a>'
            + timeline(doc, str(s.get("name")), now)
            for s in sorted_services(doc)
        ),
        "</div>",
        _LEGEND,
        "</section>",
    ]
    return _page(f"{project} ({env}): compose-controller", root, "".join(main))


def service_page(doc: Doc, service: Doc, now: datetime, root: str) -> str:
    """``/service/<name>``: ``controller status NAME`` as it prints, its timeline and
    every step."""
    name = str(service.get("name"))
    condition = str(service.get("condition", "?"))
    described = describe(doc, service, now, _PLAIN)
    main = [
        f'<p><a href="{escape(root, quote=True)}">&larr; all services</a></p>',
        f'<h1>{text(name)} <small class="cond-{_cls(condition)}">{text(condition)}</small></h1>',
        _summary(doc, now),
        f"<section><h2>Timeline, last {TIMELINE_HOURS} h</h2>",
        timeline(doc, name, now),
        _LEGEND,
        "</section>",
        f"<section><h2>controller status {text(name)}</h2><pre>{text(described)}</pre></section>",
        _steps(doc, now, root, None, "Steps", only=name),
    ]
    return _page(f"{text(name)}: compose-controller", root, "".join(main))


def missing(name: str, doc: Doc, root: str) -> str:
    """The page for a service the document does not have."""
    known = ", ".join(
        f'<a href="{service_href(root, str(s.get("name")))}">{text(s.get("name"))}</a>'
        for s in sorted_services(doc)
    )
    main = f"<h1>No service {text(name)}</h1><p>Known: {known or 'none'}.</p>"
    return _page("not found: compose-controller", root, main)


def _services(doc: Doc, now: datetime, root: str) -> str:
    rows = []
    for s in sorted_services(doc):
        cells = service_row(doc, s, now, _PLAIN)
        name = str(s.get("name"))
        shown = [
            f'<td><a href="{service_href(root, name)}">{text(name)}</a></td>',
            f'<td class="cond-{_cls(cells[1])}">{text(cells[1])}</td>',
            *(f"<td>{text(c)}</td>" for c in cells[2:]),
        ]
        rows.append(f'<tr data-service="{text(name)}">{"".join(shown)}</tr>')
    if not rows:
        return '<p class="none">No service declared.</p>'
    return _table(COLUMNS, rows)


def _open_issues(doc: Doc, now: datetime, root: str) -> str:
    issues = [i for i in doc.get("issues", []) if i.get("state") in ACTIVE]
    issues.sort(
        key=lambda i: (-_SEVERITY_RANK.get(str(i.get("severity")), 0), str(i.get("service")))
    )
    if not issues:
        return '<section><h2>Open issues</h2><p class="none">None.</p></section>'
    rows = []
    for i in issues:
        service, severity = str(i.get("service")), str(i.get("severity", "?"))
        rows.append(
            f'<tr data-issue="{text(i.get("id"))}"><td>{text(i.get("id"))}</td>'
            f'<td><a href="{service_href(root, service)}">{text(service)}</a></td>'
            f"<td>{text(i.get('kind'))}</td>"
            f'<td class="sev-{_cls(severity)}">{text(severity)}</td>'
            f"<td>{text(i.get('state'))}</td><td>{text(i.get('title'))}</td>"
            f"<td>{_when(i.get('opened_at'), now)}</td>"
            f'<td class="detail">{text(i.get("plan") or i.get("resolution") or "")}</td></tr>'
        )
    titles = ["ID", "SERVICE", "KIND", "SEVERITY", "STATE", "TITLE", "OPENED", "PLAN"]
    return f"<section><h2>Open issues ({len(issues)})</h2>{_table(titles, rows)}</section>"


def _stamp(value: str | None) -> float:
    at = parse_time(value)
    return at.timestamp() if at is not None else 0.0


def _steps(
    doc: Doc, now: datetime, root: str, limit: int | None, title: str, only: str | None = None
) -> str:
    """Steps newest first, with their outcome and the issue they were for."""
    steps = [
        (a, i)
        for i in doc.get("issues", [])
        if only is None or i.get("service") == only
        for a in i.get("attempts", [])
    ]
    steps.sort(key=lambda pair: _stamp(pair[0].get("started_at")), reverse=True)
    if not steps:
        return f'<section><h2>{title}</h2><p class="none">No step taken.</p></section>'
    rows = []
    for a, i in steps[:limit]:
        service, outcome = str(i.get("service")), str(a.get("outcome") or "running")
        rows.append(
            f"<tr><td>{_when(a.get('started_at'), now)}</td>"
            f'<td><a href="{service_href(root, service)}">{text(service)}</a></td>'
            f"<td>{text(a.get('action', '?'))} ({text(a.get('attempt', '?'))})</td>"
            f"<td>{text(took(a))}</td>"
            f'<td class="outcome-{_cls(outcome)}">{text(outcome)}</td>'
            f"<td>{text(i.get('title'))}</td>"
            f'<td class="detail">{text(a.get("detail") or "")}</td></tr>'
        )
    titles = ["STARTED", "SERVICE", "ACTION", "TOOK", "OUTCOME", "ISSUE", "DETAIL"]
    return f"<section><h2>{title}</h2>{_table(titles, rows)}</section>"


def _changes(doc: Doc, now: datetime, root: str) -> str:
    """Each service's newest change and its verdict, a rollback in force, its last good."""
    items = []
    for name, record in sorted((doc.get("rollback") or {}).items()):
        lines = rollback_lines(record or {}, now)
        if lines:
            said = "<br>".join(text(" ".join(line.split())) for line in lines)
            items.append(
                f'<li><a href="{service_href(root, str(name))}">{text(name)}</a>: {said}</li>'
            )
    if not items:
        return ""
    return f"<section><h2>Changes and rollbacks</h2><ul>{''.join(items)}</ul></section>"


# --- the timeline ---------------------------------------------------------------------

_W, _H, _PAD = 600, 50, 8  # the drawing's size; times run from _PAD to _W - _PAD
_LEGEND = (
    '<p class="legend">bars: incidents (red high or critical, orange medium, grey low; '
    "outlined while open) &middot; dots: steps (green success, red failure) &middot; "
    "diamonds: rollbacks</p>"
)


def timeline(doc: Doc, name: str, now: datetime, hours: int = TIMELINE_HOURS) -> str:
    """``name``'s last ``hours`` as an inline SVG: incidents, steps, rollbacks."""
    start = now - timedelta(hours=hours)
    span = hours * 3600.0

    def x(at: datetime) -> float:
        return round(
            _PAD + max(0.0, min(1.0, (at - start).total_seconds() / span)) * (_W - 2 * _PAD), 1
        )

    parts: list[str] = []
    incidents = steps = rollbacks = 0
    for issue in doc.get("issues", []):
        if issue.get("service") != name or issue.get("category") == "predicted":
            continue
        opened = parse_time(issue.get("opened_at") or issue.get("first_seen"))
        if opened is None:
            continue
        active = issue.get("state") in ACTIVE
        ended = now if active else parse_time(issue.get("resolved_at") or issue.get("last_seen"))
        ended = ended or opened
        if ended >= start and opened <= now:
            incidents += 1
            width = max(x(ended) - x(opened), 3.0)  # an incident of seconds stays visible
            x0 = min(x(opened), _W - _PAD - width)
            said = (
                f"{issue.get('title')} ({issue.get('severity')}, {issue.get('state')}), "
                f"opened {ago(issue.get('opened_at'), now)}"
                + ("" if active else f", ended {ago(issue.get('resolved_at'), now)}")
            )
            classes = f"incident sev-{_cls(issue.get('severity'))}" + (" active" if active else "")
            parts.append(
                f'<rect class="{classes}" data-issue="{text(issue.get("id"))}" x="{x0}" y="4" '
                f'width="{round(width, 1)}" height="14"><title>{text(said)}</title></rect>'
            )
        for a in issue.get("attempts", []):
            began = parse_time(a.get("started_at"))
            if began is None or began < start:
                continue
            outcome = str(a.get("outcome") or "running")
            said = f"{a.get('action')} (attempt {a.get('attempt')}): {outcome}"
            said += f" {ago(a.get('started_at'), now)}; {a.get('detail') or ''}"
            if a.get("action") == "rollback":
                rollbacks += 1
                parts.append(_diamond(x(began), f"rollback {outcome}", said))
            else:
                steps += 1
                parts.append(
                    f'<circle class="step outcome-{_cls(outcome)}" cx="{x(began)}" cy="27" r="4">'
                    f"<title>{text(said)}</title></circle>"
                )
    rolled = (((doc.get("rollback") or {}).get(name) or {}).get("rolled_back")) or {}
    at = parse_time(rolled.get("at"))
    if at is not None and at >= start and not rollbacks:  # held back: a rollback with no step
        rollbacks += 1
        parts.append(_diamond(x(at), "rollback", f"rolled back because {rolled.get('because')}"))
    axis = [f'<line class="axis" x1="{_PAD}" y1="36" x2="{_W - _PAD}" y2="36"/>']
    for k in range(hours + 1):
        tx = round(_PAD + (_W - 2 * _PAD) * k / hours, 1)
        anchor = "start" if k == 0 else "end" if k == hours else "middle"
        label = "now" if k == hours else f"-{hours - k}h"
        axis.append(f'<line class="axis" x1="{tx}" y1="33" x2="{tx}" y2="39"/>')
        axis.append(f'<text x="{tx}" y="48" text-anchor="{anchor}">{label}</text>')
    summary = (
        f"{name}: {incidents} incident(s), {steps} step(s), {rollbacks} rollback(s) "
        f"in the last {hours} h"
    )
    return (
        f'<svg class="timeline" data-service="{text(name)}" viewBox="0 0 {_W} {_H}" '
        f'role="img" aria-label="{text(summary)}">'
        f"<title>{text(summary)}</title>{''.join(axis)}{''.join(parts)}</svg>"
    )


def _diamond(cx: float, classes: str, said: str) -> str:
    return (
        f'<path class="{" ".join(_cls(c) for c in classes.split())}" '
        f'd="M{cx} 21l6 6-6 6-6-6z"><title>{text(said)}</title></path>'
    )
