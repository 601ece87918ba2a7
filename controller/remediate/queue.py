"""A work queue keyed by service, after client-go's workqueue, with delayed adds.

A key is queued at most once; a key being processed is never handed to a second worker;
a key added while it is processed is queued again when that processing is done (the
worker then re-reads the state, so no change is lost and no work is duplicated).

``add_after`` queues a key once a delay has passed (a verification to look at again, a
backoff to sit out); an earlier due time wins, and an ``add`` makes it due now.
``add_rate_limited`` asks its failure backoff how long a key whose reconcile failed waits.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections import deque

from controller.remediate.failures import FailureBackoff


class WorkQueue:
    def __init__(self, failures: FailureBackoff) -> None:
        self._failures = failures
        self._cond = threading.Condition()
        self._queue: deque[str] = deque()
        self._dirty: set[str] = set()
        self._processing: set[str] = set()
        self._due: dict[str, float] = {}  # key -> monotonic time it becomes ready
        self._heap: list[tuple[float, str]] = []
        self._shutting_down = False

    def add(self, key: str) -> bool:
        """Queue ``key`` now; False if it was already waiting or the queue is shut down."""
        with self._cond:
            self._due.pop(key, None)
            return self._add(key)

    def _add(self, key: str) -> bool:
        if self._shutting_down or key in self._dirty:
            return False
        self._dirty.add(key)
        if key not in self._processing:
            self._queue.append(key)
            self._cond.notify()
        return True

    def add_after(self, key: str, seconds: float) -> None:
        """Queue ``key`` in ``seconds`` (at once when 0 or less)."""
        if seconds <= 0:
            self.add(key)
            return
        with self._cond:
            if self._shutting_down or key in self._dirty:
                return
            due = time.monotonic() + seconds
            if key in self._due and self._due[key] <= due:
                return
            self._due[key] = due
            heapq.heappush(self._heap, (due, key))
            self._cond.notify_all()

    def add_rate_limited(self, key: str) -> None:
        """Queue ``key`` after the failure backoff's delay for a failed reconcile."""
        self.add_after(key, self._failures.when(key))

    def forget(self, key: str) -> None:
        """``key``'s reconcile succeeded: its failure delays start afresh."""
        self._failures.forget(key)

    def _promote(self, now: float) -> float | None:
        """Move due keys to the queue; seconds until the next one is due (None: none)."""
        while self._heap:
            due, key = self._heap[0]
            if self._due.get(key) != due:  # superseded by an earlier add
                heapq.heappop(self._heap)
                continue
            if due > now:
                return due - now
            heapq.heappop(self._heap)
            del self._due[key]
            self._add(key)
        return None

    def get(self, timeout: float | None = None) -> str | None:
        """The next key to process, or None on shutdown (or timeout)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                wait = self._promote(time.monotonic())
                if self._queue or self._shutting_down:
                    break
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                waits = [w for w in (wait, left) if w is not None]
                self._cond.wait(min(waits) if waits else None)
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
            self._due.clear()
            self._heap.clear()
            self._cond.notify_all()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until nothing is queued, processing or due later; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._queue or self._processing or self._due:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(0.05 if remaining is None else min(remaining, 0.05))
            return True

    @property
    def depth(self) -> int:
        """Keys waiting to be handed out now (not those due later)."""
        with self._cond:
            return len(self._queue)

    @property
    def delayed(self) -> frozenset[str]:
        """Keys due later (a verification to look at again, a backoff to sit out)."""
        with self._cond:
            return frozenset(self._due)

    @property
    def processing(self) -> frozenset[str]:
        with self._cond:
            return frozenset(self._processing)
