"""Verification as a state: is a step that was carried out proven, failed, or not yet?

Pure: the step's record (``StepRecord``), what the engine shows now and the time in, a
``Proof`` out. Nothing waits here; every pass and every event about the service asks
again, so a new fault during the proof fails the step at once, not at its deadline.

On a swarm, a forced update (the step of a restart or a recreate) is carried out by Swarm
after the command returned, one task after the other as the service's update config
says: until Swarm has begun it and while it carries it out, the step is not judged (the
tasks shown are still the old ones, the one that failed too); once it is over, a task it
started that ended is the step's failure, as a container the step left running that dies.

A step is proven when the service is ready as declared (``reconcile.service_ready``:
running, the declared replicas, healthy where checked, probes passing) for ``hold``
seconds in a row, the same containers all along, and the error that triggered it has not
come back since the command returned. It has failed when one of the containers it left
running dies, is OOM-killed, starts again (Docker restarted it: it died), or the engine
calls it unhealthy; when the error comes back; or when ``until`` passes first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from controller.drift import service_drifts, service_ready, startup_allowance
from controller.model import (
    Action,
    ContainerSnapshot,
    Health,
    ProbeView,
    ServiceRunState,
    ServiceSpec,
    StepRecord,
    engine_ns,
)
from controller.remediate.activity import CLOCK_SLACK, SWARM_AT_WORK

RECHECK_SECONDS = 1.0  # while waiting to become ready, look again at least this often
# seconds past the proof's deadline Swarm may still be carrying out a step's forced update
# (a slow update config: a delay between tasks); after that the step is judged anyway
SWARM_UPDATE_GRACE = 300.0
# a step Swarm carries out on a swarm: a forced update, a rollback to the previous spec
FORCED_UPDATES = frozenset({Action.RESTART, Action.RECREATE, Action.ROLLBACK})


@dataclass(frozen=True, slots=True)
class Proof:
    proven: bool = False
    failed: str = ""  # why the step failed ("" while pending or proven)
    detail: str = ""  # what was seen (for the attempt's record)
    ready_since: datetime | None = None
    recheck: float = RECHECK_SECONDS  # pending: look again after this many seconds

    @property
    def pending(self) -> bool:
        return not self.proven and not self.failed


def instance(container: ContainerSnapshot) -> str:
    """One run of one container: a restart keeps the id and changes the start time."""
    return f"{container.id}@{container.started_at}"


def new_fault(verification: StepRecord, containers: Sequence[ContainerSnapshot]) -> str | None:
    """What went wrong with the containers the step left running, if anything did."""
    left = set(verification.instances)
    ids = {i.split("@", 1)[0] for i in left}
    for c in containers:
        if c.id not in ids:
            if c.status.down and _started_by(verification, c):
                return f"{c.name} exited with code {c.exit_code} after the fix"
            continue
        if c.oom_killed and not c.status.running:
            return f"{c.name} was OOM-killed after the fix"
        if c.status.down:
            return f"{c.name} exited with code {c.exit_code} after the fix"
        if instance(c) not in left and f"{c.id}@" not in left:  # not its first start
            return f"{c.name} died and was started again after the fix ({c.restart_count} restarts)"
        if c.health is Health.UNHEALTHY:
            return f"{c.name} turned unhealthy after the fix"
    return None


def swarm_at_work(
    verification: StepRecord, containers: Sequence[ContainerSnapshot], now: datetime
) -> bool:
    """Swarm has yet to begin, or is carrying out, the forced update the step asked for
    (its ``UpdateStatus`` began before the step, or says it is at work); not past the
    proof's deadline (not begun) or that and ``SWARM_UPDATE_GRACE`` (at work)."""
    tasks = [c for c in containers if c.node]  # a swarm's tasks name their node
    if verification.action not in FORCED_UPDATES or not tasks:
        return False
    began = verification.started_at.timestamp() - CLOCK_SLACK
    if verification.action is Action.ROLLBACK and any(_before(c, began) for c in tasks):
        # Swarm calls a rollback completed at once where the bad spec's tasks had ended
        # already, and replaces them after: the rollback is judged on its own tasks
        return now < verification.until
    for c in tasks:
        if c.update in SWARM_AT_WORK:
            return now < verification.until + timedelta(seconds=SWARM_UPDATE_GRACE)
        nanos = engine_ns(c.update_started)
        if nanos is None or nanos / 1e9 < began:
            return now < verification.until
    return False


def _before(container: ContainerSnapshot, began: float) -> bool:
    """A task created before ``began`` (epoch s)."""
    nanos = engine_ns(container.created_at)
    return nanos is None or nanos / 1e9 < began


def _started_by(verification: StepRecord, container: ContainerSnapshot) -> bool:
    """A swarm's task the step's forced update started (created after the step began)."""
    if verification.action not in FORCED_UPDATES or not container.node:
        return False
    nanos = engine_ns(container.created_at)
    return nanos is not None and nanos / 1e9 >= verification.started_at.timestamp() - CLOCK_SLACK


def prove(
    verification: StepRecord,
    spec: ServiceSpec,
    containers: Sequence[ContainerSnapshot],
    probe: ProbeView | None,
    now: datetime,
    recurred: str | None = None,
) -> Proof:
    """Where the step stands now; ``recurred`` names the triggering error if it came back
    after the command returned."""
    if verification.finished_at is None:  # the controller stopped while the command ran
        return Proof(recheck=0.0)
    if swarm_at_work(verification, containers, now):
        return Proof(recheck=RECHECK_SECONDS)
    if recurred:
        return Proof(failed=f"the error came back: {recurred}")
    done = spec.state is ServiceRunState.COMPLETED  # a job: exiting 0 is the goal
    fault = new_fault(verification, [c for c in containers if not (done and c.exit_code == 0)])
    if fault:
        return Proof(failed=fault)
    if service_ready(spec, containers, probe):
        since = verification.ready_since or now
        held = (now - since).total_seconds()
        if held >= verification.hold:
            return Proof(proven=True, detail=f"ready for {verification.hold:g} s")
        return Proof(ready_since=since, recheck=max(0.05, verification.hold - held))
    if now >= verification.until:
        drifts = service_drifts(spec, containers, probe)
        last = drifts[0].title if drifts else "health or probes not passing yet"
        return Proof(failed=f"not verified in time: {last}")
    left = (verification.until - now).total_seconds()
    return Proof(recheck=min(RECHECK_SECONDS, max(0.05, left)))


def deadline(
    spec: ServiceSpec,
    hold: float,
    now: datetime,
    containers: Sequence[ContainerSnapshot] = (),
) -> datetime:
    """When a step started at ``now`` must be proven by: the service's verify timeout, and
    at least the hold plus five seconds; a healthcheck the compose file does not define
    (one from the image) gets the time of its first verdict (``startup_allowance``)."""
    seconds = max(spec.verify_timeout, hold + 5.0, startup_allowance(spec, containers))
    return now + timedelta(seconds=seconds)
