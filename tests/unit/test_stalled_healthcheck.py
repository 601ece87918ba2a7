"""A healthcheck the engine stopped running times out into something a person can act on.

Docker 20.10 stops running the healthchecks of containers it restored with
``--live-restore`` (moby/moby#41871). A failing streak then never reaches a verdict: the
landed code kept a blocking ``failing-healthcheck`` issue open forever and the stack
unconverged. The rule: no check for ``STALL_INTERVALS`` (3) intervals plus the check's
timeout, and ``STALL_FLOOR`` (30 s) at least, since the last one ended (or since the
container started) means the healthcheck stopped; the issue becomes
``healthcheck-stalled``, does not block, and says what to do.
"""

from __future__ import annotations

from dataclasses import replace

from controller.drift import (
    diff,
    service_drifts,
    service_ready,
    service_status,
    stalled,
)
from controller.issues.document import ready_and_unblocked
from controller.issues.store import IssueStore
from controller.model import STALL_FLOOR, STALL_INTERVALS, DriftKind, IssueState, ObservedState
from controller.observe.engine import snapshot_from_inspect
from tests.fakes import FakeClock, FakeWorld, container, desired, spec
from tests.unit.test_engine_snapshot import INSPECT
from tests.unit.test_remediator import Rig

LAST = 1_800_000_000.0  # when the last healthcheck ended
INTERVAL, TIMEOUT = 1.0, 1.0
LIMIT = max(STALL_INTERVALS * INTERVAL + TIMEOUT, STALL_FLOOR)  # 30 s: 4 s is too short


def inspect(streak: int, status: str = "healthy") -> dict[str, object]:
    """A `docker inspect` document as Docker 20.10 writes it: checks every 1 s, the
    last of them ended at LAST; ``streak`` of them failed."""
    doc = {**INSPECT, "Config": {**INSPECT["Config"], "Healthcheck": {
        "Test": ["CMD", "test", "-f", "/tmp/healthy"],
        "Interval": int(INTERVAL * 1e9), "Timeout": int(TIMEOUT * 1e9), "Retries": 60,
    }}}  # fmt: skip
    log = [
        {"Start": "2027-01-15T07:59:57Z", "End": "2027-01-15T07:59:57.5Z", "ExitCode": 0},
        {"Start": "2027-01-15T07:59:59Z", "End": "2027-01-15T08:00:00Z", "ExitCode": 1,
         "Output": "test: /tmp/healthy: No such file or directory"},
    ]  # fmt: skip
    doc["State"] = {
        **INSPECT["State"],
        "StartedAt": "2027-01-15T07:00:00Z",
        "Health": {"Status": status, "FailingStreak": streak, "Log": log},
    }
    return doc


CHECKED = spec("backend", check_health=True)


def observe(snapshot, now):  # type: ignore[no-untyped-def]
    return ObservedState("demo", now, (snapshot,))


def test_the_engine_document_gives_the_healthchecks_timing_and_last_check():
    snap = snapshot_from_inspect(inspect(streak=1))
    assert (snap.health_interval, snap.health_timeout) == (INTERVAL, TIMEOUT)
    assert snap.last_check_at == LAST
    defaults = inspect(streak=0)
    defaults["Config"] = {**INSPECT["Config"], "Healthcheck": {"Test": ["CMD", "true"]}}
    assert snapshot_from_inspect(defaults).health_interval == 30.0  # Docker's default
    restarted = inspect(streak=0)
    restarted["State"]["StartedAt"] = "2027-01-15T08:00:30.25Z"  # type: ignore[index]
    assert snapshot_from_inspect(restarted).last_check_at == LAST + 30.25  # a new history
    offset = inspect(streak=0)
    offset["State"]["Health"]["Log"][-1]["End"] = "2027-01-15T09:00:00+01:00"  # type: ignore[index]
    assert snapshot_from_inspect(offset).last_check_at == LAST  # the daemon's own zone
    none = {**INSPECT, "Config": {**INSPECT["Config"], "Healthcheck": {"Test": ["NONE"]}}}
    assert snapshot_from_inspect(none).health_interval == 0.0


