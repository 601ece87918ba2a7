"""What people (and their tools) are doing to the project, read from the engine.

The controller must not fight a person. Two things make a service a person's:

- **An operation in progress**, read from the engine's own state, not from a quiet time:
  a container of the service is created but not started, or carries Compose's temporary
  ``<id>_`` name (both are what ``docker compose up`` shows while it recreates a
  container), or is being stopped (the engine sent it a signal for someone, and it has
  not died yet: a process that ignores SIGTERM keeps ``docker compose up`` busy for its
  whole stop timeout). A swarm task Swarm has not started yet is Swarm's work, not a
  person's (``ContainerSnapshot.pending``). The operation is over when the engine shows
  none of this. One that the engine still shows after ``operation_timeout`` seconds is
  called abandoned.
- **A stop or a pause on purpose**: a ``stop`` or ``pause`` event the controller did not
  cause, or a signal other than SIGKILL followed by the container's death (``docker
  stop``, ``docker compose stop``, also when the process outlives the stop's timeout and
  the engine's SIGKILL ends it). The service stays the person's until any container of it
  starts again. A bare ``die`` (a crash) or a SIGKILL alone (``docker kill``) is not.
  ``docker restart`` and ``docker compose restart`` are a stop and a start in one call
  (the engine says kill, die, stop, start): for ``RESTART_GRACE`` seconds after a
  person's stop (from when the controller read it: events come late on a busy machine)
  the operation counts as in progress, so a restart is never taken for
  a stop (or a crash) in the moment between its stop and its start.

On a swarm, **Swarm carrying out an update or a rollback** of the service (its
``UpdateStatus`` says ``updating`` or ``rollback_started``: a ``docker stack deploy``, a
``docker service update`` or ``rollback``) is an operation in progress too: Swarm replaces
the tasks one after the other as the service's update config says, and a step of the
controller then (a forced update) would override Swarm's half-done update and be judged
against a task the update had already rejected. An update that began inside the span of
the controller's own command (or within ``OWN_UPDATE_SLACK`` after it: Swarm begins it
once the manager has stored the new spec) is the controller's own step at work, proven as
any step, not held.

A pass judges a service only by what it read from the engine after the newest event about
it: the start that ends a restart's grace may be read while a pass that saw the gap runs
(two services restarted in one call, measured: the pass read the engine before the start,
its judgement came after). That pass leaves the service to the next one, which the event
asked for (``event_after``).

Events caused by the controller's own fixes are not people: the span of each command the
controller runs is kept, and an event is the controller's when the engine stamped it
inside that span or it arrives while the command runs.

Pure: every function reads an ``Activity`` (kept in the service's record by
``remediate.records``, its only writer) and returns what it says and the state after.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence, Set

from controller.model import (
    Activity,
    ContainerSnapshot,
    ContainerState,
    at_utc,
    engine_ns,
    to_datetime,
)

PERSON_STOPS = frozenset({"stop", "pause"})
STARTS = frozenset({"start", "unpause"})
SIGKILL = 9
# seconds a person's stop may still be the first half of a restart. The engine starts the
# container again 0.17-0.28 s after its stop event here (idle, and beside three CPU hogs),
# and an inspect in that gap says "exited"; a CI machine running a soak beside its tests
# took between 1.5 and 3.6 s. A person's stop that no start follows is theirs after this.
RESTART_GRACE = 4.0
COMPOSE_TEMPORARY = re.compile(r"^[0-9a-f]{12}_")
# what Swarm's UpdateStatus.State says it is carrying out (paused, completed: nothing)
SWARM_AT_WORK = {"updating": "updating", "rollback_started": "rolling back"}
SWARM_SAYS = "Swarm is "  # how a reason of Swarm's own work begins
# seconds after the controller's command ends in which Swarm may begin the update that
# command asked for, and before it began (the manager's clock against the controller's)
OWN_UPDATE_SLACK = 5.0
CLOCK_SLACK = 1.0


def operation_in(containers: Sequence[ContainerSnapshot], ours: Set[str] = frozenset()) -> str:
    """What in the engine's state says an operation is in progress ("" when none);
    containers in ``ours`` were left so by the controller's own command, not a person's."""
    # a swarm task not started yet is Swarm placing, preparing or starting it (or waiting
    # out its restart delay): Swarm's work, never a person's half-done recreate
    theirs = [c for c in containers if c.id not in ours and not c.pending]
    for c in theirs:
        if COMPOSE_TEMPORARY.match(c.name):
            return f"container {c.name} carries Compose's temporary name (a recreate)"
    for c in theirs:
        if c.status is ContainerState.CREATED:
            return f"container {c.name} is created but not started"
    return ""


def swarm_at_work(containers: Sequence[ContainerSnapshot], activity: Activity) -> str:
    """Why Swarm carrying out an update or a rollback of the service holds it ("" when
    it carries out none, or the one the controller's own command asked for)."""
    for c in containers:
        verb = SWARM_AT_WORK.get(c.update)
        if verb is None:
            continue
        nanos = engine_ns(c.update_started)
        at = nanos / 1e9 if nanos is not None else None
        if _own_update(activity, at):
            return ""
        when = at_utc(to_datetime(at)) if at is not None else "?"
        return f"{SWARM_SAYS}{verb} the service (started {when})"
    return ""


def by_swarm(why: str) -> bool:
    """The operation that holds the service is Swarm's own (``swarm_at_work``)."""
    return why.startswith(SWARM_SAYS)


def _own_update(activity: Activity, at: float | None) -> bool:
    start, end = activity.command_started, activity.command_ended
    if start is None or at is None:
        return False
    last = float("inf") if end is None else end + OWN_UPDATE_SLACK
    return start - CLOCK_SLACK <= at <= last


def command_left(activity: Activity, now: float) -> float:
    """Seconds a command of the controller may still be at work: inf while one runs, the
    rest of an assumed window (a command an earlier run did not see end), else 0."""
    if activity.command_started is None:
        return 0.0
    if activity.command_ended is None:
        return float("inf")
    return max(0.0, activity.command_ended - now)


def command_running(activity: Activity) -> bool:
    """A command of this controller is running right now."""
    return activity.command_started is not None and activity.command_ended is None


def caused_by_us(activity: Activity, at: float | None) -> bool:
    """An event stamped ``at`` came from the controller's own command: one is running (what
    arrives now is its doing), or the engine stamped it inside the newest command's span
    (delivered late)."""
    start, end = activity.command_started, activity.command_ended
    if start is None:
        return False
    if end is None:
        return True
    return at is not None and start <= at <= end


def after_event(
    activity: Activity, action: str, at: float | None, signal: int | None, now: float
) -> tuple[Activity, bool]:
    """What an engine event says (``at``: its engine time stamp; ``signal``: a kill's;
    ``now``: when the controller read it) and whether it was the controller's own doing."""
    ours = caused_by_us(activity, at)
    after = activity.model_copy(update={"event_read_at": now})
    if action in STARTS:
        after.stopped, after.stopping, after.stopped_at = "", None, None
        after.stop_began_at = None
    if ours:
        return after, True
    # the grace of a restart counts from when the controller learned of the stop: on a busy
    # machine events arrive late, and the start may already be on its way
    learned = now if at is None else max(at, now)
    if action == "kill" and signal is not None:
        if after.stopping is None or after.stopping == SIGKILL:
            after.stopping, after.stop_began_at = signal, now if at is None else at
        # else: the SIGKILL that ends a stop's timeout; still the person's stop
    elif action == "die" and after.stopping is not None:
        if after.stopping != SIGKILL:
            after.stopped, after.stopped_at = "stop", learned  # a signal for someone, death
        after.stopping = None
    elif action in PERSON_STOPS:
        after.stopping, after.stopped = None, action
        if action == "stop":
            after.stopped_at = learned
    return after, False


def event_after(activity: Activity, read_at: float) -> bool:
    """An event about the service was read after ``read_at`` (epoch s): what the engine
    showed before may be outdated by it (a restart's start, read after a pass saw the
    container exited in its gap, ends the grace that pass needed)."""
    return activity.event_read_at is not None and activity.event_read_at > read_at


def stop_began(activity: Activity) -> float | None:
    """Epoch s a person's stop of the service began (its signal), while it is theirs: from
    then it served no more (PostgreSQL refuses new clients while it shuts down)."""
    return activity.stop_began_at if activity.stopped == "stop" else None


def restart_left(activity: Activity, now: float) -> float:
    """Seconds a person's stop may still be the first half of a restart (0: none is)."""
    if activity.stopped != "stop" or activity.stopped_at is None:
        return 0.0
    left = activity.stopped_at + RESTART_GRACE - now
    return left if 0.0 < left <= RESTART_GRACE else 0.0


def after_look(
    activity: Activity, containers: Sequence[ContainerSnapshot], now: float
) -> tuple[Activity, str]:
    """Why a person's operation holds the service now ("" when none does), and the state
    with when it was first seen (for ``abandoned``)."""
    if command_running(activity):
        return activity, ""  # our own command: not a person's
    why = swarm_at_work(containers, activity) or operation_in(
        containers, frozenset(activity.left_by_us)
    )
    if not why and activity.stopping is not None:
        why = f"a person's signal {activity.stopping} is stopping it"
    if not why and restart_left(activity, now) > 0:
        why = "a person stopped it a moment ago; a restart starts it again"
    if not why:
        return activity.model_copy(update={"operation_seen_at": None}), ""
    if activity.operation_seen_at is None:
        return activity.model_copy(update={"operation_seen_at": now}), why
    return activity, why


def abandoned(activity: Activity, now: float, timeout: float) -> float:
    """Seconds the current operation has been seen for, past ``timeout`` (<= 0: not
    abandoned yet; the negative value says how long until it is)."""
    if activity.operation_seen_at is None:
        return -timeout
    return now - activity.operation_seen_at - timeout


def left_half_done(containers: Iterable[ContainerSnapshot]) -> list[str]:
    """Containers a command left created or under a temporary name (a ``compose up``
    that failed half-way): the controller's, not a person's operation."""
    return [
        c.id
        for c in containers
        if (c.status is ContainerState.CREATED and not c.pending) or _temporary(c)
    ]


def _temporary(container: ContainerSnapshot) -> bool:
    return COMPOSE_TEMPORARY.match(container.name) is not None
