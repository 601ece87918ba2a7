"""Reconcile one service: short, idempotent, level-triggered, like controller-runtime's.

``reconcile(service)`` re-reads the service from the engine and returns what the queue
should do with its key (``results``). It decides; ``StepRunner`` carries a step out and
``Prover`` records what a proof says. Nothing here waits for the world to change, but
for one thing: after a crash, up to 2 s for the logs of the run that died to be read to
their end (what it printed says whether a restart can help); a busy engine that has not
delivered them by then gets the reconcile queued again, until 15 s after the death.
Every event about the service and every pass queues it again.

One call, in order:

1. A step taken earlier and not yet proven: prove it now (``Prover``) (a rollback an
   earlier run was killed in the middle of, and which did not end, is first carried out
   to its end, as the same step). Pending: requeue. Proven: the issues resolve, done.
   Failed (the service died again, turned unhealthy, the error came back, the deadline
   passed): recorded at once, and what is wrong now decides the next step below.
2. What is wrong now: the drifts still true and the log errors still recurring.
3. A person's operation or stop: hands off, reported (``Deference``); so is a task Swarm
   is placing or starting (its work in progress, for ``operation_timeout`` at most).
3a. A change judged bad (``changes``, ``plan.change_plan``): rolled back as one step
   (``rollback: auto``, after its dependencies' own rollbacks), held back without a step
   (its image never existed), or handed to a person with the command that reverts it.
   While a change is still under watch its verdict decides: no other step is taken.
4. Dependencies not ready (or in a person's operation): wait for them. A health verdict
   taken before a dependency was ready again waits for the next check (``dependents``).
5. The plan (``plan.make_plan``): only log errors that explain a crash are blamed
   (``blame.explains``); a runbook that already ran for its cause is not a step; while
   Docker's restart policy restarts the service the controller adds no restart.
6. The budget and the backoff (``throttle``, through the service's record): a human, or
   requeue when the backoff ends.
7. The next rung not yet tried in this incident, with the hold its proof needs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING

from loguru import logger

from controller.drift import drifts_of, ready_in
from controller.issues.store import ACTIONABLE, IssueStore
from controller.logfields import of_fault
from controller.model import (
    Action,
    ChangeVerdict,
    Clock,
    ContainerSnapshot,
    DesiredState,
    Drift,
    FindingKind,
    Issue,
    IssueSource,
    IssueState,
    ObservedState,
    Outcome,
    RemediationSettings,
    RollbackMode,
    ServiceSpec,
    Severity,
    StepRecord,
    SwarmPause,
    at_utc,
    engine_time,
    to_datetime,
)
from controller.observe.gateway import EngineError
from controller.observe.swarmtasks import compose_name
from controller.remediate.blame import explains, why_not
from controller.remediate.crashes import crash_runs
from controller.remediate.deference import Deference, docker_restarting
from controller.remediate.dependents import judged_before
from controller.remediate.lastgood import LastGood, bad_change, identity_of, target
from controller.remediate.plan import (
    CRASHES,
    RESTART_CANNOT_FIX,
    Plan,
    change_plan,
    make_plan,
)
from controller.remediate.proving import Prover
from controller.remediate.records import Records
from controller.remediate.results import Done, Failed, RequeueAfter, Result
from controller.remediate.revert import Reverter
from controller.remediate.runner import RUNBOOK_BUSY, StepRunner
from controller.remediate.swarmchanges import PAUSED, SWEPT, forced_paused, swarm_plan
from controller.remediate.verify import instance

if TYPE_CHECKING:
    from loguru import Logger

BLIP_PLAN = "left to heal on its own first (--blip-seconds)"
RUNBOOK_WAIT = 0.5  # a look again at a service whose runbook another step is running
LOG_SETTLE_SECONDS = 2.0  # the most a reconcile waits for a crashed run's last log lines
# a busy engine may take longer: the reconcile is then queued again, until this many seconds
# after the death, and only then acts without them (a restart that no error forbids)
LOG_SETTLE_LIMIT = 15.0


def _latest_death(containers: Sequence[ContainerSnapshot]) -> float | None:
    """Epoch seconds of the newest death among ``containers`` (None: the engine says none)."""
    stamps = [t.timestamp() for c in containers if (t := engine_time(c.finished_at))]
    return max(stamps, default=None)


def blip_left(issues: Sequence[Issue], blip: float, now: float) -> float:
    """Seconds until these issues are no longer a blip that may heal on its own (0: act
    now). Only drifts wait, and only until the oldest of them is ``blip`` seconds old."""
    if blip <= 0 or not issues or any(i.source is not IssueSource.DRIFT for i in issues):
        return 0.0
    oldest = max(now - i.opened_at.timestamp() for i in issues)
    return max(0.0, blip - oldest)


def stable_after(spec: ServiceSpec) -> float:
    """How long a service must stay ready for its incident to be over: ``min_ready``, and
    for a service with a restart policy at least the 10 s after which Docker itself calls
    a restart successful (a crash loop is one incident, not one per cycle); its crash
    pattern may ask for more (``Records.hold``)."""
    return max(spec.min_ready, 10.0 if spec.restart.restarts else 0.0)


class Reconciler:
    def __init__(
        self,
        *,
        desired: Callable[[], DesiredState],
        store: IssueStore,
        records: Records,
        lastgood: LastGood,
        reverter: Reverter,
        observe: Callable[[], ObservedState],
        prover: Prover,
        deference: Deference,
        runner: StepRunner,
        clock: Clock,
        dry_run: bool,
        blip: float,
        settle_logs: Callable[[Sequence[ContainerSnapshot], float], bool],
        on_change: Callable[[bool], None],
        paused: Callable[[str], SwarmPause | None] | None = None,
        watching: Callable[[str], bool] | None = None,
    ) -> None:
        self._declared = desired
        self._paused = paused  # on a swarm: the update Swarm paused of a service, if any
        self._watching = watching  # ... and whether its completed update is under watch
        self._store = store
        self._records = records
        self._lastgood = lastgood
        self._reverter = reverter
        self._observe = observe
        self._prover = prover
        self._deference = deference
        self._runner = runner
        self._clock = clock
        self._dry_run = dry_run
        self._blip = blip
        self._settle_logs = settle_logs
        self._unexplained: dict[str, tuple[str, ...]] = {}  # what was said, by service
        self._on_change = on_change

    @property
    def _desired(self) -> DesiredState:
        """The desired state in force (a reload swaps it between passes)."""
        return self._declared()

    @property
    def _settings(self) -> RemediationSettings:
        return self._declared().remediation

    def reconcile(self, service: str) -> Result:
        spec = self._desired.services.get(service)
        if spec is None:  # a reload took it out of the declaration: no longer managed
            return Done("no longer declared")
        try:
            observed = self._observe()
        except EngineError as exc:
            return Failed(f"cannot observe: {exc}")
        pending = self._records.step(service)
        if pending is not None:
            if self._cut_short(spec, pending, observed):
                return self._runner.resume(spec, pending)
            result = self._prover.prove(spec, pending, observed)
            if result is not None:
                return result
        return self._next_step(spec, observed)

    # --- 2..5. what is wrong, who else acts, the plan -----------------------------------

    def _next_step(self, spec: ServiceSpec, observed: ObservedState) -> Result:
        service = spec.name
        drifts, logs = self._work_of(spec, observed)
        bad = self._bad_change(service)
        if not drifts and not logs and bad is None:
            self._records.nothing_to_do(service)
            return Done()
        containers = observed.of(service)
        held = self._deference.to_people(spec, drifts, containers)
        if held is None:
            held = self._deference.to_swarm(spec, drifts, containers)
        if held is not None:
            return held
        if self._paused is not None and (
            bad is not None or any(c.update in PAUSED for c in containers)
        ):
            return self._swarm_paused(spec, bad, drifts, containers, observed)
        if bad is not None:
            return self._roll_back(spec, bad, drifts, containers, observed)
        if self._under_watch(spec):
            fingerprints = [d.fingerprint for d in drifts] + [i.fingerprint for i in logs]
            text = "its new change is under watch: the verdict on it decides"
            if self._records.intend(service, fingerprints, text):
                logger.info("{}: {}", service, text)
            return Done("a change under watch")
        actionable = [i for i in self._store.of_service(service) if i.state in ACTIONABLE]
        wait = blip_left(actionable, self._blip, self._clock())
        if wait > 0:
            if self._records.intend(service, [i.fingerprint for i in actionable], BLIP_PLAN):
                logger.info("{}: {} for {:.1f} s", service, BLIP_PLAN, wait)
            return RequeueAfter(wait, "a blip may heal on its own")
        waiting = self._unready_dependencies(service, observed)
        if waiting:
            fingerprints = [d.fingerprint for d in drifts] + [i.fingerprint for i in logs]
            text = f"waits until {', '.join(waiting)} is ready"
            if self._records.intend(service, fingerprints, text, waiting_for=waiting):
                logger.info("{}: waiting for {} before fixing it", service, ", ".join(waiting))
            return Done("waiting for dependencies")
        back_at = {d: t for d in spec.depends_on if (t := self._store.ready_since(d)) is not None}
        if (stale := judged_before(drifts, containers, back_at, self._clock())) is not None:
            dep, wait = stale
            text = f"waits for its next healthcheck: {dep} was ready again only after its last"
            if self._records.intend(service, [d.fingerprint for d in drifts], text):
                logger.info("{}: {}", service, text)
            return RequeueAfter(wait, "a health verdict older than a dependency's return")
        crashed = [c for c in containers if c.status.down]
        if any(d.kind in CRASHES for d in drifts) and crashed:
            exits = {instance(c): c.exit_code for c in crashed if c.exit_code is not None}
            self._records.crashed(service, crash_runs(crashed), exits)
            if self._records.rules.fail_fast and (repeated := self._records.same_way(service)):
                return self._hand_over(service, [d.fingerprint for d in drifts], repeated)
            # what it printed before it died says whether a restart can help: read it all
            if not self._settle_logs(crashed, LOG_SETTLE_SECONDS):
                died = _latest_death(crashed)
                if died is not None and self._clock() - died < LOG_SETTLE_LIMIT:
                    logger.info("{}: its last log lines are not read yet; deciding after", service)
                    return RequeueAfter(0.5, "the last log lines of the run that died")
            drifts, logs = self._work_of(spec, observed)
        docker = self._deference.to_docker(spec, containers)
        if docker is not None:
            return docker
        plan = self._plan(
            spec, drifts, logs, crashed, docker_restarting=docker_restarting(spec, containers)
        )
        if plan.hand_over:
            return self._hand_over(service, plan.hand_over_fingerprints, plan.hand_over)
        if plan.report:
            if self._records.intend(service, plan.addresses, f"reported: {plan.report}"):
                self._about(service, plan).info("{}: {}", service, plan.report)
            return Done("reported only")
        if plan.docker_restarting and not plan.rungs:
            return self._deference.watch_docker(spec, plan, containers, self._records.rules.budget)
        if not plan.rungs:
            return Done("reported only")
        early = self._before_exhaustion(spec, plan, logs)
        if early is not None:
            return early
        if self._dry_run:
            self._note_dry_run(service, plan)
            return Done("dry run")
        return self._take_step(spec, plan, containers)

    def _hand_over(self, service: str, fingerprints: Sequence[str], reason: str) -> Result:
        self._deference.escalate(service, fingerprints, reason, prefix="needs a human: ")
        return Done("needs a human")

    def _cut_short(self, spec: ServiceSpec, step: StepRecord, observed: ObservedState) -> bool:
        """A rollback whose command an earlier run of the controller did not see end, and
        did not end: it is over in the engine (its window passed), the service does not
        run the snapshot, and no person is at work on it. It is carried out to its end,
        as the same step (Compose converges on the snapshot: a rollback half done is
        done by running it again)."""
        service = spec.name
        if step.action is not Action.ROLLBACK or step.finished_at is not None:
            return False
        if self._records.command_left(service) > 0:
            return False
        record = self._lastgood.get(service)
        snapshot = target(record, record.change) if record.change is not None else None
        containers = observed.of(service)
        return (
            snapshot is not None
            and identity_of(containers) != snapshot.reverts_to
            and not self._records.operation(service, containers)
        )

    # --- 3a. a bad change ----------------------------------------------------------------

    def _bad_change(self, service: str) -> Issue | None:
        """The service's bad-change issue, when it waits to be acted on."""
        issue = self._store.get(bad_change(service))
        return issue if issue is not None and issue.state in ACTIONABLE else None

    def _under_watch(self, spec: ServiceSpec) -> bool:
        """A change of the service has no verdict yet (its drifts are the verdict's)."""
        if spec.rollback.mode is RollbackMode.OFF:
            return False
        if self._watching is not None:
            return self._watching(spec.name)
        return self._lastgood.read(
            spec.name,
            lambda r: r.change is not None and r.change.verdict is ChangeVerdict.PENDING,
        )

    def _roll_back(
        self,
        spec: ServiceSpec,
        bad: Issue,
        drifts: Sequence[Drift],
        containers: Sequence[ContainerSnapshot],
        observed: ObservedState,
    ) -> Result:
        service = spec.name
        record = self._lastgood.get(service)
        change = record.change
        if change is None or change.verdict is not ChangeVerdict.BAD:
            return Done("no bad change")  # superseded: the watch settles its issue
        snapshot = target(record, change)
        plan = change_plan(
            spec,
            bad,
            change,
            drifts,
            snapshot=snapshot,
            command=self._reverter.command(snapshot, service) if snapshot else "",
            rolled_back_before=str(change.after) in record.reverted,
            runs_snapshot=snapshot is not None and record.running == snapshot.identity,
        )
        if plan.hand_over:
            return self._hand_over(service, plan.hand_over_fingerprints, plan.hand_over)
        if plan.hold_back:
            text = self._reverter.held(service)
            self._store.finish(
                plan.addresses, Outcome.SUCCESS, text, next_state=IssueState.RESOLVED, reason=text
            )
            self._on_change(True)
            return Done("held back")
        if self._dry_run:
            self._note_dry_run(service, plan)
            return Done("dry run")
        waiting = self._unready_dependencies(service, observed, rolling_back=True)
        if waiting:
            text = f"rolls back after {', '.join(waiting)}"
            if self._records.intend(service, plan.addresses, text, waiting_for=waiting):
                logger.info("{}: {} (dependencies first)", service, text)
            return Done("waiting for dependencies")
        return self._take_step(spec, plan, containers)

    def _swarm_paused(
        self,
        spec: ServiceSpec,
        bad: Issue | None,
        drifts: Sequence[Drift],
        containers: Sequence[ContainerSnapshot],
        observed: ObservedState,
    ) -> Result:
        """On a swarm, an update Swarm paused (or, ``scope: stack``, one the same operation
        made): its bad-change issue decides (a rollback with ``rollback: auto``,
        dependencies first, else a person told the command). No other step: a forced
        update would carry the update Swarm paused on. A paused forced update (a restart
        whose new tasks failed too) is a person's at once."""
        assert self._paused is not None
        service = spec.name
        try:
            pause = self._paused(service)
        except EngineError as exc:
            return Failed(f"cannot read its update: {exc}")
        if bad is None:
            fingerprints = [d.fingerprint for d in drifts]
            if pause is not None and pause.forced and fingerprints:
                return self._hand_over(service, fingerprints, forced_paused(pause))
            text = "Swarm paused its update: a person's (docker service rollback, or a new deploy)"
            if self._records.intend(service, fingerprints, text):
                logger.info("{}: {}", service, text)
            return Done("Swarm paused its update")
        if pause is None:
            return RequeueAfter(0.5, "its update is no longer paused")
        plan = swarm_plan(spec, bad, drifts, pause)
        if plan.hand_over:
            return self._hand_over(service, plan.hand_over_fingerprints, plan.hand_over)
        if self._dry_run:
            self._note_dry_run(service, plan)
            return Done("dry run")
        waiting = (
            self._unready_dependencies(service, observed, rolling_back=True)
            + self._swept_first(spec, pause, observed)
            if pause.operation
            else []
        )
        if waiting:
            text = f"rolls back after {', '.join(waiting)}"
            if self._records.intend(service, plan.addresses, text, waiting_for=waiting):
                logger.info("{}: {} (dependencies first)", service, text)
            return Done("waiting for dependencies")
        return self._take_step(spec, plan, containers)

    def _before_exhaustion(
        self, spec: ServiceSpec, plan: Plan, logs: Sequence[Issue]
    ) -> Result | None:
        """A restart before a forecast exhaustion waits for the service's quiet window, or
        without one until the forecast is critical; None: it may run now."""
        predicted = [
            i for i in logs if i.kind is FindingKind.PREDICTED and i.fingerprint in plan.addresses
        ]
        if not predicted or any(r.action is not Action.RESTART for r in plan.rungs):
            return None
        window, now = spec.predict.window, self._clock()
        if window is not None:
            wait = window.wait(now)
            text = f"restarts before exhaustion in its quiet window ({window})"
        else:
            wait = 0.0 if any(i.severity is Severity.CRITICAL for i in predicted) else -1.0
            text = "restarts before exhaustion once the forecast is critical"
        if wait == 0.0:
            return None
        if self._records.intend(spec.name, [i.fingerprint for i in predicted], text):
            logger.info("{}: {}", spec.name, text)
        if wait > 0:
            return RequeueAfter(wait, "waiting to restart before exhaustion")
        return Done(text)

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
        logs += [i for i in mine if i.kind is FindingKind.PREDICTED and i.suggested != "none"]
        return drifts, logs

    def _unready_dependencies(
        self, service: str, observed: ObservedState, *, rolling_back: bool = False
    ) -> list[str]:
        """Required dependencies not ready, in a person's operation (being stopped, it
        serves no more; being recreated, its change not seen yet), or whose own fix is still
        being proven; when
        ``rolling_back``, also those with a bad change of their own not yet rolled back
        (dependencies first)."""
        specs = self._desired.services  # one read (a reload may swap it meanwhile)
        own = specs.get(service)
        return [
            dep
            for dep in (own.depends_on if own is not None else ())
            if dep in specs
            and (specs[dep].required or rolling_back)
            and (
                not ready_in(specs[dep], observed)
                or self._records.operation(dep, observed.of(dep))
                or self._records.step(dep) is not None
                or (rolling_back and self._rolling_back(dep))
            )
        ]

    def _swept_first(
        self, spec: ServiceSpec, pause: SwarmPause, observed: ObservedState
    ) -> list[str]:
        """``scope: stack``: the dependencies of ``spec`` the same operation updated that
        still run its update: rolled back first, though their own bad-change issue may
        open a pass later than the paused service's (seen: app rolled back before db)."""
        swept = {compose_name(self._desired.project, name) for name in pause.operation}
        return [
            dep
            for dep in spec.depends_on
            if dep in swept and any(c.update in SWEPT for c in observed.of(dep))
        ]

    def _rolling_back(self, service: str) -> bool:
        """A bad change of ``service`` waits for (or is in) its rollback."""
        issue = self._store.get(bad_change(service))
        return (
            issue is not None
            and issue.active
            and issue.state is not IssueState.NEEDS_HUMAN
            and (spec := self._desired.services.get(service)) is not None
            and spec.rollback.mode is RollbackMode.AUTO
        )

    def _about(self, service: str, plan: Plan) -> Logger:
        """A log line about the plan's issues (the first one's id and fingerprint)."""
        return of_fault(service, plan.addresses, self._store.get)

    def _plan(
        self,
        spec: ServiceSpec,
        drifts: Sequence[Drift],
        logs: Sequence[Issue],
        crashed: Sequence[ContainerSnapshot],
        *,
        docker_restarting: bool,
    ) -> Plan:
        causes = [i for i in logs if explains(i, crashed, self._records.never_ready)]
        for issue in logs:
            if not crashed or issue.category not in RESTART_CANNOT_FIX or issue in causes:
                continue
            said = (issue.fingerprint, *sorted(instance(c) for c in crashed))
            if self._unexplained.get(spec.name) != said:  # once per crash, not per pass
                self._unexplained[spec.name] = said
                logger.info(
                    "{}: its {} error ({}) does not explain the crash: {}",
                    spec.name,
                    issue.category,
                    issue.title,
                    why_not(issue, crashed, self._records.never_ready),
                )
        runbooks = tuple(
            rb
            for rb in self._settings.runbooks
            if not any(
                self._ran_for(rb.name, i) for i in logs if rb.applies_to(spec.name, i.pattern_id)
            )
        )
        return make_plan(
            spec,
            drifts,
            logs,
            replace(self._settings, runbooks=runbooks),
            self._records.learned(spec.name),
            spec.has_build,
            causes=causes,
            docker_restarting=docker_restarting,
        )

    def _ran_for(self, runbook: str, issue: Issue) -> bool:
        """The runbook already ran for this cause since the error was last seen."""
        done = self._records.runbook_last_ran(runbook, issue.captures)
        return done is not None and issue.last_seen <= done

    def _note_dry_run(self, service: str, plan: Plan) -> None:
        rules = self._records.rules
        used = rules.budget - self._records.budget_left(service)
        text = (
            f"would {plan.describe} {service} because {plan.why} (fix {used + 1} of "
            f"{rules.budget} allowed per {rules.budget_window / 60:g} min; eligible now)"
        )
        if self._records.intend(service, plan.addresses, text):
            self._about(service, plan).info("{}: dry run: {}", service, text)

    # --- 6..7. the budget, the backoff, one step ----------------------------------------

    def _take_step(
        self, spec: ServiceSpec, plan: Plan, containers: Sequence[ContainerSnapshot]
    ) -> Result:
        service, now = spec.name, self._clock()
        fault = plan.addresses[0] if plan.addresses else ""
        permit = self._records.permit(service, fault)
        if permit.exhausted:
            if self._store.escalate(plan.addresses, permit.exhausted):
                self._about(service, plan).warning("{}: {}", service, permit.exhausted)
                self._on_change(True)
            return Done("budget spent")
        if permit.wait_until is not None:
            text = f"backing off: next fix ({plan.describe}) not before {at_utc(permit.wait_until)}"
            if self._records.intend(service, plan.addresses, text, backing_off=True):
                self._about(service, plan).info("{}: {}", service, text)
            return RequeueAfter(max(0.0, permit.wait_until.timestamp() - now), "backing off")
        record = self._records.get(service)
        tried = record.ladder.tried if record.throttle.fault == fault else []
        untried = [r for r in plan.rungs if r.label not in tried]
        if not untried:
            self._records.new_ladder(service)
            untried = list(plan.rungs)
        hold = max(  # and long enough to outlive the crash pattern it had
            self._records.hold(service, spec.min_ready, spec.restart.restarts),
            self._settings.log_quiet if plan.quiet else 0.0,
        )
        rung = untried[0]
        if rung.action is Action.ROLLBACK:
            self._lastgood.reverting(service, rung.change)  # saved with the step, before it
        recheck = self._runner.run(spec, plan, rung, containers, fault, hold)
        if recheck == RUNBOOK_BUSY:  # it ran (or failed) for the cause by the next look
            return RequeueAfter(RUNBOOK_WAIT, f"{rung.label} runs for the same cause elsewhere")
        if recheck <= 0:
            return RequeueAfter(0.0, "the step failed; decide anew")
        return RequeueAfter(recheck, "verifying")
