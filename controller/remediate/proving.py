"""Proving a step that was taken: the first thing every reconcile of a service does.

``verify.prove`` says where the step stands (pure); this records what it says: pending
(the reconcile comes back), proven (its issues resolve: "fixed by restart", and a cause
its runbook removed resolves for every service that logged it; a rollback resolves them
as "rolled back from X to Y because Z", never "fixed", and the service then runs its
snapshot), or failed (its issues fail and the reconcile decides anew at once). A step
whose command was running when an earlier run of the controller died is waited for while
the engine may still be carrying it out, then proven like any other.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from controller.issues.store import IssueStore
from controller.logfields import about, of_fault
from controller.metrics import Metrics
from controller.model import (
    Action,
    Clock,
    ContainerSnapshot,
    IssueSource,
    IssueState,
    ObservedState,
    Outcome,
    ServiceSpec,
    StepRecord,
    engine_time,
    to_datetime,
)
from controller.remediate.records import Records
from controller.remediate.results import Done, RequeueAfter, Result
from controller.remediate.revert import Reverter
from controller.remediate.verify import instance, prove


class Prover:
    def __init__(
        self,
        *,
        store: IssueStore,
        records: Records,
        reverter: Reverter,
        metrics: Metrics,
        clock: Clock,
        on_change: Callable[[bool], None],
    ) -> None:
        self._store = store
        self._records = records
        self._reverter = reverter
        self._metrics = metrics
        self._clock = clock
        self._on_change = on_change

    def prove(self, spec: ServiceSpec, step: StepRecord, observed: ObservedState) -> Result | None:
        """Requeue while pending, Done when proven, None when it failed (decide anew)."""
        service, now = spec.name, to_datetime(self._clock())
        containers = observed.of(service)
        if step.finished_at is None:  # the controller stopped while the command ran
            left = self._records.command_left(service)
            if left > 0 and not _started_since(containers, step.started_at):
                # the engine may still be carrying it out (a stop's grace period)
                return RequeueAfter(min(left, 5.0) + 0.05, "its command may still be at work")
            self._records.command_seen_over(service)
            step = _carried_out(step, containers, now)
            self._records.step_progress(service, step)
        recurred = self._recurred(step.quiet, step.finished_at or now)
        proof = prove(step, spec, containers, observed.probes.get(service), now, recurred)
        if proof.pending:
            if proof.ready_since != step.ready_since:
                moved = step.model_copy(update={"ready_since": proof.ready_since})
                self._records.step_progress(service, moved)
            return RequeueAfter(proof.recheck, "verifying")
        self._records.step_ended(service, fixed=proof.proven)
        if step.action is Action.ROLLBACK:
            self._reverter.done(service, proven=proof.proven)
        if proof.proven:
            reason = step.proven_as or f"fixed by {step.label}"
            self._ended(spec, step, now, Outcome.SUCCESS, proof.detail, reason)
            if step.action is Action.RUNBOOK:
                self._resolve_cause(step)
            return Done("fixed")
        verb = "did not take" if step.action is Action.ROLLBACK else "did not fix it"
        self._ended(
            spec,
            step,
            now,
            Outcome.FAILURE,
            proof.failed,
            f"{step.label} {verb}: {proof.failed}",
        )
        return None

    def _ended(
        self,
        spec: ServiceSpec,
        step: StepRecord,
        now: datetime,
        outcome: Outcome,
        detail: str,
        reason: str,
    ) -> None:
        """The step's issues resolve (a success) or fail, and the metrics and log say so."""
        fixed = outcome is Outcome.SUCCESS
        self._store.finish(
            step.addresses,
            outcome,
            detail,
            next_state=IssueState.RESOLVED if fixed else IssueState.FAILED,
            reason=reason,
        )
        seconds = (now - step.started_at).total_seconds()
        self._metrics.remediation_done(spec.name, step.action, outcome, seconds)
        log = of_fault(spec.name, step.addresses, self._store.get).bind(action=step.action)
        if fixed:
            log.info("{}: {}: {}", spec.name, reason, detail)
        else:
            log.warning("{}: {}", spec.name, reason)
        self._on_change(True)

    def _resolve_cause(self, step: StepRecord) -> None:
        """The runbook removed a cause other services logged too (the missing database):
        their issues of it, not seen since the runbook ran, are fixed with it."""
        for fp in step.addresses:
            issue = self._store.get(fp)
            if issue is None or issue.source is not IssueSource.LOG or not issue.pattern_id:
                continue
            for other in self._store.resolve_cause(
                issue.pattern_id,
                issue.captures,
                step.finished_at or step.started_at,
                f"fixed by {step.label} (run for {issue.service})",
            ):
                about(issue=other, action=step.action).info(
                    "{}: {} fixed by {}", other.service, other.title, step.label
                )

    def _recurred(self, fingerprints: Sequence[str], since: datetime) -> str | None:
        for fp in fingerprints:
            issue = self._store.get(fp)
            if issue is not None and issue.last_seen > since:
                return issue.title
        return None


def _carried_out(
    step: StepRecord, containers: Sequence[ContainerSnapshot], now: datetime
) -> StepRecord:
    """A step whose command an earlier run did not see end, seen done now."""
    return step.model_copy(
        update={
            "finished_at": now,
            "instances": [instance(c) for c in containers if c.status.running],
            "until": max(step.until, now + timedelta(seconds=step.hold + 5.0)),
        }
    )


def _started_since(containers: Sequence[ContainerSnapshot], at: datetime) -> bool:
    """Every container of the service runs, started after ``at``: a command begun then
    (a restart, a recreate) is done."""
    starts = [engine_time(c.started_at) for c in containers if c.status.running]
    return bool(starts) and all(t is not None and t > at for t in starts)
