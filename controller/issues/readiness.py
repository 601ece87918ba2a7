"""How long each service has been ready, as the passes saw it: the evidence behind
"recovered" (a drift resolves only after its service stayed ready for its hold) and
behind the gate's "converged" (ready, and for long enough to trust).

Ready means ready without a restart in between: a service whose restart count moved
between two passes (Docker's restart policy brought it back from a crash the passes did
not see) starts its time again. Not thread-safe: the issue store calls it under its lock.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from controller.model import ServiceCondition, ServiceStatus


class Readiness:
    def __init__(self) -> None:
        self.statuses: dict[str, ServiceStatus] = {}  # of the newest pass, by name
        self._since: dict[str, tuple[datetime, int]] = {}  # ready since, restart count then
        self._synced_at: datetime | None = None  # when the newest pass observed

    def observe(self, statuses: Iterable[ServiceStatus], now: datetime) -> bool:
        """Take one pass's statuses, observed at ``now``; True when any changed."""
        services = {s.name: s for s in statuses}
        changed = services != self.statuses
        self.statuses, self._synced_at = services, now
        for name, status in services.items():
            since = self._since.get(name)
            if status.condition is not ServiceCondition.READY:
                self._since.pop(name, None)
            elif since is None or since[1] != status.restarts:  # restarted in between
                self._since[name] = (now, status.restarts)
        for name in set(self._since) - set(services):
            del self._since[name]
        return changed

    def is_ready(self, service: str) -> bool:
        return service in self._since

    def ready_for(self, service: str) -> float:
        """Seconds ``service`` has been ready, as the newest pass saw it (0: not ready)."""
        since = self._since.get(service)
        if since is None or self._synced_at is None:
            return 0.0
        return (self._synced_at - since[0]).total_seconds()

    def stable(self, service: str, now: datetime, hold: float) -> bool:
        """The service has been ready for ``hold`` seconds at ``now`` (one no pass reports,
        an orphan that went away, is done at once)."""
        if service not in self.statuses:
            return True
        since = self._since.get(service)
        return since is not None and (now - since[0]).total_seconds() >= hold
