"""The work queue's rate limiter for reconciles that failed (the engine did not answer).

client-go's per-item exponential failure rate limiter: a key whose reconcile failed is
retried after 0.5 s, doubling per failure to 30 s, until a reconcile of it succeeds
(``forget``). One job: nothing here knows about fix steps, their backoff or their budget
(that is ``throttle``). In memory only.
"""

from __future__ import annotations

import threading

FIRST_RETRY = 0.5
MAX_RETRY = 30.0


class FailureBackoff:
    def __init__(self, first: float = FIRST_RETRY, most: float = MAX_RETRY) -> None:
        self._first, self._most = first, most
        self._lock = threading.Lock()
        self._failures: dict[str, int] = {}

    def when(self, key: str) -> float:
        """Seconds until a key whose reconcile failed is retried (doubling per failure)."""
        with self._lock:
            failures = self._failures.get(key, 0)
            self._failures[key] = failures + 1
        return min(self._first * 2.0 ** min(failures, 16), self._most)

    def forget(self, key: str) -> None:
        """A reconcile of ``key`` succeeded: its retries start afresh."""
        with self._lock:
            self._failures.pop(key, None)

    def requeues(self, key: str) -> int:
        """How many times ``key`` failed in a row."""
        with self._lock:
            return self._failures.get(key, 0)
