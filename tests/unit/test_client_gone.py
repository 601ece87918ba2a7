"""A server's "the peer went away" (connection reset by peer, PostgreSQL's "could not
receive data from client") logged when a client of it (a service that depends on it,
directly or not) stopped, died or restarted: expected, low, never acted on, resolved
saying which client left; the same line with no client leaving near it keeps its
pattern's severity, and logged after the grace it is the server's own problem."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry

from controller.causes import STARTING_GRACE, clients_left, departures, downstream
from controller.detect.detector import Detector
from controller.detect.library import library_specs
from controller.drift import service_status
from controller.issues.store import IssueStore
from controller.logflow import LEAVE_LAG, PARK_WAIT, LogPipeline, expected
from controller.metrics import Metrics
from controller.model import (
    LINKED_CATEGORIES,
    Category,
    DetectionSettings,
    Finding,
    IssueState,
    LogLine,
    ObservedState,
    ServiceStatus,
    Severity,
)
from tests.fakes import FakeClock, FakeWorld, container, desired, spec

T = 1_800_000_000.0
REFUSED = (
    'psql: error: connection to server at "cache" (127.0.0.1), port 6379 failed: Connection refused'
)
LINE = (
    "2026-12-05 22:03:32.064 UTC [2410] LOG:  could not receive data from client: "
    "Connection reset by peer"
)

LIBRARY = DetectionSettings(patterns=tuple(s.definition() for s in library_specs()))
# edge -> api -> db; cache depends on nothing, and db on cache
STACK = desired(
    spec("cache"),
    spec("db", depends_on=("cache",)),
    spec("api", depends_on=("db",)),
    spec("edge", depends_on=("api",)),
    detection=LIBRARY,
)


def stamp(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def reset(ts: float, service: str = "db", line: str = LINE) -> Finding:
    """The line in ``service``'s log, as the detector finds it with the library."""
    detector = Detector(LIBRARY)
    name = f"demo-{service}-1"
    detector.feed([LogLine(service, name, int(ts * 1e9), line)], ts)
    (found,) = detector.close(name)  # its run ended: the record is whole
    return found


def statuses(started: float, *names: str) -> list[ServiceStatus]:
    """The services as a pass sees them, each running since ``started``."""
    observed = ObservedState(
        "demo", started + 1, tuple(container(n, started_at=stamp(started)) for n in names)
    )
    return [service_status(STACK.services[n], observed) for n in names]


def test_the_clients_whose_leaving_explains_a_servers_reset():
    assert downstream(STACK, "db") == ["api", "edge"]
    assert downstream(STACK, "edge") == []
    left = {"api": [T - 3600, T - 0.5], "cache": [T]}
    assert clients_left(STACK, "db", Category.CONNECTION, left, T) == {"api": T - 0.5}
    # a client of a client leaves too (edge holds db's connections through api)
    assert clients_left(STACK, "db", Category.CONNECTION, {"edge": [T + 2]}, T) == {"edge": T + 2}
    # long before or after the line: not its leaving
    far = {"api": [T - STARTING_GRACE - 1, T + STARTING_GRACE + 1]}
    assert clients_left(STACK, "db", Category.CONNECTION, far, T) == {}
    # db's own dependency stopping is no client of db leaving; api has no client
    assert clients_left(STACK, "db", Category.CONNECTION, {"cache": [T]}, T) == {}
    assert clients_left(STACK, "api", Category.CONNECTION, {"db": [T]}, T) == {}
    # not a connection or database error
    assert clients_left(STACK, "db", Category.CONFIG, {"api": [T]}, T) == {}


def test_the_engines_record_of_a_run_ending_and_starting_is_the_evidence():
    observed = ObservedState(
        "demo",
        T,
        (
            container("api", started_at=stamp(T - 1), finished_at=stamp(T - 2)),
            container("db", started_at=stamp(T - 600)),
        ),
    )
    left = departures(observed)
    assert left["api"] == pytest.approx([T - 2, T - 1])
    assert left["db"] == pytest.approx([T - 600])


def test_a_reset_when_its_client_restarted_is_low_never_acted_on_and_ends_saying_who_left():
    clock = FakeClock(T)
    store = IssueStore("dev", clock)
    settings = DetectionSettings()
    left = {"api": [T - 0.2]}  # the controller restarted api: its process died then
    for n in range(12):  # a burst that would escalate by repetition
        found = expected(STACK, store, [reset(T + n * 0.1)], left)
        assert found[0].clients_left == {"api": T - 0.2}
        store.record_findings(found, settings)
    (issue,) = store.issues()
    assert issue.severity is Severity.LOW and not issue.blocking
    assert list(issue.clients_left) == ["api"] and issue.escalated_from is None
    assert store.actionable() == {}
    clock.advance(STARTING_GRACE / 2)
    assert store.resolve_departed() == []  # within the grace: it may go on a moment
    clock.advance(STARTING_GRACE)
    (done,) = store.resolve_departed()
    assert done.state is IssueState.RESOLVED
    at = datetime.fromtimestamp(T - 0.2, UTC)
    assert done.resolution == f"its client api went away at {at:%H:%M:%S}"
    assert done.severity is Severity.LOW and done.attempts == []


