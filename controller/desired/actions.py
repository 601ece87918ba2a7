"""Detection and remediation settings: the pattern library with the user's changes, and
runbooks and the hook checked against the services, the patterns and their captures."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from controller.desired.errors import DesiredStateError
from controller.desired.interpolate import interpolate
from controller.desired.schema import (
    DetectionDeclaration,
    RemediationDeclaration,
    RunbookDeclaration,
)
from controller.detect.library import PatternError, build_patterns, parse_specs
from controller.model import (
    Action,
    DetectionSettings,
    RemediationSettings,
    Runbook,
    RunbookStep,
    ServiceSpec,
)


def detection_settings(
    path: Path, declared: DetectionDeclaration, services: Mapping[str, ServiceSpec]
) -> DetectionSettings:
    """The library merged with the file's detection section; errors name the pattern."""
    try:
        added = parse_specs(declared.patterns, "detection.patterns")
        patterns = build_patterns(added, declared.overrides)
    except PatternError as exc:
        field = "detection.overrides" if ": overrides:" in str(exc) else "detection.patterns"
        raise DesiredStateError(path, field, str(exc)) from None
    known = {p.id for p in patterns} | {"*", "unclassified"}
    ignore: dict[str, frozenset[str]] = {}
    for service, ids in declared.ignore.items():
        if service not in services:
            raise DesiredStateError(path, f"detection.ignore.{service}", "no such service")
        for i, pattern_id in enumerate(ids):
            if pattern_id not in known:
                raise DesiredStateError(
                    path, f"detection.ignore.{service}.{i}", f"no such pattern: {pattern_id}"
                )
        ignore[service] = frozenset(ids)
    return DetectionSettings(
        patterns=patterns,
        ignore=ignore,
        escalate_after=declared.escalate_after,
        escalate_window=declared.escalate_window_seconds,
        resolve_after_quiet=declared.resolve_after_quiet_seconds,
        discovery=declared.discovery.enabled,
        discovery_min_occurrences=declared.discovery.min_occurrences,
    )


def remediation_settings(
    path: Path,
    declared: RemediationDeclaration,
    services: Mapping[str, ServiceSpec],
    detection: DetectionSettings,
    environment: Mapping[str, str],
) -> RemediationSettings:
    """Runbooks and the hook, checked against the services, the patterns and captures."""
    patterns = {p.id: p for p in detection.patterns}
    runbooks: list[Runbook] = []
    names: set[str] = set()
    for i, rb in enumerate(declared.runbooks):
        where = f"remediation.runbooks.{i}"
        if rb.name in names:
            raise DesiredStateError(path, f"{where}.name", f"runbook {rb.name} defined twice")
        names.add(rb.name)
        pattern = patterns.get(rb.when.pattern)
        if pattern is None:
            raise DesiredStateError(
                path,
                f"{where}.when.pattern",
                f"runbook {rb.name}: no such pattern: {rb.when.pattern}",
            )
        for j, service in enumerate(rb.when.services):
            if service not in services:
                raise DesiredStateError(
                    path, f"{where}.when.services.{j}", f"runbook {rb.name}: no such service"
                )
        try:
            re.compile(rb.capture_pattern)
        except re.error as exc:
            raise DesiredStateError(
                path, f"{where}.capture_pattern", f"runbook {rb.name}: invalid: {exc}"
            ) from None
        chosen = [k for k in ("exec", "compose", "hook") if getattr(rb, k) is not None]
        if len(chosen) != 1:
            raise DesiredStateError(
                path, where, f"runbook {rb.name}: declare exactly one of exec, compose, hook"
            )
        groups = set(re.compile(pattern.regex).groupindex)
        step = _step(path, f"{where}.{chosen[0]}", rb, services, environment, groups)
        runbooks.append(
            Runbook(
                name=rb.name,
                pattern=rb.when.pattern,
                step=step,
                services=frozenset(rb.when.services),
                capture_pattern=rb.capture_pattern,
                then_restart=rb.then_restart,
            )
        )
    hook = None
    if declared.hook is not None:
        hook = RunbookStep(
            kind="hook",
            argv=tuple(
                interpolate(path, "remediation.hook.argv", declared.hook.argv, environment, set())
            ),
            env=declared.hook.env,
            timeout=declared.hook.timeout_seconds,
        )
    return RemediationSettings(
        budget=declared.budget,
        budget_window=declared.budget_window_seconds,
        backoff_initial=declared.backoff_initial_seconds,
        backoff_max=max(declared.backoff_max_seconds, declared.backoff_initial_seconds),
        backoff_reset=declared.backoff_reset_seconds,
        log_quiet=declared.log_quiet_seconds,
        log_active=declared.log_active_seconds,
        settle=declared.operation_settle_seconds,
        runbooks=tuple(runbooks),
        hook=hook,
    )


def _step(
    path: Path,
    where: str,
    rb: RunbookDeclaration,
    services: Mapping[str, ServiceSpec],
    environment: Mapping[str, str],
    groups: set[str],
) -> RunbookStep:
    if rb.exec is not None:
        if rb.exec.service not in services:
            raise DesiredStateError(
                path, f"{where}.service", f"runbook {rb.name}: no such service: {rb.exec.service}"
            )
        argv = interpolate(path, f"{where}.argv", rb.exec.argv, environment, groups, rb.name)
        return RunbookStep(
            kind="exec",
            argv=tuple(argv),
            service=rb.exec.service,
            user=rb.exec.user,
            env=rb.exec.env,
            timeout=rb.exec.timeout_seconds,
        )
    if rb.compose is not None:
        if rb.compose.service not in services:
            raise DesiredStateError(
                path,
                f"{where}.service",
                f"runbook {rb.name}: no such service: {rb.compose.service}",
            )
        return RunbookStep(
            kind="compose", service=rb.compose.service, action=Action(rb.compose.action)
        )
    assert rb.hook is not None
    argv = interpolate(path, f"{where}.argv", rb.hook.argv, environment, groups, rb.name)
    return RunbookStep(
        kind="hook", argv=tuple(argv), env=rb.hook.env, timeout=rb.hook.timeout_seconds
    )
