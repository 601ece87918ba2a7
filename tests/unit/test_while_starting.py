"""A dependent's connection error while its dependency starts (Swarm starts a stack's
services together; Compose does for ``depends_on`` without a condition): expected, low,
never acted on, resolved once the dependency has been ready for the grace; logged after
that, the service's own problem at its pattern's severity."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from loguru import logger
from prometheus_client import CollectorRegistry

from controller.causes import STARTING_GRACE, while_starting
from controller.detect.library import library_specs
from controller.issues.store import IssueStore
from controller.logflow import expected
from controller.metrics import Metrics
from controller.model import (
    Category,
    DetectionSettings,
    Drift,
    DriftKind,
    Endpoint,
    Finding,
    FindingKind,
    IssueSource,
    IssueState,
    NotifyEvent,
    NotifySettings,
    PatternDef,
    ServiceAddress,
    ServiceCondition,
    ServiceStatus,
    Severity,
    system_clock,
    to_datetime,
)
from controller.notify.transitions import Tracker
from controller.runtime import Settings, assemble
from controller.runtime.journal import log_findings
from tests.fakes import FakeClock, FakeWorld, desired, spec

T = 1_800_000_000.0


def named(service: str, *texts: str) -> tuple[ServiceAddress, ...]:
    return tuple(ServiceAddress(e, "service name") for t in texts if (e := Endpoint.parse(t)))


PATTERNS = (
    PatternDef("conn-refused", "refused", Category.CONNECTION, Severity.HIGH, "r", starting=True),
    PatternDef(
        "pg-not-ready", "starting up", Category.DATABASE, Severity.MEDIUM, "s", starting=True
    ),
    PatternDef("pg-database-missing", "does not exist", Category.DATABASE, Severity.CRITICAL, "m"),
)
STACK = desired(
    spec("db", addresses=named("db", "db", ":5432")),
    spec("cache", addresses=named("cache", "cache", ":6379")),
    spec("api", depends_on=("db", "cache")),
    detection=DetectionSettings(patterns=PATTERNS),
)


def error(
    ts: float,
    *named: str,
    category: Category = Category.CONNECTION,
    severity: Severity = Severity.HIGH,
) -> Finding:
    return Finding(
        service="api",
        container="demo-api-1",
        ts=ts,
        kind="log",
        pattern_id="conn-refused",
        category=category,
        severity=severity,
        title="Connection refused by a peer service",
        fingerprint="log:api:conn-refused:1",
        evidence=f"evidence {ts}",
        line="line",
        named=named,
    )


def status(name: str, ready: bool) -> ServiceStatus:
    return ServiceStatus(
        name=name,
        condition=ServiceCondition.READY if ready else ServiceCondition.PROGRESSING,
        required=True,
        replicas=1,
        containers=1,
        running=1,
        healthy=None,
        restarts=0,
    )


def test_the_dependencies_whose_start_explains_an_error():
    starting = {"db": None, "cache": T - 60}  # db not ready yet, cache for a minute
    assert while_starting(STACK, "api", Category.CONNECTION, (), starting, T) == ["db"]
    assert while_starting(STACK, "api", Category.CONNECTION, ("db:5432",), starting, T) == ["db"]
    # it names something else: not db's start
    assert while_starting(STACK, "api", Category.CONNECTION, ("cache:6379",), starting, T) == []
    assert while_starting(STACK, "api", Category.CONNECTION, ("other:1",), starting, T) == []
    # ready within the grace: the client's retry may still be on its way
    just = {"db": T - STARTING_GRACE / 2}
    assert while_starting(STACK, "api", Category.CONNECTION, (), just, T) == ["db"]
    # db has a drift of its own (absent from the map): the ordinary causes link it
    assert while_starting(STACK, "api", Category.CONNECTION, (), {"cache": T - 60}, T) == []
    # the client just started too: its dependency's start explains it, not its own
    both = {**starting, "api": None}
    assert while_starting(STACK, "api", Category.CONNECTION, (), both, T) == ["db"]
    alone = {"db": T - 60, "cache": T - 60, "api": None}
    assert while_starting(STACK, "api", Category.CONNECTION, (), alone, T) == ["api"]
    # not a connection or database error; not a dependent
    assert while_starting(STACK, "api", Category.CONFIG, (), starting, T) == []
    assert while_starting(STACK, "db", Category.CONNECTION, (), {"api": None}, T) == []


def test_an_error_while_db_starts_is_low_never_acted_on_and_ends_once_db_is_ready():
    clock = FakeClock(T)
    store = IssueStore("dev", clock)
    store.sync_drifts([], [status("db", False), status("cache", True), status("api", True)])
    settings = DetectionSettings()
    for n in range(12):  # a burst that would escalate by repetition
        store.record_findings(expected(STACK, store, [error(T + n * 0.1, "db:5432")]), settings)
    (issue,) = store.issues()
    assert issue.severity is Severity.LOW and not issue.blocking
    assert issue.while_starting == ["db"] and issue.escalated_from is None
    assert store.actionable() == {}
    clock.advance(5)
    store.sync_drifts([], [status("db", True), status("cache", True), status("api", True)])
    assert store.resolve_started() == []  # ready, not yet for the grace
    clock.advance(STARTING_GRACE)
    (done,) = store.resolve_started()
    assert done.state is IssueState.RESOLVED
    assert done.resolution.startswith("its dependency was starting (db, ready since ")


def test_logged_after_db_was_ready_it_is_the_services_own_problem():
    clock = FakeClock(T)
    store = IssueStore("dev", clock)
    store.sync_drifts([], [status("db", False), status("cache", True), status("api", True)])
    settings = DetectionSettings()
    store.record_findings(expected(STACK, store, [error(T, "db:5432")]), settings)
    clock.advance(1)
    store.sync_drifts([], [status("db", True), status("cache", True), status("api", True)])
    # within the grace: still the start's
    late = expected(STACK, store, [error(T + 2, "db:5432")])
    assert store.record_findings(late, settings).escalated == []
    clock.advance(STARTING_GRACE + 5)
    after = expected(STACK, store, [error(clock() - 1, "db:5432")])
    assert after[0].while_starting == ()
    result = store.record_findings(after, settings)
    (raised,) = result.outlived
    assert [i.id for i in result.escalated] == [raised.id]
    assert raised.severity is Severity.HIGH and raised.escalated_from is Severity.LOW
    assert raised.while_starting == [] and raised.state is IssueState.OPEN
    assert list(store.actionable()) == ["api"]
    assert store.resolve_started() == []  # its own now: the quiet time or a fix ends it


def test_an_error_when_the_dependency_is_long_ready_is_opened_at_its_severity():
    clock = FakeClock(T + 600)
    store = IssueStore("dev", clock)
    store.sync_drifts([], [status("db", True), status("cache", True), status("api", True)])
    found = expected(STACK, store, [error(T + 599, "db:5432")])
    store.record_findings(found, DetectionSettings())
    (issue,) = store.issues()
    assert issue.severity is Severity.HIGH and issue.while_starting == []


def test_a_database_saying_it_is_starting_up_while_it_starts_is_expected_of_itself():
    clock = FakeClock(T)
    store = IssueStore("dev", clock)
    store.sync_drifts([], [status("db", False), status("cache", True), status("api", True)])
    starting_up = replace(
        error(T + 1, category=Category.DATABASE),
        service="db",
        pattern_id="pg-not-ready",
        fingerprint="log:db:pg-not-ready:1",
    )
    (found,) = expected(STACK, store, [starting_up])
    assert found.while_starting == ("db",)
    store.record_findings([found], DetectionSettings())
    assert store.issues()[0].severity is Severity.LOW
    clock.advance(3)
    store.sync_drifts([], [status("db", True), status("cache", True), status("api", True)])
    clock.advance(STARTING_GRACE)
    (done,) = store.resolve_started()
    assert done.resolution.startswith("it was starting (ready since ")
    # the same line from a service long ready is its own problem
    assert expected(STACK, store, [replace(starting_up, ts=clock())])[0].while_starting == ()


def restarted(service: str, ts: float) -> Finding:
    """Docker's restart policy brought ``service`` back (``detect.restarts``)."""
    return Finding(
        service=service,
        container=f"demo-{service}-1",
        ts=ts,
        kind=FindingKind.RESTART,
        pattern_id="docker-restart",
        category=Category.HEALTH,
        severity=Severity.MEDIUM,
        title="Restarted by Docker's restart policy",
        fingerprint=f"engine:{service}:docker-restart",
        evidence="restart count 0 -> 1",
        line="restart count 0 -> 1",
        source=IssueSource.ENGINE,
    )


