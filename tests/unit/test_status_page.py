"""The status page (``/`` and ``/service/<name>``): the issues document as HTML, from the
same functions as ``controller status``; log text escaped and redacted, links relative or
under a proxy's prefix, a timeline per service as inline SVG, no external asset; served
by the real HTTP server on loopback."""

from __future__ import annotations

import base64
import copy
import hashlib
import html
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import timedelta

import pytest
from prometheus_client import CollectorRegistry

from controller.http import StatusServer
from controller.status.page import (
    CONTENT_SECURITY_POLICY,
    StatusPages,
    overview,
    path_segment,
    service_page,
    timeline,
)
from controller.status.render import Paint, describe
from tests.unit.test_status import DOC, NOW

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'
SECRET = "Hunter2Secret99"


def doc_with(**issue_fields: object) -> dict:  # type: ignore[type-arg]
    """The CLI tests' document, the backend's issue changed."""
    doc = copy.deepcopy(DOC)
    doc["issues"][0].update(issue_fields)
    return doc


def backend(doc: dict) -> dict:  # type: ignore[type-arg]
    return next(s for s in doc["services"] if s["name"] == "backend")


def hrefs(page: str) -> list[str]:
    return [html.unescape(h) for h in re.findall(r'href="([^"]*)"', page)]


# --- what it shows ----------------------------------------------------------------------


def test_the_overview_shows_every_service_as_controller_status_does():
    page = overview(DOC, NOW, "./")
    assert "demo-dev (env dev): not converged, 2 active issue(s), observed 3s ago" in page
    row = re.search(r'<tr data-service="backend">(.*?)</tr>', page)
    assert row is not None
    cells = [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row.group(1))]
    assert cells == [
        "backend",
        "Degraded",
        "0/1",
        "0/1",
        "2",
        "1 (high)",
        "fix (backing off)",
        "in 20s",
    ]


def test_the_overview_lists_open_issues_and_the_newest_steps_with_their_outcome():
    page = overview(DOC, NOW, "./")
    assert "Open issues (2)" in page
    assert 'data-issue="e6c38aabe127"' in page and 'data-issue="0a1b2c3d4e5f"' in page
    assert "db exited" not in page.split("Last steps")[0]  # resolved: not open
    steps = page.split("<h2>Last steps</h2>")[1]
    assert steps.index("worker exited with code 137") < steps.index("backend exited with code 1")
    assert '<td class="outcome-failure">failure</td>' in steps
    assert "<td>5.5s</td>" in steps and "backend exited again within 2 s" in steps


def test_the_service_page_mirrors_controller_status_service():
    page = service_page(DOC, backend(DOC), NOW, "../")
    pre = re.search(r"<pre>(.*?)</pre>", page, re.S)
    assert pre is not None
    assert html.unescape(pre.group(1)) == describe(DOC, backend(DOC), NOW, Paint(False))
    assert 'svg class="timeline" data-service="backend"' in page


def test_each_service_has_a_timeline_of_incidents_steps_and_rollbacks_as_inline_svg():
    doc = copy.deepcopy(DOC)
    doc["issues"].append(
        {
            "id": "0ld0ld0ld0ld",
            "service": "backend",
            "state": "resolved",
            "title": "long ago",
            "opened_at": (NOW - timedelta(hours=5)).isoformat(),
            "resolved_at": (NOW - timedelta(hours=4)).isoformat(),
            "attempts": [],
        }
    )
    doc["issues"][0]["attempts"].append(
        {"action": "rollback", "attempt": 2, "started_at": "2026-11-28T04:44:00+00:00"}
    )
    svg = timeline(doc, "backend", NOW)
    assert svg.startswith('<svg class="timeline" data-service="backend"')
    assert svg.count('class="incident') == 1  # the one 4 h ago is outside the 3 h
    assert 'class="incident sev-high active" data-issue="e6c38aabe127"' in svg
    assert '<circle class="step outcome-failure"' in svg
    assert '<path class="rollback running"' in svg
    assert "backend: 1 incident(s), 1 step(s), 1 rollback(s) in the last 3 h" in svg
    assert svg in overview(doc, NOW, "./")


def test_an_incident_of_a_few_seconds_is_still_drawn_wide_enough_to_see():
    svg = timeline(DOC, "worker", NOW)
    width = float(re.search(r'class="incident[^"]*"[^>]* width="([0-9.]+)"', svg).group(1))  # type: ignore[union-attr]
    x = float(re.search(r'class="incident[^"]*"[^>]* x="([0-9.]+)"', svg).group(1))  # type: ignore[union-attr]
    assert width >= 3 and x + width <= 600


# --- text is data ---------------------------------------------------------------------


@pytest.mark.parametrize("field", ["title", "detail", "plan", "resolution"])
def test_log_text_is_escaped_everywhere_it_is_shown(field):
    doc = doc_with(**{field: HOSTILE})
    escaped = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"
    for page in (overview(doc, NOW, "./"), service_page(doc, backend(doc), NOW, "../")):
        assert "<script>alert" not in page and "<img" not in page
    assert escaped in service_page(doc, backend(doc), NOW, "../")


