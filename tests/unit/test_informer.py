"""The container cache: one list call per read, inspects only for what changed."""

from __future__ import annotations

from controller.observe.informer import SETTLE_SECONDS, ContainerCache
from tests.fakes import FakeClock, FakeWorld


def watched(world: FakeWorld, **options: object) -> ContainerCache:
    """A cache whose event stream is up (events flow)."""
    cache = ContainerCache(world, "demo", **options)  # type: ignore[arg-type]
    cache.watching(True)
    return cache


def world_of(count: int) -> FakeWorld:
    world = FakeWorld()
    world.coarse_summaries = True  # like the engine: state and health, no restart count
    for n in range(count):
        world.run(f"svc{n}")
    return world


def inspects(world: FakeWorld) -> list[str]:
    done = [c.removeprefix("inspect ") for c in world.calls if c.startswith("inspect ")]
    world.calls.clear()
    return done


def test_the_first_read_inspects_everything_then_a_quiet_read_is_one_list_call():
    world = world_of(3)
    cache = watched(world, clock=FakeClock(0.0))
    assert [c.service for c in cache.containers()] == ["svc0", "svc1", "svc2"]
    assert len(inspects(world)) == 3
    assert len(cache.containers()) == 3
    assert world.calls == ["list"]


def test_an_event_or_a_changed_summary_brings_a_fresh_inspect_of_that_container_only():
    world = world_of(3)
    clock = FakeClock(0.0)
    cache = watched(world, clock=clock)
    cache.containers()
    inspects(world)
    world.set("svc1", restart_count=4, started_at="2026-01-01T00:01:00Z")  # invisible in a list
    assert cache.containers()[1].restart_count == 0
    cache.event("svc1-1-id", "start", {})
    assert cache.containers()[1].restart_count == 4
    assert inspects(world) == ["svc1-1-id"]
    clock.advance(SETTLE_SECONDS)
    world.set("svc2", status="exited", exit_code=1)  # the list shows this one
    assert cache.containers()[2].status == "exited"
    assert inspects(world) == ["svc2-1-id"]


def test_a_container_an_event_touched_is_read_afresh_until_it_settles():
    # a burst of events (docker restart: kill, die, stop, start): the read the death asked
    # for saw it exited; what follows may change it where the list's summary does not
    # show it (here a summary that lags), so a read inspects it again until it settles
    world = world_of(1)
    clock = FakeClock(0.0)
    cache = watched(world, clock=clock)
    cache.containers()
    world.set("svc0", status="exited", exit_code=0)
    cache.event("svc0-1-id", "die", {})
    assert cache.containers()[0].status == "exited"
    inspects(world)
    world.set("svc0", status="running")  # the start, under way: inspect waits for it
    world.listed["svc0-1-id"] = "exited"  # the list does not
    clock.advance(1.5)
    assert cache.containers()[0].status == "running"
    assert inspects(world) == ["svc0-1-id"]
    clock.advance(SETTLE_SECONDS)
    cache.containers()
    assert inspects(world) == []  # settled: one list call again


def test_a_passing_healthcheck_matters_only_while_checks_were_failing():
    world = world_of(1)
    cache = watched(world, clock=FakeClock(0.0))
    cache.containers()
    cache.event("svc0-1-id", "exec_die", {"exitCode": "0"})
    cache.event("svc0-1-id", "exec_start", {})
    inspects(world)
    cache.containers()
    assert inspects(world) == []
    world.set("svc0", failing_streak=2)
    cache.event("svc0-1-id", "exec_die", {"exitCode": "1"})
    assert cache.containers()[0].failing_streak == 2
    world.set("svc0", failing_streak=0)
    cache.event("svc0-1-id", "exec_die", {"exitCode": "0"})
    assert cache.containers()[0].failing_streak == 0


def healthchecked(world: FakeWorld, last: float) -> None:
    """svc0 runs a healthy healthcheck every 2 s (timeout 1 s); its last check ended at
    ``last`` in the engine's record."""
    world.set("svc0", health="healthy", health_interval=2.0, health_timeout=1.0,
              last_check_at=last)  # fmt: skip


