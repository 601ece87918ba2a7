"""What the runtime tells remediation: the engine's events and what each pass saw.

An event about a declared service reconciles it at once; one the controller's own command
did not cause may be a person (a stop, a pause, a start: a person who starts or
recreates a service gets it back from a human hand-over with a fresh budget). Each pass
tells every service's record whether the service was ready, in which container runs (the
throttle's reset, the end of an incident, which runs were ever ready).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from loguru import logger

from controller.issues.store import IssueStore
from controller.model import (
    DesiredState,
    Drift,
    DriftKind,
    IssueState,
    ObservedState,
    Outcome,
    ServiceCondition,
    ServiceSpec,
    ServiceStatus,
)
from controller.remediate.activity import by_swarm
from controller.remediate.pool import WorkerPool
from controller.remediate.reconciler import stable_after
from controller.remediate.records import Records
from controller.remediate.verify import FORCED_UPDATES

# events that mean a person (or their tooling) brought the service back on purpose
_PERSON_STARTS = frozenset({"create", "unpause"})


class Signals:
    def __init__(
        self,
        *,
        desired: Callable[[], DesiredState],
        records: Records,
        store: IssueStore,
        pool: WorkerPool,
    ) -> None:
        self._declared = desired
        self._records = records
        self._store = store
        self._pool = pool
        self._swarm_said: dict[str, str] = {}  # by service: Swarm's operation last logged

    @property
    def _desired(self) -> DesiredState:
        """The desired state in force (a reload swaps it between passes)."""
        return self._declared()

    def event(
        self, service: str, action: str, at: float | None = None, signal: int | None = None
    ) -> None:
        """An engine event about ``service`` (stamped ``at`` by the engine; a kill's
        ``signal``)."""
        spec = self._desired.services.get(service)
        if spec is None:
            return
        ours = self._records.event(service, action, at, signal)
        self._pool.submit(service)
        if ours:
            return
        if action in _PERSON_STARTS or (action == "start" and not spec.restart.restarts):
            if self._swarm_carries_out_step(spec):
                return  # the tasks of the controller's own forced update: its doing
            self._person_acted(service, "a person acted on it")

    def _person_acted(self, service: str, what: str) -> None:
        """A person started, recreated or scaled up the service: a fresh budget; issues
        handed to a human may be fixed again, and a step the controller was proving is
        theirs now: its issues are open again (else nothing would ever prove them)."""
        dropped = self._records.person_acted(service)
        if dropped is not None:
            self._store.finish(
                dropped.addresses,
                Outcome.CANCELLED,
                f"cut short: {what}",
                next_state=IssueState.OPEN,
            )
        if self._store.release(service) or dropped is not None:
            logger.info("{}: {}; the controller may fix it again", service, what)

    def _swarm_carries_out_step(self, spec: ServiceSpec) -> bool:
        """On a swarm, the controller's forced update is carried out by Swarm after its
        command returned: the tasks Swarm creates and starts while the step is proven are
        the step's (``verify`` waits for them), not a person's create or start."""
        if spec.restart.by != "Swarm":
            return False
        step = self._records.step(spec.name)
        return step is not None and step.action in FORCED_UPDATES and step.finished_at is not None

    def frozen(self, observed: ObservedState) -> set[str]:
        """Services a pass must not record for now: a command of the controller runs on
        them, or a person's operation is in progress (what shows is that work; a stop may
        be the first half of a restart), or an event about them was read after the pass
        read the engine (what it saw is older than what the controller knows: the start
        of a restart ends the grace its gap needed; the event asked for the next pass). An
        operation past its timeout is recorded: it looks abandoned, and its issue goes to a
        human."""
        timeout = self._desired.remediation.operation_timeout
        return {
            name
            for name in self._desired.services
            if self._records.command_left(name) > 0
            or self._records.event_after(name, observed.read_at)
            or (self._operation(name, observed) and self._records.abandoned(name, timeout) <= 0)
        }

    def _operation(self, service: str, observed: ObservedState) -> str:
        """Why an operation holds ``service`` ("" none); Swarm's update or rollback is
        logged once as it begins to hold it (its drifts are not recorded meanwhile)."""
        why = self._records.operation(service, observed.of(service))
        swarm = why if by_swarm(why) else ""
        if swarm != self._swarm_said.get(service, ""):
            self._swarm_said[service] = swarm
            if swarm:
                logger.info(
                    "{}: {}: the controller waits and takes no step of its own", service, swarm
                )
        return why

    def dated(self, drifts: Sequence[Drift]) -> list[Drift]:
        """``drifts`` with a person's stop dated from its signal, not the death: a service
        being stopped serves no more (its dependents' faults that began meanwhile are its
        doing, ``causes``)."""
        dated = []
        for drift in drifts:
            began = None
            if drift.kind is DriftKind.EXITED:
                began = self._records.stop_began(drift.service)
            if began is not None and (drift.since is None or began < drift.since):
                drift = replace(drift, since=began)
            dated.append(drift)
        return dated

    def pass_seen(self, statuses: Sequence[ServiceStatus], observed: ObservedState) -> None:
        """Every pass: each declared service ready or not, in which container runs; on a
        swarm, whether a person scaled it below its declared replicas, or back up (a
        person's start: a fresh budget)."""
        for status in statuses:
            spec = self._desired.services.get(status.name)
            if spec is None:
                continue
            if observed.stack is not None and status.name in observed.stack.replicas:
                kept = observed.stack.replicas[status.name]
                below = kept is not None and kept < spec.replicas
                if self._records.scaled(status.name, below):
                    self._person_acted(status.name, "a person scaled it back up")
            self._records.observe(
                status.name,
                status.condition is ServiceCondition.READY,
                observed.of(status.name),
                stable_after=stable_after(spec),
                restart_policy=spec.restart.restarts,
            )
