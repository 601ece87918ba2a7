"""A swarm's nodes and where the stack's tasks failed and run, as the manager lists them
(pure): what the drain report of a node judges (``remediate.nodes``).

A failure is a task Swarm calls ``failed`` (its container exited non-zero, or Swarm
killed it as unhealthy) or ``rejected`` (its node could not start it: an image it lacks,
a mount it does not have), with its node, exit code, error and when. A task that ended
``complete`` (exit 0) or that Swarm shut down on purpose (an update, a scale, a drain) is
no failure. The cluster keeps the last few tasks of each slot (5 by default): the
failures are those it keeps.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from controller.model import SwarmNode, TaskFailure, TaskRun, engine_ns
from controller.observe.swarmtasks import (
    STACK_LABEL,
    compose_name,
    exit_code,
    state_of,
    status_of,
)

FAILED = frozenset({"failed", "rejected"})


def swarm_nodes(nodes: Iterable[Mapping[str, Any]]) -> tuple[SwarmNode, ...]:
    """The nodes as the API lists them (``docker node ls``), by host name."""
    return tuple(
        SwarmNode(
            name=str((n.get("Description") or {}).get("Hostname") or n.get("ID") or ""),
            availability=str((n.get("Spec") or {}).get("Availability") or "active"),
            state=str((n.get("Status") or {}).get("State") or "unknown"),
        )
        for n in nodes
    )


def _names(stack: str, services: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """The stack's compose service names by swarm service ID."""
    return {
        str(s.get("ID")): compose_name(stack, str((s.get("Spec") or {}).get("Name") or ""))
        for s in services
        if ((s.get("Spec") or {}).get("Labels") or {}).get(STACK_LABEL) == stack
    }


def _when(task: Mapping[str, Any]) -> float:
    return (engine_ns(str(status_of(task).get("Timestamp") or "")) or 0) / 1e9


def task_failures(
    stack: str,
    services: Iterable[Mapping[str, Any]],
    tasks: Iterable[Mapping[str, Any]],
    hosts: Mapping[str, str],
) -> tuple[tuple[TaskFailure, ...], tuple[TaskRun, ...]]:
    """The stack's tasks that failed, and those that run now (each with its node's host
    name, ``hosts`` by node ID); tasks of other stacks are left out."""
    names = _names(stack, services)
    failures: list[TaskFailure] = []
    runs: list[TaskRun] = []
    for task in tasks:
        service = names.get(str(task.get("ServiceID")))
        node_id = str(task.get("NodeID") or "")
        if service is None or not node_id:
            continue
        node = hosts.get(node_id, node_id)
        state = state_of(task)
        if state in FAILED:
            failures.append(
                TaskFailure(
                    service=service,
                    slot=int(task.get("Slot") or 0),
                    task=str(task.get("ID") or ""),
                    node=node,
                    exit_code=exit_code(task),
                    error=str(status_of(task).get("Err") or ""),
                    at=_when(task),
                )
            )
        elif state == "running" and task.get("DesiredState") == "running":
            runs.append(TaskRun(service, node, _when(task)))
    failures.sort(key=lambda f: (f.at, f.task))
    return tuple(failures), tuple(runs)
