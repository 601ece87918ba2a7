"""The evidence root causes are linked by, end to end through the pure parts: when a fault
began (the engine's record), what an error names, how a service is reached, and where a
link's evidence is shown."""

from dataclasses import replace
from datetime import UTC, datetime

from controller.desired.addresses import service_addresses
from controller.detect.detector import Detector
from controller.drift import service_drifts
from controller.issues.present import LINKED_PLAN, intended
from controller.issues.report import _issue_section
from controller.issues.store import IssueStore
from controller.model import (
    Category,
    DetectionSettings,
    Drift,
    DriftKind,
    Finding,
    Issue,
    IssueSource,
    IssueState,
    LogLine,
    ObservedState,
    PatternDef,
    ProbeKind,
    ProbeSpec,
    Severity,
)
from controller.remediate.blame import explained_crashes
from controller.status.render import Paint, describe
from tests.fakes import FakeClock, container, spec
from tests.unit.test_desired import load, write

T = 1_800_000_000.0
STAMP = "2027-01-15T08:00:00.250000000Z"  # T + 0.25 s, as the engine writes it


def test_a_drift_carries_when_its_fault_began_by_the_engines_record():
    exited = container("web", status="exited", exit_code=1, finished_at=STAMP)
    (drift,) = service_drifts(spec("web"), [exited])
    assert drift.since == T + 0.25
    failing = container(
        "web", health="unhealthy", failing_streak=3, failing_since=STAMP, health_interval=1.0
    )
    (drift,) = service_drifts(spec("web", check_health=True), [failing])
    assert drift.kind is DriftKind.UNHEALTHY and drift.since == T + 0.25
    (missing,) = service_drifts(spec("web"), [])
    assert missing.since is None
    (optional,) = service_drifts(spec("web", required=False), [exited])
    assert optional.since == T + 0.25 and not optional.blocking


def _drift(since: float | None) -> Drift:
    return Drift("web", DriftKind.EXITED, Severity.HIGH, Category.HEALTH, "web exited", since=since)


def test_an_issue_keeps_when_its_fault_began_and_forgets_it_when_it_reopens():
    clock = FakeClock(T + 5)
    store = IssueStore("dev", clock)
    store.sync_drifts([_drift(T)], [])
    (issue,) = store.issues()
    assert issue.fault_since is not None and issue.fault_since.timestamp() == T
    assert issue.began.timestamp() == T < issue.opened_at.timestamp()
    store.sync_drifts([_drift(T)], [])
    assert store.issues()[0].fault_since == issue.fault_since  # a repeat keeps it
    store._issues[issue.fingerprint].state = IssueState.RESOLVED
    clock.advance(100)
    store.sync_drifts([_drift(None)], [])
    (again,) = store.issues()
    assert again.fault_since is None and again.began == again.opened_at
    store.sync_drifts([_drift(T + 1000)], [])  # a time after the pass: not believed
    assert store.issues()[0].began == again.opened_at


def _finding(ts: float, *named: str) -> Finding:
    return Finding(
        service="api",
        container="demo-api-1",
        ts=ts,
        kind="log",
        pattern_id="conn-refused",
        category=Category.CONNECTION,
        severity=Severity.HIGH,
        title="Connection refused by a peer service",
        fingerprint="log:api:conn-refused:1",
        evidence=f"evidence {ts}",
        line="line",
        named=named,
    )


def test_a_log_issue_keeps_the_newest_distinct_things_its_errors_named():
    store = IssueStore("dev", FakeClock(T))
    settings = DetectionSettings()
    store.record_findings([_finding(T, "db:5432"), _finding(T + 1)], settings)
    store.record_findings([_finding(T + 2, "127.0.0.1:6379", "db:5432")], settings)
    assert store.issues()[0].named == ["127.0.0.1:6379", "db:5432"]
    store.record_findings([_finding(T + 3 + n, f":{18000 + n}") for n in range(10)], settings)
    assert store.issues()[0].named == [f":{18000 + n}" for n in range(2, 10)]


def test_linking_records_the_evidence_and_the_plan_and_unlinking_clears_them():
    store = IssueStore("dev", FakeClock(T))
    store.record_findings([_finding(T, "db:5432")], DetectionSettings())
    (issue,) = store.issues()
    why = "names db:5432, a name of db (service name)"
    assert [i.id for i in store.link_causes({issue.fingerprint: {"db-id": why}})] == [issue.id]
    linked = store.issues()[0]
    assert linked.caused_by == ["db-id"] and linked.cause_evidence == {"db-id": why}
    assert intended(linked, None).plan == f"{LINKED_PLAN}db-id ({why})"
    assert store.link_causes({issue.fingerprint: {"db-id": why}}) == []  # not news
    store.link_causes({})
    unlinked = store.issues()[0]
    assert unlinked.caused_by == [] and unlinked.cause_evidence == {}
    assert intended(unlinked, None).plan == ""


