"""Saving the issues files at most every ``interval`` seconds, yet never late for news.

A flood of log findings changes counts many times a second; rendering the JSON and the
Markdown report and fsyncing both after each batch cost more than detecting the errors.
``request`` says something changed that can wait: it is saved within ``interval`` seconds,
once however often it is asked. ``now`` saves at once (a new issue, a state a reader must
see without delay); ``stop`` saves what is pending, so a shutdown loses nothing.
``retry_in`` asks for a save after a delay even when nothing else changes: a save that
failed (a full disk) is tried again on its own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from loguru import logger


class DebouncedSaver:
    def __init__(
        self,
        save: Callable[[], None],
        interval: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._save = save
        self._interval = interval
        self._clock = clock
        self._cond = threading.Condition()
        self._due = False
        self._stopped = False
        self._last = float("-inf")
        self._not_before = float("-inf")  # a retry's delay: no save before then
        self._thread = threading.Thread(target=self._run, name="saver", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def request(self) -> None:
        """Something changed: save it within ``interval`` seconds (at once before ``start``
        or after ``stop``: there is no thread to do it later)."""
        with self._cond:
            if self._thread.is_alive() and not self._stopped:
                if not self._due:  # a save already due wakes the thread when its time comes
                    self._due = True
                    self._cond.notify()
                return
        self._save()

    def now(self) -> None:
        """Something changed that a reader must see at once: save it now (in this thread)."""
        with self._cond:
            self._due = False
            self._last = self._clock()
        self._save()

    def retry_in(self, seconds: float) -> None:
        """A save failed: try again in ``seconds`` (requests meanwhile join that save)."""
        with self._cond:
            if not self._thread.is_alive() or self._stopped:
                return  # no thread: the next save of the caller tries again
            self._due = True
            self._not_before = self._clock() + seconds
            self._cond.notify()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread; save what was pending."""
        with self._cond:
            self._stopped = True
            pending, self._due = self._due, False
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(timeout)
        if pending:
            self._save()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._due and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    return
                wait = max(self._last + self._interval, self._not_before) - self._clock()
                if wait > 0:
                    self._cond.wait(wait)  # more requests meanwhile join this save
                    continue
                self._due = False
                self._last = self._clock()
                self._not_before = float("-inf")
            try:
                self._save()
            except Exception:  # a bug must not stop later saves (a full disk is the caller's)
                logger.exception("saving the issues files failed")