def test_a_dependency_docker_restarted_after_a_crash_is_no_start_to_expect():
    # db crashed and its restart policy brought it back at once: no drift is left to see,
    # only the restart; api's errors meanwhile are the crash's, at their own severity (the
    # restart is medium: at the default min_severity, api's high error is what pages)
    clock = FakeClock(T)
    store = IssueStore("dev", clock)
    store.sync_drifts([], [status("db", True), status("cache", True), status("api", True)])
    clock.advance(600)
    store.record_findings([restarted("db", clock())], DetectionSettings())
    store.sync_drifts([], [status("db", False), status("cache", True), status("api", True)])
    (found,) = expected(STACK, store, [error(clock(), "db:5432")])
    assert found.while_starting == ()
    store.record_findings([found], DetectionSettings())
    api = next(i for i in store.issues() if i.service == "api")
    assert api.severity is Severity.HIGH and api.while_starting == []


def test_nothing_is_known_to_be_starting_before_a_pass_reported_it():
    # the log follower may read a line before the first pass recorded what runs (and after
    # a restart of the controller the issues file says nothing of readiness): a service no
    # pass reported is not known to be starting, so the error keeps its own severity
    clock = FakeClock(T)
    store = IssueStore("dev", clock)
    assert store.without_drift(STACK.services) == {}
    (found,) = expected(STACK, store, [error(T, "db:5432")])
    assert found.while_starting == ()
    # a service the passes do not report (gone from the files) is not starting either
    store.sync_drifts([], [status("cache", True), status("api", True)])
    assert "db" not in store.without_drift(STACK.services)


