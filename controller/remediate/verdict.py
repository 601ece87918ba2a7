"""The verdict on a change: good, bad, or not yet. Pure.

A change (a new config hash or image on a service) is **bad** when, after it, a replica
exits, dies and is restarted by Docker, is OOM-killed, turns unhealthy, fails a declared
probe, or logs a finding of the declared severity; or when the service is not ready by
the deadline (default 5 min, Nomad's ``healthy_deadline``; never shorter than the
healthcheck's start period and first verdict). It is **good** once every replica has been
ready, without any of that, for the monitor window (default the service's hold, at least
30 s). A person's stop or restart is not the change's fault: a container a person stopped
is not "exited" (nor "unhealthy", as the engine calls it once stopped), and readiness
that a person's restart interrupts starts its window over.

A change whose declared image does not exist never ran: it is bad once the window has
passed since the compose files asked for it (it was not pulled or built meanwhile).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from controller.drift import service_ready
from controller.model import (
    Change,
    ChangeVerdict,
    ContainerSnapshot,
    Health,
    Issue,
    IssueSource,
    ProbeView,
    ServiceSpec,
)

RECHECK_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Judgement:
    verdict: ChangeVerdict
    reason: str = ""
    ready_since: datetime | None = None  # every replica ready since then (pending only)
    recheck: float = RECHECK_SECONDS  # pending: seconds until the verdict may turn


def _bad(reason: str) -> Judgement:
    return Judgement(ChangeVerdict.BAD, reason)


def telling(issues: Sequence[Issue], spec: ServiceSpec, since: datetime) -> list[Issue]:
    """The service's log issues a change is judged by: its own (not another service's
    fault), at least the declared severity, seen since the change's containers started."""
    floor = spec.rollback.severity.rank
    return [
        i
        for i in issues
        if i.service == spec.name
        and i.source is IssueSource.LOG
        and i.active
        and not i.caused_by
        and i.severity.rank >= floor
        and i.last_seen >= since
    ]


def deadline(spec: ServiceSpec, containers: Sequence[ContainerSnapshot]) -> float:
    """Seconds a change has to become ready: the declared deadline, and at least the time
    its healthcheck may take to give a first verdict (start period, then every retry)."""
    first_verdict = max(
        (
            c.health_start_period + (c.health_interval + c.health_timeout) * (c.health_retries + 1)
            for c in containers
            if c.health_interval > 0
        ),
        default=0.0,
    )
    return max(spec.rollback.deadline, first_verdict)


def judge(
    change: Change,
    spec: ServiceSpec,
    containers: Sequence[ContainerSnapshot],
    probe: ProbeView | None,
    findings: Sequence[Issue],
    now: datetime,
    *,
    hold: float,
    stopped_by_person: bool,
    restarter: str = "Docker",
) -> Judgement:
    """Where ``change`` stands, given the service's containers (all of the change),
    what its probes say, its ``telling`` findings, its ``hold`` and whether a person
    stopped it (then it waits: the window runs again once it is back); ``restarter``:
    whose restart policy restarts a replica that died."""
    for c in containers:
        if c.oom_killed and not c.status.running:
            return _bad(f"{c.name} was OOM-killed")
        if c.status.down and not stopped_by_person:
            return _bad(f"{c.name} exited with code {c.exit_code}")
        restarts = c.restart_count - change.restarts.get(c.id, 0)
        if restarts > 0:
            return _bad(f"{c.name} died and {restarter} restarted it ({restarts} time(s))")
        if c.health is Health.UNHEALTHY and c.status.running:  # the engine says a stopped
            # container is unhealthy too: its stop is judged above, by whose it was
            said = f" (its check said: {c.health_output})" if c.health_output else ""
            return _bad(f"{c.name} turned unhealthy{said}")
    if probe is not None and probe.ok is False and any(c.status.running for c in containers):
        return _bad(f"its probe fails{': ' + probe.detail if probe.detail else ''}")
    for issue in findings:
        line = issue.detail.splitlines()[0][:160] if issue.detail else ""
        return _bad(f"it logged {issue.title} ({issue.severity}){': ' + line if line else ''}")
    if stopped_by_person:
        return Judgement(ChangeVerdict.PENDING, recheck=5.0)
    window = spec.rollback.window_for(hold)
    if service_ready(spec, containers, probe, now=now.timestamp()):
        since = change.ready_since or now
        held = (now - since).total_seconds()
        if held >= window:
            return Judgement(ChangeVerdict.GOOD, f"every replica ready for {window:g} s")
        return Judgement(ChangeVerdict.PENDING, ready_since=since, recheck=window - held)
    limit = deadline(spec, containers)
    began = change.started_at or change.seen_at
    if (now - began).total_seconds() >= limit:
        return _bad(f"not ready {limit:g} s after the change")
    return Judgement(ChangeVerdict.PENDING)


def judge_missing(change: Change, spec: ServiceSpec, now: datetime, *, hold: float) -> Judgement:
    """A change whose declared image does not exist: bad once the window has passed
    since the compose files asked for it (nothing pulled or built it meanwhile)."""
    window = spec.rollback.window_for(hold)
    waited = (now - change.seen_at).total_seconds()
    if waited >= window:
        return _bad(
            f"its image {change.missing_image} does not exist here ({window:g} s after the "
            "compose files asked for it); the running container was kept"
        )
    return Judgement(ChangeVerdict.PENDING, recheck=window - waited)
