"""The crash pattern of a service: which runs of its containers died, and how long each
lasted before it did (by the engine's clock). A fix is proven, and an incident over, only
once the service outlives that pattern (``policy.RetryPolicy.crash_hold``): a service
that dies 3 s after every start is not "fixed" by being ready for 2 s. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from controller.model import ContainerSnapshot, ObservedState, engine_time
from controller.remediate.verify import instance


def crash_runs(crashed: Sequence[ContainerSnapshot]) -> list[tuple[str, float]]:
    """The runs these crashed containers ended (``id@StartedAt``) and how long each
    lasted, by the engine's clock; one the engine gives no times for is left out."""
    runs: list[tuple[str, float]] = []
    for c in crashed:
        started, ended = _epoch(c.started_at), _epoch(c.finished_at)
        if started is not None and ended is not None and ended >= started:
            runs.append((instance(c), ended - started))
    return runs


def policy_crash_runs(
    counts: Mapping[str, int], starts: Mapping[str, str], observed: ObservedState
) -> list[tuple[str, list[tuple[str, float]]]]:
    """The runs Docker's restart policy ended since the last pass, by service: a
    container whose restart count moved died (and was started again) after the start
    the last pass saw (``counts`` and ``starts`` by container id). Several restarts
    between two passes share the time evenly."""
    by_service: dict[str, list[tuple[str, float]]] = {}
    for c in observed.containers:
        before, start = counts.get(c.id), starts.get(c.id, "")
        if before is None or c.restart_count <= before:
            continue
        started, ended = _epoch(start), _epoch(c.finished_at)
        if started is None or ended is None or ended < started:
            continue
        lived = (ended - started) / (c.restart_count - before)
        by_service.setdefault(c.service, []).append((f"{c.id}@{start}", lived))
    return sorted(by_service.items())


def _epoch(stamp: str) -> float | None:
    moment = engine_time(stamp) if stamp else None
    return None if moment is None else moment.timestamp()
