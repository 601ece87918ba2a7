"""A last-good snapshot's folder is an absolute path: compose reads the snapshot's file
from the project's directory (desired_state/ or the compose file's), so the default
relative state directory made every snapshot fail ("no such file") there."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.model import ComposeProject, system_clock
from controller.remediate.keeper import Keeper
from tests.fakes import FakeWorld


def test_a_relative_state_directory_gives_absolute_snapshot_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    world = FakeWorld()
    keeper = Keeper(
        compose=world,  # type: ignore[arg-type]
        gateway=world,
        project=ComposeProject(name="demo", files=(tmp_path / "compose.yaml",), workdir=tmp_path),
        directory=Path(".") / "lastgood",
        clock=system_clock,
    )
    folder = keeper.folder("web", 1)
    assert folder.is_absolute() and folder == tmp_path / "lastgood" / "web" / "1"
