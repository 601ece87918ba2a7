"""A state directory that fills up while the controller runs (issue 20): each failed save
is one WARNING line (the file, the errno, how many saves are pending), not a traceback;
saves are retried on their own and nothing is lost once there is room again; the last
save at the end says in one line what could not be written. On a real tmpfs filled to
the last byte (the engine is the fake of our gateway; tests/e2e/test_faults.py runs the
real command and SIGTERMs it on a full disk)."""

from __future__ import annotations

import errno
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from loguru import logger
from prometheus_client import CollectorRegistry

from controller.cli import configure_logging
from controller.model import system_clock, to_datetime
from controller.runtime import Controller, Settings, assemble
from controller.runtime.savetrouble import MAX_RETRY, SaveTrouble
from controller.runtime.statefiles import SaveFailed
from tests.fakes import FakeClock, FakeWorld, desired, spec


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "state"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(directory: Path) -> Path:
    """Fill the file system of ``directory`` to its last byte; the filler's path."""
    filler = directory / "filler"
    with open(filler, "wb", buffering=0) as handle:
        for size in (65536, 4096, 1):  # big pieces, then the last bytes of a page
            try:
                while True:
                    handle.write(b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    return filler


def wait_for(predicate, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return value


def controller_on(state_dir: Path, world: FakeWorld) -> Controller:
    return assemble(
        Settings(env="dev", state_dir=state_dir, once=True, shutdown_timeout=5.0),
        desired(spec("web", min_ready=0.0)),
        gateway=world,
        compose=world,
        hashes=world,
        registry=CollectorRegistry(),
        clock=system_clock,
    )


def saved_fingerprints(state_dir: Path) -> set[str]:
    try:
        doc = json.loads((state_dir / "docker_issues_dev.json").read_text())
    except (FileNotFoundError, ValueError):
        return set()
    return {i["fingerprint"] for i in doc["issues"]}


def test_failed_saves_are_one_warning_line_retried_and_nothing_is_lost(small_disk, capsys):
    world = FakeWorld()
    world.run("web")
    controller = controller_on(small_disk, world)
    configure_logging("DEBUG")
    try:
        controller.open_once()
        assert controller.run_pass(submit=False)
        assert (small_disk / "docker_issues_dev.json").exists()
        filler = fill(small_disk)
        world.set("web", status="exited", exit_code=1)
        for _ in range(5):  # the controller goes on working
            assert controller.run_pass(submit=False)
        assert controller.saves_pending >= 1
        assert "drift:web:exited" in {i.fingerprint for i in controller.store.issues()}
        assert saved_fingerprints(small_disk) == set()  # the file on disk is the old one
        filler.unlink()  # room again: the saver tries on its own, no pass needed
        wait_for(
            lambda: "drift:web:exited" in saved_fingerprints(small_disk),
            3 * MAX_RETRY,
            "a retry to write the issue",
        )
        assert controller.saves_pending == 0
        controller.close_once()
    finally:
        logger.remove()
    log = capsys.readouterr().err
    assert "Traceback" not in log
    warnings = [line for line in log.splitlines() if " WARNING " in line and "save" in line]
    (warning,) = [line for line in warnings if "could not save" in line]  # one, not per save
    assert f"could not save {small_disk / 'docker_issues_dev.json'}" in warning
    assert "No space left on device (ENOSPC)" in warning
    assert "save(s) pending since" in warning and "retrying in" in warning
    assert "saved the state files again after" in log
    assert list(small_disk.glob(".*.tmp")) == []  # no half-written file left behind


def test_the_last_save_on_a_full_disk_says_what_could_not_be_written(small_disk, capsys):
    world = FakeWorld()
    world.run("web")
    controller = controller_on(small_disk, world)
    configure_logging("INFO")
    try:
        controller.open_once()
        assert controller.run_pass(submit=False)
        fill(small_disk)
        world.set("web", status="exited", exit_code=1)
        assert controller.run_pass(submit=False)
        controller.close_once()  # raises nothing
    finally:
        logger.remove()
    log = capsys.readouterr().err
    assert "Traceback" not in log
    (line,) = [line for line in log.splitlines() if " ERROR " in line]
    assert f"shutdown: could not write {small_disk / 'docker_issues_dev.json'} and " in line
    assert "docker_issues_report_dev.md (No space left on device, ENOSPC)" in line
    assert "is lost" in line


def test_the_warning_repeats_at_most_once_a_minute_and_the_retry_backs_off():
    trouble = SaveTrouble()
    error = SaveFailed(Path("/s/docker_issues_dev.json"), OSError(errno.ENOSPC, "No space"))
    now = 1_800_000_000.0
    said = [trouble.failed(error, now + t) for t in (0, 1, 2, 30, 61, 62)]
    assert [s.loud for s in said] == [True, False, False, False, True, False]
    assert [s.retry_in for s in said] == [1, 2, 4, 8, 16, 30]
    assert (
        "6 save(s) pending since " + to_datetime(now).strftime("%Y-%m-%d %H:%M:%S") in said[-1].line
    )
    other = SaveFailed(Path("/s/x"), OSError(errno.EROFS, "Read-only file system"))
    assert trouble.failed(other, now + 63).loud  # a new kind of trouble is said at once
    assert trouble.succeeded(now + 64) is not None
    assert trouble.succeeded(now + 65) is None
    assert trouble.unwritten("files") is None


def test_a_clock_set_anywhere_does_not_change_the_counting():
    trouble = SaveTrouble()
    error = SaveFailed(Path("/s/f"), OSError(errno.ENOSPC, "No space"))
    clock = FakeClock()
    assert trouble.failed(error, clock()).loud
    clock.advance(-3600)
    assert trouble.failed(error, clock()).retry_in == 2
