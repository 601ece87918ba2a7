"""Services: the declaration merged over the compose model into ``ServiceSpec`` values.

Compose supplies what a service is (healthcheck, replicas, dependencies, build, restart
policy); the declaration says what healthy means for it (running or completed, health
checked or not, required, probes, enforcement).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from controller.desired.addresses import declared_addresses, service_addresses
from controller.desired.errors import Problems
from controller.desired.predict import service_predict
from controller.desired.schema import (
    MAX_REPLICAS,
    MAX_STOP_GRACE,
    DesiredStateFile,
    ProbeDeclaration,
    RollbackDeclaration,
    ServiceDeclaration,
    ServiceRollbackDeclaration,
)
from controller.model import (
    ProbeKind,
    ProbeSpec,
    RestartPolicy,
    RollbackMode,
    RollbackPolicy,
    ServiceRunState,
    ServiceSpec,
    Severity,
)

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def merge_services(
    declared: DesiredStateFile, compose_model: Mapping[str, Any], problems: Problems
) -> dict[str, ServiceSpec]:
    """Every compose service's spec; what the declaration gets wrong goes to ``problems``."""
    compose_services: Mapping[str, Any] = compose_model.get("services") or {}
    for name in declared.services:
        if name not in compose_services:
            known = ", ".join(sorted(compose_services)) or "none"
            problems.add(
                ("services", name), f"no such service in the compose project (has: {known})"
            )
    specs: dict[str, ServiceSpec] = {}
    for name, compose_service in sorted(compose_services.items()):
        decl = declared.services.get(name) or ServiceDeclaration()
        spec = _spec(name, decl, compose_service or {}, compose_services, problems)
        probes = tuple(
            probe
            for i, p in enumerate(decl.probes)
            if (probe := _probe(("services", name, "probes", i), p, problems)) is not None
        )
        addresses = service_addresses(
            name,
            compose_service or {},
            compose_services,
            probes,
            declared_addresses(name, decl.addresses, problems),
        )
        volumes = named_volumes(compose_service or {})
        specs[name] = replace(
            spec,
            probes=probes,
            recreate_outdated=decl.recreate_outdated,
            addresses=addresses,
            rollback=rollback_policy(declared.rollback, decl.rollback),
            volumes=volumes,
            predict=service_predict(name, decl.predict, volumes, problems),
        )
    if not specs:
        problems.add(
            ("compose_files",),
            "the compose model has no services (do `profiles` select any?): nothing to check",
        )
    for cycle in _cycles(specs):
        problems.add(
            ("services", cycle[0], "depends_on"),
            f"a dependency cycle: {' -> '.join(cycle)} (none of them could ever be fixed first)",
        )
    return specs


def rollback_policy(
    stack: RollbackDeclaration, service: ServiceRollbackDeclaration | None
) -> RollbackPolicy:
    """The service's rollback: what it declares, else what the stack does."""
    mine = service or ServiceRollbackDeclaration()
    return RollbackPolicy(
        mode=RollbackMode(mine.mode or stack.mode or "notify"),
        window=mine.window_seconds if mine.window_seconds is not None else stack.window_seconds,
        deadline=mine.deadline_seconds or stack.deadline_seconds or 300.0,
        severity=Severity(mine.severity or stack.severity or "critical"),
    )


def _cycles(specs: Mapping[str, ServiceSpec]) -> list[list[str]]:
    """Dependency cycles, each as the path from a service back to it (a depth-first walk
    that meets a service still on its path: linear in services and dependencies)."""
    found: list[list[str]] = []
    done: set[str] = set()
    for root in sorted(specs):
        if root in done:
            continue
        path: list[str] = [root]
        on_path = {root}
        todo = [iter(specs[root].depends_on)]
        while todo:
            dep = next(todo[-1], None)
            if dep is None:  # every dependency of path[-1] walked
                todo.pop()
                left = path.pop()
                on_path.discard(left)
                done.add(left)
                continue
            if dep not in specs or dep in done:
                continue
            if dep in on_path:
                found.append([*path[path.index(dep) :], dep])
                continue
            path.append(dep)
            on_path.add(dep)
            todo.append(iter(specs[dep].depends_on))
    return found


def _probe(
    where: tuple[str | int, ...], declared: ProbeDeclaration, problems: Problems
) -> ProbeSpec | None:
    chosen = [k for k in ("http", "tcp", "exec") if getattr(declared, k) is not None]
    if len(chosen) != 1:
        problems.add(where, "declare exactly one of http, tcp, exec")
        return None
    base = ProbeSpec(
        kind=ProbeKind(chosen[0]),
        period=declared.period_seconds,
        timeout=declared.timeout_seconds,
        failure_threshold=declared.failure_threshold,
        success_threshold=declared.success_threshold,
        initial_delay=declared.initial_delay_seconds,
    )
    if declared.http is not None:
        http = declared.http
        return replace(base, url=http.url, status=http.status, body=http.body)
    if declared.tcp is not None:
        port = str(declared.tcp.port)
        if not port.isdigit() or not 0 < int(port) < 65536:
            problems.add((*where, "tcp", "port"), f"not a port: {port}")
            return None
        return replace(base, host=declared.tcp.host, port=int(port))
    assert declared.exec is not None
    return replace(base, argv=tuple(declared.exec.argv))


