"""The CI gate and every output after a rollback: exit 5, and the reason, the table, the
progress line, JUnit, the step summary, the notification, ``controller status`` and the
report each say "rolled back from X to Y because Z", never "fixed"."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

from junitparser import Failure, JUnitXml

from controller.gate.junit import junit_report
from controller.gate.progress import Progress, final_table
from controller.gate.run import Verdict, run_gate
from controller.gate.summary import append_step_summary
from controller.issues.report import render_markdown
from controller.model import (
    NotifyEvent,
    NotifySettings,
    RollbackMode,
    RollbackPolicy,
)
from controller.notify.transitions import Tracker
from controller.status.render import Paint, describe
from tests.fakes import FakeWorld, spec
from tests.unit.test_gate import gate, no_sleep
from tests.unit.test_rollback_flow import deploy

WEB = spec("web", min_ready=0.0, rollback=RollbackPolicy(mode=RollbackMode.AUTO, window=30.0))


def rolled_back_by_the_gate(tmp_path):  # type: ignore[no-untyped-def]
    """A gate that converges (and keeps what ran as the last good), a person's change
    that exits 1 at start, and a second gate on the same state directory."""
    world = FakeWorld()
    world.add_image("sha256:good", "app:1")
    deploy(world, "web", "app:1", "sha256:good")
    first = run_gate(gate(tmp_path, world, WEB), timeout=30, engine_timeout=5, sleep=no_sleep)
    assert first.verdict is Verdict.CONVERGED
    world.add_image("sha256:bad", "app:2")
    deploy(world, "web", "app:2", "sha256:bad", status="exited", exit_code=1)
    controller = gate(tmp_path, world, WEB)
    result = run_gate(controller, timeout=60, engine_timeout=5, sleep=no_sleep)
    return world, controller, result


def test_a_gate_that_rolled_back_is_exit_5_and_names_the_change(tmp_path):
    world, controller, result = rolled_back_by_the_gate(tmp_path)
    assert [a for a in world.actions if a[0] == "revert"] == [("revert", "web")]
    assert result.verdict is Verdict.ROLLED_BACK and int(result.verdict) == 5
    assert result.reason.startswith("every required service is ready, but not as declared: ")
    assert "web rolled back from config " in result.reason
    assert "to snapshot 1 because demo-web-1 exited with code 1" in result.reason
    assert controller.converged()  # ready, with evidence; not as declared


def test_the_table_junit_and_summary_say_which_change_was_rolled_back(tmp_path):
    _, controller, result = rolled_back_by_the_gate(tmp_path)
    doc = controller.document()
    issues = controller.store.issues()
    rows = final_table({"web": True}, controller.store.services(), issues, controller.records())
    assert "rolled back from config" in rows[1] and "Ready" in rows[1]
    out = io.StringIO()
    Progress(out, ["web"]).update(controller.store.services(), issues, controller.records(), "")
    assert out.getvalue().split("Ready", 1)[1].strip().startswith("rolled back from config")

    path = tmp_path / "junit.xml"
    path.write_text(junit_report(doc, {"web": True}, result))
    cases = {case.name: case for suite in JUnitXml.fromfile(str(path)) for case in suite}
    failure = cases["service web at its declared config"].result[0]
    assert isinstance(failure, Failure) and "rolled back from config" in (failure.message or "")
    assert cases["service web ready"].is_passed

    summary = tmp_path / "summary.md"
    append_step_summary(summary, "dev", result, render_markdown(doc))
    text = summary.read_text()
    assert "gate failed: `dev` (rolled back, exit 5)" in text
    assert ("## Rollback" not in text and "### Rollback" not in text) or "rolled back from" in text
    assert "| web | 1 (config " in text  # the report's Rollback section: its last good


def test_status_and_the_report_tell_it_honestly(tmp_path):
    _, controller, _ = rolled_back_by_the_gate(tmp_path)
    doc = controller.document()
    service = next(s for s in doc["services"] if s["name"] == "web")
    now = datetime.now(UTC)
    text = describe(doc, service, now, Paint(False))
    assert "Rollback:     rolled back from config " in text
    assert "not at its declared config" in text
    assert "Last good:    snapshot 1 (config " in text
    assert "Change:       by a person " in text and "; bad: demo-web-1 exited with code 1" in text
    report = render_markdown(doc)
    assert "## Rollback" in report and "bad, by a person: demo-web-1 exited with code 1" in report
    assert "fixed" not in " ".join(
        i["resolution"] for i in doc["issues"] if i["fingerprint"].startswith("change:")
    )


def test_the_notification_says_rolled_back_not_fixed(tmp_path):
    _, controller, _ = rolled_back_by_the_gate(tmp_path)
    issues = controller.store.issues()
    bad = next(i for i in issues if i.fingerprint == "change:web:bad-change")
    tracker = Tracker(NotifySettings(urls=("json://x",)), bad.opened_at - timedelta(seconds=60))
    opened = bad.model_copy(update={"state": "open", "resolution": "", "resolved_at": None})
    told = tracker.update([opened])
    assert [t.event for t in told] == [NotifyEvent.OPENED]
    assert "last good: snapshot 1" in told[0].detail  # what was bad, and the command
    assert "up --detach --no-deps --force-recreate web`" in told[0].detail
    resolved = tracker.update([bad])
    assert [t.event for t in resolved] == [NotifyEvent.RESOLVED]
    assert resolved[0].detail.startswith("rolled back from config ")
