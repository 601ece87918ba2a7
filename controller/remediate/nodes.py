"""The drain report of a swarm node whose tasks keep failing.

Swarm replaces a task that failed, often on the same node again, and never says "this
node is the problem". The controller says it when the evidence points at the node and
not at a service: at least ``THRESHOLD`` tasks failed on the node within ``WINDOW``
seconds, each of a service that runs fine on another node (a task of it has run there
for ``RAN_FINE`` seconds, and none of it failed there within the window). A service
whose tasks fail on every node it runs on is its own fault: its failures count against
no node. A node a person already drained or paused is not reported.

The report is one issue per node (``node:<host>:failing``), high and handed to a human
at once: draining a node moves every task of every stack on it, which is not the
controller's call; the report names the failures, the nodes where the same services run,
and the command that drains the node (and the one that undoes it). It resolves once the
node no longer fits (its tasks stopped failing for the window, its services fail
elsewhere too), a person drains or pauses it, or it leaves the swarm.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from controller.issues.store import IssueStore
from controller.logfields import of_service
from controller.model import (
    Category,
    FindingKind,
    IssueSource,
    ObservedState,
    Severity,
    StackView,
    TaskFailure,
    at_utc,
    to_datetime,
)

THRESHOLD = 3  # tasks failed on one node ...
WINDOW = 600.0  # ... within this many seconds
RAN_FINE = 30.0  # seconds a task of the same service has run on another node
SHOWN = 5  # failures the report lists, newest first
_DONE = {"drain": "drained", "pause": "paused"}


def node_failing(node: str) -> str:
    """The fingerprint of a node's drain report."""
    return f"node:{node}:failing"


@dataclass(frozen=True, slots=True)
class Suspect:
    """A node the evidence points at: its failures (of services that run fine on other
    nodes) in the window, and those nodes by service."""

    node: str
    failures: tuple[TaskFailure, ...]  # oldest first
    elsewhere: Mapping[str, tuple[str, ...]]  # service -> the nodes it runs fine on

    @property
    def service(self) -> str:
        """The service that failed there most (the issue's)."""
        counts: dict[str, int] = {}
        for failure in self.failures:
            counts[failure.service] = counts.get(failure.service, 0) + 1
        return min(counts, key=lambda s: (-counts[s], s))


def suspects(view: StackView, now: float) -> list[Suspect]:
    """The active nodes of the swarm whose tasks keep failing while the same services run
    fine elsewhere (module docstring)."""
    recent = [f for f in view.failures if now - f.at <= WINDOW]
    failed_on = {(f.service, f.node) for f in recent}
    fine: dict[str, set[str]] = {}
    for run in view.runs:
        if now - run.since >= RAN_FINE and (run.service, run.node) not in failed_on:
            fine.setdefault(run.service, set()).add(run.node)
    found: list[Suspect] = []
    for node in view.nodes:
        if node.availability != "active":
            continue
        mine = tuple(f for f in recent if f.node == node.name and fine.get(f.service))
        if len(mine) >= THRESHOLD:
            services = sorted({f.service for f in mine})
            elsewhere = {s: tuple(sorted(fine[s])) for s in services}
            found.append(Suspect(node.name, mine, elsewhere))
    return found


def _why_not(view: StackView, node: str, now: float) -> str:
    """Why a reported node is no longer one: the resolution of its report."""
    found = next((n for n in view.nodes if n.name == node), None)
    if found is None:
        return f"node {node} left the swarm"
    if found.availability != "active":
        done = _DONE.get(found.availability, found.availability)
        return f"node {node} is {done} (its availability is {found.availability})"
    failed = [f for f in view.failures if f.node == node and now - f.at <= WINDOW]
    if not failed:
        return f"no task has failed on node {node} for {WINDOW / 60:g} minutes"
    if len(failed) < THRESHOLD:
        return (
            f"only {len(failed)} task(s) failed on node {node} in the last {WINDOW / 60:g} "
            f"minutes (fewer than {THRESHOLD})"
        )
    return (
        f"the services that failed on node {node} do not run fine on any other node now: "
        "theirs to fix, not the node's"
    )


def drain_command(node: str, availability: str = "drain") -> str:
    return f"docker node update --availability {availability} {node}"


def _failure(failure: TaskFailure) -> str:
    slot = f" slot {failure.slot}" if failure.slot else ""
    code = "never started" if failure.exit_code == -1 else f"exit {failure.exit_code}"
    said = f": {failure.error}" if failure.error else ""
    when = at_utc(to_datetime(failure.at))
    return f"{failure.service}{slot} (task {failure.task[:12]}) {code} at {when}{said}"


def _report(suspect: Suspect) -> tuple[str, str]:
    """The title and the detail of a node's drain report."""
    node, failures = suspect.node, suspect.failures
    services = ", ".join(suspect.elsewhere)
    title = (
        f"tasks keep failing on node {node}: {len(failures)} failed there in the last "
        f"{WINDOW / 60:g} minutes while {services} run(s) on other nodes"
    )
    newest = [_failure(f) for f in reversed(failures[-SHOWN:])]
    more = f" and {len(failures) - SHOWN} more" if len(failures) > SHOWN else ""
    runs = "; ".join(f"{s} runs on {', '.join(nodes)}" for s, nodes in suspect.elsewhere.items())
    detail = (
        f"failed on {node}: {'; '.join(newest)}{more}. Meanwhile {runs}: the node is the "
        f"likely cause. `{drain_command(node)}` moves its tasks to other nodes "
        f"(`{drain_command(node, 'active')}` undoes it)"
    )
    return title, detail


def _handed_over(node: str) -> str:
    return (
        f"draining node {node} moves every task of every stack on it, which is a person's "
        f"call, not the controller's: `{drain_command(node)}` (undo: "
        f"`{drain_command(node, 'active')}`)"
    )


class NodeWatch:
    """What each pass does about the swarm's nodes: a drain report opened, brought up to
    date or resolved per node (module docstring). Nothing on one engine."""

    def __init__(self, store: IssueStore) -> None:
        self._store = store

    def pass_seen(self, observed: ObservedState) -> bool:
        """True when a report opened or resolved."""
        view = observed.stack
        if view is None:
            return False
        now = observed.observed_at
        found = {s.node: s for s in suspects(view, now)}
        news = False
        for suspect in found.values():
            news |= self._raise(suspect)
        for issue in self._store.active():
            if issue.kind is not FindingKind.NODE_FAILING:
                continue
            node = issue.fingerprint.removeprefix("node:").removesuffix(":failing")
            if node in found:
                continue
            why = _why_not(view, node, now)
            if self._store.settle(issue.fingerprint, why):
                of_service(issue.service).info("node {}: drain report resolved: {}", node, why)
                news = True
        return news

    def _raise(self, suspect: Suspect) -> bool:
        title, detail = _report(suspect)
        fingerprint = node_failing(suspect.node)
        opened = self._store.raise_change(
            fingerprint,
            suspect.service,
            FindingKind.NODE_FAILING,
            severity=Severity.HIGH,
            blocking=False,
            title=title,
            detail=detail,
            source=IssueSource.ENGINE,
            category=Category.HEALTH,
        )
        handed = self._store.escalate([fingerprint], _handed_over(suspect.node))
        if opened:
            of_service(suspect.service).warning("node {}: {}", suspect.node, title)
        return opened or handed
