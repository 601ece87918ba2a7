"""A crash loop is never called fixed: a fix holds until the service outlives the crash
pattern it had (as long as its runs lasted before they died, half that again and 2 s at
least, and Docker's next restart delay under a restart policy).

The landed code of 2026-12-03 logged ``fixed by restart: ready for 2 s`` four times in a
row for a service that crashes 3 s after each start: the proof held ``min_ready`` only.
"""

from __future__ import annotations

from controller.model import CrashPattern, IssueState, ObservedState
from controller.remediate.crashes import (
    ONE_OFF_HOLD,
    OUTLIVE_MARGIN,
    crash_runs,
    docker_delay,
    outlive,
    policy_crash_runs,
    same_way,
    with_crash,
)
from controller.remediate.records import Records
from controller.remediate.results import RequeueAfter
from controller.remediate.throttle import ThrottleRules
from tests.fakes import FakeClock, FakeWorld, container, desired, spec
from tests.unit.test_remediator import Rig, stamp

T0 = 1_800_000_000.0
STABLE = 600.0  # the backoff reset


def crashes(*runs: float) -> CrashPattern:
    pattern = CrashPattern()
    for n, lived in enumerate(runs):
        pattern = with_crash(pattern, f"a@{n}", lived, STABLE)
    return pattern


def test_crashed_runs_are_measured_by_the_engines_clock():
    dead = container("web", status="exited", started_at=stamp(T0), finished_at=stamp(T0 + 3))
    never = container("web", 2, status="exited", started_at=stamp(T0), finished_at="")
    assert crash_runs([dead, never]) == [(f"{dead.id}@{dead.started_at}", 3.0)]
    # stamped finished before started: a process that exited at once lasted no time
    quick = container("web", status="exited", started_at=stamp(T0 + 1), finished_at=stamp(T0))
    assert crash_runs([quick]) == [(f"{quick.id}@{quick.started_at}", 0.0)]


def test_restarts_by_docker_give_the_runs_they_ended_shared_between_restarts():
    before = container("api", started_at=stamp(T0), restart_count=1)
    after = container("api", started_at=stamp(T0 + 9), finished_at=stamp(T0 + 8), restart_count=3)
    observed = ObservedState("demo", T0 + 9, (after,))
    runs = policy_crash_runs({before.id: 1}, {before.id: before.started_at}, observed)
    assert runs == [("api", [(f"{before.id}@{before.started_at}", 4.0)])]
    assert policy_crash_runs({}, {}, observed) == []  # first seen: its restarts are history
    same = ObservedState("demo", T0 + 9, (before,))
    assert policy_crash_runs({before.id: 1}, {before.id: before.started_at}, same) == []


def test_the_hold_outlives_the_longest_run_of_the_pattern_with_a_margin():
    assert outlive(CrashPattern(), restart_policy=False, stable=STABLE) == 0.0
    once = with_crash(with_crash(CrashPattern(), "a@1", 3.0, STABLE), "a@1", 3.0, STABLE)
    assert once.count == 1  # the same run seen by two reconciles counts once
    assert outlive(once, restart_policy=False, stable=STABLE) == 3.0 + OUTLIVE_MARGIN
    twice = with_crash(once, "a@2", 40.0, STABLE)
    assert outlive(twice, restart_policy=False, stable=STABLE) == 60.0  # 40 s and half again
    # under a restart policy, Docker's next restart delay too: 100 ms doubling per crash
    assert outlive(twice, restart_policy=True, stable=STABLE) == 60.0 + docker_delay(2, 40.0)
    assert docker_delay(2, 3.0) == 0.4 and docker_delay(20, 3.0) == 60.0
    assert docker_delay(5, 10.0) == 0.1  # a run of 10 s resets Docker's delay


def test_one_crash_after_a_long_run_is_held_a_minute_and_a_second_one_its_whole_length():
    assert outlive(crashes(2 * 86400.0), False, STABLE) == 0.0  # after two days: was stable
    assert outlive(crashes(300.0), False, STABLE) == ONE_OFF_HOLD  # SIGKILLed once
    assert outlive(crashes(300.0, 300.0), False, STABLE) == 450.0  # a loop of 5 min runs
    assert outlive(crashes(300.0, 500.0), False, STABLE) == STABLE  # never past the reset


