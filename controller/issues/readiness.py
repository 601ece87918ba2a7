"""How long each service has been ready, as the passes saw it: the evidence behind
"recovered" (a drift resolves only after its service stayed ready for its hold) and
behind the gate's "converged" (ready, and for long enough to trust).

Ready means ready in the same container runs: a service whose containers started again
between two passes (Docker's restart policy, a person's ``docker restart``, an engine
restart: a container's ``id@StartedAt#RestartCount`` changed) starts its time again.
The time counts from the latest of: the earliest the runs can have been ready (the
newest start plus the time the service may take to become ready, ``ready_from``), the
last pass that saw the service not ready, and, when the runs changed since the last
pass, that pass (what the engine's clock says is not trusted over the controller's:
a restart it stamps a minute early is still a restart now). So a stack that has run for
hours is settled at the first pass; one just started, or just back from a crash, is not.
Not thread-safe: the issue store calls it under its lock.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from controller.model import ServiceCondition, ServiceStatus

_LONG_AGO = datetime(1970, 1, 1, tzinfo=UTC)  # no container: nothing can have restarted


class Readiness:
    def __init__(self) -> None:
        self.statuses: dict[str, ServiceStatus] = {}  # of the newest pass, by name
        self._since: dict[str, tuple[datetime, str]] = {}  # ready since, its runs then
        self._unready_at: dict[str, datetime] = {}  # the last pass that saw it not ready
        self._synced_at: datetime | None = None  # when the newest pass observed

    def observe(self, statuses: Iterable[ServiceStatus], now: datetime) -> bool:
        """Take one pass's statuses, observed at ``now``; True when any changed."""
        services = {s.name: s for s in statuses}
        changed = services != self.statuses
        previous = self._synced_at or _LONG_AGO
        self.statuses, self._synced_at = services, now
        for name, status in services.items():
            since = self._since.get(name)
            if status.condition is not ServiceCondition.READY:
                self._since.pop(name, None)
                self._unready_at[name] = now
            elif since is None or since[1] != status.runs:  # new, or started again
                evidence = [status.ready_from or _LONG_AGO, self._unready_at.get(name, _LONG_AGO)]
                if since is not None:  # started again since the last pass
                    evidence.append(previous)
                self._since[name] = (min(now, max(evidence)), status.runs)
        for name in set(self._since) - set(services):
            del self._since[name]
        return changed

    def since(self, service: str) -> datetime | None:
        """When ``service`` became ready, as the passes can vouch (None: not ready)."""
        since = self._since.get(service)
        return None if since is None else since[0]

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
