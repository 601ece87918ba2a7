"""The schema of ``desired_state/<env>.yaml``: what a user may write, checked by pydantic.

Every model forbids unknown keys, so a typo is an error naming its field, not a silently
ignored setting. ``read_declaration`` turns the file into a ``DesiredStateFile`` or one
``DesiredStateError`` that lists every problem with its line.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from controller.desired.envfile import read_env_file
from controller.desired.errors import DesiredStateError, Loc, Problems
from controller.desired.interpolate import (
    InterpolationError,
    Lookup,
    chain,
    substitute,
)
from controller.desired.yamlsource import read_document
from controller.detect.library import PatternOverride, PatternSpec
from controller.model import DEFAULT_CAPTURE

# Bounds of every duration, count and size: finite, and small enough that time arithmetic
# (now + a window, a backoff doubling) never overflows and a typo is refused at load.
HOUR, DAY, WEEK = 3600.0, 86400.0, 7 * 86400.0
MAX_REPLICAS = 1000
MAX_STOP_GRACE = HOUR  # compose's stop_grace_period: how long a restart may take
# a number in ``environment`` is a string for Compose: finite, and an integer JSON keeps
EnvInteger = Annotated[int, Field(ge=-(2**53), le=2**53)]
EnvNumber = Annotated[float, Field(ge=-1e15, le=1e15, allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HttpProbeDeclaration(_Strict):
    url: str = Field(pattern=r"^https?://")
    status: int | None = Field(default=None, ge=100, le=599)
    body: str = ""


class TcpProbeDeclaration(_Strict):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] | str  # a number, or "${VAR}"


class ExecProbeDeclaration(_Strict):
    argv: list[str] = Field(min_length=1)


class ProbeDeclaration(_Strict):
    http: HttpProbeDeclaration | None = None
    tcp: TcpProbeDeclaration | None = None
    exec: ExecProbeDeclaration | None = None
    period_seconds: float = Field(default=10.0, gt=0, le=3600, allow_inf_nan=False)
    timeout_seconds: float = Field(default=1.0, gt=0, le=600, allow_inf_nan=False)
    failure_threshold: int = Field(default=3, ge=1, le=1000)
    success_threshold: int = Field(default=1, ge=1, le=1000)
    initial_delay_seconds: float = Field(default=0.0, ge=0, le=3600, allow_inf_nan=False)


RollbackModeName = Literal["off", "notify", "auto"]
SeverityName = Literal["low", "medium", "high", "critical"]


def off_is_off(value: Any) -> Any:
    """YAML reads a bare ``off`` as false: as a mode, it is ``off``."""
    return "off" if value is False else value


def mode_shorthand(value: Any) -> Any:
    """``rollback: auto`` is ``rollback: {mode: auto}`` (``rollback: off`` too, which YAML
    reads as false)."""
    value = off_is_off(value)
    return {"mode": value} if isinstance(value, str) else value


class ServiceRollbackDeclaration(_Strict):
    """How a change of this service is judged and what a bad one gets; what is not said
    here comes from the file's top-level ``rollback``. ``rollback: auto`` alone sets the
    mode."""

    mode: RollbackModeName | None = Field(
        default=None,
        description=(
            "off: no snapshots, no verdicts. notify: a bad change opens an issue (and a "
            "notification) saying what was bad and the exact command that reverts it. auto: "
            "the controller also rolls it back to the last good snapshot with Compose, as "
            "one step. Default: the stack's (notify)."
        ),
    )
    _off = field_validator("mode", mode="before")(off_is_off)
    window_seconds: float | None = Field(
        default=None,
        gt=0,
        le=DAY,
        allow_inf_nan=False,
        description=(
            "The monitor window: a change is good once every replica has been ready this "
            "long without exiting, restarting, turning unhealthy, failing a probe or "
            "logging a finding of `severity`. Default: the service's hold, at least 30 s."
        ),
    )
    deadline_seconds: float | None = Field(
        default=None,
        gt=0,
        le=DAY,
        allow_inf_nan=False,
        description=(
            "A change not ready this long after it was seen is bad (default 300, Nomad's "
            "healthy_deadline; at least the healthcheck's start period and first verdict)."
        ),
    )
    severity: SeverityName | None = Field(
        default=None,
        description=(
            "A log finding of at least this severity printed within the window makes the "
            "change bad (default critical)."
        ),
    )


class RollbackDeclaration(ServiceRollbackDeclaration):
    """Rollback for the whole stack: the defaults of every service's ``rollback``, and
    what only the stack can say (``scope``, ``keep``)."""

    scope: Literal["service", "stack"] = Field(
        default="service",
        description=(
            "service: a bad change rolls back its own service. stack: every service "
            "changed by the same operation (changes seen within 60 s of each other, by the "
            "same hand) is rolled back with it, dependencies first."
        ),
    )
    keep: int = Field(
        default=3,
        ge=1,
        le=100,
        description=(
            "Last-good snapshots kept per service; each keeps its image with the tag "
            "compose-controller/lastgood/<project>/<service>:<n>."
        ),
    )


# bytes, or a size with a unit: "256MiB", "1.5GiB", "512m" (desired.predict reads it)
Size = Annotated[int, Field(ge=1, le=1 << 60)] | Annotated[str, Field(max_length=32)]


class ServicePredictDeclaration(_Strict):
    """Forecasts of this service's resources (memory, pids, writable layer, volumes)."""

    warning_seconds: float = Field(
        default=3600.0,
        gt=0,
        le=WEEK,
        allow_inf_nan=False,
        description=(
            "A resource whose trend reaches its limit within this many seconds opens a "
            "`predicted` issue (severity medium): 'at this rate web reaches its 256 MiB "
            "memory limit in about 14 min (OOM kill)'."
        ),
    )
    critical_seconds: float = Field(
        default=900.0,
        gt=0,
        le=WEEK,
        allow_inf_nan=False,
        description="Within this many seconds the `predicted` issue is critical.",
    )
    before_exhaustion: Literal["none", "restart"] = Field(
        default="none",
        description=(
            "What the controller does about a `predicted` issue: none (report it, the "
            "default) or restart the service, within `quiet_window` when one is declared, "
            "else once the forecast is critical. A runbook whose `when.pattern` is "
            "predicted-memory, predicted-pids, predicted-writable-layer or "
            "predicted-volume runs instead, if declared."
        ),
    )
    quiet_window: str | None = Field(
        default=None,
        pattern=r"^[0-2][0-9]:[0-5][0-9]-[0-2][0-9]:[0-5][0-9]$",
        description=(
            'A daily window, UTC, "HH:MM-HH:MM" (it may span midnight), in which a '
            "restart before exhaustion is acceptable; outside it the restart waits."
        ),
    )
    limits: dict[str, Size] = Field(
        default_factory=dict,
        description=(
            "Sizes the engine gives no limit for: `writable-layer` (the container's own "
            "files) and `volume/NAME` (a named volume it mounts), in bytes or with a unit "
            '("10GiB", "512MiB"). Without one, their trend is shown but never forecast.'
        ),
    )