def test_passing_checks_move_the_last_check_so_a_quiet_healthy_container_never_looks_stalled():
    world = world_of(1)
    healthchecked(world, last=1000.0)
    wall = FakeClock(1000.0)
    cache = watched(world, clock=FakeClock(0.0), wall=wall)
    cache.containers()
    inspects(world)
    for _ in range(60):  # two minutes of checks, each an exec_die with exit code 0
        wall.advance(2.0)
        cache.event("svc0-1-id", "exec_die", {"exitCode": "0"}, wall())
        [snap] = cache.containers()
        assert not snap.checks_overdue(wall())
    assert snap.last_check_at == wall()
    assert inspects(world) == []  # and not one inspect for it


def test_a_container_that_looks_overdue_is_inspected_afresh_before_a_pass_sees_it():
    world = world_of(1)
    healthchecked(world, last=1000.0)
    wall = FakeClock(1000.0)
    cache = watched(world, clock=FakeClock(0.0), wall=wall)
    cache.containers()
    inspects(world)
    # checks ran but their events were lost: the cached record is a minute old
    wall.advance(60.0)
    world.set("svc0", last_check_at=wall() - 1.0)
    [snap] = cache.containers()
    assert inspects(world) == ["svc0-1-id"]
    assert not snap.checks_overdue(wall())  # the engine's record says it ran a second ago
    # the checks really stopped: the fresh record proves it, and it is read every time
    wall.advance(60.0)
    [snap] = cache.containers()
    assert inspects(world) == ["svc0-1-id"]
    assert snap.checks_overdue(wall())


def test_a_passing_check_event_older_than_the_record_leaves_the_record():
    world = world_of(1)
    healthchecked(world, last=1000.0)
    cache = watched(world, clock=FakeClock(0.0), wall=FakeClock(1000.0))
    cache.containers()
    cache.event("svc0-1-id", "exec_die", {"exitCode": "0"}, 990.0)
    cache.event("svc0-1-id", "exec_die", {"exitCode": "0"}, None)  # no stamp
    assert cache.containers()[0].last_check_at == 1000.0


def test_new_and_removed_containers_show_at_the_next_read():
    world = world_of(2)
    cache = watched(world, clock=FakeClock(0.0))
    cache.containers()
    del world.containers["svc0-1-id"]
    world.run("late")
    assert [c.service for c in cache.containers()] == ["late", "svc1"]


def test_a_resync_or_the_resync_interval_inspects_everything_again():
    world = world_of(2)
    clock = FakeClock(0.0)
    cache = watched(world, resync=600.0, clock=clock)
    cache.containers()
    inspects(world)
    cache.watching(True)  # the event stream came back: events may have been missed
    cache.containers()
    assert len(inspects(world)) == 2
    clock.advance(599)
    cache.containers()
    assert inspects(world) == []
    clock.advance(1)
    cache.containers()
    assert len(inspects(world)) == 2


def test_while_no_event_stream_flows_every_read_inspects_every_container():
    world = world_of(2)
    cache = ContainerCache(world, "demo", clock=FakeClock(0.0))  # never told events flow
    cache.containers()
    world.set("svc1", restart_count=3)  # a restart the list does not show
    assert cache.containers()[1].restart_count == 3
    assert len(inspects(world)) == 4
    cache.watching(True)
    cache.containers()
    inspects(world)
    cache.watching(False)  # the stream broke
    world.set("svc0", restart_count=1)
    assert cache.containers()[0].restart_count == 1
    assert len(inspects(world)) == 2


def test_a_relist_that_listed_before_the_event_stream_connected_is_not_trusted():
    world = world_of(1)
    cache = ContainerCache(world, "demo", clock=FakeClock(0.0))
    listed = world.list_summaries

    def list_then_connect(project: str):  # type: ignore[no-untyped-def]
        summaries = listed(project)
        cache.watching(True)  # the stream connects while this read inspects
        return summaries

    world.list_summaries = list_then_connect  # type: ignore[method-assign]
    cache.containers()
    world.list_summaries = listed  # type: ignore[method-assign]
    inspects(world)
    world.set("svc0", restart_count=2)  # changed before the stream connected: no event
    assert cache.containers()[0].restart_count == 2  # this read is the relist
    assert len(inspects(world)) == 1
