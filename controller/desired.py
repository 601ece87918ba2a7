"""Load ``desired_state/<env>.yaml``, merge it over the compose model, validate it.

The file says which compose files and project an environment is, and what healthy means
for each service. Compose itself resolves the compose model (``docker compose config``,
injected here as a function), so interpolation, profiles and ``extends`` behave exactly as
they do for the user. Anything wrong becomes one ``DesiredStateError`` line that names the
file and the field.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from controller.detect.library import PatternError, PatternOverride, build_patterns, parse_specs
from controller.model import (
    DEFAULT_CAPTURE,
    Action,
    ComposeProject,
    DesiredState,
    DetectionSettings,
    RemediationSettings,
    Runbook,
    RunbookStep,
    ServiceRunState,
    ServiceSpec,
)

ComposeModelLoader = Callable[[ComposeProject], Mapping[str, Any]]

ENV_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


class DesiredStateError(Exception):
    """A desired-state file cannot be used; ``str()`` is one line naming file and field."""

    def __init__(self, source: Path | str, field: str, message: str) -> None:
        self.source = str(source)
        self.field = field
        self.message = message
        where = f"{self.source}: {field}: " if field else f"{self.source}: "
        super().__init__(where + message)


# --- the file's schema ------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServiceDeclaration(_Strict):
    state: Literal["running", "completed"] = "running"
    replicas: int | None = Field(default=None, ge=0)
    healthy: bool | None = None
    required: bool = True
    enforce: bool = False
    depends_on: list[str] = Field(default_factory=list)
    verify_timeout_seconds: float | None = Field(default=None, gt=0, le=3600)
    min_ready_seconds: float = Field(default=2.0, ge=0, le=600)


class ExecDeclaration(_Strict):
    service: str
    argv: list[str] = Field(min_length=1)
    user: str = ""
    env: dict[str, str] = Field(default_factory=dict)
    timeout_seconds: float = Field(default=60.0, gt=0, le=3600)


class ComposeDeclaration(_Strict):
    service: str
    action: Literal["start", "restart", "recreate"]


class HookDeclaration(_Strict):
    argv: list[str] = Field(min_length=1)
    env: dict[str, str] = Field(default_factory=dict)
    timeout_seconds: float = Field(default=60.0, gt=0, le=3600)


class WhenDeclaration(_Strict):
    pattern: str
    services: list[str] = Field(default_factory=list)


class RunbookDeclaration(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")
    when: WhenDeclaration
    capture_pattern: str = DEFAULT_CAPTURE
    exec: ExecDeclaration | None = None
    compose: ComposeDeclaration | None = None
    hook: HookDeclaration | None = None
    then_restart: bool = False


class RemediationDeclaration(_Strict):
    budget: int = Field(default=5, ge=1, le=1000)
    budget_window_seconds: float = Field(default=3600.0, gt=0)
    backoff_initial_seconds: float = Field(default=10.0, gt=0)
    backoff_max_seconds: float = Field(default=300.0, gt=0)
    backoff_reset_seconds: float = Field(default=600.0, gt=0)
    log_quiet_seconds: float = Field(default=10.0, ge=0, le=600)
    log_active_seconds: float = Field(default=60.0, gt=0)
    hook: HookDeclaration | None = None
    runbooks: list[RunbookDeclaration] = Field(default_factory=list)


class DiscoveryDeclaration(_Strict):
    enabled: bool = True
    min_occurrences: int = Field(default=3, ge=1, le=1000)


class DetectionDeclaration(_Strict):
    patterns: list[dict[str, Any]] = Field(default_factory=list)  # checked by the library
    overrides: dict[str, PatternOverride] = Field(default_factory=dict)
    ignore: dict[str, list[str]] = Field(default_factory=dict)
    escalate_after: int = Field(default=10, ge=2, le=100_000)
    escalate_window_seconds: float = Field(default=60.0, gt=0)
    resolve_after_quiet_seconds: float = Field(default=300.0, gt=0)
    discovery: DiscoveryDeclaration = DiscoveryDeclaration()


class DesiredStateFile(_Strict):
    project: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    compose_files: list[str] = Field(min_length=1)
    env_files: list[str] = Field(default_factory=list)
    profiles: list[str] = Field(default_factory=list)
    environment: dict[str, str | int | float | bool] = Field(default_factory=dict)
    remediation: RemediationDeclaration = RemediationDeclaration()
    detection: DetectionDeclaration = DetectionDeclaration()
    services: dict[str, ServiceDeclaration | None] = Field(default_factory=dict)


# --- loading ----------------------------------------------------------------------------


def desired_state_path(directory: Path, env: str) -> Path:
    if not ENV_NAME.match(env):
        raise DesiredStateError(
            "--env", "", f"{env!r} is not an environment name (letters, digits, . _ -)"
        )
    return directory / f"{env}.yaml"


def load_desired(env: str, directory: Path, load_compose: ComposeModelLoader) -> DesiredState:
    path = desired_state_path(directory, env)
    declared = read_declaration(path)
    base = path.parent.resolve()
    project = ComposeProject(
        name=declared.project,
        files=tuple((base / f).resolve() for f in declared.compose_files),
        workdir=base,
        env_files=tuple((base / f).resolve() for f in declared.env_files),
        profiles=tuple(declared.profiles),
        environment={k: _env_value(v) for k, v in declared.environment.items()},
    )
    for i, file in enumerate(project.files):
        if not file.is_file():
            raise DesiredStateError(path, f"compose_files.{i}", f"no such file: {file}")
    try:
        compose_model = load_compose(project)
    except Exception as exc:  # the loader's own error text is the useful part
        raise DesiredStateError(
            path, "compose_files", f"docker compose config failed: {exc}"
        ) from None
    services = merge_services(path, declared, compose_model)
    detection = detection_settings(path, declared.detection, services)
    return DesiredState(
        env=env,
        source=path,
        compose=project,
        services=services,
        detection=detection,
        remediation=remediation_settings(
            path, declared.remediation, services, detection, project.environment
        ),
    )


def read_declaration(path: Path) -> DesiredStateFile:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DesiredStateError(path, "", "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DesiredStateError(path, "", f"cannot read: {exc}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "yaml"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise DesiredStateError(path, where, f"invalid YAML: {problem}") from None
    if not isinstance(raw, dict):
        raise DesiredStateError(path, "", "expected a mapping at the top level")
    try:
        return DesiredStateFile.model_validate(raw)
    except ValidationError as exc:
        raise _first_error(path, exc) from None


def _first_error(path: Path, exc: ValidationError) -> DesiredStateError:
    errors = exc.errors()
    first = errors[0]
    loc = ".".join(str(part) for part in first["loc"] if not _is_union_tag(part))
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return DesiredStateError(path, loc, f"{first['msg']}{more}")


def _is_union_tag(part: object) -> bool:
    # pydantic adds the member type of a union to error locations ("services.db.ServiceDeclaration")
    return isinstance(part, str) and part[:1].isupper()


def _env_value(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def merge_services(
    path: Path, declared: DesiredStateFile, compose_model: Mapping[str, Any]
) -> dict[str, ServiceSpec]:
    compose_services: Mapping[str, Any] = compose_model.get("services") or {}
    for name in declared.services:
        if name not in compose_services:
            known = ", ".join(sorted(compose_services)) or "none"
            raise DesiredStateError(
                path, f"services.{name}", f"no such service in the compose project (has: {known})"
            )
    specs: dict[str, ServiceSpec] = {}
    for name, compose_service in sorted(compose_services.items()):
        decl = declared.services.get(name) or ServiceDeclaration()
        specs[name] = _spec(path, name, decl, compose_service or {}, compose_services)
    return specs


def _spec(
    path: Path,
    name: str,
    decl: ServiceDeclaration,
    compose_service: Mapping[str, Any],
    compose_services: Mapping[str, Any],
) -> ServiceSpec:
    healthcheck = compose_service.get("healthcheck") or {}
    has_healthcheck = bool(healthcheck) and not healthcheck.get("disable", False)
    if decl.healthy and not has_healthcheck:
        raise DesiredStateError(
            path, f"services.{name}.healthy", "the compose service defines no healthcheck"
        )
    depends_on = _compose_dependencies(compose_service)
    for i, dep in enumerate(decl.depends_on):
        if dep not in compose_services:
            raise DesiredStateError(
                path, f"services.{name}.depends_on.{i}", f"no such service: {dep}"
            )
        if dep not in depends_on:
            depends_on.append(dep)
    if decl.replicas is not None:
        replicas = decl.replicas
    else:
        deploy = compose_service.get("deploy") or {}
        replicas = int(deploy.get("replicas") or compose_service.get("scale") or 1)
    check_health = has_healthcheck if decl.healthy is None else decl.healthy
    if decl.verify_timeout_seconds is not None:
        verify_timeout = decl.verify_timeout_seconds
    else:
        verify_timeout = default_verify_timeout(healthcheck if check_health else {})
    return ServiceSpec(
        name=name,
        state=ServiceRunState(decl.state),
        replicas=replicas,
        check_health=check_health,
        required=decl.required,
        enforce=decl.enforce,
        depends_on=tuple(depends_on),
        has_build=bool(compose_service.get("build")),
        restart=str(compose_service.get("restart") or "no"),
        verify_timeout=verify_timeout,
        min_ready=decl.min_ready_seconds,
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


_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_CAPTURE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


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
                _interpolate(path, "remediation.hook.argv", declared.hook.argv, environment, set())
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
        argv = _interpolate(path, f"{where}.argv", rb.exec.argv, environment, groups, rb.name)
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
    argv = _interpolate(path, f"{where}.argv", rb.hook.argv, environment, groups, rb.name)
    return RunbookStep(
        kind="hook", argv=tuple(argv), env=rb.hook.env, timeout=rb.hook.timeout_seconds
    )


def _interpolate(
    path: Path,
    where: str,
    argv: list[str],
    environment: Mapping[str, str],
    groups: set[str],
    runbook: str = "",
) -> list[str]:
    """``${VAR}`` from the declared environment now; ``{capture}`` checked, filled later."""
    label = f"runbook {runbook}: " if runbook else ""
    out = []
    for i, arg in enumerate(argv):

        def variable(match: re.Match[str], i: int = i) -> str:
            name = match.group(1)
            if name in environment:
                return environment[name]
            if name in os.environ:
                return os.environ[name]
            raise DesiredStateError(path, f"{where}.{i}", f"{label}${{{name}}} is not set")

        arg = _VARIABLE.sub(variable, arg)
        for capture in _CAPTURE.findall(arg.replace("${", "$(")):
            if capture not in groups:
                raise DesiredStateError(
                    path,
                    f"{where}.{i}",
                    f"{label}{{{capture}}} is not a named capture of the pattern",
                )
        out.append(arg)
    return out


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
