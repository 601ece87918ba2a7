"""The pass scheduler: requests during a pass are coalesced, never lost, never parallel."""

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from loguru import logger
from prometheus_client import CollectorRegistry

from controller.runtime import Controller, Settings, assemble
from controller.scheduling import PassScheduler
from tests.fakes import FakeClock, FakeWorld, desired, spec


def test_requests_during_a_pass_make_exactly_one_more_pass_and_never_a_parallel_one():
    inside = threading.Event()
    release = threading.Event()
    passes: list[int] = []
    running = [0]

    def run_pass() -> None:
        running[0] += 1
        assert running[0] == 1, "two passes at once"
        passes.append(len(passes))
        if len(passes) == 1:
            inside.set()
            assert release.wait(10)
        running[0] -= 1

    scheduler = PassScheduler(run_pass, active=5, quiet=50, files_changed=lambda: False)
    first = threading.Thread(target=scheduler._job)
    first.start()
    assert inside.wait(10)
    for _ in range(5):  # five triggers while the first pass runs ...
        scheduler.request()
        scheduler._job()
    release.set()
    first.join(10)
    assert passes == [0, 1]  # ... and they became one more pass


def test_the_interval_follows_what_the_last_pass_saw():
    scheduler = PassScheduler(lambda: None, active=5, quiet=50, files_changed=lambda: False)
    scheduler.start()
    try:
        job = scheduler._scheduler.get_job("reconcile")
        assert job.trigger.interval.total_seconds() == 5
        scheduler.adapt(attention=None)
        job = scheduler._scheduler.get_job("reconcile")
        assert job.trigger.interval.total_seconds() == 50
        assert job.trigger.jitter == 1.0
        scheduler.adapt(attention="issues open: web")
        assert scheduler._scheduler.get_job("reconcile").trigger.interval.total_seconds() == 5
    finally:
        scheduler.stop()


def counted(
    files_changed: Callable[[], bool] = lambda: False,
) -> tuple[PassScheduler, list[int], threading.Event]:
    """A started scheduler whose passes are counted (and signalled), resyncs an hour
    apart, after its first pass (which runs at once) came."""
    passes: list[int] = []
    came = threading.Event()

    def run_pass() -> None:
        passes.append(1)
        came.set()

    scheduler = PassScheduler(run_pass, active=3600, quiet=3600, files_changed=files_changed)
    scheduler.start()
    assert came.wait(10)
    came.clear()
    return scheduler, passes, came


def test_many_findings_asking_for_a_pass_soon_bring_one_pass():
    scheduler, passes, came = counted()
    try:
        for _ in range(50):  # a burst of findings that open issues
            scheduler.request_soon()
        assert came.wait(10)
        assert len(passes) == 2
        scheduler.request_soon()  # a later finding brings another
        came.clear()
        assert came.wait(10)
        assert len(passes) == 3
    finally:
        scheduler.stop()


def test_a_keyed_request_in_replaces_the_pending_one_and_brings_one_pass():
    scheduler, passes, came = counted()
    try:
        for _ in range(20):  # every pass while a service holds asks again
            scheduler.request_in(0.3, key="hold")
        jobs = [j for j in scheduler._scheduler.get_jobs() if j.id not in ("reconcile", "files")]
        assert len(jobs) == 1  # one timer, not twenty
        assert came.wait(10)
        assert len(passes) == 2
    finally:
        scheduler.stop()


def test_an_edit_of_the_compose_files_brings_a_pass_without_any_event():
    edited = threading.Event()
    scheduler, passes, came = counted(files_changed=edited.is_set)
    try:
        assert not came.wait(2.5)  # the files are looked at, unchanged: no pass
        edited.set()
        assert came.wait(10)  # changed: a pass, an hour before the resync
        assert len(passes) == 2
    finally:
        scheduler.stop()


@pytest.fixture
def said() -> Iterator[list[str]]:
    """The scheduler's log lines."""
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(m.record["message"]), level="INFO")
    yield lines
    logger.remove(sink)


def test_the_fast_interval_says_what_it_is_for_and_again_when_that_changes(said):
    scheduler = PassScheduler(lambda: None, active=5, quiet=50, files_changed=lambda: False)
    scheduler.start()
    try:
        scheduler.adapt(None)
        scheduler.adapt("not ready: web")  # a drained node's task moving: no issue open
        scheduler.adapt("not ready: web")  # said once
        scheduler.adapt("settling (ready, not yet for its hold): web")
        trigger = scheduler._scheduler.get_job("reconcile").trigger
        assert trigger.interval.total_seconds() == 5
        scheduler.adapt(None)
    finally:
        scheduler.stop()
    polling = [line for line in said if line.startswith("polling")]
    assert polling == [
        "polling every 50 s (quiet)",
        "polling every 5 s (not ready: web)",
        "polling every 5 s (settling (ready, not yet for its hold): web)",
        "polling every 50 s (quiet)",
    ]


def one_pass(state_dir: Path, world: FakeWorld, **fields: object) -> Controller:
    controller = assemble(
        Settings(env="dev", state_dir=state_dir, shutdown_timeout=5.0),
        desired(spec("web", restart="always", **fields)),
        gateway=world,
        compose=world,
        hashes=world,
        registry=CollectorRegistry(),
        clock=FakeClock(),
    )
    controller.run_pass(submit=False)
    return controller


def test_the_reason_for_the_fast_interval_is_an_issue_only_when_one_is_open(tmp_path: Path):
    starting = FakeWorld()
    starting.healthchecked.add("web")
    starting.run("web", health="starting")  # not ready, nothing wrong yet
    controller = one_pass(tmp_path / "starting", starting, check_health=True)
    assert controller.store.active() == []
    assert controller.attention() == "not ready: web"
    crashed = FakeWorld()
    crashed.run("web", status="exited", exit_code=1)
    assert one_pass(tmp_path / "crashed", crashed).attention() == "issues open: web"
    fine = FakeWorld()
    fine.run("web")
    assert one_pass(tmp_path / "fine", fine).attention() is None