class ServiceDeclaration(_Strict):
    state: Literal["running", "completed"] = "running"
    replicas: int | None = Field(default=None, ge=0, le=MAX_REPLICAS)
    healthy: bool | None = None
    required: bool = True
    enforce: bool = False
    depends_on: list[str] = Field(default_factory=list)
    verify_timeout_seconds: float | None = Field(default=None, gt=0, le=3600, allow_inf_nan=False)
    min_ready_seconds: float = Field(default=2.0, ge=0, le=600, allow_inf_nan=False)
    recreate_outdated: bool = False
    probes: list[ProbeDeclaration] = Field(default_factory=list, max_length=20)  # a thread each
    addresses: list[str] = Field(
        default_factory=list,
        max_length=100,
        description=(
            "Where clients reach this service, beyond what the compose model tells (its "
            "name, container_name, hostname, aliases, ports, expose, and the ports of its "
            "healthcheck and probes): HOST, HOST:PORT or :PORT, e.g. "
            '["127.0.0.1:5432", "db.internal"]. A dependent\'s connection or database '
            "error is linked to this service's fault only when it names one of them (a "
            "loopback host counts by its port), or names nothing and came after the fault."
        ),
    )
    rollback: ServiceRollbackDeclaration | None = Field(
        default=None,
        description=(
            "Rollback of this service's bad changes: off, notify or auto, or a mapping "
            "with mode, window_seconds, deadline_seconds and severity."
        ),
    )
    predict: ServicePredictDeclaration = ServicePredictDeclaration()

    _shorthand = field_validator("rollback", mode="before")(mode_shorthand)