def test_a_reset_with_no_client_leaving_near_it_keeps_its_severity():
    # a real fault of the server (or of the network): never hidden as expected
    store = IssueStore("dev", FakeClock(T))
    found = expected(STACK, store, [reset(T)], {"api": [T - 600], "cache": [T]})
    assert found[0].clients_left == {}
    store.record_findings(found, DetectionSettings())
    (issue,) = store.issues()
    assert issue.severity is Severity.MEDIUM and issue.clients_left == {}
    assert store.resolve_departed() == []


def test_logged_again_long_after_its_client_left_it_is_the_servers_own_problem():
    clock = FakeClock(T)
    store = IssueStore("dev", clock)
    settings = DetectionSettings()
    left = {"api": [T]}
    store.record_findings(expected(STACK, store, [reset(T + 1)], left), settings)
    clock.advance(STARTING_GRACE * 3)
    later = expected(STACK, store, [reset(clock() - 1)], left)
    result = store.record_findings(later, settings)
    (raised,) = result.outlived
    assert raised.severity is Severity.MEDIUM and raised.escalated_from is Severity.LOW
    assert raised.clients_left == {} and raised.state is IssueState.OPEN
    assert store.resolve_departed() == []


def test_a_critical_reset_is_never_expected():
    # a severity the user's override raised: what they asked to hear of
    store = IssueStore("dev", FakeClock(T))
    critical = replace(reset(T), severity=Severity.CRITICAL)
    found = expected(STACK, store, [critical], {"api": [T]})
    assert found[0].clients_left == {}


class Pipeline:
    """The log side alone: findings handed in as the detector would, passes as
    ``sync`` calls."""

    def __init__(self) -> None:
        self.store = IssueStore("dev")
        self.world = FakeWorld()
        self.logs = LogPipeline(
            gateway=self.world,
            store=self.store,
            settings=DetectionSettings(),
            metrics=Metrics(CollectorRegistry(), "dev"),
            on_findings=lambda result: None,
            on_sightings=lambda sightings: None,
            desired=lambda: STACK,
        )

    def read(self, finding: Finding) -> None:
        with self.logs._lock:
            self.logs._record([finding])

    def observe(self, at: float, *containers: object) -> None:
        self.logs.sync(ObservedState("demo", at, tuple(containers)))  # type: ignore[arg-type]


def test_a_reset_read_before_any_pass_saw_its_client_die_waits_for_the_pass_that_does():
    # the socket closes as the client's process dies: the server's line is read before
    # the engine's record of the death reaches a pass
    now = time.time()
    pipe = Pipeline()
    pipe.observe(now - 5, container("api", started_at=stamp(now - 600)))
    pipe.read(reset(now))
    assert pipe.store.issues() == []  # it waits for a pass's evidence
    assert not pipe.logs.settle(0.2)  # a finding still waiting is not settled
    died = container("api", status="exited", started_at=stamp(now - 600), finished_at=stamp(now))
    pipe.observe(now + LEAVE_LAG, died)
    (issue,) = pipe.store.issues()
    assert issue.severity is Severity.LOW and list(issue.clients_left) == ["api"]
    assert pipe.logs.settle(1.0)


def test_a_reset_no_pass_explains_is_recorded_at_its_severity():
    now = time.time()
    pipe = Pipeline()
    running = container("api", started_at=stamp(now - 600))
    pipe.observe(now - 5, running)
    pipe.read(reset(now))
    pipe.observe(now + LEAVE_LAG, running)  # a pass after the line: api never stopped
    (issue,) = pipe.store.issues()
    assert issue.severity is Severity.MEDIUM and issue.clients_left == {}


def test_a_waiting_reset_is_recorded_when_no_pass_comes_in_time():
    # no pass (no event woke one, the next is far): the closer thread records it at its
    # deadline, on what is known
    pipe = Pipeline()
    pipe.logs.start()
    try:
        pipe.read(reset(time.time()))
        assert pipe.store.issues() == []
        assert pipe.logs.settle(PARK_WAIT + 30)
        (issue,) = pipe.store.issues()
        assert issue.severity is Severity.MEDIUM
    finally:
        pipe.logs.stop()


def test_a_server_without_clients_and_a_client_side_error_never_wait():
    now = time.time()
    pipe = Pipeline()
    pipe.read(reset(now, service="edge"))  # nothing depends on edge
    pipe.read(reset(now, line=REFUSED))  # a client's view, never a server's of one leaving
    found = sorted((i.service, i.pattern_id) for i in pipe.store.issues())
    assert found == [("db", "conn-refused"), ("edge", "conn-reset")]


def test_the_library_marks_what_a_client_leaving_explains_and_nothing_else():
    by_id = {s.id: s for s in library_specs()}
    for name in ("conn-reset", "broken-pipe", "pg-client-gone", "mysql-aborted-connection"):
        assert by_id[name].client_gone and by_id[name].category in LINKED_CATEGORIES, name
    for name in ("conn-refused", "dns-failure", "pg-server-unreachable", "pg-not-ready"):
        assert not by_id[name].client_gone, name  # what only a client sees