def test_a_hostile_service_name_is_escaped_in_text_attributes_and_links():
    doc = copy.deepcopy(DOC)
    doc["services"][0]["name"] = 'db"><script>x()</script>'
    page = overview(doc, NOW, "./")
    assert "<script>x()" not in page
    assert "./service/db%22%3E%3Cscript%3Ex%28%29%3C%2Fscript%3E" in hrefs(page)


@pytest.mark.parametrize(
    "said",
    [
        f"DB_PASSWORD={SECRET}",
        f"connect postgres://app:{SECRET}@db/app failed",
        f"mysql -uroot -p{SECRET} -e 'select 1'",
    ],
)
def test_secrets_are_masked_even_if_the_document_holds_them(said):
    doc = doc_with(title=said, detail=said)
    doc["issues"][0]["attempts"][0]["detail"] = said
    for page in (overview(doc, NOW, "./"), service_page(doc, backend(doc), NOW, "../")):
        assert SECRET not in html.unescape(page)
        assert "***" in page


# --- links and assets -----------------------------------------------------------------


def test_links_are_relative_so_the_page_works_on_any_sub_path():
    page = overview(DOC, NOW, "./")
    assert set(hrefs(page)) == {"./", "./service/backend", "./service/db", "./service/worker"}
    page = service_page(DOC, backend(DOC), NOW, "../")
    assert set(hrefs(page)) == {"../", "../service/backend"}


def test_a_proxys_prefix_makes_every_link_an_absolute_path_under_it():
    page = overview(DOC, NOW, "/ops/controller/")
    assert all(h.startswith("/ops/controller/") for h in hrefs(page))
    assert "/ops/controller/service/db" in hrefs(page)


def test_nothing_is_loaded_from_elsewhere_and_only_its_own_script_and_style_may_run():
    page = overview(DOC, NOW, "./")
    assert not re.search(r"\b(src|srcset|action)=|<link|@import|url\(|https?://", page)
    (script,) = re.findall(r"<script>(.*?)</script>", page, re.S)
    (style,) = re.findall(r"<style>(.*?)</style>", page, re.S)
    for inline in (script, style):
        digest = base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in CONTENT_SECURITY_POLICY
    assert "default-src 'none'" in CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY
    assert 'fetch(location.href,{cache:"no-store"})' in script  # it updates itself
    assert '<noscript><meta http-equiv="refresh" content="2"></noscript>' in page


def test_a_name_is_one_path_segment():
    assert path_segment("web-1.a_b~") == "web-1.a_b~"
    assert path_segment("a/b c?é") == "a%2Fb%20c%3F%C3%A9"


# --- served ---------------------------------------------------------------------------


@pytest.fixture
def served() -> Iterator[int]:
    server = StatusServer(
        "127.0.0.1",
        0,
        CollectorRegistry(),
        lambda: True,
        lambda: DOC,
        pages=StatusPages(lambda: NOW),
    )
    server.start()
    try:
        yield server.address[1]
    finally:
        server.stop()


def fetch(
    port: int, path: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> tuple[int, dict[str, str], str]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", headers=headers or {}, method=method
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, dict(reply.headers), reply.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read().decode()


def test_the_server_answers_the_overview_and_a_service_page_as_html(served):
    code, headers, body = fetch(served, "/")
    assert code == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert headers["Cache-Control"] == "no-store"
    assert body == overview(DOC, NOW, "./")
    code, _, body = fetch(served, "/service/backend")
    assert code == 200 and body == service_page(DOC, backend(DOC), NOW, "../")
    assert fetch(served, "/service/nosuch")[0] == 404
    assert fetch(served, "/service/")[0] == 404
    assert fetch(served, "/service/backend/x")[0] == 404
    code, headers, body = fetch(served, "/", method="HEAD")
    assert code == 200 and body == "" and int(headers["Content-Length"]) > 1000


def test_the_server_honours_a_plain_x_forwarded_prefix_and_ignores_any_other(served):
    _, _, body = fetch(served, "/service/backend", {"X-Forwarded-Prefix": "/ops/cc/"})
    assert set(hrefs(body)) == {"/ops/cc/", "/ops/cc/service/backend"}
    for hostile in ("//evil.example", "/a b", '/x"><script>', "https://evil.example/"):
        _, _, body = fetch(served, "/", {"X-Forwarded-Prefix": hostile})
        assert set(hrefs(body)) == {"./", "./service/backend", "./service/db", "./service/worker"}


def test_a_server_given_no_pages_has_no_page_but_every_other_endpoint():
    server = StatusServer("127.0.0.1", 0, CollectorRegistry(), lambda: True, lambda: DOC)
    server.start()
    try:
        assert fetch(server.address[1], "/")[0] == 404
        assert fetch(server.address[1], "/status")[0] == 200
    finally:
        server.stop()


def test_a_rollback_held_back_without_a_step_is_still_drawn_once():
    doc = copy.deepcopy(DOC)
    doc["rollback"] = {
        "db": {"rolled_back": {"at": "2026-11-28T04:30:00+00:00", "because": "image missing"}}
    }
    svg = timeline(doc, "db", NOW)
    assert svg.count('<path class="rollback"') == 1 and "rolled back because image missing" in svg
    doc["issues"][2]["attempts"] = [
        {"action": "rollback", "attempt": 1, "started_at": "2026-11-28T04:30:00+00:00"}
    ]
    assert timeline(doc, "db", NOW).count('<path class="rollback') == 1  # the step is the rollback