class ExecDeclaration(_Strict):
    service: str
    argv: list[str] = Field(min_length=1)
    user: str = ""
    env: dict[str, str] = Field(default_factory=dict)
    timeout_seconds: float = Field(default=60.0, gt=0, le=3600, allow_inf_nan=False)


class ComposeDeclaration(_Strict):
    service: str
    action: Literal["start", "restart", "recreate"]


class HookDeclaration(_Strict):
    argv: list[str] = Field(min_length=1)
    env: dict[str, str] = Field(default_factory=dict)
    timeout_seconds: float = Field(default=60.0, gt=0, le=3600, allow_inf_nan=False)


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
    budget_window_seconds: float = Field(default=3600.0, gt=0, le=WEEK, allow_inf_nan=False)
    backoff_initial_seconds: float = Field(default=10.0, gt=0, le=HOUR, allow_inf_nan=False)
    backoff_max_seconds: float = Field(default=300.0, gt=0, le=DAY, allow_inf_nan=False)
    backoff_reset_seconds: float = Field(default=600.0, gt=0, le=WEEK, allow_inf_nan=False)
    log_quiet_seconds: float = Field(default=10.0, ge=0, le=600, allow_inf_nan=False)
    log_active_seconds: float = Field(default=60.0, gt=0, le=DAY, allow_inf_nan=False)
    operation_timeout_seconds: float = Field(default=300.0, gt=0, le=DAY, allow_inf_nan=False)
    hook: HookDeclaration | None = None
    runbooks: list[RunbookDeclaration] = Field(default_factory=list, max_length=200)


class DiscoveryDeclaration(_Strict):
    enabled: bool = True
    min_occurrences: int = Field(default=3, ge=1, le=1000)


class LearnDeclaration(_Strict):
    """Precursors learned from history: log templates seen before a service's incidents."""

    mode: Literal["off", "report", "warn"] = Field(
        default="report",
        description=(
            "off: learn nothing; report (the default): learn and list them (the report, "
            "`controller patterns`); warn: and a learned precursor's next appearance "
            "opens a warning issue before the incident it came before."
        ),
    )
    lookback_seconds: float = Field(
        default=300.0,
        gt=0,
        le=DAY,
        allow_inf_nan=False,
        description=(
            "A template seen this long before a crash, OOM kill or unhealthy turn counts "
            "as before it."
        ),
    )
    min_incidents: int = Field(
        default=3,
        ge=2,
        le=1000,
        description=(
            "Incidents a template must have come before to be learned (and it must rarely "
            "appear otherwise)."
        ),
    )


class DetectionDeclaration(_Strict):
    # checked by the library
    patterns: list[dict[str, Any]] = Field(default_factory=list, max_length=1000)
    overrides: dict[str, PatternOverride] = Field(default_factory=dict)
    ignore: dict[str, list[str]] = Field(default_factory=dict)
    escalate_after: int = Field(default=10, ge=2, le=100_000)
    escalate_window_seconds: float = Field(default=60.0, gt=0, le=DAY, allow_inf_nan=False)
    resolve_after_quiet_seconds: float = Field(default=300.0, gt=0, le=WEEK, allow_inf_nan=False)
    discovery: DiscoveryDeclaration = DiscoveryDeclaration()
    learn: LearnDeclaration = LearnDeclaration()


class PredictDeclaration(_Strict):
    """How resources are sampled and their trends fitted (every service)."""

    enabled: bool = Field(
        default=True, description="Sample resources and forecast their exhaustion."
    )
    sample_seconds: float = Field(
        default=30.0,
        ge=1,
        le=HOUR,
        allow_inf_nan=False,
        description=(
            "Seconds between rounds, and between samples of a watched container (the "
            "engine's one-shot stats: memory working set and limit, pids and pids limit)."
        ),
    )
    quiet_sample_seconds: float = Field(
        default=300.0,
        ge=1,
        le=DAY,
        allow_inf_nan=False,
        description=(
            "Seconds between samples of a quiet container: not new, under half of its "
            "limits, not moved by 1 % of a limit since the sample before, no rising "
            "trend (those are sampled every sample_seconds). The engine's disk usage "
            "comes every sample_seconds when a service declares a size to forecast "
            "against (predict.limits), else at this cadence."
        ),
    )
    window_seconds: float = Field(
        default=1800.0,
        ge=60,
        le=WEEK,
        allow_inf_nan=False,
        description="Seconds of a container run's samples a trend is fitted to.",
    )
    min_history_seconds: float = Field(
        default=180.0,
        ge=0,
        le=DAY,
        allow_inf_nan=False,
        description="Seconds of samples before any forecast.",
    )
    min_points: int = Field(
        default=6,
        ge=6,
        le=1000,
        description="Samples before any forecast (6 is the fewest a 1 % test of a rise allows).",
    )


