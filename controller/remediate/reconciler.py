"""Reconcile one service: short, idempotent, level-triggered, like controller-runtime's.

``reconcile(service)`` re-reads the service from the engine and returns what the queue
should do with its key: ``Done`` (nothing to wait for), ``RequeueAfter(seconds)`` (look
again then: a proof is pending, a backoff runs, Docker's restart policy is at work) or
``Failed(reason)`` (the engine did not answer: the queue retries with its rate limiter).
Nothing here waits for the world to change; a worker is busy only while a docker or
compose command runs. Every event about the service and every pass queues it again.

One call, in order:

1. A step carried out earlier and not yet proven: prove it now (``verify.prove``).
   Pending: requeue. Proven: the issues resolve, done. Failed (the service died again,
   turned unhealthy, the error came back, the deadline passed): recorded at once, and
   what is wrong now decides the next step below.
2. What is wrong now: the drifts still true and the log errors still recurring.
3. A person's operation or stop: hands off, reported.
4. Dependencies not ready: wait for them.
5. The plan (``plan.make_plan``): only log errors that explain a crash are blamed
   (``blame.explains``); a runbook that already ran for its cause is not a step; while
   Docker's restart policy restarts the service the controller adds no restart.
6. The budget and the backoff (``limiter``): a human, or requeue when the backoff ends.
7. The next rung not yet tried in this incident: recorded (and saved) before it runs,
   run, then left to be proven.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from loguru import logger

from controller.issues.store import ACTIONABLE, IssueStore
from controller.metrics import Metrics
from controller.model import (
    Action,
    Clock,
    ContainerSnapshot,
    DesiredState,
    Drift,
    DriftKind,
    Issue,
    IssueSource,
    IssueState,
    ObservedState,
    Outcome,
    ServiceHistory,
    ServiceSpec,
    Verification,
    engine_time,
    to_datetime,
)
from controller.observe.gateway import EngineError
from controller.observe.lines import parse_timestamp
from controller.reconcile import drifts_of, ready_in
from controller.remediate.activity import OperatorActivity
from controller.remediate.blame import explains
from controller.remediate.crashes import crash_runs
from controller.remediate.limiter import RateLimiter, at
from controller.remediate.plan import CRASHES, Plan, Step, make_plan
from controller.remediate.strategies import Actuator, StepFailed, primary
from controller.remediate.verify import deadline, instance, prove

POLICIES = frozenset({"always", "unless-stopped", "on-failure"})
BLIP_PLAN = "left to heal on its own first (--blip-seconds)"
# actions that start the service's containers: each one they leave must stay up
STARTS = frozenset({Action.START, Action.RESTART, Action.RECREATE, Action.REBUILD, Action.UNPAUSE})
DOCKER_GRACE = 2.0  # seconds Docker gets to begin restarting a container its policy covers
WATCH_DOCKER = 10.0  # look at a crash loop Docker handles at least this often
_PERSON_KINDS = frozenset({DriftKind.EXITED, DriftKind.MISSING, DriftKind.PAUSED})


@dataclass(frozen=True, slots=True)
class Done:
    why: str = ""


@dataclass(frozen=True, slots=True)
class RequeueAfter:
    seconds: float
    why: str = ""


@dataclass(frozen=True, slots=True)
class Failed:
    reason: str


Result = Done | RequeueAfter | Failed


def blip_left(issues: Sequence[Issue], blip: float, now: float) -> float:
    """Seconds until these issues are no longer a blip that may heal on its own (0: act
    now). Only drifts wait, and only until the oldest of them is ``blip`` seconds old."""
    if blip <= 0 or not issues or any(i.source is not IssueSource.DRIFT for i in issues):
        return 0.0
    oldest = max(now - i.opened_at.timestamp() for i in issues)
    return max(0.0, blip - oldest)


def _started_since(containers: Sequence[ContainerSnapshot], at: datetime) -> bool:
    """Every container of the service runs, started after ``at``: a command begun then
    (a restart, a recreate) is done."""
    starts = [engine_time(c.started_at) for c in containers if c.status == "running"]
    return bool(starts) and all(t is not None and t > at for t in starts)


def restarts_policy(spec: ServiceSpec) -> bool:
    """Docker's restart policy brings the service's containers back when they die."""
    return _policy(spec) in POLICIES


def stable_after(spec: ServiceSpec) -> float:
    """How long a service must stay ready for its incident to be over: ``min_ready``, and
    for a service with a restart policy at least the 10 s after which Docker itself calls
    a restart successful (a crash loop is one incident, not one per cycle)."""
    policy = spec.restart.split(":", 1)[0]
    return max(spec.min_ready, 10.0 if policy in POLICIES else 0.0)


class Reconciler:
    def __init__(
        self,
        *,
        desired: DesiredState,
        store: IssueStore,
        observe: Callable[[], ObservedState],
        actuator: Actuator,
        limiter: RateLimiter,
        metrics: Metrics,
        activity: OperatorActivity,
        clock: Clock,
        dry_run: bool = False,
        blip: float = 0.0,
        never_ready: Callable[[ContainerSnapshot], bool] = lambda c: True,
        on_change: Callable[[bool], None] = lambda finished: None,
        save_now: Callable[[], None] = lambda: None,
        settle_logs: Callable[[Sequence[str], float], object] = lambda ids, timeout: None,
    ) -> None:
        self._desired = desired
        self._settings = desired.remediation
        self._store = store
        self._observe = observe
        self._actuator = actuator
        self._limiter = limiter
        self._metrics = metrics
        self.activity = activity
        self._clock = clock
        self._dry_run = dry_run
        self._blip = blip
        self._never_ready = never_ready
        self._on_change = on_change
        self._save_now = save_now
        self._settle_logs = settle_logs
        self._lock = threading.Lock()
        self.steps_taken = 0
        self.last_action_at = float("-inf")  # monotonic: when the newest command ended
        self._runbook_done: dict[tuple[str, tuple[tuple[str, str], ...]], datetime] = {}

    # --- the reconcile ------------------------------------------------------------------

    def reconcile(self, service: str) -> Result:
        spec = self._desired.services[service]
        try:
            observed = self._observe()
        except EngineError as exc:
            return Failed(f"cannot observe: {exc}")
        pending = self._limiter.history(service).verifying
        if pending is not None:
            result = self._prove(spec, pending, observed)
            if result is not None:
                return result
        return self._next_step(spec, observed)

    # --- 1. a step to prove -------------------------------------------------------------

    def _prove(
        self, spec: ServiceSpec, step: Verification, observed: ObservedState
    ) -> Result | None:
        """Requeue while pending, Done when proven, None when it failed (decide anew)."""
        service, now = spec.name, to_datetime(self._clock())
        containers = observed.of(service)
        if step.finished_at is None:  # the controller stopped while the command ran
            left = self.activity.acting_left(service)
            if left > 0 and not _started_since(containers, step.started_at):
                # the engine may still be carrying it out (a stop's grace period)
                return RequeueAfter(min(left, 5.0) + 0.05, "its command may still be at work")
            self.activity.assumed_over(service)
            step = self._carried_out(step, containers, now)
            self._limiter.step_carried_out(service, step)
        recurred = self._recurred(step.quiet, step.finished_at or now)
        proof = prove(step, spec, containers, observed.probes.get(service), now, recurred)
        if proof.pending:
            if proof.ready_since != step.ready_since:
                self._limiter.step_carried_out(
                    service, step.model_copy(update={"ready_since": proof.ready_since})
                )
            return RequeueAfter(proof.recheck, "verifying")
        seconds = (now - step.started_at).total_seconds()
        if proof.proven:
            self._limiter.step_ended(service, self._clock(), fixed=True)
            self._store.finish(
                step.addresses,
                Outcome.SUCCESS,
                proof.detail,
                next_state=IssueState.RESOLVED,
                reason=f"fixed by {step.label}",
            )
            self._metrics.remediation_done(service, step.action, Outcome.SUCCESS, seconds)
            logger.info("{}: fixed by {}: {}", service, step.label, proof.detail)
            if step.action is Action.RUNBOOK:
                self._resolve_cause(step)
            self._on_change(True)
            return Done("fixed")
        self._limiter.step_ended(service, self._clock(), fixed=False)
        self._store.finish(
            step.addresses,
            Outcome.FAILURE,
            proof.failed,
            next_state=IssueState.FAILED,
            reason=f"{step.label} did not fix it: {proof.failed}",
        )
        self._metrics.remediation_done(service, step.action, Outcome.FAILURE, seconds)
        logger.warning("{}: {} did not fix it: {}", service, step.label, proof.failed)
        self._on_change(True)
        return None

    def _resolve_cause(self, step: Verification) -> None:
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
                logger.info("{}: {} fixed by {}", other.service, other.title, step.label)

    @staticmethod
    def _carried_out(
        step: Verification, containers: Sequence[ContainerSnapshot], now: datetime
    ) -> Verification:
        return step.model_copy(
            update={
                "finished_at": now,
                "instances": [instance(c) for c in containers if c.status == "running"],
                "until": max(step.until, now + timedelta(seconds=step.hold + 5.0)),
            }
        )

    def _recurred(self, fingerprints: Sequence[str], since: datetime) -> str | None:
        for fp in fingerprints:
            issue = self._store.get(fp)
            if issue is not None and issue.last_seen > since:
                return issue.title
        return None

    # --- 2..7. the next step ------------------------------------------------------------

    def _next_step(self, spec: ServiceSpec, observed: ObservedState) -> Result:
        service = spec.name
        drifts, logs = self._work_of(spec, observed)
        if not drifts and not logs:
            return Done()
        containers = observed.of(service)
        held = self._left_to_people(spec, drifts, containers)
        if held is not None:
            return held
        actionable = [i for i in self._store.of_service(service) if i.state in ACTIONABLE]
        wait = blip_left(actionable, self._blip, self._clock())
        if wait > 0:
            if self._store.note([i.fingerprint for i in actionable], plan=BLIP_PLAN):
                logger.info("{}: {} for {:.1f} s", service, BLIP_PLAN, wait)
            return RequeueAfter(wait, "a blip may heal on its own")
        waiting = self._unready_dependencies(service, observed)
        if waiting:
            fingerprints = [d.fingerprint for d in drifts] + [i.fingerprint for i in logs]
            text = f"waits until {', '.join(waiting)} is ready"
            if self._store.note(fingerprints, plan=text, waiting_for=waiting):
                logger.info("{}: waiting for {} before fixing it", service, ", ".join(waiting))
            return Done("waiting for dependencies")
        crashed = [c for c in containers if c.status in ("exited", "dead", "restarting")]
        if any(d.kind in CRASHES for d in drifts) and crashed:
            self._limiter.crashed(service, crash_runs(crashed))
            # what it printed before it died says whether a restart can help: read it all
            self._settle_logs([c.id for c in crashed], 2.0)
            drifts, logs = self._work_of(spec, observed)
        docker = self._docker_restarting(spec, containers)
        if docker is not None:
            return docker
        plan = self._plan(
            spec, drifts, logs, crashed, docker_restarting=self._in_policy(spec, containers)
        )
        if plan.hand_over:
            if self._store.escalate(plan.hand_over_fingerprints, plan.hand_over):
                logger.warning("{}: needs a human: {}", service, plan.hand_over)
                self._on_change(True)
            return Done("needs a human")
        if plan.docker_restarting and not plan.steps:
            return self._watch_docker(spec, plan, containers)
        if not plan.steps:
            return Done("reported only")
        if self._dry_run:
            self._note_dry_run(service, plan)
            return Done("dry run")
        return self._take_step(spec, plan, containers)

    def _work_of(
        self, spec: ServiceSpec, observed: ObservedState
    ) -> tuple[list[Drift], list[Issue]]:
        """The drifts that are still true and the log issues still recurring, unlinked."""
        now = to_datetime(self._clock())
        recent = now - timedelta(seconds=self._settings.log_active)
        mine = [
            i
            for i in self._store.of_service(spec.name)
            if i.state in (IssueState.OPEN, IssueState.FAILED) and not i.caused_by
        ]
        drift_fps = {i.fingerprint for i in mine if i.source is IssueSource.DRIFT}
        drifts = [d for d in drifts_of(spec, observed) if d.fingerprint in drift_fps]
        logs = [i for i in mine if i.source is IssueSource.LOG and i.last_seen >= recent]
        return drifts, logs

    def _left_to_people(
        self, spec: ServiceSpec, drifts: Sequence[Drift], containers: Sequence[ContainerSnapshot]
    ) -> Result | None:
        """Done when a person's operation holds the service or a person stopped it."""
        service = spec.name
        fingerprints = [d.fingerprint for d in drifts]
        operation = self.activity.operation(service, containers)
        if operation:
            overdue = self.activity.abandoned(service)
            if overdue > 0:
                reason = (
                    f"a docker/compose operation on {service} looks abandoned ({operation}); "
                    "the controller leaves it to a person"
                )
                if self._store.escalate(fingerprints, reason):
                    logger.warning("{}: {}", service, reason)
                    self._on_change(True)
                return Done("a person's operation, abandoned")
            plan = f"waits: a person's docker/compose operation is in progress ({operation})"
            if self._store.note(fingerprints, plan=plan):
                logger.info("{}: {}; not touching it", service, plan)
            return RequeueAfter(-overdue, "a person's operation")  # events requeue it sooner
        person = self.activity.stopped_by_person(service)
        if person and not spec.enforce and drifts and _primary_kind(drifts) in _PERSON_KINDS:
            verb = "paused" if person == "pause" else "stopped"
            reason = (
                f"{service} was {verb} by a person: the controller leaves it alone "
                f"(declare services.{service}.enforce: true to have it brought back)"
            )
            if self._store.escalate(fingerprints, reason):
                logger.warning("{}: left alone: {}", service, reason)
                self._on_change(True)
            return Done("stopped by a person")
        return None

    def _unready_dependencies(self, service: str, observed: ObservedState) -> list[str]:
        """Required dependencies not ready, or whose own fix is still being proven."""
        specs = self._desired.services
        return [
            dep
            for dep in specs[service].depends_on
            if dep in specs
            and specs[dep].required
            and (
                not ready_in(specs[dep], observed)
                or self._limiter.history(dep).verifying is not None
            )
        ]

    def _in_policy(self, spec: ServiceSpec, containers: Sequence[ContainerSnapshot]) -> bool:
        """Docker's restart policy is restarting the service now (a container of it is in
        its restart delay), so the controller adds no restart of its own."""
        return _policy(spec) in POLICIES and any(c.status == "restarting" for c in containers)

    def _docker_restarting(
        self, spec: ServiceSpec, containers: Sequence[ContainerSnapshot]
    ) -> Result | None:
        """A container that just exited under a restart policy: give Docker a moment to
        begin its restart before deciding that it will not (``docker kill``, the limit of
        ``on-failure:N``, exit 0 under ``on-failure``)."""
        if _policy(spec) not in POLICIES or self._in_policy(spec, containers):
            return None
        now = self._clock()
        for c in containers:
            if c.status != "exited" or (_policy(spec) == "on-failure" and c.exit_code == 0):
                continue
            ended = _epoch(c.finished_at)
            if ended is not None and 0 <= now - ended < DOCKER_GRACE:
                return RequeueAfter(DOCKER_GRACE - (now - ended), "Docker may restart it")
        return None

    def _plan(
        self,
        spec: ServiceSpec,
        drifts: Sequence[Drift],
        logs: Sequence[Issue],
        crashed: Sequence[ContainerSnapshot],
        *,
        docker_restarting: bool,
    ) -> Plan:
        history = self._limiter.history(spec.name)
        causes = [i for i in logs if explains(i, crashed, self._never_ready)]
        runbooks = tuple(
            rb
            for rb in self._settings.runbooks
            if not any(
                self._ran_for(rb.name, i) for i in logs if rb.applies_to(spec.name, i.pattern_id)
            )
        )
        settings = replace(self._settings, runbooks=runbooks)
        return make_plan(
            spec,
            drifts,
            logs,
            settings,
            history.learned,
            spec.has_build,
            causes=causes,
            docker_restarting=docker_restarting,
        )

    def _ran_for(self, runbook: str, issue: Issue) -> bool:
        """The runbook already ran for this cause since the error was last seen."""
        key = (runbook, tuple(sorted(issue.captures.items())))
        with self._lock:
            done = self._runbook_done.get(key)
        return done is not None and issue.last_seen <= done

    def _watch_docker(
        self, spec: ServiceSpec, plan: Plan, containers: Sequence[ContainerSnapshot]
    ) -> Result:
        """Docker's restart policy is looping the service: count its restarts against the
        budget, say so, and hand it to a human when the loop does not converge."""
        service = spec.name
        restarts = max((c.restart_count for c in containers), default=0)

        def base(history: ServiceHistory) -> int:
            if history.policy_restarts_from is None or history.policy_restarts_from > restarts:
                history.policy_restarts_from = restarts
            return history.policy_restarts_from

        done = restarts - self._limiter.edit(service, base)
        budget = self._limiter.policy.budget
        if done >= budget:
            reason = (
                f"Docker's restart policy ({spec.restart}) restarted {service} {done} times "
                f"and it keeps failing ({plan.why}): needs a human"
            )
            if self._store.escalate(plan.addresses, reason):
                logger.warning("{}: {}", service, reason)
                self._on_change(True)
            return Done("Docker's loop did not converge")
        text = (
            f"Docker's restart policy ({spec.restart}) is restarting it ({done} restart(s) "
            f"so far); the controller adds no restart of its own and hands it to a human "
            f"after {budget}"
        )
        if self._store.note(plan.addresses, plan=text):
            logger.info("{}: {}", service, text)
        return RequeueAfter(WATCH_DOCKER, "Docker's restart policy is at work")

    def _note_dry_run(self, service: str, plan: Plan) -> None:
        left = self._limiter.budget_left(service, self._clock())
        used = self._limiter.policy.budget - left
        text = (
            f"would {plan.describe} {service} because {plan.why} (fix {used + 1} of "
            f"{self._limiter.policy.budget} allowed per "
            f"{self._limiter.policy.budget_window / 60:g} min; eligible now)"
        )
        if self._store.note(plan.addresses, plan=text):
            logger.info("{}: dry run: {}", service, text)

    # --- 6..7. the budget, the backoff, one step ----------------------------------------

    def _take_step(
        self, spec: ServiceSpec, plan: Plan, containers: Sequence[ContainerSnapshot]
    ) -> Result:
        service, now = spec.name, self._clock()
        fault = plan.addresses[0] if plan.addresses else ""
        gate = self._limiter.gate(service, now, fault)
        if gate.exhausted:
            if self._store.escalate(plan.addresses, gate.exhausted):
                logger.warning("{}: {}", service, gate.exhausted)
                self._on_change(True)
            return Done("budget spent")
        if gate.wait_until is not None:
            when = at(gate.wait_until.timestamp())
            text = f"backing off: next fix ({plan.describe}) not before {when}"
            if self._store.defer(plan.addresses, gate.wait_until, text):
                logger.info("{}: {}", service, text)
            return RequeueAfter(max(0.0, gate.wait_until.timestamp() - now), "backing off")
        history = self._limiter.history(service)
        tried = history.tried if history.fault == fault else []
        untried = [s for s in plan.steps if s.label not in tried]
        if not untried:
            self._limiter.new_ladder(service)
            untried = list(plan.steps)
        return self._run(spec, plan, untried[0], containers, fault)

    def _run(
        self,
        spec: ServiceSpec,
        plan: Plan,
        step: Step,
        containers: Sequence[ContainerSnapshot],
        fault: str,
    ) -> Result:
        service = spec.name
        now = self._clock()
        started = to_datetime(now)
        hold = max(  # and long enough to outlive the crash pattern it had
            self._limiter.hold(service, spec.min_ready, _policy(spec) in POLICIES),
            self._settings.log_quiet if plan.quiet else 0.0,
        )
        record = Verification(
            action=step.action,
            label=step.label,
            addresses=list(plan.addresses),
            quiet=list(plan.quiet),
            started_at=started,
            until=deadline(spec, hold, started, containers),
            hold=hold,
        )
        self._store.begin(plan.addresses, step.action)
        self._limiter.step_started(service, record, now, fault)
        with self._lock:
            self.steps_taken += 1
        self._save_now()  # the step counts even if the controller dies while it runs
        self._on_change(False)
        logger.info("{}: {} ({})", service, step.label, plan.why)
        issue = self._issue_for(step, service, plan)
        affected = {c.name for c in containers if c.status != "running" or c.health == "unhealthy"}
        targets = [c for c in containers if c.name in affected] or list(containers)
        try:
            with self.activity.acting(service):
                if step.runbook is not None:
                    detail = self._run_runbook(step, spec, targets, issue)
                else:
                    detail = self._actuator.run(step.action, spec, targets, issue=issue)
            after = self._observe().of(service)
        except (EngineError, StepFailed) as exc:
            self._adopt_leftovers(service)
            return self._errored(spec, record, str(exc))
        finally:
            self.last_action_at = time.monotonic()
        self.activity.left_by_us(after)
        done = to_datetime(self._clock())
        # what the step started must stay up; what it did not touch only if it was up
        starts = step.action in STARTS
        carried = record.model_copy(
            update={
                "finished_at": done,
                "instances": [instance(c) for c in after if starts or c.status == "running"],
                "until": deadline(spec, hold, done, after),
            }
        )
        self._limiter.step_carried_out(service, carried)
        self._store.acted(
            plan.addresses,
            detail,
            carried.until,
            f"verifying until {at(carried.until.timestamp())}",
        )
        self._on_change(False)
        return RequeueAfter(min(0.25, hold), "verifying")

    def _adopt_leftovers(self, service: str) -> None:
        """A command that failed may have left a container created, never started."""
        with contextlib.suppress(EngineError):
            self.activity.left_by_us(self._observe().of(service))

    def _errored(self, spec: ServiceSpec, record: Verification, error: str) -> Result:
        service = spec.name
        self._limiter.step_ended(service, self._clock(), fixed=False)
        self._store.finish(
            record.addresses,
            Outcome.ERROR,
            error,
            next_state=IssueState.FAILED,
            reason=f"{record.label} failed: {error}",
        )
        seconds = (to_datetime(self._clock()) - record.started_at).total_seconds()
        self._metrics.remediation_done(service, record.action, Outcome.ERROR, seconds)
        logger.warning("{}: {} failed: {}", service, record.label, error)
        self._on_change(True)
        return RequeueAfter(0.0, "the step failed; decide anew")

    def _run_runbook(
        self,
        step: Step,
        spec: ServiceSpec,
        targets: Sequence[ContainerSnapshot],
        issue: Issue | None,
    ) -> str:
        runbook = step.runbook
        assert runbook is not None
        detail = self._actuator.run(step.action, spec, targets, runbook=runbook, issue=issue)
        captures = tuple(sorted(issue.captures.items())) if issue is not None else ()
        with self._lock:
            self._runbook_done[(runbook.name, captures)] = to_datetime(self._clock())
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


def _policy(spec: ServiceSpec) -> str:
    return spec.restart.split(":", 1)[0]


def _primary_kind(drifts: Sequence[Drift]) -> DriftKind:
    return primary(drifts).kind


def _epoch(stamp: str) -> float | None:
    nanos = parse_timestamp(stamp.encode()) if stamp else None
    return None if nanos is None else nanos / 1e9
