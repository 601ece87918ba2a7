"""Reloading the desired state while the controller runs, as Prometheus reloads its config.

Three triggers, one path: SIGHUP (``request``, safe in a signal handler), ``POST
/-/reload`` (``reload``, answered when done) and an edit of a file the desired state
came from (the ``desired_state/<env>.yaml``, the compose files and env files it names:
looked at every ``WATCH_SECONDS`` by a thread of its own, by size, mtime and SHA-256, so
an edit within the same second and of the same size is seen too).

A reload loads the file exactly as the start does (``runtime.settings.load``: the YAML
read and checked, merged over ``docker compose config``, every field validated), then
refuses what only a restart applies (``desired.reloadable``). A new state that passes is
put in force between two passes (``Controller.use``); one that does not is refused
whole: one error line in the log naming the file and the field, ``/status``'s
``config`` and ``compose_controller_config_last_reload_successful`` 0, and the state in
force kept. The flags are never reloaded: what a flag says still wins over the file.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loguru import logger

from controller.desired import DesiredStateError
from controller.desired.errors import Problem
from controller.desired.reloadable import restart_only_changes
from controller.metrics import Metrics
from controller.model import Clock, DesiredState, to_datetime

WATCH_SECONDS = 1.0  # how often the files are looked at (a good edit is in force within 2 s)

Fingerprint = tuple[tuple[str, int, int, str], ...]


@dataclass(frozen=True, slots=True)
class ReloadStatus:
    successful: bool  # the newest reload worked (True before any)
    loaded_at: float  # epoch seconds: when the state in force was loaded
    at: float | None = None  # epoch seconds of the newest reload asked; None: none yet
    trigger: str = ""  # what asked for it: SIGHUP, POST /-/reload, a file changed
    error: str = ""  # why it was refused, one line

    def document(self) -> dict[str, Any]:
        """``/status``'s ``config``."""
        return {
            "last_reload_successful": self.successful,
            "last_reload_at": None if self.at is None else to_datetime(self.at).isoformat(),
            "last_reload_trigger": self.trigger,
            "loaded_at": to_datetime(self.loaded_at).isoformat(),
            "error": self.error,
        }


def watched_files(desired: DesiredState) -> tuple[Path, ...]:
    """The files ``desired`` was made of."""
    return (desired.source, *desired.compose.files, *desired.compose.env_files)


def fingerprint(files: Iterable[Path]) -> Fingerprint:
    """Each file's size, mtime and content hash (a missing one: -1, -1, "")."""
    out = []
    for file in files:
        try:
            stat = file.stat()
            digest = hashlib.sha256(file.read_bytes()).hexdigest()
            out.append((str(file), stat.st_mtime_ns, stat.st_size, digest))
        except OSError:
            out.append((str(file), -1, -1, ""))
    return tuple(out)


class Reloader:
    def __init__(
        self,
        *,
        load: Callable[[], DesiredState],
        current: Callable[[], DesiredState],
        use: Callable[[DesiredState], Sequence[str]],
        metrics: Metrics,
        clock: Clock,
        watch_seconds: float = WATCH_SECONDS,
    ) -> None:
        self._load = load
        self._current = current
        self._use = use
        self._metrics = metrics
        self._clock = clock
        self._watch_seconds = watch_seconds
        self._lock = threading.Lock()  # one reload at a time
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._asked: str | None = None  # a trigger waiting for the thread (SIGHUP)
        self._thread: threading.Thread | None = None
        self._status = ReloadStatus(True, clock())
        metrics.config_loaded(True, self._status.loaded_at)
        self._seen = fingerprint(watched_files(current()))

    @property
    def status(self) -> ReloadStatus:
        return self._status

    def reload(self, trigger: str) -> ReloadStatus:
        """Load, validate and put in force the desired state as the files say now; a bad
        one is refused and the state in force kept."""
        with self._lock:
            running = self._current()
            self._seen = fingerprint(watched_files(running))  # an edit after this: again
            at = self._clock()
            try:
                new = self._load()
                refused = restart_only_changes(running, new)
                if refused:
                    raise DesiredStateError.of(
                        Problem(str(new.source), f, "changed: only a restart applies it", None)
                        for f in refused
                    )
            except DesiredStateError as exc:
                error = "; ".join(str(problem) for problem in exc.problems)
                logger.error(
                    "reload ({}) refused, the desired state in force kept: {}", trigger, error
                )
                return self._done(ReloadStatus(False, self._status.loaded_at, at, trigger, error))
            if new == running:
                logger.info("reload ({}): {} has not changed", trigger, new.source)
            else:
                gone = self._use(new)
                no_longer = f"; no longer managed: {', '.join(gone)}" if gone else ""
                logger.info(
                    "reload ({}): desired state from {} in force, {} service(s){}",
                    trigger,
                    new.source,
                    len(new.services),
                    no_longer,
                )
            return self._done(ReloadStatus(True, at, at, trigger))

    def _done(self, status: ReloadStatus) -> ReloadStatus:
        self._status = status
        self._metrics.config_loaded(status.successful, status.loaded_at)
        return status

    # --- the triggers that do not wait: SIGHUP and the files ----------------------------

    def request(self, trigger: str) -> None:
        """Ask the thread for a reload (a signal handler may call this)."""
        self._asked = trigger
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="reload", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)

    def _loop(self) -> None:
        while True:
            self._wake.wait(self._watch_seconds)
            self._wake.clear()
            if self._stop.is_set():
                return
            asked, self._asked = self._asked, None
            try:
                if asked is not None:
                    self.reload(asked)
                elif fingerprint(watched_files(self._current())) != self._seen:
                    self.reload("a file changed")
            except Exception:  # never the end of the watch
                logger.exception("reload failed unexpectedly")
