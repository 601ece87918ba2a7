"""The updates Swarm paused, those the controller judged bad after Swarm completed them
(``swarmverdict``), and with ``rollback: {scope: stack}`` the services the same operation
updated (``swarmchanges.operation_of``): shared by the change watch, which finds them,
and the reconciler, which rolls them back; in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from threading import Lock

from controller.model import ServiceSpec, SwarmPause, SwarmUpdate
from controller.remediate.swarmchanges import SWEPT, dependencies_first, operation_of


class Operations:
    """The update Swarm paused of a service and, with ``scope: stack``, the services the
    same operation updated (``sweep``): each is bad with it while it runs that update (its
    ``UpdateStatus.StartedAt`` the same, not rolled back), as a ``SwarmPause`` ``because``
    of the paused one; one the controller judged bad is kept the same way (``judged``).
    Shared by the change watch, which sweeps, and the reconciler, which rolls back; kept
    in memory (a restarted controller sweeps again while the update stays paused)."""

    def __init__(
        self,
        paused: Callable[[str], SwarmPause | None],
        updates: Callable[[], Mapping[str, SwarmUpdate]],
    ) -> None:
        self._read = paused
        self._updates = updates
        self._lock = Lock()
        self._of: dict[str, tuple[str, ...]] = {}  # paused service -> its operation, in order
        self._swept: dict[str, tuple[SwarmPause, str]] = {}  # service -> (why, its update's start)

    def paused(self, service: str) -> SwarmPause | None:
        """The update of ``service`` Swarm paused, or one kept as bad (swept with a paused
        one, or judged) and still running (read afresh); None when neither."""
        pause = self._read(service)
        with self._lock:
            if pause is not None:
                return replace(pause, operation=self._of.get(service, ()))
            kept = self._swept.get(service)
            if kept is None:
                self._of.pop(service, None)
                return None
        now = self._updates().get(service)
        if kept[0].judged and (now is None or (now.forced and now.state in SWEPT)):
            # Swarm reset the update's record (a deploy of the same spec, a scale) and
            # began no update, or a person's --force restarted its tasks: the same spec
            # runs, but ``PreviousSpec`` is not the spec before it
            with self._lock:
                return replace(
                    kept[0], reset=True, operation=self._of.get(service, kept[0].operation)
                )
        if now is not None and now.state in SWEPT and now.started == kept[1]:
            with self._lock:  # a judged one's operation, once it swept its own
                return replace(kept[0], operation=self._of.get(service, kept[0].operation))
        with self._lock:
            if self._swept.get(service) == kept:
                del self._swept[service]
                self._of.pop(service, None)
        return None

    def swept(self, service: str) -> SwarmPause | None:
        """Why ``service`` was kept as bad though Swarm did not pause it: swept with a
        paused one, or judged by the controller (it may have been rolled back since)."""
        with self._lock:
            kept = self._swept.get(service)
        return kept[0] if kept is not None else None

    def judged(self, service: str, pause: SwarmPause, started: str) -> None:
        """The controller judged the update of ``service`` Swarm completed (begun at
        ``started``) bad (``swarmverdict``): kept as bad while it runs that update, as one
        swept with a paused update is."""
        with self._lock:
            self._swept[service] = (pause, started)

    def sweep(
        self, service: str, pause: SwarmPause, specs: Mapping[str, ServiceSpec], within: float
    ) -> list[str]:
        """``scope: stack``: the services the operation of ``service`` (its update paused
        as ``pause`` says) updated along with it, kept as bad with it (once: the first
        sweep of a pause decides); those newly kept."""
        with self._lock:
            if service in self._of:
                return []
        updates = self._updates()
        names = dependencies_first(
            (n for n in operation_of(service, updates, within) if n in specs), specs
        )
        operation = tuple(updates[n].name for n in names)
        fresh: list[str] = []
        with self._lock:
            self._of[service] = operation
            for name in names:
                update = updates[name]
                if name == service or update.state not in SWEPT or name in self._swept:
                    continue
                why = SwarmPause(
                    update.name,
                    update.state,
                    pause.message,
                    update.image,
                    update.previous,
                    because=service,
                    operation=operation,
                    judged=pause.judged,
                )
                self._swept[name] = (why, update.started)
                fresh.append(name)
        return fresh
