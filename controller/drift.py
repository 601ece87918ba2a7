"""The heart of the loop: ``diff(desired, observed)`` lists every drift. Pure, no I/O.

Also here, because it is the same reading of the same snapshots: whether a service is
ready as declared (``service_ready``), its status for the reports (``service_status``),
and how long it may take to become ready after a start (``startup_allowance``).

Level-triggered like a Kubernetes reconciler: the whole picture is recomputed from one
fresh observation each pass, so nothing depends on which events were seen or missed.
One drift per service and kind (replicas share it; the affected containers are listed),
with the engine's record of when its fault began (``Drift.since``), the evidence
``causes.root_causes`` orders faults by.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from controller.model import (
    Category,
    ContainerSnapshot,
    ContainerState,
    DesiredState,
    Drift,
    DriftKind,
    Health,
    ObservedState,
    ProbeView,
    ServiceCondition,
    ServiceRunState,
    ServiceSpec,
    ServiceStatus,
    Severity,
    StackView,
    engine_time,
    to_datetime,
)

# Severity of each kind of drift for a required service; optional services' drifts are low.
_SEVERITY = {
    DriftKind.MISSING: Severity.HIGH,
    DriftKind.EXITED: Severity.HIGH,
    DriftKind.DEAD: Severity.HIGH,
    DriftKind.RESTARTING: Severity.HIGH,
    DriftKind.UNHEALTHY: Severity.HIGH,
    DriftKind.FAILING_HEALTHCHECK: Severity.MEDIUM,
    DriftKind.HEALTHCHECK_STALLED: Severity.MEDIUM,
    DriftKind.PAUSED: Severity.MEDIUM,
    DriftKind.REPLICAS: Severity.MEDIUM,
    DriftKind.JOB_FAILED: Severity.HIGH,
    DriftKind.PROBE_FAILED: Severity.HIGH,
    DriftKind.OUTDATED: Severity.LOW,
    DriftKind.ORPHAN: Severity.LOW,
    # a person's own scale: said, never paged (the controller leaves it alone)
    DriftKind.SCALED_DOWN: Severity.LOW,
    DriftKind.UNPLACEABLE: Severity.HIGH,
    DriftKind.UNDEPLOYED: Severity.HIGH,
}
# drifts a change of the configuration mends, not of the containers
_CONFIG = frozenset({DriftKind.OUTDATED, DriftKind.UNDEPLOYED, DriftKind.UNPLACEABLE})
# drifts that are reported but never fail convergence
_NOT_BLOCKING = frozenset({DriftKind.OUTDATED, DriftKind.ORPHAN, DriftKind.HEALTHCHECK_STALLED})
# drifts that leave a service ready: its config is older, or its healthcheck stopped
# running (its last verdict stands; the issue says so and what to do)
_READY_DESPITE = frozenset({DriftKind.OUTDATED, DriftKind.HEALTHCHECK_STALLED})


def diff(desired: DesiredState, observed: ObservedState) -> list[Drift]:
    """Every drift of every declared service in service order, then orphans."""
    drifts: list[Drift] = []
    for spec in desired.services.values():
        drifts.extend(drifts_of(spec, observed))
    undeclared = sorted(
        {c.service for c in observed.containers if not c.oneoff} - set(desired.services)
    )
    for service in undeclared:
        names = tuple(c.name for c in observed.of(service))
        drifts.append(
            Drift(
                service,
                DriftKind.ORPHAN,
                Severity.LOW,
                Category.CONFIG,
                f"{service} runs but is no longer a service of the project",
                f"orphan container(s): {', '.join(names)}",
                names,
                blocking=False,
            )
        )
    return drifts


def drifts_of(spec: ServiceSpec, observed: ObservedState) -> list[Drift]:
    """The drifts of one service in an observation (containers, probes, config hash)."""
    return service_drifts(
        spec,
        observed.of(spec.name),
        observed.probes.get(spec.name),
        observed.config_hashes.get(spec.name),
        now=observed.observed_at,
        stack=observed.stack,
    )


def ready_in(spec: ServiceSpec, observed: ObservedState) -> bool:
    return service_ready(
        spec, observed.of(spec.name), observed.probes.get(spec.name), now=observed.observed_at
    )


def service_drifts(
    spec: ServiceSpec,
    containers: Sequence[ContainerSnapshot],
    probe: ProbeView | None = None,
    config_hash: str | None = None,
    now: float | None = None,
    stack: StackView | None = None,
) -> list[Drift]:
    """The drifts of one service, given its (non one-off) containers, what its probes say,
    the config hash the compose model has for it now, when it was observed (without
    ``now`` no healthcheck counts as stopped) and, on a swarm, what the manager keeps of
    the stack's services."""
    if spec.state is ServiceRunState.COMPLETED:
        found = list(_completed_drifts(spec, containers))
    else:
        found = list(_running_drifts(spec, containers, now, stack))
        running = [c for c in containers if c.status.running]
        if spec.probes and running and probe is not None and probe.ok is False:
            found.append(
                _drift(
                    spec,
                    DriftKind.PROBE_FAILED,
                    f"{spec.name}'s probe fails",
                    running,
                    probe.detail,
                )
            )
    if config_hash:
        old = [c for c in containers if c.config_hash and c.config_hash != config_hash]
        if old:
            found.append(
                _drift(
                    spec,
                    DriftKind.OUTDATED,
                    f"{spec.name} runs an outdated config",
                    old,
                    "the compose file or its variables changed since it was "
                    "created; docker compose up -d recreates it",
                )
            )
    if not spec.required:
        found = [_optional(d) for d in found]
    return found


