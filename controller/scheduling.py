"""APScheduler driving the reconcile pass: a resync interval that adapts, and requests.

The pass runs every ``active`` seconds while anything wants attention (an issue open, a
service not ready or still settling, a change under watch: ``adapt`` is told which, and
the log says it) and every ``quiet`` seconds when all is well, with up to 10 % jitter (at
most 1 s) so that many controllers do not poll in step; ``adapt`` switches at the end of
the pass that sees the change. ``request`` (an event, a probe change, a finished fix)
makes the next pass come at once; requests during a pass are coalesced into one more
pass, never lost, never run twice at the same time. ``request_soon`` (log findings)
brings a pass within ``SOON`` seconds: a flood of errors opening issues by the hundred
brings a few passes, not one per batch of findings.
A second job looks every ``FILES_SECONDS`` whether the compose or env files changed on
disk (a few ``stat`` calls) and requests a pass when they did: an edit that nothing
applied yet (a declared image that does not exist, a rollback whose files moved on)
shows no engine event.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from loguru import logger

JOB_ID = "reconcile"
FILES_JOB_ID = "files"
SOON = 0.5  # seconds a pass asked for by findings may wait for more findings
FILES_SECONDS = 2.0  # how often the compose and env files are looked at


def _trigger(seconds: float) -> IntervalTrigger:
    return IntervalTrigger(seconds=seconds, jitter=min(1.0, seconds * 0.1), timezone=UTC)


class PassScheduler:
    def __init__(
        self,
        run_pass: Callable[[], None],
        active: float,
        quiet: float,
        files_changed: Callable[[], bool],
    ) -> None:
        self._run_pass = run_pass
        self._files_changed = files_changed
        self._active_seconds = active
        self._quiet_seconds = quiet
        self._scheduler: Any = None
        self._gate = threading.Lock()
        self._again = False
        self._active = True
        self._reason: str | None = "starting"  # what the active interval is for
        self._soon: threading.Timer | None = None
        self._soon_lock = threading.Lock()

    def start(self) -> None:
        """Start polling at the active interval; the first pass runs at once."""
        scheduler = BackgroundScheduler(timezone=UTC)
        scheduler.add_job(
            self._job,
            _trigger(self._active_seconds),
            id=JOB_ID,
            max_instances=3,  # never "skipped": the gate in _job coalesces
            coalesce=True,
            misfire_grace_time=None,
            next_run_time=datetime.now(UTC),
        )
        scheduler.add_job(
            self._look_at_files,
            IntervalTrigger(seconds=FILES_SECONDS, timezone=UTC),
            id=FILES_JOB_ID,
            coalesce=True,
            max_instances=1,
        )
        self._active = True
        self._scheduler = scheduler
        scheduler.start()

    def stop(self) -> None:
        with self._soon_lock:
            if self._soon is not None:
                self._soon.cancel()
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)

    @property
    def running(self) -> bool:
        return self._scheduler is not None and bool(self._scheduler.running)

    def request(self) -> None:
        """A pass as soon as possible (coalesced with any pass already running)."""
        self._again = True
        if self.running:
            try:
                self._scheduler.modify_job(JOB_ID, next_run_time=datetime.now(UTC))
            except Exception:  # the scheduler is shutting down
                logger.debug("pass request dropped: scheduler stopping")

    def request_soon(self) -> None:
        """A pass within ``SOON`` seconds; asking again meanwhile changes nothing."""
        with self._soon_lock:
            if self._soon is not None and self._soon.is_alive():
                return
            self._soon = threading.Timer(SOON, self.request)
            self._soon.daemon = True
            self._soon.start()

    def request_in(self, seconds: float, key: str | None = None) -> None:
        """A pass after ``seconds`` (a held service settles, a backoff ends); a request
        with the ``key`` of one still pending replaces it (one timer per reason)."""
        if self.running:
            run_at = datetime.now(UTC) + timedelta(seconds=seconds + 0.1)
            job_id = None if key is None else f"{JOB_ID}-in-{key}"
            try:
                self._scheduler.add_job(
                    self.request, "date", run_date=run_at, id=job_id, replace_existing=True
                )
            except Exception:  # the scheduler is shutting down
                logger.debug("pass request dropped: scheduler stopping")

    def adapt(self, attention: str | None) -> None:
        """The interval for what the last pass saw: active while anything wants attention,
        ``attention`` saying what (the log line says it: an issue open is not the only
        reason, a service settling after Swarm moved it is another). Said again when the
        reason changes while the interval stays."""
        active = attention is not None
        if active == self._active and attention == self._reason:
            return
        switched = active != self._active
        self._active, self._reason = active, attention
        if not self.running:
            return
        seconds = self._active_seconds if active else self._quiet_seconds
        if switched:
            self._scheduler.reschedule_job(JOB_ID, trigger=_trigger(seconds))
        logger.info("polling every {:g} s ({})", seconds, attention or "quiet")

    def _look_at_files(self) -> None:
        if self._files_changed():
            self.request()

    def _job(self) -> None:
        """One scheduled run: pass until nobody asked for another during the last one.

        A run that finds a pass in progress only leaves word (``_again``); the running one
        passes once more. The word is read again after the gate opens, so no request is
        lost between the last check and the release.
        """
        while True:
            if not self._gate.acquire(blocking=False):
                self._again = True
                return
            try:
                while True:
                    self._again = False
                    self._run_pass()
                    if not self._again:
                        break
            finally:
                self._gate.release()
            if not self._again:
                return
