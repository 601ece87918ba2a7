"""The crash pattern of a service: which runs of its containers died, how long each lasted
before it did (by the engine's clock), and how long a fix must hold to outlive them.

A service that dies 3 s after every start is not "fixed" by being ready for 2 s: a step is
proven, an incident over and a service converged only once the service has stayed ready
for as long as its runs lasted before they died, half that again and at least
``OUTLIVE_MARGIN`` more (a busy machine's jitter), plus Docker's next restart delay where
a restart policy loops it. One crash since the service was last stable is held at most
``ONE_OFF_HOLD`` (a service SIGKILLed once after an hour is back, not looping); a second
proves a loop and is held its whole length, never past the backoff reset (ready that
long, it is stable; a run that long before it died was stable itself). Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from controller.model import ContainerSnapshot, CrashPattern, ObservedState, engine_time
from controller.remediate.verify import instance

OUTLIVE_MARGIN = 2.0
ONE_OFF_HOLD = 60.0
# Docker's restart manager waits 100 ms before restarting a container that died, doubling
# per death to 1 min, and starts again at 100 ms after a run of 10 s.
DOCKER_DELAY_FIRST = 0.1
DOCKER_DELAY_MAX = 60.0
DOCKER_DELAY_RESET = 10.0
KEEP_RUNS = 8
# a CI gate stops fixing a service whose crashes repeat: this many, this close in time
SAME_WAY_TIMES = 2
SAME_WAY_SLACK = 2.0


def crash_runs(crashed: Sequence[ContainerSnapshot]) -> list[tuple[str, float]]:
    """The runs these crashed containers ended (``id@StartedAt``) and how long each
    lasted, by the engine's clock; one the engine gives no times for is left out, and one
    it stamped finished before it stamped its start (a process that exited at once) lasted
    no time."""
    runs: list[tuple[str, float]] = []
    for c in crashed:
        started, ended = _epoch(c.started_at), _epoch(c.finished_at)
        if started is not None and ended is not None:
            runs.append((instance(c), max(0.0, ended - started)))
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
        if started is None or ended is None:
            continue
        lived = max(0.0, ended - started) / (c.restart_count - before)
        by_service.setdefault(c.service, []).append((f"{c.id}@{start}", lived))
    return sorted(by_service.items())


def docker_delay(crashes: int, lived: float) -> float:
    """Docker's wait before its next restart of a container whose runs lasted ``lived`` s
    and died ``crashes`` times in a row."""
    if crashes <= 0 or lived >= DOCKER_DELAY_RESET:
        return DOCKER_DELAY_FIRST
    return min(DOCKER_DELAY_FIRST * 2.0 ** min(crashes, 30), DOCKER_DELAY_MAX)


def with_crash(
    pattern: CrashPattern, run: str, lived: float, stable: float, exit_code: int | None = None
) -> CrashPattern:
    """The pattern with ``run`` (``id@StartedAt``, crashed after ``lived`` s with
    ``exit_code``) counted once; a run that lasted ``stable`` seconds (the backoff reset)
    was no part of a pattern."""
    if run in pattern.runs or lived < 0:
        return pattern
    runs = [*pattern.runs, run][-KEEP_RUNS:]
    if lived >= stable:
        return pattern.model_copy(update={"runs": runs})
    shapes = pattern.shapes
    if exit_code is not None:
        shapes = [*shapes, (exit_code, round(lived, 2))][-KEEP_RUNS:]
    return CrashPattern(
        longest=max(pattern.longest, lived), count=pattern.count + 1, runs=runs, shapes=shapes
    )


def same_way(pattern: CrashPattern, times: int = SAME_WAY_TIMES) -> str:
    """Why the newest ``times`` crashes were one failure repeating (the same exit code, at
    about the same time after each start: within ``SAME_WAY_SLACK`` s or a quarter), in
    one line; "" when they were not (or there were fewer)."""
    recent = pattern.shapes[-times:]
    if len(recent) < times or len({code for code, _ in recent}) != 1:
        return ""
    lives = [lived for _, lived in recent]
    if max(lives) - min(lives) > max(SAME_WAY_SLACK, max(lives) / 4):
        return ""
    return (
        f"crashed the same way {times} times: exit {recent[0][0]}, about "
        f"{sum(lives) / len(lives):.1f} s after each start; another restart will not help"
    )


def outlive(pattern: CrashPattern, restart_policy: bool, stable: float) -> float:
    """Seconds the service must stay ready to have outlived ``pattern`` (0: no crash)."""
    if not pattern.count:
        return 0.0
    lived = pattern.longest
    hold = lived + max(OUTLIVE_MARGIN, lived / 2)
    if restart_policy:
        hold += docker_delay(pattern.count, lived)
    cap = ONE_OFF_HOLD if pattern.count == 1 else stable
    return min(hold, cap, stable)


def _epoch(stamp: str) -> float | None:
    moment = engine_time(stamp) if stamp else None
    return None if moment is None else moment.timestamp()