def service_ready(
    spec: ServiceSpec,
    containers: Sequence[ContainerSnapshot],
    probe: ProbeView | None = None,
    now: float | None = None,
) -> bool:
    """True when the service is exactly as declared *and* its health is settled.

    Stricter than "no drift": a container whose health is still ``starting`` or whose
    probes have not passed yet is not a drift, but a fix is not verified until it is
    ``healthy`` and its probes pass. A healthcheck the engine stopped running leaves its
    last verdict standing: healthy stays ready, starting stays not ready.
    """
    drifts = service_drifts(spec, containers, probe, now=now)
    if any(d.kind not in _READY_DESPITE for d in drifts):
        return False
    if spec.state is ServiceRunState.COMPLETED:
        return all(c.status is ContainerState.EXITED for c in containers) and bool(containers)
    if any(c.pending for c in containers):  # a task Swarm has not started yet
        return False
    if spec.probes and (probe is None or probe.ok is not True):
        return False
    return all(c.health is Health.HEALTHY for c in containers if checks_health(spec, c))


MAX_STARTUP = 300.0  # seconds: the most any healthcheck's first verdict is waited for


def startup_allowance(spec: ServiceSpec, containers: Sequence[ContainerSnapshot]) -> float:
    """How long after a start the service may take to become ready: nothing when being
    up is enough; else its verify timeout (compose's healthcheck worst case), and for a
    healthcheck that comes from the image, that healthcheck's own worst case (its start
    period and ``retries + 1`` checks at its interval and timeout, as the engine reports)."""
    seconds = 0.0
    if spec.check_health or spec.probes:
        seconds = spec.verify_timeout
    for c in containers:
        if c.health_interval > 0 and checks_health(spec, c) and spec.check_health is None:
            checks = (c.health_interval + c.health_timeout) * (c.health_retries + 1)
            seconds = max(seconds, min(c.health_start_period + checks + 5.0, MAX_STARTUP))
    return seconds


def checks_health(spec: ServiceSpec, container: ContainerSnapshot) -> bool:
    """Whether ``container``'s health counts: as declared (or as compose defines it), else
    whenever the container reports one (a healthcheck from its image)."""
    if spec.check_health is not None:
        return spec.check_health
    return container.health is not None


def _said(containers: Sequence[ContainerSnapshot]) -> str:
    """What the last failed healthcheck printed, for the issue's detail."""
    said = next((c.health_output for c in containers if c.health_output), "")
    return f"; last check said: {said}" if said else ""


