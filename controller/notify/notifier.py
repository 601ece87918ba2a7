"""The notifier: transitions worked out in the caller, delivered on a thread of its own.

``observe`` runs where the controller saves its document: it compares the snapshot with
the last one (cheap, in memory) and puts the transitions in a bounded queue without ever
waiting; a full queue drops and counts. The delivery thread groups and rate-limits them
per service and sends each batch through Apprise, so a slow or failing endpoint delays
only other messages, never a pass or a fix; it is logged and counted in
``compose_controller_notifications_total`` and ``..._notification_seconds``.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence

from loguru import logger

from controller.logfields import about
from controller.model import Clock, Issue, NotifySettings, to_datetime
from controller.notify.message import render
from controller.notify.outbox import Batch, Outbox
from controller.notify.sender import AppriseSender, Sender
from controller.notify.transitions import Tracker, Transition

QUEUE_SIZE = 1000
Count = Callable[[str, str], None]  # (event, result: sent | failed | dropped)
Timed = Callable[[float], None]  # seconds one delivery took


class _Stop:
    pass


class Notifier:
    def __init__(
        self,
        settings: NotifySettings,
        env: str,
        count: Count,
        timed: Timed,
        clock: Clock,
        sender: Sender | None = None,
    ) -> None:
        self.enabled = bool(settings.urls)
        self._settings = settings
        self._env = env
        self._count = count
        self._timed = timed
        self._clock = clock
        self._tracker = Tracker(settings, to_datetime(clock()))
        self._lock = threading.Lock()
        self._queue: queue.Queue[Transition | _Stop] = queue.Queue(QUEUE_SIZE)
        self._sender = sender
        self._thread: threading.Thread | None = None
        self._closed = False

    def observe(self, issues: Sequence[Issue]) -> None:
        """Tell what changed since the last snapshot; never waits on an endpoint."""
        if not self.enabled:
            return
        with self._lock:
            if self._closed:
                return
            transitions = self._tracker.update(issues)
            if transitions and self._thread is None:
                self._thread = threading.Thread(target=self._run, name="notify", daemon=True)
                self._thread.start()
        for transition in transitions:
            try:
                self._queue.put_nowait(transition)
            except queue.Full:
                self._count(transition.event, "dropped")
                about(transition.service, issue=transition.issue_id).warning(
                    "notify: queue full; dropped {} of {} issue {}",
                    transition.event,
                    transition.service,
                    transition.issue_id,
                )

    def close(self, timeout: float = 10.0) -> None:
        """Send what still waits (regardless of grouping and rate), then stop."""
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is None:
            return
        self._queue.put(_Stop())
        thread.join(timeout)
        if thread.is_alive():
            logger.warning("notify: gave up waiting {} s for endpoints at shutdown", timeout)

    # --- the delivery thread ------------------------------------------------------------

    def _run(self) -> None:
        outbox = Outbox(self._settings.group_seconds, self._settings.max_per_hour)
        while True:
            wait = outbox.next_due(self._clock())
            try:
                item = self._queue.get(timeout=None if wait is None else max(wait, 0.01))
            except queue.Empty:
                item = None
            if isinstance(item, _Stop):
                for batch in outbox.drain():
                    self._deliver(batch)
                return
            if item is not None:
                for dropped in outbox.add(item, self._clock()):
                    self._count(dropped.event, "dropped")
            for batch in outbox.due(self._clock()):
                self._deliver(batch)

    def _deliver(self, batch: Batch) -> None:
        told = batch.transitions
        log = about(batch.service, issue=told[0].issue_id if len(told) == 1 else None)
        try:
            message = render(batch, self._env)
            if self._sender is None:
                self._sender = AppriseSender(self._settings.urls, self._settings.timeout)
            started = time.monotonic()
            deliveries = self._sender.send(message)
            took = time.monotonic() - started
        except Exception:
            log.exception("notify: could not deliver a message about {}", batch.service)
            deliveries, took = [], 0.0
        self._timed(took)
        ok = bool(deliveries) and all(d.ok for d in deliveries)
        for transition in batch.transitions:
            self._count(transition.event, "sent" if ok else "failed")
        failed = [d.endpoint for d in deliveries if not d.ok]
        if not deliveries:
            pass  # logged with its traceback above
        elif failed:
            log.warning(
                "notify: {} of {} endpoint(s) failed for {} ({} transition(s)): {}",
                len(failed),
                len(deliveries),
                batch.service,
                len(batch.transitions),
                ", ".join(failed),
            )
        elif took > self._settings.timeout / 2:
            log.warning("notify: slow endpoint(s): {:.1f} s for {}", took, batch.service)
        else:
            log.info(
                "notify: told {} transition(s) of {} to {} endpoint(s)",
                len(batch.transitions),
                batch.service,
                len(deliveries),
            )