def test_the_detector_reads_what_connection_errors_name_and_nothing_else():
    patterns = (
        PatternDef("conn-refused", "connection refused", Category.CONNECTION, Severity.HIGH, "r"),
        PatternDef("disk-full", "No space left", Category.FILESYSTEM, Severity.HIGH, "d"),
    )
    detector = Detector(DetectionSettings(patterns=patterns, discovery=False))
    lines = [
        LogLine("api", "demo-api-1", 1, "ERROR: connection refused to db:5432"),
        LogLine("api", "demo-api-1", 2, "write /data/x at 10.0.0.1:80: No space left on device"),
    ]
    found = detector.feed(lines, now=10.0) + detector.flush(now=100.0)
    named = {f.pattern_id: f.named for f in found}
    assert named == {"conn-refused": ("db:5432",), "disk-full": ()}


def test_a_service_is_reached_at_its_compose_names_ports_checks_and_declared_addresses():
    compose = {
        "db": {
            "container_name": "the-db",
            "hostname": "dbhost",
            "networks": {"default": {"aliases": ["database"]}, "other": None},
            "ports": [{"target": 5432, "published": "15432"}, "127.0.0.1:16000-16001:6000"],
            "expose": ["7000/tcp"],
            "healthcheck": {"test": ["CMD", "pg_isready", "-h", "127.0.0.1", "-p", "18432"]},
        },
        "web": {
            "links": ["db:sql"],
            "healthcheck": {"test": ["CMD-SHELL", "curl -f http://localhost:8080/ || exit 1"]},
        },
    }
    probes = (
        ProbeSpec(ProbeKind.HTTP, url="http://127.0.0.1:9000/health"),
        ProbeSpec(ProbeKind.TCP, port=9001),
        ProbeSpec(ProbeKind.EXEC, argv=("check", "--port=9002")),
    )
    db = service_addresses("db", compose["db"], compose, probes, ())
    assert [str(a) for a in db] == [
        "db (service name)",
        "the-db (container_name)",
        "dbhost (hostname)",
        "database (network alias)",
        "sql (its alias in web's links)",
        ":5432 (target port)",
        ":15432 (published port)",
        ":6000 (target port)",
        ":16000 (published port)",
        ":16001 (published port)",
        ":7000 (expose)",
        ":18432 (its healthcheck)",
        "127.0.0.1:9000 (its http probe)",
        "127.0.0.1:9001 (its tcp probe)",
        ":9002 (its exec probe)",
    ]
    web = service_addresses("web", compose["web"], compose, (), ())
    assert [str(a) for a in web] == ["web (service name)", ":8080 (its healthcheck)"]


DECLARED = """
project: demo-dev
compose_files: [compose.yaml]
services:
  db:
    addresses: ["127.0.0.1:5432", "db.internal", "6379", "[::1]:5433"]
"""


def test_declared_addresses_are_added_and_bad_ones_are_one_line_naming_the_field(tmp_path):
    model = {"services": {"db": {"image": "x"}}}
    state, _ = load(write(tmp_path, DECLARED), model=model)
    declared = [str(a.endpoint) for a in state.services["db"].addresses if a.source == "declared"]
    assert declared == ["127.0.0.1:5432", "db.internal", ":6379", "[::1]:5433"]
    bad = DECLARED.replace('"6379"', '"db:99999", "two words"')
    (tmp_path / "dev.yaml").write_text(bad)
    try:
        load(tmp_path, model=model)
    except Exception as exc:  # DesiredStateError
        lines = str(exc).splitlines()
    else:
        raise AssertionError("bad addresses were accepted")
    assert lines == [
        f"{tmp_path / 'dev.yaml'}:6: services.db.addresses.2: 'db:99999' is not HOST, "
        "HOST:PORT or :PORT (a host name or IP address, a port from 1 to 65535)",
        f"{tmp_path / 'dev.yaml'}:6: services.db.addresses.3: 'two words' is not HOST, "
        "HOST:PORT or :PORT (a host name or IP address, a port from 1 to 65535)",
    ]


def test_the_crashes_an_error_of_the_same_run_explains_are_found_for_root_causes():
    store = IssueStore("dev", FakeClock(T + 1))
    store.sync_drifts([_drift(T)], [])
    died = container(
        "web",
        status="exited",
        exit_code=1,
        started_at="2027-01-15T07:59:58Z",
        finished_at="2027-01-15T08:00:01Z",
    )
    error = Finding(
        service="web",
        container=died.name,
        ts=T,
        kind="log",
        pattern_id="conn-refused",
        category=Category.CONNECTION,
        severity=Severity.HIGH,
        title="refused",
        fingerprint="log:web:refused",
        evidence="e",
    )
    other = replace(error, service="api", fingerprint="log:api:refused")
    store.record_findings([error, other], DetectionSettings())
    observed = ObservedState("demo", T + 1, (died,))
    found = explained_crashes(store.issues(), observed, lambda c: True)
    assert found == {"drift:web:exited": ["log:web:refused"]}
    assert explained_crashes(store.issues(), observed, lambda c: False) == {}
    assert all(i.source in (IssueSource.DRIFT, IssueSource.LOG) for i in store.issues())


