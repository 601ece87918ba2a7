"""The remediation workers: take a service off the queue, re-read it, fix, verify, record.

Level-based like controller-runtime: a queued key carries no payload; the worker observes
the service afresh, so a fix is planned on what is true now, not on what an event said.
At most ``max_agents`` workers run; the keyed queue keeps two off the same service.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from loguru import logger

from controller.issues.store import IssueStore
from controller.metrics import Metrics
from controller.model import (
    Action,
    Clock,
    ContainerSnapshot,
    DesiredState,
    Drift,
    DriftKind,
    IssueState,
    ObservedState,
    Outcome,
    system_clock,
)
from controller.observe.gateway import EngineError
from controller.reconcile import service_drifts, service_ready
from controller.remediate.activity import OperatorActivity
from controller.remediate.policy import RetryPolicy
from controller.remediate.queue import WorkQueue
from controller.remediate.strategies import Actuator, ladder, left_alone_reason, primary
from controller.remediate.verify import verify


@dataclass(frozen=True, slots=True)
class StepResult:
    outcome: Outcome
    detail: str


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
        clock: Clock = system_clock,
        wait: Callable[[float], bool] | None = None,
        on_change: Callable[[bool], None] = lambda finished: None,
        activity: OperatorActivity | None = None,
        retry_after: Callable[[float], None] = lambda seconds: None,
    ) -> None:
        self._desired = desired
        self._store = store
        self._observe = observe
        self._actuator = actuator
        self._policy = policy
        self._metrics = metrics
        self.max_agents = max_agents
        self._dry_run = dry_run
        self._clock = clock
        self._on_change = on_change
        self.activity = activity if activity is not None else OperatorActivity(clock)
        self._retry_after = retry_after
        self.queue = WorkQueue()
        self._stop = threading.Event()
        self._wait = wait if wait is not None else self._stop.wait
        self._threads: list[threading.Thread] = []
        self._steps_lock = threading.Lock()
        self.steps_taken = 0

    # --- the pool -----------------------------------------------------------------------

    def start(self) -> None:
        for n in range(self.max_agents):
            thread = threading.Thread(target=self._work, name=f"remediator-{n + 1}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def submit(self, service: str) -> bool:
        return self.queue.add(service)

    def on_event(self, service: str, action: str) -> None:
        """An engine event; those about services we are fixing are our own doing."""
        self.activity.event(service, action, ours=service in self.queue.processing)

    @property
    def busy(self) -> int:
        return len(self.queue.processing)

    def stop(self, timeout: float) -> list[str]:
        """Stop taking work, let running fixes finish for ``timeout`` s, then cut them short.

        Returns the services whose fix was cut short (recorded as ``cancelled``).
        """
        self.queue.shutdown()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        cut_short = sorted(self.queue.processing)
        if cut_short:
            self._stop.set()
            for thread in self._threads:
                thread.join(10.0)
        return cut_short

    def _work(self) -> None:
        while (service := self.queue.get()) is not None:
            try:
                self.handle(service)
            except Exception:  # a bug in one fix must not kill the worker
                logger.exception("remediation of {} failed unexpectedly", service)
            finally:
                self.queue.done(service)

    # --- one service --------------------------------------------------------------------

    def handle(self, service: str) -> None:
        spec = self._desired.services[service]
        try:
            observed = self._observe()
        except EngineError as exc:
            logger.warning("{}: not remediating, engine unavailable: {}", service, exc)
            return
        actionable = {i.fingerprint: i for i in self._store.actionable().get(service, [])}
        drifts = [
            d for d in service_drifts(spec, observed.of(service)) if d.fingerprint in actionable
        ]
        if not drifts:
            return
        fingerprints = [d.fingerprint for d in drifts]
        main = primary(drifts)
        if self._left_to_people(service, fingerprints, main):
            return
        waiting = self._unready_dependencies(service, observed)
        if waiting:
            plan = f"waits until {', '.join(waiting)} is ready"
            if self._store.note(fingerprints, plan=plan, waiting_for=waiting):
                logger.info("{}: waiting for {} before fixing it", service, ", ".join(waiting))
            return
        steps = ladder(main, spec)
        if not steps:
            reason = left_alone_reason(main, spec)
            self._store.escalate(fingerprints, reason)
            logger.warning("{}: left alone: {}", service, reason)
            self._on_change(True)
            return
        failed = max(actionable[fp].failed_attempts() for fp in fingerprints)
        steps = steps[min(failed, len(steps) - 1) :]
        if self._dry_run:
            self._plan(service, fingerprints, main, steps, failed)
            return
        self._climb(service, fingerprints, drifts, steps, failed)

    def _left_to_people(self, service: str, fingerprints: list[str], main: Drift) -> bool:
        """True when a person is busy with the service or stopped it on purpose."""
        held = self.activity.held_for(service)
        if held > 0:
            plan = f"waits: a docker/compose operation on {service} is in progress"
            if self._store.note(fingerprints, plan=plan):
                logger.info("{}: an operation on it is in progress; not touching it", service)
            self._retry_after(held)
            return True
        person = self.activity.stopped_by_person(service)
        spec = self._desired.services[service]
        if person and not spec.enforce and main.kind in _PERSON_KINDS:
            verb = "paused" if person == "pause" else "stopped"
            reason = (
                f"{service} was {verb} by a person: the controller leaves it alone "
                f"(declare services.{service}.enforce: true to have it brought back)"
            )
            self._store.escalate(fingerprints, reason)
            logger.warning("{}: left alone: {}", service, reason)
            self._on_change(True)
            return True
        return False

    def _unready_dependencies(self, service: str, observed: ObservedState) -> list[str]:
        specs = self._desired.services
        return [
            dep
            for dep in specs[service].depends_on
            if dep in specs
            and specs[dep].required
            and not service_ready(specs[dep], observed.of(dep))
        ]

    def _plan(
        self,
        service: str,
        fingerprints: list[str],
        main: Drift,
        steps: Sequence[Action],
        failed: int,
    ) -> None:
        then = f"; if it does not verify: {', '.join(steps[1:])}" if len(steps) > 1 else ""
        plan = (
            f"would {steps[0]} {service} because {main.title} "
            f"(attempt {failed + 1} of {self._policy.max_attempts}){then}"
        )
        if self._store.note(fingerprints, plan=plan):
            logger.info("{}: dry run: {}", service, plan)

    def _climb(
        self,
        service: str,
        fingerprints: list[str],
        drifts: Sequence[Drift],
        steps: Sequence[Action],
        failed: int,
    ) -> None:
        affected = {name for d in drifts for name in d.containers}
        for index, action in enumerate(steps):
            if self._stop.is_set() or not self._policy.budget_left(failed):
                return
            self._store.begin(fingerprints, action)
            self._count_step()
            self._on_change(False)
            logger.info(
                "{}: {} (attempt {} of {})", service, action, failed + 1, self._policy.max_attempts
            )
            result = self._step(action, service, affected)
            if result.outcome is Outcome.SUCCESS:
                self._store.finish(
                    fingerprints,
                    result.outcome,
                    result.detail,
                    next_state=IssueState.RESOLVED,
                    reason=f"fixed by {action}",
                )
                logger.info("{}: fixed by {}: {}", service, action, result.detail)
                self._on_change(True)
                return
            if result.outcome is Outcome.CANCELLED:
                self._store.finish(
                    fingerprints,
                    result.outcome,
                    result.detail,
                    next_state=IssueState.OPEN,
                    reason="fix cut short by shutdown",
                )
                logger.warning("{}: {} cut short by shutdown", service, action)
                self._on_change(True)
                return
            failed += 1
            verdict = self._policy.after_failure(failed, self._clock())
            last = index == len(steps) - 1 or verdict.state is IssueState.NEEDS_HUMAN
            if last:
                self._store.finish(
                    fingerprints,
                    result.outcome,
                    result.detail,
                    next_state=verdict.state,
                    next_attempt_at=verdict.next_attempt_at,
                    reason=verdict.reason,
                )
            else:
                self._store.finish(
                    fingerprints,
                    result.outcome,
                    result.detail,
                    next_state=IssueState.FAILED,
                    reason=f"{action} did not fix it; trying {steps[index + 1]}",
                )
            logger.warning(
                "{}: {} did not fix it ({}): {}", service, action, result.outcome, result.detail
            )
            if last:
                logger.warning("{}: {}", service, verdict.reason)
                self._on_change(True)
                return

    def _step(self, action: Action, service: str, affected: set[str]) -> StepResult:
        spec = self._desired.services[service]
        started = time.monotonic()
        try:
            containers = self._observe().of(service)
            targets = [c for c in containers if c.name in affected] or _not_ready(containers)
            detail = self._actuator.run(action, spec, targets)
        except EngineError as exc:
            result = StepResult(Outcome.ERROR, str(exc))
        else:
            check = verify(spec, self._observe, self._clock, self._wait)
            outcome = (
                Outcome.SUCCESS
                if check.ok
                else Outcome.CANCELLED
                if check.cancelled
                else Outcome.FAILURE
            )
            result = StepResult(outcome, f"{detail}; {check.detail}")
        self._metrics.remediation_done(action, result.outcome, time.monotonic() - started)
        return result

    def _count_step(self) -> None:
        with self._steps_lock:
            self.steps_taken += 1


_PERSON_KINDS = frozenset({DriftKind.EXITED, DriftKind.MISSING, DriftKind.PAUSED})


def _not_ready(containers: Sequence[ContainerSnapshot]) -> list[ContainerSnapshot]:
    return [c for c in containers if c.status != "running" or c.health == "unhealthy"]
