"""The controller's own verdict on a swarm update that Swarm completed.

Swarm judges an update while it carries it out: a new task that fails within the update's
``monitor`` period pauses it (``swarmchanges``). What goes wrong after Swarm called the
update completed, Swarm never judges: a task that crashes once the monitor period is over,
turns unhealthy later, fails a declared probe, or logs a finding of the declared severity.
The controller judges that as on one host (``verdict.judge``): from Swarm's completion,
bad at once when one of those happens, good once every replica has stayed ready for the
window (``rollback.window``: the service's hold, at least 30 s).

A bad verdict is a ``SwarmPause`` with ``judged`` set, kept by ``Operations`` while the
service runs that update; from there it is what an update Swarm paused is: the bad-change
issue, ``rollback: auto``'s ``docker service rollback`` (to its ``PreviousSpec``, the spec
before the update), ``notify``'s command, ``scope: stack``.

Not judged: an update that changed nothing of its tasks but the counter a ``--force``
moves (the controller's forced update or a person's: a restart, not a change), a rollback
(its state is not *completed*), and one completed longer than its window before the
controller first saw it (a restarted controller judges again one it had under watch, from
Swarm's completion). A deploy of the same spec or a scale in the window resets Swarm's
record of the update and its ``PreviousSpec`` but replaces no task, and a person's
``--force`` restarts the change's tasks: the change is still judged, but a bad one is then
a person's (``SwarmPause.reset``: ``docker service rollback`` would not revert it).

Task ids change as Swarm replaces tasks, but each slot's restart count begins at the
update (it shut down every older task, or its task is of the new spec: ``swarmtasks``),
so a change has no baseline of counts: a count above zero is a task of the update that
died. What it keeps is in memory, one entry per service.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from controller.model import (
    Change,
    ChangeVerdict,
    ContainerSnapshot,
    Identity,
    Issue,
    ProbeView,
    ServiceSpec,
    SwarmPause,
    SwarmUpdate,
    engine_time,
)
from controller.remediate.verdict import Judgement, judge

COMPLETED = "completed"
UPDATING = "updating"


@dataclass(slots=True)
class _Watch:
    """A service's last completed update as the controller saw it: ``change`` is None
    when it is not judged (a ``--force``, too old, not found)."""

    started: str  # its ``UpdateStatus.StartedAt``: which update
    update: SwarmUpdate | None
    change: Change | None
    reset: bool = False  # Swarm reset the update's record since (``judged_pause``)


def judged_pause(update: SwarmUpdate, reason: str, *, reset: bool = False) -> SwarmPause:
    """A completed update judged bad, as the paused updates are kept (``Operations``)."""
    return SwarmPause(
        update.name, update.state, reason, update.image, update.previous, judged=True, reset=reset
    )


class SwarmVerdicts:
    """The verdict on each service's last update Swarm completed; ``updates`` reads the
    stack's updates from the manager (once per update first seen completed)."""

    def __init__(self, updates: Callable[[], Mapping[str, SwarmUpdate]]) -> None:
        self._updates = updates
        self._watch: dict[str, _Watch] = {}

    def pending(self, service: str) -> bool:
        """The service's completed update is under watch: no verdict yet."""
        watch = self._watch.get(service)
        return (
            watch is not None
            and watch.change is not None
            and watch.change.verdict is ChangeVerdict.PENDING
        )

    def drop(self, service: str) -> None:
        """Forget the service's update under watch: Swarm paused the next one."""
        self._watch.pop(service, None)

    def reset(self, service: str) -> bool:
        """Swarm reset the record of the service's update under watch since it completed."""
        watch = self._watch.get(service)
        return watch is not None and watch.reset

    def swept(self, service: str, now: datetime) -> None:
        """The service's completed update was kept as bad with another's (``scope:
        stack``): that is its verdict, not one still to come (``pending`` would hold the
        CI gate until its timeout and keep saying it is under watch)."""
        watch = self._watch.get(service)
        change = None if watch is None else watch.change
        if change is not None and change.verdict is ChangeVerdict.PENDING:
            change.verdict, change.judged_at = ChangeVerdict.BAD, now

    def look(
        self,
        spec: ServiceSpec,
        containers: Sequence[ContainerSnapshot],
        probe: ProbeView | None,
        findings: Callable[[datetime], Sequence[Issue]],
        now: datetime,
        *,
        hold: float,
        stopped_by_person: bool,
    ) -> tuple[SwarmUpdate, Judgement] | None:
        """Where the service's completed update stands (``findings(since)``: the log
        issues it is judged by, ``verdict.telling``): the update and the judgement while
        one is pending or when it turned; None when there is none to judge, or it was
        judged already."""
        service = spec.name
        state, started = next(((c.update, c.update_started) for c in containers), ("", ""))
        watch = self._watch.get(service)
        if not state and watch is not None and len(containers) < spec.replicas:
            # a person's scale below the declaration: theirs, as a stop is (its drift
            # says so), not the change's failing to be ready
            self._watch.pop(service, None)
            return None
        if not state and watch is not None:
            # a deploy of the same spec or a scale resets Swarm's record of the update
            # (and its ``PreviousSpec``) but replaces none of its tasks: still judged
            watch.reset = True
        elif state == UPDATING and self.pending(service):
            return None  # a person's --force restarts its tasks: judged on once it completes
        elif state != COMPLETED:
            self._watch.pop(service, None)  # a new update (or none): judged once completed
            return None
        elif watch is None or watch.started != started:
            watch = self._first_sight(spec, started, containers, now, hold, watch)
            self._watch[service] = watch
        change, update = watch.change, watch.update
        if change is None or update is None or change.verdict is not ChangeVerdict.PENDING:
            return None
        judgement = judge(
            change,
            spec,
            containers,
            probe,
            _of_update(findings(change.started_at or change.seen_at), containers),
            now,
            hold=hold,
            stopped_by_person=stopped_by_person,
            restarter="Swarm",
        )
        if judgement.verdict is ChangeVerdict.PENDING:
            change.ready_since = judgement.ready_since
        else:
            change.verdict, change.reason, change.judged_at = (
                judgement.verdict,
                judgement.reason,
                now,
            )
        return update, judgement

    def _first_sight(
        self,
        spec: ServiceSpec,
        started: str,
        containers: Sequence[ContainerSnapshot],
        now: datetime,
        hold: float,
        before: _Watch | None,
    ) -> _Watch:
        update = self._updates().get(spec.name)
        if update is None or update.started != started:
            return _Watch(started, update, None)
        change = None if before is None else before.change
        if update.forced and change is not None and change.verdict is ChangeVerdict.PENDING:
            # a person's --force within the window restarted the change's tasks: it is
            # still judged (their readiness from the restart), but ``PreviousSpec`` is the
            # change itself now
            done = engine_time(update.completed) or now
            change.ready_since = max(change.ready_since or done, done)
            return _Watch(started, before.update if before else None, change, reset=True)
        if update.forced:
            return _Watch(started, update, None)
        done = engine_time(update.completed) or now
        if (now - done).total_seconds() >= spec.rollback.window_for(hold):
            return _Watch(started, update, None)  # over before the controller looked
        starts = [t for c in containers if (t := engine_time(c.started_at)) is not None]
        change = Change(
            id=f"{spec.name}@{started}",
            before=Identity(image_id=update.previous),
            after=Identity(image_id=update.image),
            by="a swarm update",
            operation=update.name,
            seen_at=engine_time(started) or now,
            started_at=min(starts, default=None),
            ready_since=done,  # Swarm saw its tasks run through the monitor period
        )
        return _Watch(started, update, change)


def _of_update(findings: Sequence[Issue], containers: Sequence[ContainerSnapshot]) -> list[Issue]:
    """The log issues a task of the update logged last: an old task Swarm's update shut
    down after the first new one started (a rolling update of several replicas, ``order:
    start-first``) may log a critical line on its SIGTERM, which is the old spec's."""
    names = {c.name for c in containers}
    return [i for i in findings if not i.container or i.container in names]
