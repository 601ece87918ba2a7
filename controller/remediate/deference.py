"""Who else is acting on a service, and what the reconciler leaves to them.

The controller never fights a person or the engine:

- **A person's operation** the engine shows in progress (a recreate, a stop under way)
  holds the service: the reconcile waits, and hands it to a human if it looks abandoned.
  On a swarm, Swarm carrying out an update or a rollback (a ``docker stack deploy``)
  holds it the same way: never two actors on one service.
- **A person's stop or pause** leaves the service to them until it starts again, unless
  it is declared ``enforce: true``.
- **Swarm at work**: a task Swarm is placing, preparing or starting (or holding for its
  restart delay) is Swarm's work in progress, not a person's: the reconcile waits and
  says what Swarm is doing, for up to ``operation_timeout`` seconds from the task's
  creation, then hands the service to a human. A task Swarm cannot place (no node fits)
  is not waited for: its own drift hands it over at once.
- **Docker's restart policy** restarting the service: the controller adds no restart of
  its own; it gives Docker a moment to begin a restart after a death, counts Docker's
  restarts against the budget, and hands a loop that does not converge to a human.

What people do is read from the engine (``activity``, kept in the service's record);
this module decides what that means for one reconcile.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from loguru import logger

from controller.drift import unplaceable
from controller.issues.store import IssueStore
from controller.logfields import of_fault
from controller.model import (
    Clock,
    ContainerSnapshot,
    ContainerState,
    Drift,
    DriftKind,
    Health,
    ServiceSpec,
    engine_time,
)
from controller.remediate import activity as people
from controller.remediate.plan import Plan
from controller.remediate.records import Records
from controller.remediate.results import Done, RequeueAfter, Result
from controller.remediate.strategies import primary

DOCKER_GRACE = 2.0  # seconds Docker gets to begin restarting a container its policy covers
# ... and Swarm: its manager learns of a death from the node's agent before it creates the
# replacement, seconds after the node's engine said it on a busy machine (2 s was too few
# for a task killed on a worker of a three-node test swarm beside other tests)
SWARM_GRACE = 10.0
WATCH_DOCKER = 10.0  # look at a crash loop Docker handles at least this often
_PERSON_KINDS = frozenset({DriftKind.EXITED, DriftKind.MISSING, DriftKind.PAUSED})
# what Swarm does with a task in each state before it runs
SWARM_DOING = {
    "new": "placing",
    "allocated": "placing",
    "pending": "placing",
    "assigned": "preparing",
    "accepted": "preparing",
    "preparing": "preparing",
    "ready": "starting",
}
WATCH_SWARM = 5.0  # look at Swarm's work in progress at least this often
# drifts that say what is wrong beside Swarm's work: decided at once, never waited for
_NOT_SWARMS = frozenset({DriftKind.UNDEPLOYED, DriftKind.UNPLACEABLE, DriftKind.SCALED_DOWN})


def swarm_at_work(containers: Sequence[ContainerSnapshot]) -> list[ContainerSnapshot]:
    """The service's tasks Swarm has not started yet and can place."""
    return [c for c in containers if c.pending and not unplaceable(c)]


def swarm_doing(task: ContainerSnapshot) -> str:
    """What Swarm is doing with a task it has not started, in a person's words."""
    where = f" on node {task.node}" if task.node else ""
    doing = SWARM_DOING.get(task.pending, task.pending)
    return f"Swarm is {doing} task {task.name}{where} (state {task.pending})"


def docker_restarting(spec: ServiceSpec, containers: Sequence[ContainerSnapshot]) -> bool:
    """Docker's restart policy is restarting the service now (a container of it is in
    its restart delay; on a swarm also a task its node calls unhealthy, which Swarm is
    about to kill and replace), so the controller adds no restart of its own."""
    return spec.restart.restarts and any(
        c.status is ContainerState.RESTARTING
        or (spec.restart.kills_unhealthy and c.status.running and c.health is Health.UNHEALTHY)
        for c in containers
    )


