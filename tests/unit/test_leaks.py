"""Container text reaches no output unmasked, by any path (issue 12, item 1).

Each way the containers' words come in is driven through our own stages on the fake
engine: a log line, a failed healthcheck's output (from a `docker inspect` document), an
exec probe's output, a runbook's exec output, `docker compose` stderr, a hook's stderr,
and an issues file an older version wrote. Every output is then searched for the
secrets: the JSON document (what /status serves), its file text, the Markdown report and
/metrics. The controller's own log is tested in test_cli.py; the real engine and the
real command in tests/e2e/test_faults.py.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from loguru import logger
from prometheus_client import generate_latest

from controller.cli import configure_logging
from controller.detect.detector import Detector
from controller.detect.library import build_patterns
from controller.drift import diff, service_status
from controller.issues.document import build_document, load_state, render_json
from controller.issues.report import render_markdown
from controller.issues.store import IssueStore
from controller.metrics import StateCollector
from controller.model import (
    Category,
    DetectionSettings,
    LogLine,
    ObservedState,
    ProbeSpec,
    ProbeView,
    RemediationSettings,
    RunbookStep,
)
from controller.observe.engine import snapshot_from_inspect
from controller.observe.gateway import ComposeError
from controller.observe.probes import run_probe
from tests.fakes import FakeClock, FakeWorld, container, desired, spec, store_view
from tests.unit.test_engine_snapshot import INSPECT
from tests.unit.test_remediator import RUNBOOK, Rig

# The shapes of issue 12 that leaked, each with a secret of its own.
SECRET_LINES = {
    "DB_PASSWORD=LeakDb1x rejected": "LeakDb1x",
    "PGPASSWORD=LeakPg2x psql -h db": "LeakPg2x",
    "SECRET_TOKEN=LeakTok3x loaded": "LeakTok3x",
    "aws_secret_access_key=LeakAws4x/K7MDENGbPxRfiCY": "LeakAws4x",
    "postgres://app:p@ssLeak5x/y@db/app refused": "ssLeak5x",
    "redis://default:Pa/ssLeak6x@cache:6379 refused": "ssLeak6x",
    'password="correct LeakHorse7x battery staple"': "LeakHorse7x",
    '{"password": "LeakJson8x"}': "LeakJson8x",
    "Authorization: Bearer LeakBearer9x": "LeakBearer9x",
}


def outputs(doc: dict[str, object], registry_text: str = "") -> str:
    return "\n".join(
        [json.dumps(doc), render_json(doc), render_markdown(doc), registry_text]  # type: ignore[arg-type]
    )


def assert_no_secret(text: str, secrets: list[str]) -> None:
    leaked = [s for s in secrets if s in text]
    assert leaked == [], leaked


def document(store: IssueStore) -> dict[str, object]:
    return build_document(
        env="dev",
        project="demo",
        issues=store.issues(),
        services=store.services(),
        generated_at=1_800_000_000.0,
        dry_run=False,
        is_converged=False,
        remediation={},
    )


def test_log_lines_reach_the_document_the_report_and_metrics_masked():
    detector = Detector(DetectionSettings(patterns=build_patterns(), discovery_min_occurrences=1))
    store = IssueStore("dev", FakeClock())
    lines = [f"ERROR connect failed: {line}" for line in SECRET_LINES]
    record = ["Traceback (most recent call last):", *(f"  {t}" for t in lines), "ValueError: x"]
    feed = [*lines, *record]
    findings = detector.feed(
        [
            LogLine("web", "demo-web-1", 1_800_000_000_000_000_000 + n, t)
            for n, t in enumerate(feed)
        ],
        now=0.0,
    ) + detector.flush(now=10.0)
    assert findings
    store.record_findings(findings, DetectionSettings())
    collector = StateCollector(
        "dev",
        store_view(store),
    )
    metrics = "\n".join(str(m) for m in collector.collect())
    assert_no_secret(outputs(document(store), metrics), list(SECRET_LINES.values()))


def test_a_failed_healthchecks_and_an_exec_probes_output_are_masked():
    secrets = list(SECRET_LINES.values())
    said = " ; ".join(SECRET_LINES)
    inspect = json.loads(json.dumps(INSPECT))
    inspect["State"]["Health"]["Log"] = [
        {
            "Start": "2026-11-28T04:36:40Z",
            "End": "2026-11-28T04:36:41Z",
            "ExitCode": 1,
            "Output": said,
        }
    ]
    sick = snapshot_from_inspect(inspect)
    world = FakeWorld()
    world.run("probe")
    world.exec_result = (1, f"checking\n{said}\n".encode())
    probe = ProbeSpec(kind="exec", argv=("check",))
    probe_said = run_probe(probe, world, world.list_containers("demo")[0])
    assert probe_said is not None
    state = desired(spec("backend", check_health=True), spec("probe", probes=(probe,)))
    observed = ObservedState(
        "demo",
        1_800_000_000.0,
        (sick, container("probe")),
        probes={"probe": ProbeView(False, probe_said)},
    )
    store = IssueStore("dev", FakeClock())
    store.sync_drifts(
        diff(state, observed), [service_status(s, observed) for s in state.services.values()]
    )
    assert {i.kind for i in store.issues()} == {"unhealthy", "probe-failed"}
    assert_no_secret(outputs(document(store)), secrets)


def test_a_runbooks_output_composes_stderr_and_a_hooks_stderr_are_masked(capsys):
    said = " ; ".join(SECRET_LINES)
    world = FakeWorld()
    world.run("db")
    world.run("web", status="exited", exit_code=1)
    world.crashing.add("web")  # a restart does not help: the ladder climbs to compose
    world.exec_result = (1, f"createdb: error\n{said}\n".encode())

    def failing_up(service, **kw):  # type: ignore[no-untyped-def]
        raise ComposeError(f"compose up exited 1: {said}")

    world.up = failing_up  # type: ignore[method-assign]
    hook = RunbookStep(
        kind="hook",
        argv=(sys.executable, "-c", f"import sys; sys.stderr.write({said!r}); sys.exit(3)"),
    )
    settings = RemediationSettings(runbooks=(RUNBOOK,), hook=hook, log_quiet=0)
    rig = Rig(world, desired(spec("db"), spec("web"), remediation=settings))
    rig.log("web", "pg-database-missing", Category.DATABASE, captures={"database": "orders"})
    configure_logging("INFO")  # the command's own log, which says what each step did
    try:
        rig.fix("web", horizon=60)  # up the whole ladder, through its backoffs
    finally:
        logger.remove()
    log = capsys.readouterr().err
    assert "recreate failed: compose up exited 1" in log
    assert_no_secret(log, list(SECRET_LINES.values()))
    details = [a.detail for i in rig.store.issues() for a in i.attempts]
    assert len(details) >= 3, details  # the runbook, a restart, compose, the hook
    text = outputs(document(rig.store), generate_latest(rig.registry).decode())
    assert_no_secret(text, list(SECRET_LINES.values()))


def test_an_issues_file_an_older_version_wrote_is_masked_when_read_back(tmp_path: Path):
    store = IssueStore("dev", FakeClock())
    (sick,) = diff(
        desired(spec("web")),
        ObservedState("demo", 0.0, (container("web", status="exited", exit_code=1),)),
    )
    store.sync_drifts([sick], [])
    store.begin([sick.fingerprint], action="restart")  # type: ignore[arg-type]
    doc = document(store)
    issue = doc["issues"][0]  # type: ignore[index]
    # what the landed redaction let through, as a file it wrote holds it
    issue["detail"] = next(iter(SECRET_LINES))
    issue["samples"] = list(SECRET_LINES)
    issue["attempts"][0]["detail"] = "compose up exited 1: " + " ".join(SECRET_LINES)
    issue["captures"] = {"dsn": "DB_PASSWORD=LeakDb1x"}
    path = tmp_path / "docker_issues_dev.json"
    path.write_text(json.dumps(doc))
    restored = IssueStore("dev", FakeClock())
    restored.restore(load_state(path).issues)
    assert_no_secret(outputs(document(restored)), list(SECRET_LINES.values()))
