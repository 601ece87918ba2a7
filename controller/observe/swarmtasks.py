"""A swarm stack's tasks as our container snapshots, and their changes as event hints (pure).

Swarm has no containers to list through a manager: it has services, and each service's
tasks, one per run, old ones too (up to the cluster's task history limit, 5 by default).
For each service and slot (replicated) or node (global) the newest task is the
"container" (``slot_snapshots``). Its run is the task's state:

=====================================================  ===========================
``Status.State``                                       snapshot
=====================================================  ===========================
new, allocated, pending, assigned, accepted,           created
preparing, ready
starting                                               running, health starting
running                                                running (healthy if the
                                                       task has a healthcheck)
complete                                               exited 0
failed, rejected, orphaned                             exited with the exit code
shutdown, remove (and not desired running)             no container: swarm took it
=====================================================  ===========================

- A task Swarm has not started yet (placing it on a node, preparing it, ready to start)
  is ``created`` with its state as ``pending``: Swarm's work in progress, never a
  container someone created and left (``remediate.activity``); one Swarm cannot place
  says why in its error (``no suitable node (...)``).
- While a replacement waits out the restart delay (swarm creates it at once, ``ready``,
  and starts it after ``restart_policy.delay``), the slot is still the task that ended,
  ``restarting`` (Docker's word for a container dead in its restart delay) with that
  task's exit code and error: what a person sees first of a killed task is its death.
- Tasks carry no health: a task with a healthcheck is ``starting`` until its first
  healthy check, and is killed when unhealthy (``Status.Err`` ends
  ``dockerexec: unhealthy container``): that task's health is unhealthy.
- The restart count is how many earlier tasks of the slot ended on their own since swarm
  last replaced one on purpose (an update or a scale: a ``shutdown`` task, or a task of
  another spec where an update replaced a slot its restart policy gave up on), as a recreate
  begins a new count in Compose; a slot ``restarting`` counts the task that ended too (its
  replacement exists), as Docker counts a restart once the container is restarting. The
  history is cut at the task history limit, so the engine carries the count from one
  listing to the next (``SlotCount``).
- The exit code is ``Status.ContainerStatus.ExitCode``, else the one ``Status.Err`` names
  (``task: non-zero exit (137)``); a task that never ran a container (rejected: ``No such
  image``) has -1 and its ``Status.Err`` as its error.
- The image is ``Spec.ContainerSpec.Image`` as the stack named it; a digest pinned by
  ``stack deploy`` (``app:1@sha256:...``, without ``--resolve-image never``) is the
  snapshot's ``image_id`` (the registry's digest, not the engine's image id).
- Swarm's update of the task's service (its ``UpdateStatus``: state and start) is on
  each of its snapshots (``update``, ``update_started``): remediation takes no step while
  Swarm carries one out (``remediate.activity``).
- A start time is the task's ``Status.Timestamp`` when the engine first saw it starting
  or running (kept from one listing to the next: a task that turns running after its
  first healthy check is the same run, not a restart); once it ended, that start, or the
  task's creation where none was seen.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from controller.model import (
    ContainerSnapshot,
    ContainerState,
    Health,
    SwarmPause,
    SwarmUpdate,
    engine_ns,
    healthcheck_timing,
    to_datetime,
)

STACK_LABEL = "com.docker.stack.namespace"
HASH_LABEL = "com.docker.compose.config-hash"  # as Compose names it (observe.engine)
SERVICE_LABEL = "com.docker.compose.service"  # what an event hint names its service by
TASK_LABEL = "com.docker.swarm.task.id"  # a task's container's, as swarm labels it

PRE_RUN = frozenset({"new", "allocated", "pending", "assigned", "accepted", "preparing", "ready"})
ENDED = frozenset({"complete", "failed", "rejected", "orphaned"})
TAKEN = frozenset({"shutdown", "remove"})  # swarm stopped it on purpose
LIVE = frozenset({"running", "ready"})  # desired states of a task swarm means to run
UNHEALTHY_ERR = "unhealthy container"
UNHEALTHY_DEATH = f"{UNHEALTHY_ERR}: it died after its node's engine called it unhealthy"
_EXIT = re.compile(r"non-zero exit \((-?\d+)\)")


@dataclass(frozen=True, slots=True)
class SlotCount:
    """What the engine keeps of a slot between listings: the ids of the earlier tasks
    that ended on their own and were counted, and the count (which outlives the
    history the cluster keeps)."""

    counted: frozenset[str]
    restarts: int


@dataclass(frozen=True, slots=True)
class Listing:
    """One listing of a stack: its snapshots, and what to carry to the next one."""

    snapshots: list[ContainerSnapshot]
    counts: dict[str, SlotCount]
    starts: dict[str, str]  # task id -> when it was seen starting or running


@dataclass(frozen=True, slots=True)
class Sighting:
    """What a node's own engine said of a task's container, which the manager learns a
    moment later (about 0.1 s after a death) or never (an OOM kill, failed checks and
    the healthcheck's verdict before swarm kills the task)."""

    died_at: str = ""  # when it died (RFC 3339); "" while it runs
    exit_code: int = 0
    oom: bool = False
    health: Health | None = None  # the container's, as its engine inspected it; None: not read
    failing_streak: int = 0
    failing_since: str = ""
    health_output: str = ""


T = TypeVar("T", "Sighting", ContainerSnapshot)

# a node engine's container events that say something of a task's run
SIGHTED = frozenset({"die", "oom", "health_status", "exec_die"})


def needs_health(event: Mapping[str, Any], before: Sighting | None) -> bool:
    """Whether a container event asks for its engine's health reading: a health verdict,
    a failed exec (a healthcheck's first failure looks so), or any exec while checks are
    failing (a passing one ends the streak)."""
    action = str(event.get("Action") or event.get("status") or "").split(":", 1)[0]
    if action == "health_status":
        return True
    if action != "exec_die":
        return False
    attributes = (event.get("Actor") or {}).get("Attributes") or {}
    failed = str(attributes.get("exitCode") or "0") != "0"
    return failed or (before is not None and before.failing_streak > 0)


def sighted(
    event: Mapping[str, Any], before: Sighting | None, health: ContainerSnapshot | None = None
) -> Sighting | None:
    """A task's sighting after one of its container's events (None: not a task's, or an
    event that says nothing new of its run); ``health``: its engine's inspect, where
    ``needs_health`` asked for one."""
    action = str(event.get("Action") or event.get("status") or "").split(":", 1)[0]
    attributes = (event.get("Actor") or {}).get("Attributes") or {}
    if action not in SIGHTED or not attributes.get(TASK_LABEL):
        return None
    known = before or Sighting()
    if action == "oom":
        return replace(known, oom=True)
    if action == "die":
        nanos = int(event.get("timeNano") or 0) or int(event.get("time") or 0) * 1_000_000_000
        code = str(attributes.get("exitCode") or "0")
        died = to_datetime(nanos / 1e9).isoformat() if nanos else "now"
        return replace(
            known, died_at=died, exit_code=int(code) if code.lstrip("-").isdigit() else 0
        )
    return None if health is None else _with_health(known, health)


def seen_on_node(found: ContainerSnapshot, sighting: Sighting | None) -> ContainerSnapshot:
    """A task's snapshot with what its node's engine said and the manager does not say
    yet: a running task whose container died is exited; one whose checks fail is failing
    (or unhealthy); an OOM kill is one (a task never says so). A task that is not running
    keeps the manager's word, but for the OOM kill."""
    if sighting is None:
        return found
    if found.status is not ContainerState.RUNNING:
        ended = replace(found, oom_killed=sighting.oom) if sighting.oom else found
        if sighting.died_at and sighting.health is Health.UNHEALTHY:
            # Swarm killed it as unhealthy; a process that exits 0 on SIGTERM leaves the
            # task ``complete`` without a word of it: only its node knows
            return replace(ended, health=Health.UNHEALTHY, error=found.error or UNHEALTHY_DEATH)
        return ended
    if sighting.died_at:
        died = replace(
            found,
            status=ContainerState.EXITED,
            exit_code=sighting.exit_code,
            finished_at=sighting.died_at,
            oom_killed=sighting.oom,
        )
        if sighting.health is not Health.UNHEALTHY:
            return died
        # Swarm kills a task its node called unhealthy: what the manager says a moment later
        return replace(died, health=Health.UNHEALTHY, error=found.error or UNHEALTHY_DEATH)
    if sighting.health is None or found.health is None:
        return found
    return _with_health(found, sighting)


_HEALTH = ("health", "failing_streak", "failing_since", "health_output")


def _with_health(target: T, source: Sighting | ContainerSnapshot) -> T:
    """``target`` with the health reading of ``source``."""
    return replace(target, **{name: getattr(source, name) for name in _HEALTH})


def local_hint(stack: str, event: Mapping[str, Any]) -> dict[str, Any] | None:
    """A node engine's container event of a task of the stack as a hint about that task
    (its id the task's, as the snapshots name it); None for any other."""
    actor = event.get("Actor") or {}
    attributes = dict(actor.get("Attributes") or {})
    task_id = str(attributes.get(TASK_LABEL) or "")
    name = str(attributes.get("com.docker.swarm.service.name") or "")
    if not task_id or attributes.get(STACK_LABEL) != stack:
        return None
    attributes[SERVICE_LABEL] = compose_name(stack, name)
    return {**event, "id": task_id, "Actor": {"ID": task_id, "Attributes": attributes}}


def replicas_of(stack: str, services: Iterable[Mapping[str, Any]]) -> dict[str, int | None]:
    """Each service of the stack (by compose name): the replicas its spec keeps, None for
    a global one."""
    kept: dict[str, int | None] = {}
    for service in services:
        spec = service.get("Spec") or {}
        if (spec.get("Labels") or {}).get(STACK_LABEL) != stack:
            continue
        replicated = (spec.get("Mode") or {}).get("Replicated")
        name = compose_name(stack, str(spec.get("Name") or ""))
        kept[name] = None if replicated is None else int(replicated.get("Replicas") or 0)
    return kept


def deploy_command(stack: str, files: Sequence[object]) -> str:
    """The command that deploys the stack from its files, for a person to run."""
    return shlex.join(
        ["docker", "stack", "deploy", *(a for f in files for a in ("-c", str(f))), stack]
    )


def compose_name(stack: str, service_name: str) -> str:
    """The compose service of a stack's swarm service (``<stack>_<service>``)."""
    return service_name.removeprefix(f"{stack}_")


def slot_key(task: Mapping[str, Any]) -> str:
    """The tasks of one run place: a replicated service's slot, a global one's node."""
    slot = task.get("Slot")
    return (
        f"{task.get('ServiceID', '')}/{slot}"
        if slot
        else f"{task.get('ServiceID', '')}@{task.get('NodeID', '')}"
    )


def update_status(service: Mapping[str, Any]) -> tuple[str, str]:
    """Swarm's update of a service (``UpdateStatus``: a stack deploy, a service update or
    rollback, ours or a person's): its state and when it began; ("", "") for a service
    never updated."""
    status: Mapping[str, Any] = service.get("UpdateStatus") or {}
    return str(status.get("State") or ""), str(status.get("StartedAt") or "")


def paused_update(service: Mapping[str, Any]) -> SwarmPause | None:
    """The update Swarm paused of ``service`` (an inspect of it), with the image of its
    spec and of its ``PreviousSpec``; None when its update is not paused."""
    return _update_in(service, ("paused", "rollback_paused"))


def rolled_back_update(
    service: Mapping[str, Any], tasks: Sequence[Mapping[str, Any]] = ()
) -> SwarmPause | None:
    """The rollback Swarm completed of ``service`` (its own ``failure_action: rollback``,
    or a ``docker service rollback``): its spec is the previous one again, and the change
    rolled back is its ``PreviousSpec`` (a person's rollback swaps the two). Swarm's own
    rollback drops ``PreviousSpec`` and keeps the update's start: then the change's image
    is that of the newest task (of ``tasks``) created since that start whose image is not
    the spec's; when every such task has the spec's image, the change kept it. None when
    it was not rolled back."""
    rolled = _update_in(service, ("rollback_completed",))
    if rolled is None or rolled.previous:
        return rolled
    began = engine_ns(str((service.get("UpdateStatus") or {}).get("StartedAt") or ""))
    since = sorted(
        (created, _image_of(task.get("Spec") or {}, task=True))
        for task in tasks
        if (created := engine_ns(str(task.get("CreatedAt") or ""))) is not None
        and began is not None
        and created >= began
    )
    if not since:
        return rolled  # the update's tasks are gone from Swarm's history: not known
    other = [image for _, image in since if image != rolled.image]
    return replace(rolled, previous=other[-1] if other else rolled.image)


def _update_in(service: Mapping[str, Any], states: tuple[str, ...]) -> SwarmPause | None:
    state, _ = update_status(service)
    if state not in states:
        return None
    status: Mapping[str, Any] = service.get("UpdateStatus") or {}
    spec: Mapping[str, Any] = service.get("Spec") or {}
    previous: Mapping[str, Any] = service.get("PreviousSpec") or {}
    return SwarmPause(
        name=str(spec.get("Name") or service.get("ID") or ""),
        state=state,
        message=str(status.get("Message") or ""),
        image=_image_of(spec),
        previous=_image_of(previous),
        forced=bool(previous) and _tasks_of(spec) == _tasks_of(previous),
    )


def last_update(service: Mapping[str, Any]) -> SwarmUpdate | None:
    """The last update Swarm made of ``service`` (an inspect of it); None when it keeps no
    ``PreviousSpec`` or carried out none (a deploy that left its spec as it was resets
    its ``UpdateStatus`` and starts no update)."""
    state, started = update_status(service)
    previous = service.get("PreviousSpec")
    if not previous or not state or not started:
        return None
    spec: Mapping[str, Any] = service.get("Spec") or {}
    return SwarmUpdate(
        name=str(spec.get("Name") or service.get("ID") or ""),
        state=state,
        started=started,
        image=_image_of(spec),
        previous=_image_of(previous),
        completed=str((service.get("UpdateStatus") or {}).get("CompletedAt") or ""),
        forced=_tasks_of(spec) == _tasks_of(previous),
    )


def _tasks_of(spec: Mapping[str, Any]) -> object:
    """What of a service spec its tasks run (its ``TaskTemplate``) but the counter a
    ``--force`` moves: an update that changes only that counter changes nothing. Empty
    values are left out: the SDK's update writes some that a deploy leaves unset
    (``"DNSConfig": {}``), and they mean the same."""
    template = dict(spec.get("TaskTemplate") or {})
    template.pop("ForceUpdate", None)
    return _set(template)


def _set(value: object) -> object:
    """``value`` without the empty values (None, "", {}, []) in it, at any depth."""
    if isinstance(value, Mapping):
        kept = {k: _set(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v not in (None, "", {}, [])}
    if isinstance(value, list):
        return [_set(v) for v in value]
    return value


def _image_of(spec: Mapping[str, Any], task: bool = False) -> str:
    """A service spec's image as named (the digest a deploy pinned it to left out); of a
    task's spec (its service's ``TaskTemplate``) with ``task``."""
    template: Mapping[str, Any] = spec if task else spec.get("TaskTemplate") or {}
    image = str((template.get("ContainerSpec") or {}).get("Image") or "")
    return image.split("@", 1)[0]


def status_of(task: Mapping[str, Any]) -> Mapping[str, Any]:
    status: Mapping[str, Any] = task.get("Status") or {}
    return status


def state_of(task: Mapping[str, Any]) -> str:
    return str(status_of(task).get("State") or "")


def _order(task: Mapping[str, Any]) -> tuple[int, int]:
    created = engine_ns(str(task.get("CreatedAt") or "")) or 0
    return created, int((task.get("Version") or {}).get("Index") or 0)


def exit_code(task: Mapping[str, Any]) -> int:
    """The exit code of a task that ended: the container's, else the one its error names;
    -1 when it never ran a container (rejected) and its error names none."""
    status = status_of(task)
    code = int((status.get("ContainerStatus") or {}).get("ExitCode") or 0)
    if code or state_of(task) == "complete":
        return code
    named = _EXIT.search(str(status.get("Err") or ""))
    if named:
        return int(named.group(1))
    return -1 if state_of(task) in ENDED else 0


def _container_spec(task: Mapping[str, Any]) -> Mapping[str, Any]:
    spec: Mapping[str, Any] = (task.get("Spec") or {}).get("ContainerSpec") or {}
    return spec


def task_healthcheck(task: Mapping[str, Any]) -> tuple[float, float, float, int]:
    """(interval, timeout, start period) in seconds and the retries of the task's
    healthcheck; zeros if it declares none (an image's own is not in the task's spec)."""
    check = _container_spec(task).get("Healthcheck") or {}
    return healthcheck_timing(check) if check.get("Test") else (0.0, 0.0, 0.0, 0)


def _health(task: Mapping[str, Any], checked: bool) -> Health | None:
    state = state_of(task)
    if UNHEALTHY_ERR in str(status_of(task).get("Err") or ""):
        return Health.UNHEALTHY
    if state == "starting":
        return Health.STARTING
    if state == "running" and checked:
        return Health.HEALTHY
    return None


def _container_state(task: Mapping[str, Any]) -> ContainerState:
    state = state_of(task)
    if state in PRE_RUN:
        return ContainerState.CREATED
    if state in ("starting", "running"):
        return ContainerState.RUNNING
    if state in ENDED or state in TAKEN:
        return ContainerState.EXITED
    return ContainerState.UNKNOWN


def restart_count(history: Sequence[Mapping[str, Any]], shown: int) -> tuple[frozenset[str], bool]:
    """The ids of the tasks before ``history[shown]`` (oldest first) that ended on their
    own since the newest one swarm took on purpose, and whether such a one bounds them
    (the count begins there; otherwise it may go back past the history kept). A task of
    another spec than the newest's bounds them too: an update that replaced a slot whose
    restart policy gave up shut down no task (none ran), and its task's deaths are its
    own spec's, not the one before."""
    counted: list[str] = []
    spec = history[min(shown, len(history) - 1)].get("Spec") if history else None
    for task in reversed(history[:shown]):
        if state_of(task) in TAKEN or task.get("Spec") != spec:
            return frozenset(counted), True
        if state_of(task) in ENDED:
            counted.append(str(task.get("ID")))
    return frozenset(counted), False


def carry(previous: SlotCount | None, counted: frozenset[str], bounded: bool) -> SlotCount:
    """The slot's count now: the history's, plus what an earlier listing counted of tasks
    the cluster no longer keeps (unless swarm replaced the slot's task on purpose)."""
    if bounded or previous is None:
        return SlotCount(counted, len(counted))
    fresh = counted - previous.counted
    return SlotCount(counted, max(len(counted), previous.restarts + len(fresh)))


def _shown(history: Sequence[Mapping[str, Any]]) -> tuple[int, bool]:
    """Which task of a slot's history (oldest first) is its container, and whether it is
    waiting for a replacement swarm made (in its restart delay)."""
    newest = len(history) - 1
    task = history[newest]
    replacing = state_of(task) in PRE_RUN and task.get("DesiredState") in ("ready", "running")
    if newest and replacing and state_of(history[newest - 1]) in ENDED:
        return newest - 1, True
    return newest, False


def snapshot(
    task: Mapping[str, Any],
    service: str,
    *,
    restarts: int = 0,
    restarting: bool = False,
    node: str = "",
    started: str = "",
    service_labels: Mapping[str, str] | None = None,
    update: tuple[str, str] = ("", ""),
) -> ContainerSnapshot:
    """Our snapshot of one task (``service``: its compose name; ``update``: its swarm
    service's, ``update_status``)."""
    status = status_of(task)
    spec = _container_spec(task)
    labels: Mapping[str, str] = spec.get("Labels") or {}
    interval, timeout, start_period, retries = task_healthcheck(task)
    state = state_of(task)
    stamp = str(status.get("Timestamp") or "")
    ended = state in ENDED or state in TAKEN
    image, _, digest = str(spec.get("Image") or "").partition("@")
    slot = task.get("Slot")
    task_id = str(task.get("ID") or "")
    return ContainerSnapshot(
        id=task_id,
        name=f"{service}.{slot or task.get('NodeID', '')}.{task_id}",
        service=service,
        number=int(slot or 0),
        status=ContainerState.RESTARTING if restarting else _container_state(task),
        health=_health(task, bool(interval)),
        exit_code=exit_code(task) if ended else 0,
        oom_killed=False,  # a task does not say
        restart_count=restarts,
        # one run, one start: a task that turns from starting to running is not restarted
        started_at=started or (stamp if state in ("starting", "running") else ""),
        config_hash=labels.get(HASH_LABEL) or (service_labels or {}).get(HASH_LABEL),
        finished_at=stamp if ended else "",
        health_interval=interval,
        health_timeout=timeout,
        health_start_period=start_period,
        health_retries=retries,
        image_id=digest,
        image=image,
        created_at=str(task.get("CreatedAt") or ""),
        node=node,
        error=str(status.get("Err") or ""),
        pending=state if state in PRE_RUN and not restarting else "",
        update=update[0],
        update_started=update[1],
    )


def _still_wanted(
    service: Mapping[str, Any], live: int, ended: list[ContainerSnapshot]
) -> list[ContainerSnapshot]:
    """Of a service's slots whose task ended for good (none will replace it), the ones
    that still count among its replicas: a slot whose restart policy gave up is one; a
    slot a scale down removed is not (swarm deletes its running task and leaves the old
    ones that ended, so it looks the same). As many as the replicas the live slots do not
    fill, the latest to end first; a global service's all."""
    replicated = ((service.get("Spec") or {}).get("Mode") or {}).get("Replicated")
    if replicated is None:
        return ended
    room = max(0, int(replicated.get("Replicas") or 0) - live)
    ended.sort(key=lambda c: engine_ns(c.finished_at) or 0, reverse=True)
    return ended[:room]


def slot_snapshots(
    stack: str,
    services: Iterable[Mapping[str, Any]],
    tasks: Iterable[Mapping[str, Any]],
    nodes: Mapping[str, str],
    counts: Mapping[str, SlotCount] | None = None,
    starts: Mapping[str, str] | None = None,
    sightings: Mapping[str, Sighting] | None = None,
) -> Listing:
    """The stack's containers: a snapshot per slot (or node) of each of its services.

    ``services`` and ``tasks`` as the manager's API returns them (tasks of other
    services are left out), ``nodes`` a node's host name by its ID, ``counts`` and
    ``starts`` what the previous listing carried (``Listing``), ``sightings`` what the
    nodes' engines said of tasks' containers (``seen_on_node``) by task id."""
    by_id = {
        str(s.get("ID")): s
        for s in services
        if ((s.get("Spec") or {}).get("Labels") or {}).get(STACK_LABEL) == stack
    }
    slots: dict[str, list[Mapping[str, Any]]] = {}
    for task in tasks:
        if str(task.get("ServiceID")) in by_id:
            slots.setdefault(slot_key(task), []).append(task)
    counts = counts or {}
    seen_starts = dict(starts or {})
    snapshots: list[ContainerSnapshot] = []
    carried: dict[str, SlotCount] = {}
    kept: dict[str, str] = {}
    dead: dict[str, list[ContainerSnapshot]] = {}  # by service: slots swarm gave up on
    live: dict[str, int] = {}  # by service: slots with a task swarm means to run
    for key, history in slots.items():
        history.sort(key=_order)
        for task in history:
            task_id = str(task.get("ID"))
            if state_of(task) in ("starting", "running"):
                seen_starts.setdefault(task_id, str(status_of(task).get("Timestamp") or ""))
            if task_id in seen_starts:
                kept[task_id] = seen_starts[task_id]
        index, restarting = _shown(history)
        task = history[index]
        # a slot restarting counts the death its replacement answers, as Docker's count
        # does from the moment a container is restarting (the same count the replacement
        # shows next: not one less while the plan reads it)
        counted, bounded = restart_count(history, index + 1 if restarting else index)
        carried[key] = count = carry(counts.get(key), counted, bounded)
        if state_of(task) in TAKEN and str(task.get("DesiredState")) != "running":
            continue  # swarm took this slot's task away (a scale down, an update's old)
        service_id = str(task.get("ServiceID"))
        spec = by_id[service_id].get("Spec") or {}
        task_id = str(task.get("ID"))
        found = snapshot(
            task,
            compose_name(stack, str(spec.get("Name") or "")),
            restarts=count.restarts,
            restarting=restarting,
            node=nodes.get(str(task.get("NodeID") or ""), str(task.get("NodeID") or "")),
            # a task swarm has not started has no start (its first one is not a restart)
            started=kept.get(task_id)
            or ("" if state_of(task) in PRE_RUN else str(task.get("CreatedAt") or "")),
            service_labels=spec.get("Labels") or {},
            update=update_status(by_id[service_id]),
        )
        sighting = (sightings or {}).get(task_id)
        if sighting is not None and task.get("DesiredState") not in LIVE:
            if state_of(task) not in ENDED:
                # swarm is stopping it on purpose (its desired state moved before the
                # kill): its death is not news, an OOM kill is
                sighting = Sighting(oom=sighting.oom)
            elif not sighting.died_at:
                sighting = Sighting(oom=sighting.oom)  # no verdict of its last moments
        found = seen_on_node(found, sighting)
        if restarting or task.get("DesiredState") in LIVE:
            snapshots.append(found)
            live[service_id] = live.get(service_id, 0) + 1
        else:
            dead.setdefault(service_id, []).append(found)
    for service_id, ended in dead.items():
        snapshots += _still_wanted(by_id[service_id], live.get(service_id, 0), ended)
    snapshots.sort(key=lambda c: (c.service, c.number, c.name))
    return Listing(snapshots, carried, kept)


# --- event hints ---------------------------------------------------------------------


def task_signature(task: Mapping[str, Any]) -> tuple[str, str]:
    return state_of(task), str(task.get("DesiredState") or "")


@dataclass(frozen=True, slots=True)
class Made:
    """What the controller's own commands asked swarm for, so that the tasks swarm makes
    for them are not read as a person's: the ``ForceUpdate`` counters its forced updates
    set (service ID, counter), and the slots its scales added (service ID, slot) with
    when (ns)."""

    forced: frozenset[tuple[str, int]] = frozenset()
    added: Mapping[tuple[str, int], int] = field(default_factory=dict)


def _force_count(task: Mapping[str, Any] | None) -> int:
    return int(((task or {}).get("Spec") or {}).get("ForceUpdate") or 0)


def _made_by(task: Mapping[str, Any], previous: Mapping[str, Any] | None, made: Made) -> str:
    """Who made a task swarm created: ``"swarm"`` (it replaces one that ended on its own:
    the restart policy at work, as Docker restarts a container), ``"controller"`` (the
    controller's forced update or scale), or ``"person"`` (a scale, an update, a deploy
    or a drain of someone else's: the slot had no task, or its task was shut down)."""
    if previous is not None and state_of(previous) in ENDED:
        return "swarm"
    if previous is None and task.get("DesiredState") not in LIVE:
        return "swarm"  # an old task, its predecessor cut from the history swarm keeps
    service = str(task.get("ServiceID"))
    forced = _force_count(task)
    if forced > _force_count(previous) and (service, forced) in made.forced:
        return "controller"  # the counter moved from the slot's last task: our update's
    when = made.added.get((service, int(task.get("Slot") or 0)))
    created = engine_ns(str(task.get("CreatedAt") or "")) or 0
    if when is not None and created >= when:
        return "controller"
    return "person"


def _makers(tasks: Iterable[Mapping[str, Any]], made: Made) -> dict[str, str]:
    """``_made_by`` of every task, by its id."""
    slots: dict[str, list[Mapping[str, Any]]] = {}
    for task in tasks:
        slots.setdefault(slot_key(task), []).append(task)
    makers: dict[str, str] = {}
    for history in slots.values():
        history.sort(key=_order)
        previous: Mapping[str, Any] | None = None
        for task in history:
            makers[str(task.get("ID"))] = _made_by(task, previous, made)
            previous = task
    return makers


def _actions(task: Mapping[str, Any], before: tuple[str, str] | None, maker: str) -> list[str]:
    """The container events a task's change is most like ([] when it is nothing new).

    A task new to the poll made by a person is a ``create`` first (a person's scale,
    update or deploy: a fresh start, seen even when the task was already running when
    polled); one swarm made to replace a task that ended is not: Docker restarting a
    container creates nothing, and a crash loop must not look like a person bringing the
    service back after every crash (that would renew its budget forever); nor one the
    controller's own command made, whose start is a ``restart``."""
    state = state_of(task)
    if before is not None and before[0] == state:
        return []  # only its desired state moved: what it runs did not change yet
    created = ["create"] if before is None and maker == "person" else []
    if state in PRE_RUN:
        return created
    if state in ("starting", "running"):
        healthy = state == "running" and task_healthcheck(task)[0]
        # Docker's word for a container started again by other than a person's start:
        # a ``start`` of a service without a restart policy is a person's (signals)
        began = "start" if maker == "person" else "restart"
        return [*created, "health_status: healthy" if healthy else began]
    if UNHEALTHY_ERR in str(status_of(task).get("Err") or ""):
        return [*created, "health_status: unhealthy"]
    if state in ENDED:
        return [*created, "die"]
    if state in TAKEN:
        return [*created, "destroy"]
    return created


def task_events(
    stack: str,
    names: Mapping[str, str],
    before: Mapping[str, tuple[str, str]],
    tasks: Iterable[Mapping[str, Any]],
    made: Made | None = None,
) -> tuple[list[dict[str, Any]], dict[str, tuple[str, str]]]:
    """The changes of a stack's tasks since ``before`` (each task's signature at the last
    poll) as the engine's container events would say them, and the signatures now.

    ``names``: the swarm service names by service ID (tasks of others are left out);
    ``made``: what the controller's own commands asked for (``_made_by``). An event is a
    hint (observe.events): it makes a pass come sooner; a ``create`` also says a person
    brought the service back (``remediate.signals``)."""
    events: list[dict[str, Any]] = []
    now: dict[str, tuple[str, str]] = {}
    ours = [task for task in tasks if str(task.get("ServiceID")) in names]
    makers = _makers(ours, made or Made())
    for task in ours:
        name = names[str(task.get("ServiceID"))]
        task_id = str(task.get("ID"))
        now[task_id] = signature = task_signature(task)
        if before.get(task_id) == signature:
            continue
        attributes = {
            SERVICE_LABEL: compose_name(stack, name),
            "com.docker.swarm.service.name": name,
            "com.docker.swarm.task.id": task_id,
            "com.docker.swarm.node.id": str(task.get("NodeID") or ""),
        }
        for action in _actions(task, before.get(task_id), makers[task_id]):
            stamp = (
                task.get("CreatedAt") if action == "create" else status_of(task).get("Timestamp")
            )
            events.append(_event(task_id, action, attributes, task, str(stamp or "")))
    return events, now


def _event(
    task_id: str, action: str, attributes: Mapping[str, str], task: Mapping[str, Any], stamp: str
) -> dict[str, Any]:
    said = dict(attributes)
    if action == "die":
        said["exitCode"] = str(exit_code(task))
    nanos = engine_ns(stamp) or 0
    return {
        "Type": "container",
        "Action": action,
        "id": task_id,
        "Actor": {"ID": task_id, "Attributes": said},
        "scope": "swarm",
        "time": nanos // 1_000_000_000,
        "timeNano": nanos,
    }


def service_event(stack: str, event: Mapping[str, Any]) -> dict[str, Any] | None:
    """A manager's service or node event as a hint: a service event of another stack is
    None; one of this stack names its compose service as a container event would."""
    actor = event.get("Actor") or {}
    attributes = dict(actor.get("Attributes") or {})
    if event.get("Type") == "service":
        name = str(attributes.get("name") or "")
        if not name.startswith(f"{stack}_"):
            return None
        attributes[SERVICE_LABEL] = compose_name(stack, name)
    return {**event, "Actor": {**actor, "Attributes": attributes}}
