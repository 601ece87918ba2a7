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

- While a replacement waits out the restart delay (swarm creates it at once, ``ready``,
  and starts it after ``restart_policy.delay``), the slot is still the task that ended,
  ``restarting`` (Docker's word for a container dead in its restart delay) with that
  task's exit code and error: what a person sees first of a killed task is its death.
- Tasks carry no health: a task with a healthcheck is ``starting`` until its first
  healthy check, and is killed when unhealthy (``Status.Err`` ends
  ``dockerexec: unhealthy container``): that task's health is unhealthy.
- The restart count is how many earlier tasks of the slot ended on their own since swarm
  last replaced one on purpose (an update or a scale: a ``shutdown`` task), as a recreate
  begins a new count in Compose. The history is cut at the task history limit, so the
  engine carries the count from one listing to the next (``SlotCount``).
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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from controller.model import (
    ContainerSnapshot,
    ContainerState,
    Health,
    engine_ns,
    healthcheck_timing,
)

STACK_LABEL = "com.docker.stack.namespace"
HASH_LABEL = "com.docker.compose.config-hash"  # as Compose names it (observe.engine)
SERVICE_LABEL = "com.docker.compose.service"  # what an event hint names its service by

PRE_RUN = frozenset({"new", "allocated", "pending", "assigned", "accepted", "preparing", "ready"})
ENDED = frozenset({"complete", "failed", "rejected", "orphaned"})
TAKEN = frozenset({"shutdown", "remove"})  # swarm stopped it on purpose
LIVE = frozenset({"running", "ready"})  # desired states of a task swarm means to run
UNHEALTHY_ERR = "unhealthy container"
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
    (the count begins there; otherwise it may go back past the history kept)."""
    counted: list[str] = []
    for task in reversed(history[:shown]):
        if state_of(task) in TAKEN:
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
) -> Listing:
    """The stack's containers: a snapshot per slot (or node) of each of its services.

    ``services`` and ``tasks`` as the manager's API returns them (tasks of other
    services are left out), ``nodes`` a node's host name by its ID, ``counts`` and
    ``starts`` what the previous listing carried (``Listing``)."""
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
        counted, bounded = restart_count(history, index)
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
            started=kept.get(task_id) or str(task.get("CreatedAt") or ""),
            service_labels=spec.get("Labels") or {},
            update=update_status(by_id[service_id]),
        )
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


def _action(task: Mapping[str, Any], before: tuple[str, str] | None) -> str | None:
    """The container event a task's change is most like, None when it is nothing new."""
    state = state_of(task)
    if before is not None and before[0] == state:
        return None  # only its desired state moved: what it runs did not change yet
    if state in PRE_RUN:
        return "create" if before is None else None
    if state in ("starting", "running"):
        return (
            "start"
            if state == "starting" or not task_healthcheck(task)[0]
            else "health_status: healthy"
        )
    if UNHEALTHY_ERR in str(status_of(task).get("Err") or ""):
        return "health_status: unhealthy"
    if state in ENDED:
        return "die"
    if state in TAKEN:
        return "destroy"
    return None


def task_events(
    stack: str,
    names: Mapping[str, str],
    before: Mapping[str, tuple[str, str]],
    tasks: Iterable[Mapping[str, Any]],
) -> tuple[list[dict[str, Any]], dict[str, tuple[str, str]]]:
    """The changes of a stack's tasks since ``before`` (each task's signature at the last
    poll) as the engine's container events would say them, and the signatures now.

    ``names``: the swarm service names by service ID (tasks of others are left out). An
    event is a hint only (observe.events): it makes a pass come sooner, nothing more."""
    events: list[dict[str, Any]] = []
    now: dict[str, tuple[str, str]] = {}
    for task in tasks:
        name = names.get(str(task.get("ServiceID")))
        if name is None:
            continue
        task_id = str(task.get("ID"))
        now[task_id] = signature = task_signature(task)
        if before.get(task_id) == signature:
            continue
        action = _action(task, before.get(task_id))
        if action is None:
            continue
        attributes = {
            SERVICE_LABEL: compose_name(stack, name),
            "com.docker.swarm.service.name": name,
            "com.docker.swarm.task.id": task_id,
            "com.docker.swarm.node.id": str(task.get("NodeID") or ""),
        }
        if action == "die":
            attributes["exitCode"] = str(exit_code(task))
        nanos = engine_ns(str(status_of(task).get("Timestamp") or "")) or 0
        events.append(
            {
                "Type": "container",
                "Action": action,
                "id": task_id,
                "Actor": {"ID": task_id, "Attributes": attributes},
                "scope": "swarm",
                "time": nanos // 1_000_000_000,
                "timeNano": nanos,
            }
        )
    return events, now


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
