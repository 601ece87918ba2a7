"""Where the gate writes for CI (``--junit FILE``, ``$GITHUB_STEP_SUMMARY``), checked
before it runs: a path it cannot write is bad input, said in one line at once, not after
minutes of converging (and never a traceback)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


class OutputError(Exception):
    """A report the gate was asked for cannot be written; the message is one line."""


def check_junit_path(path: Path) -> None:
    """``--junit FILE``: its directory is created if missing and must take a new file
    (the report is written aside and renamed over ``FILE``); ``FILE`` must not be a
    directory."""
    where = f"--junit {path}"
    if path.is_dir():
        raise OutputError(f"{where}: is a directory, not a file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise OutputError(f"{where}: cannot write there: {exc.strerror or exc}") from None


def check_summary_path(path: Path) -> None:
    """``$GITHUB_STEP_SUMMARY``: must open for appending (nothing is written now)."""
    try:
        with path.open("a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise OutputError(
            f"$GITHUB_STEP_SUMMARY {path}: cannot append to it: {exc.strerror or exc}"
        ) from None


def failed_write(what: str, path: Path, exc: OSError) -> OutputError:
    """The one-line error for a report that could not be written after the gate ran."""
    return OutputError(f"{what} {path}: cannot write it: {exc.strerror or exc}")
