"""Atomic file replacement, and the start-up check that the state directory can take it.

Readers see the old file or the new one, never half of one. The check runs once, before
the controller starts: a state directory it cannot write would otherwise fail every save
of every pass (``/readyz`` 503 forever) or, with a damaged issues file it cannot move
aside, crash at start under a supervisor that restarts it in a loop.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Sequence
from pathlib import Path


class StateDirError(Exception):
    """The state directory cannot hold the controller's files; the message is one line
    naming the directory and the problem."""


def atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_state_dir(directory: Path, files: Sequence[Path]) -> None:
    """Raise ``StateDirError`` unless the controller can keep its state in ``directory``.

    What the controller does there, tried once here: create the directory if it is
    missing, and create, write, sync, rename and remove a file in it (every save does
    that; restoring a damaged issues file renames it aside). ``files`` (the issues file
    and its report), where they exist, must be regular files: a save renames over them.
    """
    where = f"--state-dir {directory}"
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise StateDirError(f"{where}: not a directory") from None
    except OSError as exc:
        raise StateDirError(f"{where}: cannot create it: {_why(exc)}") from None
    if not directory.is_dir():
        raise StateDirError(f"{where}: not a directory")
    for path in files:
        try:
            mode = path.lstat().st_mode
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise StateDirError(f"{where}: cannot read {path.name}: {_why(exc)}") from None
        if not stat.S_ISREG(mode):
            raise StateDirError(f"{where}: {path.name} is not a regular file")
    try:
        _try_a_save(directory)
    except OSError as exc:
        raise StateDirError(f"{where}: not writable: {_why(exc)}") from None


def _try_a_save(directory: Path) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".state-check.", suffix=".tmp", dir=directory)
    moved = f"{tmp}.moved"
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write("{}\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, moved)
    finally:
        Path(tmp).unlink(missing_ok=True)
        Path(moved).unlink(missing_ok=True)


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)
