"""The remediation workers: a keyed queue, a pool of ``max_agents`` workers, and what the
runtime tells them (passes, engine events).

A worker takes a service's key off the queue and calls ``Reconciler.reconcile``; the
result says what happens to the key: ``Done`` (its error retries start afresh),
``RequeueAfter`` (queued again then), ``Failed`` (queued again after the rate limiter's
delay). The queue keeps two workers off one service; at most ``max_agents`` reconciles,
and so at most that many docker/compose commands, run at once.

Also here, because the reconcile needs it and only passes can see it: which container
runs were ever ready (``never_ready``, for blaming a crash on a log error only when the
run never came up) and the service's stability (the rate limiter's resets).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from loguru import logger

from controller.issues.store import IssueStore
from controller.metrics import Metrics
from controller.model import (
    Clock,
    ContainerSnapshot,
    DesiredState,
    ObservedState,
    ServiceCondition,
    ServiceStatus,
    system_clock,
)
from controller.remediate.activity import OperatorActivity
from controller.remediate.limiter import RateLimiter
from controller.remediate.policy import RetryPolicy
from controller.remediate.queue import WorkQueue
from controller.remediate.reconciler import (
    Done,
    Failed,
    Reconciler,
    RequeueAfter,
    restarts_policy,
    stable_after,
)
from controller.remediate.strategies import Actuator
from controller.remediate.verify import instance

# events that mean a person (or their tooling) brought the service back on purpose
_PERSON_STARTS = frozenset({"create", "unpause"})
_KEEP_INSTANCES = 4096


class Remediator:
    def __init__(
        self,
        *,
        desired: DesiredState,
        store: IssueStore,
        observe: Callable[[], ObservedState],
        actuator: Actuator,
        policy: RetryPolicy,
        metrics: Metrics,
        max_agents: int = 3,
        dry_run: bool = False,
        blip: float = 0.0,
        clock: Clock = system_clock,
        on_change: Callable[[bool], None] = lambda finished: None,
        save_now: Callable[[], None] = lambda: None,
        settle_logs: Callable[[Sequence[str], float], object] = lambda ids, timeout: None,
    ) -> None:
        self._desired = desired
        self._store = store
        self._clock = clock
        self.max_agents = max_agents
        self.limiter = RateLimiter(policy)
        self.queue = WorkQueue(self.limiter)
        self.activity = OperatorActivity(clock, desired.remediation.operation_timeout)
        self._ready_runs: dict[str, float] = {}  # container run -> when first seen ready
        self._ready_lock = threading.Lock()
        self.reconciler = Reconciler(
            desired=desired,
            store=store,
            observe=observe,
            actuator=actuator,
            limiter=self.limiter,
            metrics=metrics,
            activity=self.activity,
            clock=clock,
            dry_run=dry_run,
            blip=blip,
            never_ready=self.never_ready,
            on_change=on_change,
            save_now=save_now,
            settle_logs=settle_logs,
        )
        self._threads: list[threading.Thread] = []

    # --- the pool -----------------------------------------------------------------------

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

    @property
    def steps_taken(self) -> int:
        return self.reconciler.steps_taken

    @property
    def last_action_at(self) -> float:
        return self.reconciler.last_action_at

    def in_flight(self) -> list[str]:
        """Services with a step under way: its command running, or its proof pending."""
        return sorted(
            name
            for name in self._desired.services
            if self.activity.is_acting(name) or self.limiter.history(name).verifying is not None
        )

    def stop(self, timeout: float) -> list[str]:
        """Stop taking work and let running commands finish for up to ``timeout`` s.

        Returns the services whose command was still running (its step is recorded as
        started: a restarted controller proves it). A step waiting to be proven needs no
        worker: its record survives in the rate limiter's state.
        """
        self.queue.shutdown()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return sorted(self.queue.processing)

    def _work(self) -> None:
        while (service := self.queue.get()) is not None:
            try:
                result = self.reconciler.reconcile(service)
            except Exception:  # a bug in one reconcile must not kill the worker
                logger.exception("reconcile of {} failed unexpectedly", service)
                result = Failed("unexpected error")
            try:
                self._requeue(service, result)  # before done: never idle in between
            finally:
                self.queue.done(service)

    def _requeue(self, service: str, result: Done | RequeueAfter | Failed) -> None:
        if isinstance(result, Failed):
            logger.debug("{}: reconcile failed, retried later: {}", service, result.reason)
            self.queue.add_rate_limited(service)
            return
        self.queue.forget(service)
        if isinstance(result, RequeueAfter):
            self.queue.add_after(service, result.seconds)

    # --- what the runtime tells it --------------------------------------------------------

    def on_event(
        self, service: str, action: str, at: float | None = None, signal: int | None = None
    ) -> None:
        """An engine event (stamped ``at`` by the engine); those our own actions caused
        are not a person's. Any event about a declared service reconciles it at once."""
        ours = self.activity.event(service, action, at, signal)
        if service not in self._desired.services:
            return
        self.queue.add(service)
        if ours:
            return
        no_policy = self._desired.services[service].restart in ("", "no")
        if action in _PERSON_STARTS or (action == "start" and no_policy):
            self.limiter.person_acted(service)
            if self._store.release(service):
                logger.info("{}: a person acted on it; the controller may fix it again", service)

    def observe_pass(self, statuses: Sequence[ServiceStatus], observed: ObservedState) -> None:
        """Every pass: which container runs were ready, and each service's stability."""
        now = self._clock()
        with self._ready_lock:
            present = {instance(c) for c in observed.containers}
            for status in statuses:
                if status.condition is ServiceCondition.READY:
                    for c in observed.of(status.name):
                        if c.status == "running":
                            self._ready_runs.setdefault(instance(c), now)
            if len(self._ready_runs) > _KEEP_INSTANCES:
                self._ready_runs = {k: v for k, v in self._ready_runs.items() if k in present}
        for status in statuses:
            spec = self._desired.services.get(status.name)
            if spec is None:
                continue
            ready = status.condition is ServiceCondition.READY
            self.limiter.observe(status.name, ready, now, stable_after(spec), restarts_policy(spec))

    def never_ready(self, container: ContainerSnapshot) -> bool:
        """This run of the container was never seen ready by a pass."""
        with self._ready_lock:
            return instance(container) not in self._ready_runs