def test_a_critical_error_is_never_expected_of_a_start():
    # 'FATAL: database "app" does not exist' (pg-database-missing), a role missing, an
    # append-only file redis cannot load: said while the database starts, yet no start
    # ends them; hidden as low they would resolve "it was starting" and never page
    clock = FakeClock(T)
    store = IssueStore("dev", clock)
    store.sync_drifts([], [status("db", False), status("cache", True), status("api", True)])
    missing = replace(
        error(T + 1, category=Category.DATABASE),
        service="db",
        pattern_id="pg-database-missing",
        severity=Severity.CRITICAL,
        fingerprint="log:db:pg-database-missing:1",
    )
    (found,) = expected(STACK, store, [missing])
    assert found.while_starting == ()
    store.record_findings([found], DetectionSettings())
    (issue,) = store.issues()
    assert issue.severity is Severity.CRITICAL and issue.blocking


def test_a_pass_records_what_runs_before_it_follows_a_log(tmp_path, monkeypatch):
    # the first line read must meet readiness already known: read before the first pass
    # recorded it, a backlog of errors would be judged with nothing known to be starting
    # (and a burst escalated to critical: --once not converged on a fresh deploy)
    world = FakeWorld()
    world.run("db")
    world.run("api")
    controller = assemble(
        Settings(env="dev", state_dir=tmp_path, once=True),
        desired(spec("db"), spec("api", depends_on=("db",))),
        gateway=world,
        compose=world,
        hashes=world,
        registry=CollectorRegistry(),
        clock=system_clock,
    )
    order: list[str] = []
    follow, record = controller.parts.logs.sync, controller.store.sync_drifts
    monkeypatch.setattr(
        controller.parts.logs, "sync", lambda o: (order.append("follow"), follow(o))[1]
    )
    monkeypatch.setattr(
        controller.store,
        "sync_drifts",
        lambda *a, **k: (order.append("record"), record(*a, **k))[1],
    )
    assert controller.run_pass(submit=False)
    assert order == ["record", "follow"]


def test_restored_by_a_new_controller_it_ends_once_the_first_passes_vouch_for_db():
    # the controller restarted while the issue was open: the issues file has it, its
    # readiness is gone; db running for long, the first pass dates its readiness from
    # db's start, and the issue ends there rather than stay low for ever
    clock = FakeClock(T)
    store = IssueStore("dev", clock)
    store.sync_drifts([], [status("db", False), status("cache", True), status("api", True)])
    store.record_findings(expected(STACK, store, [error(T, "db:5432")]), DetectionSettings())
    (saved,) = store.issues()
    clock.advance(3600)
    again = IssueStore("dev", clock)
    again.restore([saved])
    long_ready = [
        status(s, True).model_copy(update={"ready_from": datetime.fromtimestamp(T + 30, UTC)})
        for s in ("db", "cache", "api")
    ]
    again.sync_drifts([], long_ready)
    (done,) = again.resolve_started()
    assert done.resolution.startswith("its dependency was starting (db, ready since ")
    assert done.severity is Severity.LOW and done.escalated_from is None