class Deference:
    def __init__(
        self,
        *,
        store: IssueStore,
        records: Records,
        clock: Clock,
        operation_timeout: Callable[[], float],  # the desired state's, as in force now
        on_change: Callable[[bool], None],
    ) -> None:
        self._store = store
        self._records = records
        self._clock = clock
        self._operation_timeout = operation_timeout
        self._on_change = on_change

    def to_people(
        self, spec: ServiceSpec, drifts: Sequence[Drift], containers: Sequence[ContainerSnapshot]
    ) -> Result | None:
        """What the reconcile returns when a person's operation holds the service or a
        person stopped it; None when no person does."""
        service = spec.name
        fingerprints = [d.fingerprint for d in drifts]
        operation = self._records.operation(service, containers)
        if operation:
            overdue = self._records.abandoned(service, self._operation_timeout())
            swarm = people.by_swarm(operation)
            if overdue > 0:
                reason = (
                    f"a docker/compose operation on {service} looks abandoned ({operation}); "
                    "the controller leaves it to a person"
                )
                if swarm:
                    reason = (
                        f"{operation} for longer than the operation timeout: it looks stuck; "
                        f"the controller leaves {service} to a person"
                    )
                self.escalate(service, fingerprints, reason)
                return Done("a person's operation, abandoned")
            text = f"waits: a person's docker/compose operation is in progress ({operation})"
            if swarm:
                text = f"{operation}: the controller waits and takes no step of its own"
            if self._records.intend(service, fingerprints, text):
                logger.info("{}: {}; not touching it", service, text)
            # events requeue it sooner; a stop that no start follows is final soon
            wait = self._records.restart_left(service) or -overdue
            return RequeueAfter(wait, "a person's operation")
        person = self._records.stopped_by_person(service)
        if person and not spec.enforce and drifts and primary(drifts).kind in _PERSON_KINDS:
            verb = "paused" if person == "pause" else "stopped"
            reason = (
                f"{service} was {verb} by a person: the controller leaves it alone "
                f"(declare services.{service}.enforce: true to have it brought back)"
            )
            self.escalate(service, fingerprints, reason, prefix="left alone: ")
            return Done("stopped by a person")
        return None

    def to_swarm(
        self, spec: ServiceSpec, drifts: Sequence[Drift], containers: Sequence[ContainerSnapshot]
    ) -> Result | None:
        """Swarm is placing, preparing or starting a task of the service: the controller
        waits and says so (never two actors on one task), until ``operation_timeout``
        seconds after the task was created; then a human. None when Swarm is not at it."""
        tasks = swarm_at_work(containers)
        if not tasks or any(d.kind in _NOT_SWARMS for d in drifts):
            return None
        service, fingerprints = spec.name, [d.fingerprint for d in drifts]
        oldest = min(tasks, key=lambda c: c.created_at)
        created = engine_time(oldest.created_at)
        taken = 0.0 if created is None else max(0.0, self._clock() - created.timestamp())
        left = self._operation_timeout() - taken
        doing = swarm_doing(oldest) + (f"; Swarm: {oldest.error}" if oldest.error else "")
        if left <= 0:
            reason = (
                f"{doing} for {taken:.0f} s and has not started it: the controller leaves it "
                "to a person"
            )
            self.escalate(service, fingerprints, reason)
            return Done("Swarm's work in progress, overdue")
        text = f"waits: {doing}"
        if self._records.intend(service, fingerprints, text):
            logger.info("{}: {}; not touching it", service, text)
        return RequeueAfter(min(left, WATCH_SWARM), "Swarm's work in progress")

    def to_docker(
        self, spec: ServiceSpec, containers: Sequence[ContainerSnapshot]
    ) -> Result | None:
        """A container that just exited under a restart policy: Docker (or Swarm) gets a
        moment to begin its restart before the controller decides that it will not
        (``docker kill``, the limit of ``on-failure:N``, exit 0 under ``on-failure``)."""
        if not spec.restart.restarts or docker_restarting(spec, containers):
            return None
        now = self._clock()
        for c in containers:
            if c.status is not ContainerState.EXITED or (
                spec.restart.on_failure and c.exit_code == 0
            ):
                continue
            ended = engine_time(c.finished_at) if c.finished_at else None
            since = None if ended is None else now - ended.timestamp()
            grace = SWARM_GRACE if spec.restart.by == "Swarm" else DOCKER_GRACE
            if since is not None and 0 <= since < grace:
                return RequeueAfter(grace - since, f"{spec.restart.by} may restart it")
        return None

    def watch_docker(
        self, spec: ServiceSpec, plan: Plan, containers: Sequence[ContainerSnapshot], budget: int
    ) -> Result:
        """Docker's restart policy is looping the service: count its restarts against the
        budget, say so, and hand it to a human when the loop does not converge."""
        service = spec.name
        policy = f"{spec.restart.by}'s restart policy ({spec.restart})"
        restarts = max((c.restart_count for c in containers), default=0)
        done = restarts - self._records.docker_loop_base(service, restarts)
        # the service's count as `controller status` shows it (its containers' sum): the
        # loop's own count, which the budget is about, may begin well after it
        total = sum(c.restart_count for c in containers)
        if done >= budget:
            reason = (
                f"{policy} restarted {service} {done} times "
                f"and it keeps failing ({plan.why}): needs a human"
            )
            self.escalate(service, plan.addresses, reason)
            return Done(f"{spec.restart.by}'s loop did not converge")
        text = (
            f"{policy} is restarting it ({total} restart(s) so far, {done} in this loop); "
            f"the controller adds no restart of its own and hands it to a human after "
            f"{budget} in one loop"
        )
        if self._records.intend(service, plan.addresses, text):
            logger.info("{}: {}", service, text)
        return RequeueAfter(WATCH_DOCKER, f"{spec.restart.by}'s restart policy is at work")

    def escalate(
        self, service: str, fingerprints: Sequence[str], reason: str, prefix: str = ""
    ) -> None:
        if self._store.escalate(fingerprints, reason):
            of_fault(service, fingerprints, self._store.get).warning(
                "{}: {}{}", service, prefix, reason
            )
            self._on_change(True)
