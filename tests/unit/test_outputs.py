"""The JSON document, the Markdown report and atomic writes."""

import json
import os
from pathlib import Path

import pytest

from controller.issues.document import (
    SCHEMA_VERSION,
    IssueFileError,
    build_document,
    load_state,
    ready_and_unblocked,
    render_json,
)
from controller.issues.files import atomic_write
from controller.issues.report import cell, render_markdown
from controller.issues.store import IssueStore
from controller.model import (
    Action,
    Category,
    Drift,
    DriftKind,
    Intent,
    IssueState,
    Outcome,
    ServiceCondition,
    ServiceRecord,
    ServiceStatus,
    Severity,
    Throttle,
    to_datetime,
)
from tests.fakes import FakeClock

T0 = FakeClock()()  # when the scene begins


def status(name: str, condition: ServiceCondition, required: bool = True) -> ServiceStatus:
    return ServiceStatus(
        name=name,
        condition=condition,
        required=required,
        replicas=1,
        containers=1,
        running=1,
        healthy=None,
        restarts=0,
    )


def scene() -> IssueStore:
    clock = FakeClock()
    store = IssueStore("dev", clock)
    store.sync_drifts(
        [
            Drift(
                "web",
                DriftKind.EXITED,
                Severity.HIGH,
                Category.HEALTH,
                "web exited | badly",
                "exit code 1\nsecond line",
            )
        ],
        [status("web", ServiceCondition.DEGRADED), status("db", ServiceCondition.READY)],
    )
    store.begin(["drift:web:exited"], Action.RESTART)
    clock.advance(2)
    store.finish(
        ["drift:web:exited"],
        Outcome.FAILURE,
        "still exited",
        next_state=IssueState.FAILED,
    )
    return store


# web's record: its next fix waits out a backoff (the only copy of that time)
BACKING_OFF = {
    "web": ServiceRecord(
        throttle=Throttle(next_step_at=to_datetime(T0 + 12)),
        intent=Intent(
            text="backing off: next fix (restart) not before 08:00:12 UTC",
            fingerprints=["drift:web:exited"],
            backing_off=True,
            said_at=to_datetime(T0 + 2),
        ),
    )
}


def document(store: IssueStore) -> dict:  # type: ignore[type-arg]
    return build_document(
        env="dev",
        project="demo-dev",
        issues=store.issues(),
        services=store.services(),
        generated_at=1_800_000_000.0,
        dry_run=False,
        is_converged=ready_and_unblocked(store.issues(), store.services()),
        observed_at=1_800_000_000.0,
        remediation=BACKING_OFF,
    )


def test_the_document_has_the_documented_top_level_shape():
    doc = document(scene())
    assert set(doc) == {
        "schema_version",
        "generator",
        "env",
        "project",
        "generated_at",
        "observed_at",
        "engine",
        "dry_run",
        "converged",
        "waiting_on",
        "summary",
        "services",
        "issues",
        "trends",
        "learned",
        "remediation",
        "rollback",
        "log_cursors",
    }
    assert doc["schema_version"] == SCHEMA_VERSION
    assert doc["converged"] is False
    assert doc["summary"]["by_state"]["failed"] == 1
    assert doc["summary"]["active_by_severity"] == {"high": 1}
    issue = doc["issues"][0]
    assert issue["attempts"][0]["outcome"] == "failure"
    assert issue["next_attempt_at"].startswith("2027-")
    assert issue["plan"].startswith("backing off")


def test_optional_services_do_not_stop_convergence():
    store = IssueStore("dev", FakeClock())
    store.sync_drifts(
        [],
        [
            status("db", ServiceCondition.READY),
            status("ui", ServiceCondition.DEGRADED, required=False),
        ],
    )
    assert document(store)["converged"] is True


def test_issues_survive_a_round_trip_through_the_file(tmp_path: Path):
    store = scene()
    path = tmp_path / "docker_issues_dev.json"
    atomic_write(path, render_json(document(store)))
    assert load_state(path).issues == store.issues()


def test_an_unreadable_issues_file_is_one_line_naming_it(tmp_path: Path):
    path = tmp_path / "docker_issues_dev.json"
    path.write_text('{"schema_version": 1, "issues": [{"id": 3}]}')
    with pytest.raises(IssueFileError) as caught:
        load_state(path)
    assert str(caught.value).startswith(f"{path}: issues.0.")
    path.write_text("{torn")
    with pytest.raises(IssueFileError, match="cannot read issues"):
        load_state(path)


def test_no_issues_file_means_no_issues(tmp_path: Path):
    assert load_state(tmp_path / "absent.json").issues == []


def test_the_report_shows_services_active_issues_and_the_log():
    text = render_markdown(document(scene()))
    assert text.startswith("# Docker issues report: dev\n")
    assert "**Converged: no.**" in text
    assert "| web | Degraded | 1/1 |" in text
    assert "web exited \\| badly" in text  # a pipe cannot break the table
    assert "exit code 1 second line" in text  # nor a newline
    assert "| restart | 1 | failure | still exited |" in text
    assert "next attempt not before" in text


def test_cells_escape_what_would_break_a_table():
    assert cell("a|b\nc") == "a\\|b c"


def test_atomic_write_replaces_the_whole_file_and_leaves_no_temporaries(tmp_path: Path):
    path = tmp_path / "out.json"
    atomic_write(path, "old")
    atomic_write(path, json.dumps({"new": True}))
    assert json.loads(path.read_text()) == {"new": True}
    assert os.listdir(tmp_path) == ["out.json"]


def test_a_failed_write_keeps_the_old_file(tmp_path: Path):
    path = tmp_path / "out.json"
    atomic_write(path, "old")

    with pytest.raises(TypeError):
        atomic_write(path, 42)  # type: ignore[arg-type]
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.json"]


def test_a_log_issue_shows_its_pattern_escalation_hint_and_fenced_evidence():
    from controller.model import DetectionSettings, Finding

    store = IssueStore("dev", FakeClock())
    evidence = "Traceback (most recent call last):\n  x = ```weird```\nKeyError: 'X'"
    found = [
        Finding(
            service="web",
            container="demo-web-1",
            ts=1_800_000_000.0 + n,
            kind="log",
            pattern_id="python-traceback",
            category=Category.HEALTH,
            severity=Severity.HIGH,
            title="Unhandled Python exception",
            fingerprint="log:web:python-traceback:1",
            evidence=evidence,
            line="KeyError: 'X'",
            hint="Read the last line.",
        )
        for n in range(3)
    ]
    store.record_findings(found, DetectionSettings(escalate_after=3))
    text = render_markdown(document(store))
    assert "kind log (pattern `python-traceback`)" in text
    assert "escalated from high to critical" in text
    assert "- hint: Read the last line." in text
    assert "````\n" + evidence + "\n````" in text  # a fence the evidence cannot close