def test_the_pattern_is_forgotten_once_the_service_is_stable_again_or_a_person_acts():
    clock = FakeClock(T0)
    records = Records(lambda: ThrottleRules(backoff_reset=STABLE), clock)
    web = container("web")
    records.crashed("web", [("a@1", 3.0)])
    for seconds in (0.0, 599.0):
        clock.now = T0 + seconds
        records.observe("web", True, [web], stable_after=2.0, restart_policy=False)
    assert records.get("web").crashes.count == 1  # outlived its hold, not yet stable
    clock.now = T0 + 600.0
    records.observe("web", True, [web], stable_after=2.0, restart_policy=False)
    assert records.hold("web", 2.0, restart_policy=False) == 2.0
    records.crashed("web", [("a@2", 3.0)])
    assert records.hold("web", 2.0, restart_policy=False) == 3.0 + OUTLIVE_MARGIN
    records.person_acted("web")
    assert records.hold("web", 2.0, restart_policy=False) == 2.0


def test_a_service_that_crashes_3_s_after_each_start_is_never_called_fixed():
    world = FakeWorld()
    world.run("web", status="exited", exit_code=1, started_at=stamp(T0), finished_at=stamp(T0 + 3))
    rig = Rig(world, desired(spec("web", min_ready=2.0)))
    rig.sync()
    result = rig.reconcile("web")
    assert world.actions == [("restart", "demo-web-1")]
    assert isinstance(result, RequeueAfter)
    # ready for 2.5 s: longer than min_ready, shorter than the runs that crashed
    for _ in range(10):
        rig.clock.advance(0.25)
        rig.sync()
        assert isinstance(rig.reconcile("web"), RequeueAfter)
    assert rig.issue("drift:web:exited").state is IssueState.REMEDIATING
    # and it crashes again, 3 s after its start, as it did before
    world.set("web", status="exited", exit_code=1)
    rig.clock.advance(0.5)
    rig.sync()
    rig.reconcile("web")
    issue = rig.issue("drift:web:exited")
    assert issue.state is not IssueState.RESOLVED and "fixed" not in issue.resolution
    assert issue.attempts[0].outcome is not None and issue.attempts[0].outcome.value != "success"


def test_a_service_that_outlives_its_crash_pattern_is_fixed():
    world = FakeWorld()
    world.run("web", status="exited", exit_code=1, started_at=stamp(T0), finished_at=stamp(T0 + 3))
    rig = Rig(world, desired(spec("web", min_ready=2.0)))
    rig.fix("web", horizon=10.0)
    issue = rig.issue("drift:web:exited")
    assert issue.state is IssueState.RESOLVED and issue.resolution == "fixed by restart"
    assert issue.attempts[0].detail.endswith(f"ready for {3.0 + OUTLIVE_MARGIN:g} s")


def test_a_crash_that_repeats_the_same_way_is_said_once_it_happened_twice():
    pattern = CrashPattern()
    pattern = with_crash(pattern, "a@1", 3.1, STABLE, exit_code=1)
    assert same_way(pattern) == ""  # once is no pattern
    pattern = with_crash(pattern, "b@2", 3.4, STABLE, exit_code=1)
    said = same_way(pattern)
    assert "crashed the same way 2 times" in said and "exit 1" in said and "3.2 s" in said
    assert same_way(with_crash(pattern, "c@3", 3.0, STABLE, exit_code=2)) == ""  # another code
    later = with_crash(pattern, "d@4", 30.0, STABLE, exit_code=1)
    assert same_way(later) == ""  # much later after its start: not the same failure
    unknown = with_crash(CrashPattern(), "e@5", 3.0, STABLE)
    assert unknown.shapes == []  # no exit code known: nothing to compare


def test_the_hold_people_read_is_rounded_up_to_a_tenth():
    """'ready for 41.4 s', never '41.3379 s' (a new user read the gate's line)."""
    records = Records(lambda: ThrottleRules(backoff_reset=STABLE), FakeClock(T0))
    records.crashed("web", [("a@1", 27.5586)])  # the engine's clock: odd fractions
    hold = records.hold("web", 2.0, restart_policy=False)
    assert hold == 41.4 and f"{hold:g}" == "41.4"
    assert hold >= outlive(records.get("web").crashes, False, STABLE)  # never shorter