NotifyEventName = Literal["opened", "needs-human", "escalated", "resolved"]
_EVERY_EVENT: tuple[NotifyEventName, ...] = ("opened", "needs-human", "escalated", "resolved")


class NotifyDeclaration(_Strict):
    """Who hears about issues: Apprise URLs (json://, ntfy://, mailto://, slack:// ...)
    and which transitions; ``${VAR}`` keeps a URL's secret out of the file."""

    urls: list[str] = Field(default_factory=list)
    events: list[NotifyEventName] = Field(default_factory=lambda: list(_EVERY_EVENT))
    min_severity: Literal["low", "medium", "high", "critical"] = "high"
    group_seconds: float = Field(default=10.0, ge=0, le=3600)
    max_per_hour: int = Field(default=12, ge=1, le=3600)
    timeout_seconds: float = Field(default=10.0, gt=0, le=300)


class DesiredStateFile(_Strict):
    project: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    compose_files: list[str] = Field(min_length=1)
    env_files: list[str] = Field(default_factory=list)
    profiles: list[str] = Field(default_factory=list)
    environment: dict[str, str | EnvInteger | EnvNumber | bool] = Field(default_factory=dict)
    remediation: RemediationDeclaration = RemediationDeclaration()
    detection: DetectionDeclaration = DetectionDeclaration()
    notify: NotifyDeclaration = NotifyDeclaration()
    rollback: RollbackDeclaration = Field(
        default_factory=RollbackDeclaration,
        description=(
            "Last-good snapshots, a verdict on every change, and rollback: off, notify "
            "(the default) or auto, or a mapping with mode, scope, keep, window_seconds, "
            "deadline_seconds and severity."
        ),
    )
    predict: PredictDeclaration = PredictDeclaration()
    services: dict[str, ServiceDeclaration | None] = Field(default_factory=dict)

    _shorthand = field_validator("rollback", mode="before")(mode_shorthand)


# --- loading ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Declaration:
    """A file that passed the schema: the model (every string interpolated), the values of
    its ``environment`` for Compose, and the collector later checks add their problems to."""

    model: DesiredStateFile
    environment: dict[str, str]
    problems: Problems


def read_declaration(path: Path, environ: Mapping[str, str] | None = None) -> Declaration:
    """Parse, interpolate and validate ``path``; ``DesiredStateError`` lists every problem.

    ``environ`` is the controller's process environment (``os.environ`` by default).
    """
    document = read_document(path)
    raw = document.data
    if not isinstance(raw, dict):
        raise DesiredStateError(path, "", "expected a mapping at the top level", line=1)
    problems = Problems(path, document.line_of)
    process = dict(os.environ if environ is None else environ)
    files_lookup = chain(process)
    interpolated = dict(raw)
    for key in ("compose_files", "env_files"):  # they locate the sources: process env only
        if key in raw:
            interpolated[key] = _interpolate(raw[key], (key,), files_lookup, problems)
    env_files = _env_files(path, interpolated, process, problems)
    declared_env = raw.get("environment")
    environment: dict[str, str] = {}
    if isinstance(declared_env, dict):
        lookup = chain(process, env_files)
        for name, value in declared_env.items():
            if isinstance(value, str | int | float | bool):
                environment[name] = _interpolate(
                    env_value(value), ("environment", name), lookup, problems
                )
    everything = chain(environment, process, env_files)
    for key, value in raw.items():
        if key.startswith("x-"):  # an extension field, as in Compose: anchors live there
            del interpolated[key]
        elif key not in ("compose_files", "env_files", "environment"):
            interpolated[key] = _interpolate(value, (key,), everything, problems)
    try:
        model = DesiredStateFile.model_validate(interpolated)
    except ValidationError as exc:
        for error in exc.errors():
            loc = document_loc(raw, error["loc"])
            if not any(p.field == ".".join(map(str, loc)) for p in problems.found):
                problems.add(loc, error["msg"])
        problems.raise_any()
        raise  # unreachable: a ValidationError always has errors
    problems.raise_any()
    return Declaration(model, environment, problems)


