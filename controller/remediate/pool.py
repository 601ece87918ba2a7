"""The remediation workers: a keyed queue and ``max_agents`` threads around one reconciler.

Like controller-runtime's controller: the pool holds an injected reconciler and owns only
the queue and the switch on a reconcile's result: ``Done`` (the key's failure retries
start afresh), ``RequeueAfter`` (queued again then), ``Failed`` (queued again after the
failure backoff). The queue keeps two workers off one service; at most ``max_agents``
reconciles, and so at most that many docker/compose commands, run at once.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

from loguru import logger

from controller.logfields import context
from controller.remediate.queue import WorkQueue
from controller.remediate.results import Failed, RequeueAfter, Result


class Reconciles(Protocol):
    def reconcile(self, service: str) -> Result: ...


class WorkerPool:
    def __init__(self, reconciler: Reconciles, queue: WorkQueue, max_agents: int) -> None:
        self._reconciler = reconciler
        self.queue = queue
        self.max_agents = max_agents
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for n in range(self.max_agents):
            thread = threading.Thread(target=self._work, name=f"remediator-{n + 1}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def submit(self, service: str) -> bool:
        return self.queue.add(service)

    @property
    def busy(self) -> int:
        return len(self.queue.processing)

    def stop(self, timeout: float) -> list[str]:
        """Stop taking work and let running commands finish for up to ``timeout`` s.

        Returns the services whose command was still running (its step is recorded as
        started: a restarted controller proves it). A step waiting to be proven needs no
        worker: its record survives in the service's record.
        """
        self.queue.shutdown()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return sorted(self.queue.processing)

    def _work(self) -> None:
        while (service := self.queue.get()) is not None:
            with context(service):  # every line of the reconcile carries its service
                try:
                    result = self._reconciler.reconcile(service)
                except Exception:  # a bug in one reconcile must not kill the worker
                    logger.exception("reconcile of {} failed unexpectedly", service)
                    result = Failed("unexpected error")
                try:
                    self._requeue(service, result)  # before done: never idle in between
                finally:
                    self.queue.done(service)

    def _requeue(self, service: str, result: Result) -> None:
        if isinstance(result, Failed):
            logger.debug("{}: reconcile failed, retried later: {}", service, result.reason)
            self.queue.add_rate_limited(service)
            return
        self.queue.forget(service)
        if isinstance(result, RequeueAfter):
            self.queue.add_after(service, result.seconds)
