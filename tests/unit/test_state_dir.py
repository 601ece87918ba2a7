"""The state directory is checked once at start: one line naming it and the problem."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.issues.files import StateDirError, check_state_dir

FILES = ("docker_issues_dev.json", "docker_issues_report_dev.md")


def paths(directory: Path) -> list[Path]:
    return [directory / name for name in FILES]


def problem(directory: Path) -> str:
    with pytest.raises(StateDirError) as caught:
        check_state_dir(directory, paths(directory))
    message = str(caught.value)
    assert len(message.splitlines()) == 1 and f"--state-dir {directory}:" in message
    return message


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A real read-only file system (root ignores a directory's mode bits): a tmpfs,
    remounted read-only once the test has put its files there."""
    mount = tmp_path / "ro"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def remount_read_only(mount: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)


def test_a_writable_directory_passes_and_keeps_nothing_of_the_check(tmp_path: Path):
    check_state_dir(tmp_path, paths(tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_a_missing_directory_is_created(tmp_path: Path):
    check_state_dir(tmp_path / "a" / "b", paths(tmp_path / "a" / "b"))
    assert (tmp_path / "a" / "b").is_dir()


def test_a_file_in_place_of_the_directory_is_named(tmp_path: Path):
    (tmp_path / "state").write_text("")
    assert problem(tmp_path / "state").endswith("not a directory")


def test_a_directory_in_place_of_the_report_is_named(tmp_path: Path):
    (tmp_path / FILES[1]).mkdir()
    assert problem(tmp_path).endswith(f"{FILES[1]} is not a regular file")


def test_a_read_only_directory_with_a_good_file_is_refused(read_only_dir: Path):
    (read_only_dir / FILES[0]).write_text('{"schema_version": 1, "issues": []}\n')
    remount_read_only(read_only_dir)
    assert problem(read_only_dir).endswith("not writable: Read-only file system")


def test_a_read_only_directory_with_a_damaged_file_is_refused(read_only_dir: Path):
    (read_only_dir / FILES[0]).write_text('{"schema_version": 1, "issu')
    remount_read_only(read_only_dir)
    assert problem(read_only_dir).endswith("not writable: Read-only file system")


def test_a_directory_that_cannot_be_created_is_named(read_only_dir: Path):
    remount_read_only(read_only_dir)
    assert "cannot create it: Read-only file system" in problem(read_only_dir / "state")
