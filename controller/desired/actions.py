"""Detection and remediation settings: the pattern library with the user's changes, and
runbooks and the hook checked against the services, the patterns and their captures."""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping

from controller.desired.errors import Loc, Problems
from controller.desired.interpolate import unknown_captures
from controller.desired.predict import learn_settings
from controller.desired.schema import (
    DetectionDeclaration,
    RemediationDeclaration,
    RunbookDeclaration,
)
from controller.detect.library import (
    PatternError,
    PatternSpec,
    build_patterns,
    library_specs,
    parse_specs,
)
from controller.model import (
    PREDICTED_PATTERNS,
    Action,
    DetectionSettings,
    RemediationSettings,
    Runbook,
    RunbookStep,
    ServiceSpec,
    StepKind,
)


def detection_settings(
    declared: DetectionDeclaration, services: Mapping[str, ServiceSpec], problems: Problems
) -> DetectionSettings:
    """The library merged with the file's detection section; errors name the pattern."""
    library = library_specs()
    library_ids = {spec.id for spec in library}
    added: list[PatternSpec] = []
    for i, item in enumerate(declared.patterns):
        try:
            (spec,) = parse_specs([item], "detection.patterns")
        except PatternError as exc:
            problems.add(("detection", "patterns", i), str(exc))
            continue
        if spec.id in library_ids:
            problems.add(
                ("detection", "patterns", i, "id"),
                f"pattern {spec.id} is in the library: change it under detection.overrides",
            )
        elif any(spec.id == other.id for other in added):
            problems.add(("detection", "patterns", i, "id"), f"pattern {spec.id} defined twice")
        else:
            added.append(spec)
    overrides = {}
    for pattern_id, change in declared.overrides.items():
        if pattern_id not in library_ids:
            problems.add(
                ("detection", "overrides", pattern_id),
                f"pattern {pattern_id}: no such pattern in the library",
            )
        else:
            overrides[pattern_id] = change
    patterns = build_patterns(added, overrides, library)
    known = {p.id for p in patterns} | {"*", "unclassified"}
    ignore: dict[str, frozenset[str]] = {}
    for service, ids in declared.ignore.items():
        if service not in services:
            problems.add(("detection", "ignore", service), "no such service")
        for i, pattern_id in enumerate(ids):
            if pattern_id not in known:
                problems.add(("detection", "ignore", service, i), f"no such pattern: {pattern_id}")
        ignore[service] = frozenset(ids)
    return DetectionSettings(
        patterns=patterns,
        ignore=ignore,
        escalate_after=declared.escalate_after,
        escalate_window=declared.escalate_window_seconds,
        resolve_after_quiet=declared.resolve_after_quiet_seconds,
        discovery=declared.discovery.enabled,
        discovery_min_occurrences=declared.discovery.min_occurrences,
        learn=learn_settings(declared.learn),
    )


def remediation_settings(
    declared: RemediationDeclaration,
    services: Mapping[str, ServiceSpec],
    detection: DetectionSettings,
    problems: Problems,
) -> RemediationSettings:
    """Runbooks and the hook, checked against the services, the patterns and captures."""
    patterns = {p.id: p for p in detection.patterns}
    runbooks: list[Runbook] = []
    names: set[str] = set()
    for i, rb in enumerate(declared.runbooks):
        where: Loc = ("remediation", "runbooks", i)
        label = f"runbook {rb.name}: "
        if rb.name in names:
            problems.add((*where, "name"), f"runbook {rb.name} defined twice")
        names.add(rb.name)
        pattern = patterns.get(rb.when.pattern)
        predicted = rb.when.pattern in PREDICTED_PATTERNS  # a forecast: no captures
        if pattern is None and not predicted:
            problems.add((*where, "when", "pattern"), f"{label}no such pattern: {rb.when.pattern}")
        for j, service in enumerate(rb.when.services):
            if service not in services:
                problems.add((*where, "when", "services", j), f"{label}no such service")
        try:
            with warnings.catch_warnings():  # as check_pattern does for a pattern's regex
                warnings.simplefilter("error")
                re.compile(rb.capture_pattern)
        except (re.error, Warning) as exc:
            problems.add((*where, "capture_pattern"), f"{label}invalid: {exc}")
        chosen = [k for k in ("exec", "compose", "hook") if getattr(rb, k) is not None]
        if len(chosen) != 1:
            problems.add(where, f"{label}declare exactly one of exec, compose, hook")
            continue
        groups = set(re.compile(pattern.regex).groupindex) if pattern is not None else None
        step = _step((*where, chosen[0]), rb, services, set() if predicted else groups, problems)
        if step is not None and (pattern is not None or predicted):
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
            kind=StepKind.HOOK,
            argv=tuple(declared.hook.argv),
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
        operation_timeout=declared.operation_timeout_seconds,
        runbooks=tuple(runbooks),
        hook=hook,
    )


def _step(
    where: Loc,
    rb: RunbookDeclaration,
    services: Mapping[str, ServiceSpec],
    groups: set[str] | None,
    problems: Problems,
) -> RunbookStep | None:
    """The runbook's one step, or None (with its problems noted) when it cannot run."""
    label = f"runbook {rb.name}: "
    target = rb.compose.service if rb.compose else rb.exec.service if rb.exec else None
    if target is not None and target not in services:
        problems.add((*where, "service"), f"{label}no such service: {target}")
        return None
    if rb.compose is not None:
        return RunbookStep(
            kind=StepKind.COMPOSE, service=target or "", action=Action(rb.compose.action)
        )
    declared = rb.exec or rb.hook
    assert declared is not None
    unknown = [
        (i, name)
        for i, arg in enumerate(declared.argv)
        for name in (unknown_captures(arg, groups) if groups is not None else ())
    ]
    for i, name in unknown:
        problems.add(
            (*where, "argv", i), f"{label}{{{name}}} is not a named capture of the pattern"
        )
    if unknown:
        return None
    if rb.exec is not None:
        return RunbookStep(
            kind=StepKind.EXEC,
            argv=tuple(rb.exec.argv),
            service=rb.exec.service,
            user=rb.exec.user,
            env=rb.exec.env,
            timeout=rb.exec.timeout_seconds,
        )
    return RunbookStep(
        kind=StepKind.HOOK,
        argv=tuple(declared.argv),
        env=declared.env,
        timeout=declared.timeout_seconds,
    )