def test_raised_when_its_dependency_crashed_it_is_not_told_db_was_ready():
    # db crashed while api's issue was low: api's next error is raised, and the journal
    # must not send the reader to api ("logged after db was ready: its own problem")
    clock = FakeClock(T)
    store = IssueStore("dev", clock)
    store.sync_drifts([], [status("db", False), status("cache", True), status("api", True)])
    store.record_findings(expected(STACK, store, [error(T, "db:5432")]), DetectionSettings())
    clock.advance(2)
    exited = Drift(
        service="db",
        kind=DriftKind.EXITED,
        severity=Severity.HIGH,
        category=Category.HEALTH,
        title="db exited",
        detail="exit code 1",
    )
    store.sync_drifts(
        [exited],
        [
            status("db", False).model_copy(update={"condition": ServiceCondition.DEGRADED}),
            status("cache", True),
            status("api", True),
        ],
    )
    result = store.record_findings(
        expected(STACK, store, [error(clock(), "db:5432")]), DetectionSettings()
    )
    assert [i.severity for i in result.outlived] == [Severity.HIGH]
    said: list[str] = []
    sink = logger.add(lambda message: said.append(str(message)), level="INFO")
    try:
        log_findings(Metrics(CollectorRegistry(), "dev"), result, clock())
    finally:
        logger.remove(sink)
    (line,) = [s for s in said if "severity low -> high" in s]
    assert "was ready" not in line and "its own problem" not in line, line
    assert "no longer starting" in line, line


def test_a_dependency_gone_from_the_files_does_not_keep_the_issue_open_for_ever():
    # a reload removed db (and api's depends_on): no pass reports db any more, so it can
    # never be "ready for the grace"; the issue ends with what is still reported
    clock = FakeClock(T)
    store = IssueStore("dev", clock)
    store.sync_drifts([], [status("db", False), status("cache", True), status("api", True)])
    store.record_findings(expected(STACK, store, [error(T, "db:5432")]), DetectionSettings())
    clock.advance(1)
    store.sync_drifts([], [status("cache", True), status("api", True)])
    clock.advance(STARTING_GRACE)
    (done,) = store.resolve_started()
    assert done.resolution.startswith("its dependency was starting (db, ")


def test_what_pages_at_the_default_min_severity():
    # nothing while db starts; the moment the error outlives db's start, an escalation
    clock = FakeClock(T)
    store = IssueStore("dev", clock)
    tracker = Tracker(NotifySettings(), to_datetime(T - 1))
    tracker.update(store.issues())  # the baseline
    store.sync_drifts([], [status("db", False), status("cache", True), status("api", True)])
    store.record_findings(expected(STACK, store, [error(T, "db:5432")]), DetectionSettings())
    assert tracker.update(store.issues()) == []
    clock.advance(1)
    store.sync_drifts([], [status("db", True), status("cache", True), status("api", True)])
    clock.advance(STARTING_GRACE + 1)
    store.record_findings(expected(STACK, store, [error(clock(), "db:5432")]), DetectionSettings())
    (told,) = tracker.update(store.issues())
    assert told.event is NotifyEvent.ESCALATED and told.severity is Severity.HIGH


def test_what_a_start_does_not_explain_is_not_expected_and_is_acted_on():
    """A missing database while db starts is the runbook's at once, not "expected"."""
    store = IssueStore("dev", FakeClock(T))
    store.sync_drifts([], [status("db", False), status("cache", True), status("api", True)])
    missing = replace(
        error(T, category=Category.DATABASE, severity=Severity.CRITICAL),
        pattern_id="pg-database-missing",
        fingerprint="log:api:pg-database-missing:1",
    )
    (found,) = expected(STACK, store, [missing])
    assert found.while_starting == ()
    store.record_findings([found], DetectionSettings())
    assert store.issues()[0].severity is Severity.CRITICAL
    assert list(store.actionable()) == ["api"]


def test_the_library_marks_what_a_peer_starting_explains_and_nothing_else():
    marked = {s.id for s in library_specs() if s.starting}
    assert {"conn-refused", "pg-server-unreachable", "pg-not-ready", "redis-loading"} <= marked
    assert not marked & {"pg-database-missing", "pg-role-missing", "tls-cert-invalid"}
    assert all(s.category in ("connection", "database") for s in library_specs() if s.starting)


@pytest.mark.parametrize("flag", ["starting", "client_gone"])
def test_a_pattern_marked_expected_outside_connection_and_database_is_refused(flag: str):
    # a start, or a client leaving, explains only a connection or database error
    from controller.detect.library import PatternError, PatternSpec, check_pattern

    spec = PatternSpec.model_validate(
        {"id": "disk-full", "regex": "no space", "category": "filesystem", "severity": "high",
         "title": "full", flag: True}
    )  # fmt: skip
    with pytest.raises(PatternError, match=f"pattern disk-full: {flag}: only a connection"):
        check_pattern(spec)