def stalled(container: ContainerSnapshot, now: float | None) -> bool:
    """True when the engine has stopped running the container's healthcheck
    (``ContainerSnapshot.checks_overdue``). The observation's snapshots are the engine's
    record read afresh whenever they look overdue, never a cached time."""
    return now is not None and container.checks_overdue(now)


def _stalled_drift(spec: ServiceSpec, stopped: Sequence[ContainerSnapshot]) -> Drift:
    since = min(c.last_check_at for c in stopped)
    interval = max(c.health_interval for c in stopped)
    streak = max(c.failing_streak for c in stopped)
    last = (
        f"{streak} check(s) had failed in a row" + _said(stopped)
        if streak
        else f"it was {stopped[0].health or 'not yet judged'}"
    )
    names = " ".join(c.name for c in stopped)
    return _drift(
        spec,
        DriftKind.HEALTHCHECK_STALLED,
        f"{spec.name}'s healthcheck stopped running",
        stopped,
        f"healthcheck stopped running since {to_datetime(since):%Y-%m-%dT%H:%M:%SZ} (it runs "
        f"every {interval:g} s): the engine no longer runs it, as Docker before 23.0 does for "
        f"containers restored by dockerd --live-restore (moby/moby#41871); when it last ran, "
        f"{last}. Its health is unknown until it runs again: `docker restart {names}` (or "
        "docker pause then docker unpause, which keeps the process) starts it again",
    )


def _running_drifts(
    spec: ServiceSpec,
    containers: Sequence[ContainerSnapshot],
    now: float | None = None,
    stack: StackView | None = None,
) -> Iterator[Drift]:
    if spec.replicas == 0:
        if running := [c for c in containers if c.status.up]:
            yield _drift(
                spec,
                DriftKind.REPLICAS,
                f"{spec.name} should not run",
                running,
                f"{len(running)} running, 0 declared",
            )
        return
    counted = True  # whether the number of containers is a drift of its own
    if stack is not None:
        if spec.name not in stack.replicas:
            yield _undeployed(spec, stack)
            return
        kept = stack.replicas[spec.name]
        if kept is not None and kept < spec.replicas:
            yield _scaled_down(spec, containers, kept)
            counted = False
            if not containers:
                return
    if unplaced := [c for c in containers if c.pending and unplaceable(c)]:
        yield _unplaceable(spec, unplaced)
    if not containers:
        yield _drift(
            spec,
            DriftKind.MISSING,
            f"{spec.name} is not running (no container)",
            (),
            "no container of this service exists",
        )
        return
    # a swarm task killed for failing its healthcheck is unhealthy, not a crash (Swarm
    # says so in the task's error; a container on one engine keeps running unhealthy)
    killed = [
        c for c in containers if not c.status.running and c.health is Health.UNHEALTHY and c.error
    ]
    killed = [c for c in killed if checks_health(spec, c)]
    # a task Swarm is still placing or preparing is its work in progress: not stopped
    stopped = [c for c in containers if c.status.stopped and not c.pending and c not in killed]
    if stopped:
        yield _exited(spec, stopped)
    if dead := [c for c in containers if c.status is ContainerState.DEAD]:
        since = _earliest(c.finished_at for c in dead)
        yield _drift(spec, DriftKind.DEAD, f"{spec.name} is dead", dead, "state dead", since)
    if restarting := [
        c for c in containers if c.status is ContainerState.RESTARTING and c not in killed
    ]:
        worst = max(c.restart_count for c in restarting)
        loop = "is restarting in a loop" if worst > 1 else "died and is being restarted"
        yield _drift(
            spec,
            DriftKind.RESTARTING,
            f"{spec.name} {loop}",
            restarting,
            f"restart count {worst}, last exit code {restarting[0].exit_code}",
            _earliest(c.finished_at for c in restarting),
        )
    if paused := [c for c in containers if c.status is ContainerState.PAUSED]:
        yield _drift(spec, DriftKind.PAUSED, f"{spec.name} is paused", paused, "state paused")
    judged = [c for c in containers if checks_health(spec, c)]
    if judged:
        unhealthy = [
            c for c in judged if (c.status.running or c in killed) and c.health is Health.UNHEALTHY
        ]
        if unhealthy:
            yield _drift(
                spec,
                DriftKind.UNHEALTHY,
                f"{spec.name} is unhealthy",
                unhealthy,
                "its healthcheck fails" + _said(unhealthy),
                _earliest(c.failing_since for c in unhealthy),
            )
        # the first failed check, seconds before Docker's verdict (interval x retries):
        # reported at once, acted on only once the engine calls it unhealthy (one issue);
        # a streak whose checks stopped coming never gets a verdict: it is reported as
        # stalled instead, which does not block (the same issue, another kind)
        frozen = [c for c in judged if stalled(c, now)]
        failing = [c for c in judged if c.status.running and c.failing_streak and c not in frozen]
        if failing and not unhealthy:
            streak = max(c.failing_streak for c in failing)
            yield _drift(
                spec,
                DriftKind.FAILING_HEALTHCHECK,
                f"{spec.name} is failing its healthcheck",
                failing,
                f"{streak} check(s) failed in a row; the engine calls it unhealthy after "
                "its retries" + _said(failing),
                _earliest(c.failing_since for c in failing),
            )
        elif frozen and not unhealthy:
            yield _stalled_drift(spec, frozen)
    if counted and len(containers) != spec.replicas:
        yield _drift(
            spec,
            DriftKind.REPLICAS,
            f"{spec.name} has {len(containers)} of {spec.replicas} replicas",
            containers,
            f"{len(containers)} containers, {spec.replicas} declared",
        )