def test_a_frozen_failing_streak_no_longer_blocks_convergence():
    # issue 12 item 5, as the landed code saw it: the failing streak of a restored
    # container, its checks stopped; a minute later the stack must still converge
    frozen = snapshot_from_inspect(inspect(streak=2))
    state = desired(CHECKED)
    store = IssueStore("dev", FakeClock(LAST + 60))
    for now in (LAST + 0.5, LAST + 60):  # first a fresh failure, then the frozen streak
        observed = observe(frozen, now)
        store.sync_drifts(diff(state, observed), [service_status(CHECKED, observed)])
    (issue,) = store.issues()
    assert issue.fingerprint == "drift:backend:unhealthy"  # one incident, another kind
    assert issue.kind == "healthcheck-stalled" and issue.blocking is False
    assert "healthcheck stopped running since 2027-01-15T08:00:00Z" in issue.detail
    assert "docker restart demo-dev-backend-1" in issue.detail
    assert "2 check(s) had failed in a row; last check said: test: /tmp/healthy" in issue.detail
    assert ready_and_unblocked(store.issues(), store.services())


def test_a_healthcheck_counts_as_stopped_only_past_three_intervals_and_its_timeout():
    snap = snapshot_from_inspect(inspect(streak=2))
    assert not stalled(snap, LAST + LIMIT)
    assert stalled(snap, LAST + LIMIT + 0.001)
    assert not stalled(snap, LAST + 10)  # checks of 1 s, late by seconds on a busy machine
    slow = replace(snap, health_interval=30.0, health_timeout=30.0)  # Docker's defaults
    assert not stalled(slow, LAST + 120) and stalled(slow, LAST + 120.001)
    assert not stalled(snap, None)  # no time given: nothing is judged stopped
    fresh = service_drifts(CHECKED, [snap], now=LAST + LIMIT)
    assert [d.kind for d in fresh] == [DriftKind.FAILING_HEALTHCHECK] and fresh[0].blocking


def test_what_a_stopped_healthcheck_leaves_is_its_last_verdict():
    late = LAST + 60
    healthy = snapshot_from_inspect(inspect(streak=0))
    (drift,) = service_drifts(CHECKED, [healthy], now=late)
    assert drift.kind is DriftKind.HEALTHCHECK_STALLED and "it was healthy" in drift.detail
    assert service_ready(CHECKED, [healthy], now=late)  # healthy when it last ran
    starting = replace(healthy, health="starting")
    assert not service_ready(CHECKED, [starting], now=late)  # never judged: not ready
    # a verdict of unhealthy is acted on as unhealthy (a restart resumes the checks)
    sick = snapshot_from_inspect(inspect(streak=60, status="unhealthy"))
    assert [d.kind for d in service_drifts(CHECKED, [sick], now=late)] == [DriftKind.UNHEALTHY]
    assert service_drifts(CHECKED, [replace(healthy, status="paused")], now=late)[0].kind is (
        DriftKind.PAUSED  # a paused container runs no check: not a stalled one
    )
    assert service_drifts(spec("backend", check_health=False), [healthy], now=late) == []


def test_a_fresh_failure_of_one_replica_is_reported_before_another_ones_stall():
    two = replace(CHECKED, replicas=2)
    frozen = snapshot_from_inspect(inspect(streak=2))
    fresh = container("backend", 2, health="healthy", failing_streak=1, last_check_at=LAST + 59)
    kinds = [d.kind for d in service_drifts(two, [frozen, fresh], now=LAST + 60)]
    assert kinds == [DriftKind.FAILING_HEALTHCHECK]


def test_a_stalled_healthcheck_goes_to_a_person_with_what_to_do_and_nothing_is_run():
    world = FakeWorld()
    world.healthchecked.add("backend")
    world.run(
        "backend",
        failing_streak=2,
        health_interval=INTERVAL,
        health_timeout=TIMEOUT,
        last_check_at=1_800_000_000.0 - 60,  # the rig's clock starts at 1_800_000_000
    )
    rig = Rig(world, desired(CHECKED))
    rig.fix("backend")
    assert world.actions == []
    issue = rig.issue("drift:backend:unhealthy")
    assert issue.kind == "healthcheck-stalled" and issue.state is IssueState.NEEDS_HUMAN
    assert "docker restart demo-backend-1" in issue.resolution