def _doc() -> dict[str, object]:
    why = "names 127.0.0.1:18432, port 18432 of db (its healthcheck)"
    base = {
        "env": "dev",
        "services": [{"name": "backend", "condition": "Degraded"}],
        "remediation": {},
    }
    return base | {
        "issues": [
            {
                "id": "dbid",
                "service": "db",
                "state": "open",
                "title": "db exited with code 0",
                "fingerprint": "drift:db:exited",
            },
            {
                "id": "apiid",
                "fingerprint": "log:backend:conn-refused:1",
                "service": "backend",
                "kind": "log",
                "severity": "high",
                "state": "open",
                "category": "connection",
                "title": "Connection refused by a peer service",
                "count": 3,
                "first_seen": "2027-01-15T08:00:00+00:00",
                "last_seen": "2027-01-15T08:00:02+00:00",
                "opened_at": "2027-01-15T08:00:00+00:00",
                "detail": "refused",
                "caused_by": ["dbid"],
                "cause_evidence": {"dbid": why},
                "waiting_for": [],
                "plan": "",
                "next_attempt_at": None,
                "resolution": "",
            },
        ],
    }


def test_the_evidence_is_shown_by_status_describe_and_in_the_report():
    doc = _doc()
    now = datetime(2027, 1, 15, 8, 0, 5, tzinfo=UTC)
    text = describe(doc, {"name": "backend"}, now, Paint(False))
    assert (
        "Caused by:    dbid (db: db exited with code 0): names 127.0.0.1:18432, port 18432 "
        "of db (its healthcheck)"
    ) in text
    report = "\n".join(_issue_section(doc["issues"][1]))  # type: ignore[index]
    assert "caused by `dbid` (names 127.0.0.1:18432, port 18432 of db (its healthcheck))" in report


def test_schema_documents_addresses():
    from controller.desired.schema import json_schema

    field = json_schema()["$defs"]["ServiceDeclaration"]["properties"]["addresses"]
    assert "HOST:PORT" in field["description"] and field["type"] == "array"


def _db_down(resolved_at: float | None) -> Issue:
    stamp = datetime.fromtimestamp(T, UTC)
    return Issue(
        id="db-id",
        fingerprint="drift:db:exited",
        env="dev",
        service="db",
        kind="exited",
        category="health",
        severity="high",
        title="db exited with code 1",
        first_seen=stamp,
        last_seen=stamp,
        opened_at=stamp,
        state=IssueState.OPEN if resolved_at is None else IssueState.RESOLVED,
        resolved_at=None if resolved_at is None else datetime.fromtimestamp(resolved_at, UTC),
    )


def test_a_dependents_error_ends_with_its_causes_incident_unless_seen_after_it():
    """A new user saw "could not connect to db" open 300 s after db recovered, under a
    header that said converged: it ends with db's incident now, unless it was logged
    after db recovered (then it is the dependent's own problem and stays open)."""
    why = "names db:5432, a name of db (service name)"
    for last_error, resolved_at, db_down_again, ends in (
        (T + 5, T + 10, False, True),  # quiet since db recovered: ends with it
        (T + 12, T + 10, False, False),  # logged after db recovered: its own problem
        (T + 5, None, False, False),  # db still down: still its cause
        (T + 5, T + 10, True, False),  # db recovered, then broke another way
    ):
        clock = FakeClock(T + 20)
        store = IssueStore("dev", clock)
        db = [_db_down(resolved_at)]
        if db_down_again:
            db.append(_db_down(None).model_copy(update={"id": "db-2", "fingerprint": "f2"}))
        store.restore(db)
        store.record_findings([_finding(last_error, "db:5432")], DetectionSettings())
        (error,) = [i for i in store.issues() if i.service == "api"]
        store.link_causes({error.fingerprint: {"db-id": why}})
        freed = store.resolve_with_causes()
        assert [i.id for i in freed] == ([error.id] if ends else []), (last_error, resolved_at)
        after = store.get(error.fingerprint)
        assert after is not None and after.active is not ends
        if ends:
            assert after.resolution == "its cause recovered (db)"


def test_a_line_logged_before_its_issue_ended_but_read_later_does_not_reopen_it():
    clock = FakeClock(T + 20)
    store = IssueStore("dev", clock)
    store.restore([_db_down(T + 10)])
    store.record_findings([_finding(T + 5, "db:5432")], DetectionSettings())
    (error,) = [i for i in store.issues() if i.service == "api"]
    store.link_causes({error.fingerprint: {"db-id": "names db:5432"}})
    assert store.resolve_with_causes()
    late = store.record_findings([_finding(T + 9, "db:5432")], DetectionSettings())
    assert late.reopened == [] and not store.get(error.fingerprint).active  # type: ignore[union-attr]
    again = store.record_findings([_finding(T + 21, "db:5432")], DetectionSettings())
    assert [i.id for i in again.reopened] == [error.id]  # logged after it ended: back
