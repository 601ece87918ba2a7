"""Carrying out one fix step, once the reconciler has decided it.

In order: the step is recorded in the service's record and the issues, and saved,
before its command runs (a controller killed mid-step keeps its backoff and, restarted,
proves the step instead of repeating it); the command runs inside the record's command
span (what the engine does meanwhile is the controller's, not a person's); then the step
is left to be proven against the containers it left running, until its deadline. A
command that fails ends the step at once (``errored``); one that cannot reach the node it
must run on (``NodeUnreachable``) also hands its issues to a person at once. A worker is
busy here only while the command runs.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence

from controller.issues.store import IssueStore
from controller.logfields import about
from controller.metrics import Metrics
from controller.model import (
    Action,
    Clock,
    ContainerSnapshot,
    Health,
    Issue,
    IssueState,
    ObservedState,
    Outcome,
    RemediationSettings,
    ServiceSpec,
    StepRecord,
    to_datetime,
)
from controller.observe.gateway import EngineError, NodeUnreachable
from controller.remediate.plan import Plan, Rung
from controller.remediate.records import Records
from controller.remediate.results import RequeueAfter, Result
from controller.remediate.revert import Reverter
from controller.remediate.strategies import Actuator, StepFailed
from controller.remediate.verify import deadline, instance

# actions that start the service's containers: each one they leave must stay up
STARTS = frozenset(
    {
        Action.START,
        Action.RESTART,
        Action.RECREATE,
        Action.REBUILD,
        Action.UNPAUSE,
        Action.ROLLBACK,
    }
)

# what ``run`` returns when the runbook is running for the same cause on another worker
RUNBOOK_BUSY = -1.0


class StepRunner:
    def __init__(
        self,
        *,
        store: IssueStore,
        records: Records,
        actuator: Actuator,
        reverter: Reverter,
        observe: Callable[[], ObservedState],
        metrics: Metrics,
        settings: RemediationSettings,
        clock: Clock,
        save_now: Callable[[], None],
        on_change: Callable[[bool], None],
    ) -> None:
        self._store = store
        self._records = records
        self._actuator = actuator
        self._reverter = reverter
        self._observe = observe
        self._metrics = metrics
        self._settings = settings
        self._clock = clock
        self._save_now = save_now
        self._on_change = on_change
        self._lock = threading.Lock()
        self.steps_taken = 0
        self.last_action_at = float("-inf")  # monotonic: when the newest command ended

    def run(
        self,
        spec: ServiceSpec,
        plan: Plan,
        rung: Rung,
        containers: Sequence[ContainerSnapshot],
        fault: str,
        hold: float,
    ) -> float:
        """Take ``rung`` of ``plan`` on ``spec``'s service; seconds until its proof is
        worth a look (0: the command failed, decide anew; ``RUNBOOK_BUSY``: another
        service's step runs the same runbook for the same cause now, nothing was done)."""
        if rung.runbook is None:
            return self._run(spec, plan, rung, containers, fault, hold)
        issue = self._issue_for(rung, spec.name, plan)
        cause = (rung.runbook.name, dict(issue.captures) if issue is not None else {})
        if not self._records.claim_runbook(*cause):
            return RUNBOOK_BUSY
        try:
            return self._run(spec, plan, rung, containers, fault, hold)
        finally:
            self._records.release_runbook(*cause)

    def _run(
        self,
        spec: ServiceSpec,
        plan: Plan,
        rung: Rung,
        containers: Sequence[ContainerSnapshot],
        fault: str,
        hold: float,
    ) -> float:
        service = spec.name
        started = to_datetime(self._clock())
        step = StepRecord(
            action=rung.action,
            label=rung.label,
            addresses=list(plan.addresses),
            quiet=list(plan.quiet),
            started_at=started,
            until=deadline(spec, hold, started, containers),
            hold=hold,
            proven_as=rung.outcome,
        )
        self._store.begin(plan.addresses, rung.action)
        self._records.step_started(service, step, fault)
        with self._lock:
            self.steps_taken += 1
        self._save_now()  # the step counts even if the controller dies while it runs
        self._on_change(False)
        issue = self._issue_for(rung, service, plan)
        about(service, issue=issue, action=rung.action).info(
            "{}: {} ({})", service, rung.label, plan.why
        )
        affected = {
            c.name for c in containers if not c.status.running or c.health is Health.UNHEALTHY
        }
        targets = [c for c in containers if c.name in affected] or list(containers)
        try:
            with self._records.commanding(service):
                detail = self._actuator.run(
                    rung.action, spec, targets, runbook=rung.runbook, issue=issue
                )
                if rung.runbook is not None:
                    captures = issue.captures if issue is not None else {}
                    self._records.runbook_ran(service, rung.runbook.name, captures)
            after = self._observe().of(service)
        except NodeUnreachable as exc:  # no retry reaches the node: a person at once
            self._adopt_leftovers(service)
            self.errored(spec, step, str(exc))
            self._hand_over(service, step, str(exc))
            return 0.0
        except (EngineError, StepFailed) as exc:
            self._adopt_leftovers(service)
            self.errored(spec, step, str(exc))
            return 0.0
        finally:
            self.last_action_at = time.monotonic()
        self._records.left_by_us(service, after)
        done = to_datetime(self._clock())
        # what the step started must stay up; what it did not touch only if it was up
        starts = rung.action in STARTS
        carried = step.model_copy(
            update={
                "finished_at": done,
                "instances": [instance(c) for c in after if starts or c.status.running],
                "until": deadline(spec, hold, done, after),
            }
        )
        self._records.step_progress(service, carried)
        self._store.acted(plan.addresses, detail)
        self._on_change(False)
        return min(0.25, hold)

    def resume(self, spec: ServiceSpec, step: StepRecord) -> Result:
        """Carry out, to its end, a step whose command an earlier run of the controller was
        killed in the middle of (a rollback: Compose converges on the snapshot). The same
        step: counted once, one attempt; then proven like any other."""
        service = spec.name
        about(service, action=step.action).warning(
            "{}: {} was cut short when the controller stopped; carrying it out to its end",
            service,
            step.label,
        )
        try:
            with self._records.commanding(service):
                detail = self._actuator.run(step.action, spec, [])
            after = self._observe().of(service)
        except (EngineError, StepFailed) as exc:
            self._adopt_leftovers(service)
            self.errored(spec, step, str(exc))
            return RequeueAfter(0.0, "the step failed; decide anew")
        finally:
            self.last_action_at = time.monotonic()
        self._records.left_by_us(service, after)
        done = to_datetime(self._clock())
        carried = step.model_copy(
            update={
                "finished_at": done,
                "instances": [instance(c) for c in after],
                "until": deadline(spec, step.hold, done, after),
            }
        )
        self._records.step_progress(service, carried)
        self._store.acted(step.addresses, f"{detail} (carried out to its end after a restart)")
        self._on_change(False)
        return RequeueAfter(min(0.25, step.hold), "verifying")

    def errored(self, spec: ServiceSpec, step: StepRecord, error: str) -> None:
        """The step's command failed: the step ends, its issues failed; decide anew."""
        service = spec.name
        self._records.step_ended(service, fixed=False)
        if step.action is Action.ROLLBACK:
            self._reverter.done(service, proven=False)
        self._store.finish(
            step.addresses,
            Outcome.ERROR,
            error,
            next_state=IssueState.FAILED,
            reason=f"{step.label} failed: {error}",
        )
        seconds = (to_datetime(self._clock()) - step.started_at).total_seconds()
        self._metrics.remediation_done(service, step.action, Outcome.ERROR, seconds)
        about(service, action=step.action).warning("{}: {} failed: {}", service, step.label, error)
        self._on_change(True)

    def _hand_over(self, service: str, step: StepRecord, error: str) -> None:
        """A step that cannot run where it must (a node whose engine the controller does
        not reach): its issues go to a person now, not after a backoff and a budget of
        retries that would all fail the same way."""
        reason = f"{step.label} cannot run: {error}"
        if self._store.escalate(step.addresses, reason):
            about(service, action=step.action).warning("{}: needs a human: {}", service, reason)
            self._on_change(True)

    def _adopt_leftovers(self, service: str) -> None:
        """A command that failed may have left a container created, never started."""
        with contextlib.suppress(EngineError):
            self._records.left_by_us(service, self._observe().of(service))

    def _issue_for(self, rung: Rung, service: str, plan: Plan) -> Issue | None:
        """The issue a runbook or hook is about (its captures and its JSON)."""
        candidates = [self._store.get(fp) for fp in plan.addresses]
        issues = [i for i in candidates if i is not None]
        if rung.runbook is not None:
            for issue in issues:
                if rung.runbook.applies_to(service, issue.pattern_id):
                    return issue
        return issues[0] if issues else None