def _spec(
    name: str,
    decl: ServiceDeclaration,
    compose_service: Mapping[str, Any],
    compose_services: Mapping[str, Any],
    problems: Problems,
) -> ServiceSpec:
    healthcheck = compose_service.get("healthcheck") or {}
    disabled = bool(healthcheck.get("disable", False))
    has_healthcheck = bool(healthcheck) and not disabled
    if decl.healthy and disabled:
        problems.add(("services", name, "healthy"), "the compose service disables its healthcheck")
    elif decl.healthy and not has_healthcheck:
        # an image's own healthcheck is honoured without it; with none, `healthy: true`
        # could never be met, and nothing would say why
        problems.add(
            ("services", name, "healthy"),
            "the compose service defines no healthcheck (one from the image counts without"
            " `healthy: true`)",
        )
    depends_on = _compose_dependencies(compose_service)
    for i, dep in enumerate(decl.depends_on):
        if dep not in compose_services:
            problems.add(("services", name, "depends_on", i), f"no such service: {dep}")
            continue
        if dep not in depends_on:
            depends_on.append(dep)
    if decl.replicas is not None:
        replicas = decl.replicas
    else:
        deploy = compose_service.get("deploy") or {}
        declared = deploy.get("replicas")  # 0 disables the service: not 1
        declared = compose_service.get("scale") if declared is None else declared
        replicas = int(1 if declared is None else declared)
        if not 0 <= replicas <= MAX_REPLICAS:
            problems.add(
                ("services", name, "replicas"),
                f"compose deploy.replicas {replicas} is outside 0..{MAX_REPLICAS}",
            )
            replicas = MAX_REPLICAS if replicas > MAX_REPLICAS else 0
    # a healthcheck may also come from the image: with none in compose and nothing
    # declared, the container's own health (if it reports one) decides
    check_health: bool | None = (
        decl.healthy if decl.healthy is not None else (True if has_healthcheck else None)
    )
    if disabled:
        check_health = False
    if decl.verify_timeout_seconds is not None:
        verify_timeout = decl.verify_timeout_seconds
    else:
        verify_timeout = default_verify_timeout(healthcheck if has_healthcheck else {})
    stop_timeout = parse_duration(compose_service.get("stop_grace_period"), 10.0)
    if not 0 <= stop_timeout <= MAX_STOP_GRACE:
        problems.add(
            ("services", name, "stop_grace_period"),
            f"compose stop_grace_period {stop_timeout:g} s is outside 0..{MAX_STOP_GRACE:g} s",
        )
        stop_timeout = MAX_STOP_GRACE
    return ServiceSpec(
        name=name,
        state=ServiceRunState(decl.state),
        replicas=replicas,
        check_health=check_health,
        required=decl.required,
        enforce=decl.enforce,
        depends_on=tuple(depends_on),
        has_build=bool(compose_service.get("build")),
        restart=RestartPolicy.of(str(compose_service.get("restart") or "no")),
        swarm_restart=RestartPolicy.of_swarm(
            (compose_service.get("deploy") or {}).get("restart_policy")
        ),
        stop_timeout=stop_timeout,
        verify_timeout=verify_timeout,
        min_ready=decl.min_ready_seconds,
    )


def named_volumes(compose_service: Mapping[str, Any]) -> tuple[str, ...]:
    """The named volumes a compose service mounts (``type: volume`` with a source), as
    ``docker compose config`` writes them."""
    names = []
    for mount in compose_service.get("volumes") or []:
        if isinstance(mount, dict) and mount.get("type") == "volume" and mount.get("source"):
            names.append(str(mount["source"]))
    return tuple(dict.fromkeys(names))


def _compose_dependencies(compose_service: Mapping[str, Any]) -> list[str]:
    deps: list[str] = []
    depends_on = compose_service.get("depends_on") or {}
    if isinstance(depends_on, list):  # short syntax, in case a loader did not normalise it
        deps.extend(str(d) for d in depends_on)
    else:
        deps.extend(n for n, c in depends_on.items() if (c or {}).get("required", True))
    network_mode = str(compose_service.get("network_mode") or "")
    if network_mode.startswith("service:"):
        deps.append(network_mode.removeprefix("service:"))
    return list(dict.fromkeys(deps))


def parse_duration(text: str | int | float | None, default: float) -> float:
    """Seconds in a Go/Compose duration (``1m30s``, ``500ms``); bare numbers are seconds."""
    if text is None or text == "":
        return default
    if isinstance(text, int | float):
        return float(text)
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        return default
    return sum(float(n) * _DURATION_UNITS[u] for n, u in parts)


def default_verify_timeout(healthcheck: Mapping[str, Any]) -> float:
    """Time a fixed service gets to become ready: its healthcheck's own worst case, plus slack.

    Docker marks a container unhealthy after ``retries`` failures ``interval`` apart, and not
    before ``start_period`` is over; a fix should get at least that long. Bounded to
    15 s .. 5 min so a missing or absurd healthcheck neither rushes nor stalls a fix.
    """
    if not healthcheck:
        return 15.0
    interval = parse_duration(healthcheck.get("interval"), 30.0)
    timeout = parse_duration(healthcheck.get("timeout"), 30.0)
    start_period = parse_duration(healthcheck.get("start_period"), 0.0)
    retries = int(healthcheck.get("retries") or 3)
    worst = start_period + (interval + timeout) * (retries + 1) + 5.0
    return min(max(worst, 15.0), 300.0)
