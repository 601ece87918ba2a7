"""``--log-format json``: a line about a service, an issue, a step or an engine event
carries them as fields (``record.extra``); the text format stays as it was."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from loguru import logger
from prometheus_client import CollectorRegistry

from controller.cli import configure_logging
from controller.gate.run import Verdict, run_gate
from controller.logfields import about, context
from controller.model import RemediationSettings, system_clock
from controller.runtime import Controller, Settings, assemble
from tests.fakes import FakeWorld, desired, spec

Line = dict[str, Any]


def crashed_web(tmp_path: Path) -> tuple[FakeWorld, Controller]:
    world = FakeWorld()
    world.run("web", status="exited", exit_code=137)
    controller = assemble(
        Settings(env="dev", state_dir=tmp_path, once=True, shutdown_timeout=5.0),
        desired(spec("web", min_ready=0.0), remediation=RemediationSettings(log_quiet=0.0)),
        gateway=world,
        compose=world,
        hashes=world,
        registry=CollectorRegistry(),
        clock=system_clock,
    )
    return world, controller


def fix_it(controller: Controller) -> None:
    """The CI gate's loop: passes and the workers' reconciles until it converges."""
    result = run_gate(controller, timeout=60, engine_timeout=5, sleep=lambda seconds: None)
    assert result.verdict is Verdict.CONVERGED


def json_lines(err: str) -> list[Line]:
    lines = [json.loads(line) for line in err.splitlines() if line.strip()]
    assert lines, "nothing was logged"
    return lines


def extra(line: Line) -> dict[str, str]:
    fields: dict[str, str] = line["record"]["extra"]
    return fields


def the_line(lines: list[Line], text: str) -> Line:
    found = [line for line in lines if text in line["record"]["message"]]
    assert found, f"no line says {text!r}: {[line['record']['message'] for line in lines]}"
    return found[0]


def logged(monkeypatch: pytest.MonkeyPatch, json_lines: bool) -> io.StringIO:
    """The controller's own sink, set up as the flags set it up, at DEBUG, into a buffer."""
    buffer = io.StringIO()
    monkeypatch.setattr(sys, "stderr", buffer)
    configure_logging("DEBUG", json_lines=json_lines)
    return buffer


@pytest.fixture
def json_log(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], list[Line]]]:
    """``--log-format json``: the lines written so far, parsed."""
    buffer = logged(monkeypatch, json_lines=True)
    try:
        yield lambda: json_lines(buffer.getvalue())
    finally:
        logger.remove()


def test_a_drift_line_carries_its_service_issue_and_fingerprint(tmp_path, json_log):
    _, controller = crashed_web(tmp_path)
    fix_it(controller)
    lines = json_log()
    opened = the_line(lines, "web: drift:")
    (issue,) = controller.store.issues()
    assert issue.fingerprint == "drift:web:exited"
    assert extra(opened) == {
        "service": "web",
        "issue": issue.id,
        "fingerprint": "drift:web:exited",
    }


def test_a_step_line_carries_its_action_and_the_issue_it_is_for(tmp_path, json_log):
    world, controller = crashed_web(tmp_path)
    fix_it(controller)
    assert ("restart", "demo-web-1") in world.actions
    lines = json_log()
    (issue,) = controller.store.issues()
    step = the_line(lines, "web: restart (")
    assert extra(step) == {
        "service": "web",
        "issue": issue.id,
        "fingerprint": "drift:web:exited",
        "action": "restart",
    }
    proven = the_line(lines, "web: fixed by restart")
    assert extra(proven)["action"] == "restart"
    assert extra(proven)["fingerprint"] == "drift:web:exited"


def test_an_engine_event_line_carries_the_event_the_service_and_the_engine(tmp_path, json_log):
    _, controller = crashed_web(tmp_path)
    fix_it(controller)
    controller.on_event("web", "die", None)
    lines = json_log()
    event = the_line(lines, "event: web die")
    assert extra(event) == {"service": "web", "event": "die", "engine": "unix:///fake.sock"}
    reachable = the_line(lines, "engine reachable")
    assert extra(reachable) == {"engine": "unix:///fake.sock"}


def test_a_line_about_nothing_in_particular_carries_no_fields(json_log):
    logger.info("restored 0 issue(s)")
    (line,) = json_log()
    assert extra(line) == {}


def test_the_text_format_shows_no_fields(tmp_path, monkeypatch):
    buffer = logged(monkeypatch, json_lines=False)
    try:
        _, controller = crashed_web(tmp_path)
        fix_it(controller)
    finally:
        logger.remove()
    err = buffer.getvalue()
    (issue,) = controller.store.issues()
    (opened,) = [line for line in err.splitlines() if "web: drift:" in line]
    assert opened.endswith(
        f"WARNING web: drift: web exited with code 137 [high exited] issue {issue.id}"
    )
    assert "fingerprint" not in err and "{" not in opened


def test_a_lines_own_fields_win_over_its_context_and_none_are_left_out(json_log):
    with context("web", event="die"):
        logger.info("inside")
        about("db", action="restart", engine=None).info("about db")
    logger.info("after")
    inside, about_db, after = json_log()
    assert extra(inside) == {"service": "web", "event": "die"}
    assert extra(about_db) == {"service": "db", "event": "die", "action": "restart"}
    assert extra(after) == {}