NO_NODE = "no suitable node"  # what Swarm's scheduler says of a task it cannot place
_ON_NODES = re.compile(r" on (\d+) nodes?[;)]")


def unplaceable(container: ContainerSnapshot) -> bool:
    """A swarm task Swarm cannot place: pending, and its scheduler found no node that fits
    (a placement constraint no node meets, resources no node has)."""
    return container.pending == "pending" and NO_NODE in container.error


def _unplaceable(spec: ServiceSpec, tasks: Sequence[ContainerSnapshot]) -> Drift:
    said = sorted({c.error for c in tasks})
    # Swarm counts the nodes each reason ruled out ("... on 1 node; ... on 2 nodes)")
    nodes = sum(int(n) for n in _ON_NODES.findall(said[0]))
    among = f" (the swarm has {nodes} node(s) and none fits)" if nodes else ""
    return _drift(
        spec,
        DriftKind.UNPLACEABLE,
        f"Swarm cannot place {len(tasks)} task(s) of {spec.name}",
        tasks,
        f"{len(tasks)} task(s) pending, placed on no node{among}",
    )


def _undeployed(spec: ServiceSpec, stack: StackView) -> Drift:
    return _drift(
        spec,
        DriftKind.UNDEPLOYED,
        f"{spec.name} is not deployed",
        (),
        f"service {stack.name}_{spec.name} is not deployed: run {stack.deploy}",
    )


def _scaled_down(spec: ServiceSpec, containers: Sequence[ContainerSnapshot], kept: int) -> Drift:
    return _drift(
        spec,
        DriftKind.SCALED_DOWN,
        f"{spec.name} was scaled to {kept} of {spec.replicas} replicas",
        containers,
        f"its swarm service keeps {kept} replica(s), {spec.replicas} declared: a person "
        "scaled it (the controller never scales below the declaration)",
    )


def _exited(spec: ServiceSpec, stopped: Sequence[ContainerSnapshot]) -> Drift:
    first = stopped[0]
    if first.status is ContainerState.CREATED:
        return _drift(
            spec,
            DriftKind.EXITED,
            f"{spec.name} was created but never started",
            stopped,
            "state created",
        )
    oom = any(c.oom_killed for c in stopped)
    why = " (OOM killed)" if oom else ""
    drift = _drift(
        spec,
        DriftKind.EXITED,
        f"{spec.name} exited with code {first.exit_code}{why}",
        stopped,
        f"exit code {first.exit_code}, restart count {first.restart_count}",
        _earliest(c.finished_at for c in stopped if c.status == "exited"),
    )
    if oom:
        return replace(
            drift,
            severity=Severity.CRITICAL,
            category=Category.PERFORMANCE,
            detail=drift.detail + ", killed for exceeding its memory",
        )
    return drift


