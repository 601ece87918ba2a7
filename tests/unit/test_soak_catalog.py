"""The soak's ground truth itself: every error line of the catalog is what the library
really finds (the pattern its expectation names, one finding), the harmless lines are
never an issue, the stack never uses a bridge network, and the seeded schedules cover the
catalog and keep each service within its fix budget."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.detect.detector import Detector
from controller.detect.library import build_patterns
from controller.model import DetectionSettings, Finding, LogLine
from soak.apps.app import HARMLESS
from soak.catalog import CATEGORIES, FLOOD_LINES, FOREIGN_ERROR, KINDS, LOG_CASES, TARGETS, spec
from soak.schedule import BUDGET, long_plan, short_tour
from soak.stack import SERVICES, compose_model

T0 = 1_800_000_000_000_000_000


def findings(texts: list[str], service: str) -> list[Finding]:
    detector = Detector(DetectionSettings(patterns=build_patterns()))
    lines = [LogLine(service, f"{service}-1", T0 + n, t) for n, t in enumerate(texts)]
    return detector.feed(lines, now=0.0) + detector.flush(now=10.0)


def test_the_catalog_has_a_line_of_each_of_the_8_categories():
    assert {s for c in LOG_CASES for s in c.services} == set(TARGETS["log"])
    assert sorted(CATEGORIES) == sorted(
        [
            "connection",
            "database",
            "auth",
            "config",
            "import",
            "filesystem",
            "performance",
            "health",
        ]
    )


@pytest.mark.parametrize("case", [*LOG_CASES, FOREIGN_ERROR], ids=lambda c: c.pattern)
def test_each_error_line_is_one_finding_of_the_pattern_its_expectation_names(case):
    for service in case.services:
        text = case.text.format(service=service)
        (found,) = findings(text.splitlines(), service)
        assert (found.pattern_id, str(found.category)) == (case.pattern, case.category)
        if case is FOREIGN_ERROR:  # printed during db's outage (dependency-stop)
            issues = spec("dependency-stop", "db", {"foreign": True}).expect.issues
            expected = next(e for e in issues if e.text)
        else:
            expected = spec("log", service, {"category": case.category}).expect.issues[0]
        assert expected.matches(service, found.fingerprint, str(found.category), found.line)
        assert (
            "restart"
            if found.suggested == "restart" and case.category not in ("config", "import", "auth")
            else ""
        ) == case.action


def test_harmless_words_and_a_flood_are_never_an_issue_however_often_they_repeat():
    lines = [h.format(n=n) for n in range(40) for h in HARMLESS]
    lines += [f.format(n=n, service="api") for n in range(200) for f in FLOOD_LINES]
    assert findings(lines, "reporter") == []


def test_every_service_is_on_the_host_network_none_or_a_services_namespace(tmp_path: Path):
    model = compose_model(tmp_path)
    assert sorted(model["services"]) == sorted(SERVICES)
    for name, service in model["services"].items():
        assert service["network_mode"] in ("host", "none", "service:edge"), name
    assert "networks" not in model


def test_every_kind_has_an_expectation_with_its_reason():
    for kind in KINDS:
        for service in TARGETS[kind]:
            category = next(c.category for c in LOG_CASES if service in c.services or kind != "log")
            params = {"category": category, "seconds": 10, "database": "x", "lines": 10}
            found = spec(kind, service, params)
            assert found.expect.why, kind
            assert found.touch, kind


def test_the_short_tour_covers_the_catalog_and_ends_with_the_crashes():
    tour = short_tour(1)
    kinds = {p.kind for p in tour}
    assert kinds >= {
        "crash",
        "crash-policy",
        "health-blip",
        "health-hang",
        "probe-fail",
        "runbook",
        "dependency-crash",
        "dependency-stop",
        "person-stop",
        "person-restart",
        "person-up",
        "flood",
        "log",
    }
    assert {p.params["category"] for p in tour if p.kind == "log"} == set(CATEGORIES)
    assert [p.kind for p in tour[-2:]] == ["crash", "dependency-crash"]
    assert short_tour(1) == tour and short_tour(2) != tour


def test_a_long_plan_is_seeded_covers_every_kind_and_keeps_services_in_budget():
    plan = long_plan(7, 60)
    assert plan == long_plan(7, 60) and len(plan) >= 100
    assert {p.kind for p in plan} == set(KINDS)
    steps: dict[str, int] = {}
    for p in plan:
        for service, n in spec(p.kind, p.service, p.params).steps.items():
            steps[service] = steps.get(service, 0) + n
    assert max(steps.values()) <= BUDGET - 1


def test_a_crash_loops_own_lines_are_no_error():
    assert (
        findings(
            ["report: loading report definitions", "report: stopping with status 1"], "reporter"
        )
        == []
    )
