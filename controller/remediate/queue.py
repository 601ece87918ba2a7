"""A work queue keyed by service, after client-go's workqueue.

A key is queued at most once; a key being processed is never handed to a second worker;
a key added while it is processed is queued again when that processing is done (the
worker then re-reads the state, so no change is lost and no work is duplicated).
"""

from __future__ import annotations

import threading
import time
from collections import deque


class WorkQueue:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._queue: deque[str] = deque()
        self._dirty: set[str] = set()
        self._processing: set[str] = set()
        self._shutting_down = False

    def add(self, key: str) -> bool:
        """Queue ``key``; False if it was already waiting or the queue is shut down."""
        with self._cond:
            if self._shutting_down or key in self._dirty:
                return False
            self._dirty.add(key)
            if key not in self._processing:
                self._queue.append(key)
                self._cond.notify()
            return True

    def get(self, timeout: float | None = None) -> str | None:
        """The next key to process, or None on shutdown (or timeout)."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._queue or self._shutting_down, timeout=timeout):
                return None
            if not self._queue:
                return None
            key = self._queue.popleft()
            self._dirty.discard(key)
            self._processing.add(key)
            return key

    def done(self, key: str) -> None:
        with self._cond:
            self._processing.discard(key)
            if key in self._dirty and not self._shutting_down:
                self._queue.append(key)
            elif key in self._dirty:
                self._dirty.discard(key)
            self._cond.notify_all()

    def shutdown(self) -> None:
        """Hand out no more keys; keys being processed finish normally."""
        with self._cond:
            self._shutting_down = True
            self._queue.clear()
            self._dirty.clear()
            self._cond.notify_all()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until nothing is queued or processing; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._queue or self._processing:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    @property
    def depth(self) -> int:
        with self._cond:
            return len(self._queue)

    @property
    def processing(self) -> frozenset[str]:
        with self._cond:
            return frozenset(self._processing)
