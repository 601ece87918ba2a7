"""The remediation workers: take a service off the queue, re-read it, fix, verify, record.

Level-based like controller-runtime: a queued key carries no payload; the worker observes
the service afresh, so a fix is planned on what is true now, not on what an event said.
At most ``max_agents`` workers run; the keyed queue keeps two off the same service.

One work item, in order: leave it alone if a person is busy with it or stopped it; wait
for its dependencies; plan (``plan.make_plan``); hand it to a human when nothing fits or
its budget is spent; wait out its backoff; then climb the plan's steps, verifying each,
until one works or the steps run out.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from loguru import logger

from controller.issues.store import IssueStore
from controller.metrics import Metrics
from controller.model import (
    Clock,
    ContainerSnapshot,
    DesiredState,
    Drift,
    DriftKind,
    Issue,
    IssueState,
    ObservedState,
    Outcome,
    ServiceCondition,
    ServiceHistory,
    ServiceSpec,
    ServiceStatus,
    system_clock,
    to_datetime,
)
from controller.observe.gateway import EngineError
from controller.reconcile import drifts_of, ready_in
from controller.remediate.activity import OperatorActivity
from controller.remediate.plan import CRASHES, Plan, Step, make_plan
from controller.remediate.policy import RetryPolicy
from controller.remediate.queue import WorkQueue
from controller.remediate.strategies import Actuator, StepFailed, primary
from controller.remediate.verify import verify

_PERSON_KINDS = frozenset({DriftKind.EXITED, DriftKind.MISSING, DriftKind.PAUSED})
# events that mean a person (or their tooling) brought the service back on purpose
_PERSON_STARTS = frozenset({"create", "unpause"})


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
        settle_logs: Callable[[Sequence[str], float], object] = lambda ids, timeout: None,
    ) -> None:
        self._desired = desired
        self._settings = desired.remediation
        self._store = store
        self._observe = observe
        self._actuator = actuator
        self._policy = policy
        self._metrics = metrics
        self.max_agents = max_agents
        self._dry_run = dry_run
        self._clock = clock
        self._on_change = on_change
        self.activity = (
            activity if activity is not None else OperatorActivity(clock, self._settings.settle)
        )
        self._retry_after = retry_after
        self._settle_logs = settle_logs
        self.queue = WorkQueue()
        self._stop = threading.Event()
        self._wait = wait if wait is not None else self._stop.wait
        self._threads: list[threading.Thread] = []
        self._steps_lock = threading.Lock()
        self.steps_taken = 0
        self.last_action_at = float("-inf")  # monotonic: when the newest action ended
        self._runbooks_lock = threading.Lock()
        self._runbook_locks: dict[str, threading.Lock] = {}
        self._runbook_done: dict[tuple[str, tuple[tuple[str, str], ...]], datetime] = {}

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

    # --- what the runtime tells it --------------------------------------------------------

    def on_event(self, service: str, action: str, at: float | None = None) -> None:
        """An engine event (stamped ``at`` by the engine); those our own actions caused
        are not a person's."""
        ours = self.activity.event(service, action, at)
        if ours or service not in self._desired.services:
            return
        no_policy = self._desired.services[service].restart in ("", "no")
        if action in _PERSON_STARTS or (action == "start" and no_policy):
            self._store.edit_history(service, self._policy.person_acted)
            if self._store.release(service):
                logger.info("{}: a person acted on it; the controller may fix it again", service)

    def observe_pass(self, statuses: Sequence[ServiceStatus]) -> None:
        """Every pass: a service ready long enough since its last fix is stable again."""
        now = self._clock()
        for status in statuses:
            ready = status.condition is ServiceCondition.READY
            self._store.edit_history(
                status.name, partial(self._policy.observe, ready=ready, now=now)
            )

    # --- one service --------------------------------------------------------------------

    def handle(self, service: str) -> None:
        spec = self._desired.services[service]
        try:
            observed = self._observe()
        except EngineError as exc:
            logger.warning("{}: not remediating, engine unavailable: {}", service, exc)
            return
        containers = observed.of(service)
        drifts, logs = self._work_of(service, observed)
        if not drifts and not logs:
            return
        if drifts and self._left_to_people(service, drifts):
            return
        waiting = self._unready_dependencies(service, observed)
        if waiting:
            fingerprints = [d.fingerprint for d in drifts] + [i.fingerprint for i in logs]
            text = f"waits until {', '.join(waiting)} is ready"
            if self._store.note(fingerprints, plan=text, waiting_for=waiting):
                logger.info("{}: waiting for {} before fixing it", service, ", ".join(waiting))
            return
        if any(d.kind in CRASHES for d in drifts):
            # what it printed before it died says whether a restart can help: read it all
            self._settle_logs([c.id for c in containers if c.status != "running"], 2.0)
            drifts, logs = self._work_of(service, observed)
        history: ServiceHistory = self._store.edit_history(service, _copy)
        plan = make_plan(spec, drifts, logs, self._settings, history.learned, spec.has_build)
        if plan.hand_over:
            if self._store.escalate(plan.hand_over_fingerprints, plan.hand_over):
                logger.warning("{}: needs a human: {}", service, plan.hand_over)
                self._on_change(True)
            return
        if not plan.steps:
            return  # log issues that suggest nothing: reported only
        if not self._admitted(service, plan):
            return
        if self._dry_run:
            self._note_dry_run(service, plan)
            return
        self._climb(service, plan, containers)

    def _work_of(self, service: str, observed: ObservedState) -> tuple[list[Drift], list[Issue]]:
        """The drifts that are still true and the log issues still recurring, unlinked."""
        spec = self._desired.services[service]
        now = to_datetime(self._clock())
        recent = now - timedelta(seconds=self._settings.log_active)
        mine = [
            i
            for i in self._store.of_service(service)
            if i.state in (IssueState.OPEN, IssueState.FAILED) and not i.caused_by
        ]
        drift_fps = {i.fingerprint for i in mine if i.source == "drift"}
        drifts = [d for d in drifts_of(spec, observed) if d.fingerprint in drift_fps]
        logs = [i for i in mine if i.source == "log" and i.last_seen >= recent]
        return drifts, logs

    def _left_to_people(self, service: str, drifts: Sequence[Drift]) -> bool:
        """True when a person is busy with the service or stopped it on purpose."""
        fingerprints = [d.fingerprint for d in drifts]
        held = self.activity.held_for(service)
        if held > 0:
            plan = f"waits: a docker/compose operation on {service} is in progress"
            if self._store.note(fingerprints, plan=plan):
                logger.info("{}: an operation on it is in progress; not touching it", service)
            self._retry_after(held)
            return True
        person = self.activity.stopped_by_person(service)
        spec = self._desired.services[service]
        if person and not spec.enforce and primary(drifts).kind in _PERSON_KINDS:
            verb = "paused" if person == "pause" else "stopped"
            reason = (
                f"{service} was {verb} by a person: the controller leaves it alone "
                f"(declare services.{service}.enforce: true to have it brought back)"
            )
            if self._store.escalate(fingerprints, reason):
                logger.warning("{}: left alone: {}", service, reason)
                self._on_change(True)
            return True
        return False

    def _unready_dependencies(self, service: str, observed: ObservedState) -> list[str]:
        specs = self._desired.services
        return [
            dep
            for dep in specs[service].depends_on
            if dep in specs and specs[dep].required and not ready_in(specs[dep], observed)
        ]

    def _admitted(self, service: str, plan: Plan) -> bool:
        """The budget and the backoff allow a fix now; otherwise record why not."""
        now = self._clock()
        gate = self._store.edit_history(service, partial(self._policy.gate, now=now))
        if gate.exhausted:
            if self._store.escalate(plan.addresses, gate.exhausted):
                logger.warning("{}: {}", service, gate.exhausted)
                self._on_change(True)
            return False
        if gate.wait_until is not None:
            when = gate.wait_until.strftime("%H:%M:%S")
            text = f"backing off: next fix ({plan.describe}) not before {when} UTC"
            if self._store.defer(plan.addresses, gate.wait_until, text):
                logger.info("{}: {}", service, text)
            self._retry_after(max(0.0, gate.wait_until.timestamp() - now))
            return False
        return True

    def _note_dry_run(self, service: str, plan: Plan) -> None:
        now = self._clock()
        left = self._store.edit_history(service, partial(self._policy.budget_left, now=now))
        used = self._policy.budget - left
        text = (
            f"would {plan.describe} {service} because {plan.why} (fix {used + 1} of "
            f"{self._policy.budget} allowed per {self._policy.budget_window / 60:g} min; "
            "eligible now)"
        )
        if self._store.note(plan.addresses, plan=text):
            logger.info("{}: dry run: {}", service, text)

    def _climb(self, service: str, plan: Plan, containers: Sequence[ContainerSnapshot]) -> None:
        affected = {c.name for c in containers if c.status != "running" or c.health == "unhealthy"}
        for index, step in enumerate(plan.steps):
            now = self._clock()
            if self._stop.is_set():
                return
            left = self._store.edit_history(service, partial(self._policy.budget_left, now=now))
            if not left:
                self._admitted(service, plan)  # records the spent budget
                return
            self._store.begin(plan.addresses, step.action)
            self._store.edit_history(service, partial(self._policy.record_step, now=now))
            self._count_step()
            self._on_change(False)
            logger.info("{}: {} ({})", service, step.label, plan.why)
            result = self._step(step, service, plan, affected)
            if result.outcome is Outcome.SUCCESS:
                self._succeeded(service, plan, step, result)
                return
            if result.outcome is Outcome.CANCELLED:
                self._store.finish(
                    plan.addresses,
                    result.outcome,
                    result.detail,
                    next_state=IssueState.OPEN,
                    reason="fix cut short by shutdown",
                )
                logger.warning("{}: {} cut short by shutdown", service, step.label)
                self._on_change(True)
                return
            logger.warning(
                "{}: {} did not fix it ({}): {}", service, step.label, result.outcome, result.detail
            )
            if index < len(plan.steps) - 1:
                self._store.finish(
                    plan.addresses,
                    result.outcome,
                    result.detail,
                    next_state=IssueState.FAILED,
                    reason=f"{step.label} did not fix it; trying {plan.steps[index + 1].label}",
                )
                continue
            self._failed(service, plan, result)

    def _succeeded(self, service: str, plan: Plan, step: Step, result: StepResult) -> None:
        now = self._clock()

        def learn(history: ServiceHistory) -> None:
            self._policy.after_work(history, now)
            for fp in plan.addresses:
                history.learned[fp] = step.action

        self._store.edit_history(service, learn)
        self._store.finish(
            plan.addresses,
            result.outcome,
            result.detail,
            next_state=IssueState.RESOLVED,
            reason=f"fixed by {step.label}",
        )
        logger.info("{}: fixed by {}: {}", service, step.label, result.detail)
        self._on_change(True)

    def _failed(self, service: str, plan: Plan, result: StepResult) -> None:
        now = self._clock()
        self._store.edit_history(service, partial(self._policy.after_work, now=now))
        gate = self._store.edit_history(service, partial(self._policy.gate, now=now))
        if gate.exhausted:
            state, until, reason = IssueState.NEEDS_HUMAN, None, gate.exhausted
        else:
            until = gate.wait_until.timestamp() if gate.wait_until else now
            reason = f"{plan.describe} did not fix it; next fix not before " + (
                to_datetime(until).strftime("%H:%M:%S UTC")
            )
            state = IssueState.FAILED
            self._retry_after(max(0.0, until - now))
        self._store.finish(
            plan.addresses,
            result.outcome,
            result.detail,
            next_state=state,
            next_attempt_at=until,
            reason=reason,
        )
        logger.warning("{}: {}", service, reason)
        self._on_change(True)

    def _step(self, step: Step, service: str, plan: Plan, affected: set[str]) -> StepResult:
        spec = self._desired.services[service]
        started = time.monotonic()
        issue = self._issue_for(step, service, plan)
        try:
            containers = self._observe().of(service)
            # the containers that drifted; for a log error of a running service, all of them
            targets = (
                [c for c in containers if c.name in affected]
                or _not_ready(containers)
                or list(containers)
            )
            try:
                with self.activity.acting(service):
                    if step.runbook is not None:
                        detail = self._run_runbook(step, spec, targets, issue)
                    else:
                        detail = self._actuator.run(step.action, spec, targets, issue=issue)
            finally:
                self.last_action_at = time.monotonic()
        except (EngineError, StepFailed) as exc:
            result = StepResult(Outcome.ERROR, str(exc))
        else:
            # an error logged while the step ran (a client racing the fix) is not a recurrence
            done = to_datetime(self._clock())
            check = verify(
                spec,
                self._observe,
                self._clock,
                self._wait,
                hold=max(spec.min_ready, self._settings.log_quiet if plan.quiet else 0.0),
                recurred=lambda: self._recurred(plan.quiet, done),
            )
            outcome = (
                Outcome.SUCCESS
                if check.ok
                else Outcome.CANCELLED
                if check.cancelled
                else Outcome.FAILURE
            )
            result = StepResult(outcome, f"{detail}; {check.detail}")
        self._metrics.remediation_done(
            service, step.action, result.outcome, time.monotonic() - started
        )
        return result

    def _run_runbook(
        self,
        step: Step,
        spec: ServiceSpec,
        targets: Sequence[ContainerSnapshot],
        issue: Issue | None,
    ) -> str:
        """Run a runbook once per cause: several services may log the same missing
        database; the first to get there fixes it, the others see it done."""
        runbook = step.runbook
        assert runbook is not None
        captures = tuple(sorted(issue.captures.items())) if issue is not None else ()
        key = (runbook.name, captures)
        with self._runbooks_lock:
            lock = self._runbook_locks.setdefault(runbook.name, threading.Lock())
        with lock:
            done = self._runbook_done.get(key)
            if done is not None and issue is not None and issue.last_seen <= done:
                return f"runbook {runbook.name} already ran at {done:%H:%M:%S} UTC"
            detail = self._actuator.run(step.action, spec, targets, runbook=runbook, issue=issue)
            self._runbook_done[key] = to_datetime(self._clock())
            return detail

    def _issue_for(self, step: Step, service: str, plan: Plan) -> Issue | None:
        """The issue a runbook or hook is about (its captures and its JSON)."""
        candidates = [self._store.get(fp) for fp in plan.addresses]
        issues = [i for i in candidates if i is not None]
        if step.runbook is not None:
            for issue in issues:
                if step.runbook.applies_to(service, issue.pattern_id):
                    return issue
        return issues[0] if issues else None

    def _recurred(self, fingerprints: Sequence[str], since: datetime) -> str | None:
        for fp in fingerprints:
            issue = self._store.get(fp)
            if issue is not None and issue.last_seen > since:
                return issue.title
        return None

    def _count_step(self) -> None:
        with self._steps_lock:
            self.steps_taken += 1


def _copy(history: ServiceHistory) -> ServiceHistory:
    return history.model_copy(deep=True)


def _not_ready(containers: Sequence[ContainerSnapshot]) -> list[ContainerSnapshot]:
    return [c for c in containers if c.status != "running" or c.health == "unhealthy"]
