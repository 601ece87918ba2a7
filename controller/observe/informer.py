"""The project's containers as last seen, kept current by the engine's events.

The informer pattern of Kubernetes' client libraries: list once, then watch; relist fully
now and then. Inspecting every container on every pass made a pass cost 1 ms of CPU per
container (0.6 s at 500). Here a read makes one list call (the engine's summaries, which
say each container's state and health) and inspects only containers that are new, whose
summary changed, or that an event touched since the last read (a start, a death, a health
change, a failed exec), and again at every read for ``SETTLE_SECONDS`` after such an event:
events come in bursts (a ``docker restart`` is kill, die, stop, start), and what the
summary does not show (a restart count, a finish time, an exit code) may change again
within the burst, after the read the first event asked for. A full relist, every container
inspected, comes on the first read after the event stream connects (events may have been
missed before) and every ``resync`` seconds, so a missed event is never wrong for long.
While no event stream flows (not yet connected, or broken), every read inspects every
container: without events, only that sees a restart between two reads.

A healthcheck that passes is an ``exec_die`` event with exit code 0 every few seconds per
container: it changes nothing worth an inspect, but it is the engine saying a check just
ended, so it moves the snapshot's last check to the event's time. A stall (no check for
the stall limit) is never concluded from this cache: a container whose snapshot looks
overdue is inspected afresh at the read, so a pass sees a stall only in the engine's own
health log read just then.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace

from controller.model import ContainerSnapshot
from controller.observe.events import ACTIONS
from controller.observe.gateway import ContainerGone, ContainerSummary, EngineGateway

RESYNC_SECONDS = 600.0
# seconds after an event touched a container during which every read inspects it afresh
# (the rest of a burst of events may change what the list's summary does not show)
SETTLE_SECONDS = 5.0
# events after which a container's inspect may say something new: those worth a pass,
# and exec_die (a healthcheck ran)
TOUCHING = ACTIONS | {"exec_die"}


def _signature(summary: ContainerSummary) -> tuple[str, str]:
    return summary.state, summary.marks


class ContainerCache:
    def __init__(
        self,
        gateway: EngineGateway,
        project: str,
        resync: float = RESYNC_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._gateway = gateway
        self._project = project
        self._resync = resync
        self._clock = clock
        self._wall = wall  # epoch seconds, to tell an overdue healthcheck
        self._lock = threading.Lock()  # guards the fields below
        self._reading = threading.Lock()  # one read at a time
        self._snapshots: dict[str, ContainerSnapshot] = {}
        self._signatures: dict[str, tuple[str, str]] = {}
        self._touched: set[str] = set()
        self._touched_at: dict[str, float] = {}  # container -> its newest touch (clock)
        self._watching = False  # events flow: a read may skip what no event touched
        self._relisted_at: float | None = None  # None: relist fully at the next read
        self._connection = 0  # counts connects and breaks of the event stream

    def event(
        self,
        container_id: str,
        action: str,
        attributes: Mapping[str, object],
        at: float | None = None,
    ) -> None:
        """An engine event about a container (``at``: the engine's time stamp, epoch s):
        inspect it again at the next read if it may have changed. A healthcheck that passes
        changes nothing, unless checks were failing; it only says when a check ended."""
        if action not in TOUCHING:
            return
        with self._lock:
            if action == "exec_die" and str(attributes.get("exitCode", "0")) == "0":
                known = self._snapshots.get(container_id)
                if known is not None and not known.failing_streak:
                    if at is not None and known.health_interval and at > known.last_check_at:
                        self._snapshots[container_id] = replace(known, last_check_at=at)
                    return
            self._touched.add(container_id)
            self._touched_at[container_id] = self._clock()

    def watching(self, up: bool) -> None:
        """The event stream connected (True) or broke (False): relist fully at the next
        read, and keep doing so on every read until events flow again."""
        with self._lock:
            self._watching = up
            self._relisted_at = None
            self._connection += 1

    def containers(self) -> list[ContainerSnapshot]:
        """Every container of the project, as current as the events make it; raises
        ``EngineUnavailable`` when the engine cannot be listed."""
        with self._reading:
            now = self._clock()
            with self._lock:  # before listing: what the events vouch for from here on
                full = (
                    not self._watching
                    or self._relisted_at is None
                    or now - self._relisted_at >= self._resync
                )
                # a full read is the relist only if events already flowed when it listed
                # and the stream did not connect or break meanwhile
                relist = full and self._watching
                connection = self._connection
            summaries = self._gateway.list_summaries(self._project)
            wall = self._wall()
            with self._lock:
                touched, self._touched = self._touched, set()
                self._touched_at = {
                    cid: at for cid, at in self._touched_at.items() if now - at < SETTLE_SECONDS
                }
                touched |= set(self._touched_at)  # still settling: read afresh
                known = self._snapshots
                stale = [
                    s
                    for s in summaries
                    if full
                    or s.id in touched
                    or self._signatures.get(s.id) != _signature(s)
                    or s.id not in known
                    or known[s.id].checks_overdue(wall)  # proven from a fresh read only
                ]
            fresh: dict[str, ContainerSnapshot] = {}
            for summary in stale:
                try:
                    fresh[summary.id] = self._gateway.inspect(summary.id)
                except ContainerGone:
                    continue  # removed since the list call: it is simply not there
            with self._lock:
                present = {s.id for s in summaries}
                for cid in set(self._snapshots) - present:
                    del self._snapshots[cid]
                    self._signatures.pop(cid, None)
                for summary in stale:
                    if summary.id in fresh:
                        self._snapshots[summary.id] = fresh[summary.id]
                        self._signatures[summary.id] = _signature(summary)
                    else:
                        self._snapshots.pop(summary.id, None)
                        self._signatures.pop(summary.id, None)
                if relist and connection == self._connection:
                    self._relisted_at = now
                snapshots = list(self._snapshots.values())
        return sorted(snapshots, key=lambda c: (c.service, c.number, c.name))