def _interpolate(value: Any, loc: Loc, lookup: Lookup, problems: Problems) -> Any:
    """Every string in ``value`` (not the keys) filled from ``lookup``; problems noted."""
    if isinstance(value, str):
        try:
            return substitute(value, lookup)
        except InterpolationError as exc:
            problems.add(loc, str(exc))
            return value
    if isinstance(value, dict):
        return {k: _interpolate(v, (*loc, k), lookup, problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, (*loc, i), lookup, problems) for i, v in enumerate(value)]
    return value


def _env_files(
    path: Path, raw: Mapping[str, Any], process: Mapping[str, str], problems: Problems
) -> dict[str, str]:
    """The variables of the env files (a later file wins), or of the ``.env`` beside the
    first compose file when none is declared, as Compose reads them."""
    base = path.parent
    declared = raw.get("env_files")
    files: list[tuple[Loc, Path]] = []
    if isinstance(declared, list):
        files = [(("env_files", i), base / str(f)) for i, f in enumerate(declared)]
    elif declared is None:
        compose_files = raw.get("compose_files")
        if isinstance(compose_files, list) and compose_files:
            default = (base / str(compose_files[0])).parent / ".env"
            if default.is_file():
                files = [(("compose_files", 0), default)]
    values: dict[str, str] = {}
    for loc, file in files:
        if not file.is_file():
            problems.add(loc, f"no such file: {file.resolve()}")
            continue
        try:
            found = read_env_file(file, chain(process, values))
        except (OSError, UnicodeDecodeError) as exc:
            problems.add(loc, f"{file.name}: {exc}")
            continue
        values.update(found.values)
        for error in found.errors:
            problems.add(loc, f"{file.name}: {error}")
    return values


def document_loc(raw: Any, loc: tuple[int | str, ...]) -> Loc:
    """pydantic's error location as the file's path: the member types pydantic adds to
    the locations of union fields (``services.db.ServiceDeclaration``) are dropped."""
    out: list[str | int] = []
    node = raw
    for part in loc:
        in_dict = isinstance(node, dict) and part in node
        if in_dict or (isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)):
            node = node[part]
        elif isinstance(part, str) and (part[:1].isupper() or part in _TYPE_TAGS):
            continue  # a union member's name, not a key of the file
        else:
            node = None
        out.append(part)
    return tuple(out)


_TYPE_TAGS = frozenset({"int", "str", "float", "bool", "none", "list", "dict"})


def env_value(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --- the JSON Schema, for editors -------------------------------------------------------


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a desired-state file, generated from the models above.

    ``desired_state/schema.json`` is this, written by ``controller schema``; a test fails
    when the file is stale. Custom log patterns are described by the library's own model.
    """
    schema = DesiredStateFile.model_json_schema()
    pattern = PatternSpec.model_json_schema()
    schema.setdefault("$defs", {}).update(pattern.pop("$defs", {}))
    schema["$defs"]["PatternSpec"] = pattern
    detection = schema["$defs"]["DetectionDeclaration"]["properties"]["patterns"]
    detection["items"] = {"$ref": "#/$defs/PatternSpec"}
    modes = {"enum": ["off", "notify", "auto"], "type": "string"}
    for where in (schema["properties"], schema["$defs"]["ServiceDeclaration"]["properties"]):
        prop = where["rollback"]  # the mode alone is a shorthand of the mapping
        options = prop.pop("anyOf", None) or [{"$ref": prop.pop("$ref")}]
        prop["anyOf"] = [modes, *options]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "compose-controller desired state",
        "description": (
            "desired_state/<env>.yaml: what healthy means for every service of a compose "
            "project. Strings may use Compose's ${VAR} interpolation."
        ),
        **{k: v for k, v in schema.items() if k not in ("title", "description")},
    }