def _completed_drifts(
    spec: ServiceSpec, containers: Sequence[ContainerSnapshot]
) -> Iterator[Drift]:
    if not containers:
        yield _drift(
            spec,
            DriftKind.MISSING,
            f"job {spec.name} has not run",
            (),
            "no container of this job exists",
        )
        return
    failed = [
        c
        for c in containers
        if c.status in (ContainerState.EXITED, ContainerState.DEAD) and c.exit_code != 0
    ]
    if failed:
        yield _drift(
            spec,
            DriftKind.JOB_FAILED,
            f"job {spec.name} failed with exit code {failed[0].exit_code}",
            failed,
            f"exit code {failed[0].exit_code}",
            _earliest(c.finished_at for c in failed),
        )


def _drift(
    spec: ServiceSpec,
    kind: DriftKind,
    title: str,
    containers: Sequence[ContainerSnapshot],
    detail: str,
    since: float | None = None,
) -> Drift:
    return Drift(
        service=spec.name,
        kind=kind,
        severity=_SEVERITY[kind],
        category=Category.CONFIG if kind in _CONFIG else Category.HEALTH,
        title=title,
        detail=detail + _where(containers),
        containers=tuple(c.name for c in containers),
        blocking=kind not in _NOT_BLOCKING,
        since=since,
    )


_PLAIN_EXIT = re.compile(r"task: non-zero exit \(-?\d+\)$")  # the exit code says it all


def _where(containers: Sequence[ContainerSnapshot]) -> str:
    """On a swarm, the nodes the tasks ran on and what Swarm said of them beyond the
    exit code (a task rejected for an image its node lacks, killed as unhealthy ...)."""
    nodes = sorted({c.node for c in containers if c.node})
    errors = sorted({c.error for c in containers if c.error and not _PLAIN_EXIT.match(c.error)})
    where = f"; on node{'s' if len(nodes) > 1 else ''} {', '.join(nodes)}" if nodes else ""
    return where + "".join(f"; Swarm: {error}" for error in errors)


def _earliest(stamps: Iterable[str]) -> float | None:
    """The earliest of engine timestamps (epoch seconds), None when none is set: when a
    fault began by the engine's own record."""
    times = [t.timestamp() for s in stamps if (t := engine_time(s)) is not None]
    return min(times, default=None)


def _optional(drift: Drift) -> Drift:
    return replace(drift, severity=Severity.LOW, title=drift.title + " (optional)", blocking=False)


def service_status(spec: ServiceSpec, observed: ObservedState) -> ServiceStatus:
    """Summary of one service for reports; ``Remediating`` is overlaid by the issue store."""
    containers = observed.of(spec.name)
    if ready_in(spec, observed):
        condition = ServiceCondition.READY
    elif drifts_of(spec, observed):
        condition = ServiceCondition.DEGRADED
    else:
        condition = ServiceCondition.PROGRESSING
    return ServiceStatus(
        name=spec.name,
        condition=condition,
        required=spec.required,
        replicas=spec.replicas,
        containers=len(containers),
        running=sum(1 for c in containers if c.status.running),
        healthy=(
            sum(1 for c in containers if c.health is Health.HEALTHY)
            if any(checks_health(spec, c) for c in containers) or spec.check_health
            else None
        ),
        restarts=sum(c.restart_count for c in containers),
        nodes=sorted({c.node for c in containers if c.node}),
        runs=" ".join(sorted(f"{c.id}@{c.started_at}#{c.restart_count}" for c in containers)),
        ready_from=_ready_from(spec, containers),
    )


def _ready_from(spec: ServiceSpec, containers: Sequence[ContainerSnapshot]) -> datetime | None:
    """The earliest the current container runs can have been ready, by the engine's clock:
    the newest start, plus the time the service may take to become ready after it."""
    newest = max(
        (t for c in containers if (t := engine_time(c.started_at)) is not None), default=None
    )
    if newest is None:
        return None
    return newest + timedelta(seconds=startup_allowance(spec, containers))
