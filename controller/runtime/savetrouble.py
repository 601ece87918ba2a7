"""What the controller says while it cannot write its state files, and when to try again.

A full disk (or a file system turned read-only) while running must cost neither the
work nor the log: the controller goes on, everything stays in memory, and each failed
save is one WARNING line (the file, the errno, how many saves are pending) instead of a
traceback; while it keeps failing, one such line a minute at most (the rest at DEBUG).
Saves are retried on their own, 1 s after the first failure and doubling to 30 s, and
the first save that works says so: the file then holds everything again, nothing was
lost. At shutdown, what could not be written is said in one ERROR line, and the process
still exits 0. Pure: the caller passes the time.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from controller.model import to_datetime
from controller.runtime.statefiles import SaveFailed

FIRST_RETRY = 1.0
MAX_RETRY = 30.0
REPEAT_WARNING = 60.0  # seconds between two WARNING lines about the same trouble


@dataclass(frozen=True, slots=True)
class Said:
    """A line to log, at WARNING (``loud``) or at DEBUG, and when to try again."""

    line: str
    loud: bool
    retry_in: float


class SaveTrouble:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.pending = 0  # failed saves since the last one that worked
        self._since: float | None = None  # epoch seconds of the first of them
        self._last: SaveFailed | None = None
        self._warned_at = float("-inf")
        self._warned_code: int | None = None

    def failed(self, error: SaveFailed, now: float) -> Said:
        with self._lock:
            self.pending += 1
            if self._since is None:
                self._since = now
            self._last = error
            retry = min(MAX_RETRY, FIRST_RETRY * 2 ** min(self.pending - 1, 10))
            loud = error.errno != self._warned_code or now - self._warned_at >= REPEAT_WARNING
            if loud:
                self._warned_at, self._warned_code = now, error.errno
            line = (
                f"could not save {error}; {self.pending} save(s) pending since "
                f"{_clock(self._since)}, kept in memory; retrying in {retry:g} s"
            )
            return Said(line, loud, retry)

    def succeeded(self, now: float) -> str | None:
        """The line to log when a save works after failures (None: nothing to say)."""
        with self._lock:
            if not self.pending or self._since is None:
                return None
            line = (
                f"saved the state files again after {self.pending} failed save(s) since "
                f"{_clock(self._since)}; nothing was lost"
            )
            self.pending, self._since, self._last = 0, None, None
            self._warned_at, self._warned_code = float("-inf"), None
            return line

    def unwritten(self, files: str) -> str | None:
        """At shutdown: what could not be written (None: everything was)."""
        with self._lock:
            if not self.pending or self._last is None or self._since is None:
                return None
            return (
                f"shutdown: could not write {files} ({self._last.reason}"
                + (f", {self._last.code}" if self._last.code else "")
                + f"): what changed since {_clock(self._since)} is lost "
                f"({self.pending} failed save(s)); the files hold the state saved before then"
            )


def _clock(epoch: float) -> str:
    return to_datetime(epoch).strftime("%Y-%m-%d %H:%M:%S UTC")
