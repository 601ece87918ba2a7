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
    """An HTTP GET the controller sends from its own host."""

    url: str = Field(pattern=r"^https?://", description="The URL to get (http or https).")
    status: int | None = Field(
        default=None,
        ge=100,
        le=599,
        description="The status the answer must have (default: any status below 400).",
    )
    body: str = Field(default="", description="Text the answer's body must contain.")


class TcpProbeDeclaration(_Strict):
    """A TCP connection the controller opens from its own host."""

    host: str = Field(default="127.0.0.1", description="The host to connect to.")
    port: Annotated[int, Field(ge=1, le=65535)] | str = Field(
        description='The port to connect to: a number, or "${VAR}".'
    )


class ExecProbeDeclaration(_Strict):
    """A command run in a running container of the service."""

    argv: list[str] = Field(
        min_length=1, description="The command and its arguments (no shell); exit 0 passes."
    )


class ProbeDeclaration(_Strict):
    """A check of the service beside its healthcheck, with Kubernetes' settings; exactly
    one of http, tcp and exec."""

    http: HttpProbeDeclaration | None = Field(default=None, description="An HTTP probe.")
    tcp: TcpProbeDeclaration | None = Field(default=None, description="A TCP connect probe.")
    exec: ExecProbeDeclaration | None = Field(
        default=None, description="A command run in a running container of the service."
    )
    period_seconds: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        allow_inf_nan=False,
        description="Seconds between two checks (default 10).",
    )
    timeout_seconds: float = Field(
        default=1.0,
        gt=0,
        le=600,
        allow_inf_nan=False,
        description="A check that takes longer fails (default 1).",
    )
    failure_threshold: int = Field(
        default=3,
        ge=1,
        le=1000,
        description="Failures in a row that make the probe fail: a probe-failed drift (default 3).",
    )
    success_threshold: int = Field(
        default=1,
        ge=1,
        le=1000,
        description="Successes in a row that make the probe pass again (default 1).",
    )
    initial_delay_seconds: float = Field(
        default=0.0,
        ge=0,
        le=3600,
        allow_inf_nan=False,
        description="Seconds after the container starts before the first check (default 0).",
    )


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
            "same hand; on a swarm: services whose update Swarm began within 60 s of the one "
            "it paused) is rolled back with it, dependencies first."
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
    """What healthy means for one service of the compose project."""

    state: Literal["running", "completed"] = Field(
        default="running",
        description="running (the default), or completed: a one-shot job that must have exited 0.",
    )
    replicas: int | None = Field(
        default=None,
        ge=0,
        le=MAX_REPLICAS,
        description="Containers that must run (default: compose deploy.replicas, else 1).",
    )
    healthy: bool | None = Field(
        default=None,
        description=(
            "Require its healthcheck to pass (default: true when compose defines a "
            "healthcheck, false when compose disables it, else as the container reports). "
            "true without a compose healthcheck is an error."
        ),
    )
    required: bool = Field(
        default=True,
        description=(
            "A drift of a service not required is reported (low) but does not fail the "
            "CI gate (default true)."
        ),
    )
    enforce: bool = Field(
        default=False,
        description=(
            "Act even on a container a person stopped or paused (default false: leave it "
            "to them until it starts again)."
        ),
    )
    depends_on: list[str] = Field(
        default_factory=list,
        description="Services it depends on, added to compose's depends_on.",
    )
    verify_timeout_seconds: float | None = Field(
        default=None,
        gt=0,
        le=3600,
        allow_inf_nan=False,
        description=(
            "How long a fix has to make the service ready (default: from the healthcheck's "
            "own worst case, between 15 s and 5 min)."
        ),
    )
    min_ready_seconds: float = Field(
        default=2.0,
        ge=0,
        le=600,
        allow_inf_nan=False,
        description="How long it must stay ready for a fix to count as proven (default 2).",
    )
    recreate_outdated: bool = Field(
        default=False,
        description=(
            "Recreate it when its config is outdated (default false: report it with the "
            "command that applies it)."
        ),
    )
    probes: list[ProbeDeclaration] = Field(  # a thread each
        default_factory=list,
        max_length=20,
        description="Checks of its own (http, tcp or exec); a failing one is a probe-failed drift.",
    )
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
    predict: ServicePredictDeclaration = Field(
        default=ServicePredictDeclaration(),
        description="Forecasts of its resources: when to warn and what to do before exhaustion.",
    )

    _shorthand = field_validator("rollback", mode="before")(mode_shorthand)


ARGV = (
    "The command and its arguments (no shell); {name} is a named capture of the pattern, "
    "filled only when it matches capture_pattern in full."
)
TIMEOUT = "Seconds it may run; a command that takes longer fails the step (default 60)."


class ExecDeclaration(_Strict):
    """A runbook's command, run in a running container of a service."""

    service: str = Field(description="The service whose container runs it.")
    argv: list[str] = Field(min_length=1, description=ARGV)
    user: str = Field(default="", description="The user it runs as (default: the container's).")
    env: dict[str, str] = Field(
        default_factory=dict, description="Environment variables set for the command."
    )
    timeout_seconds: float = Field(
        default=60.0, gt=0, le=3600, allow_inf_nan=False, description=TIMEOUT
    )


class ComposeDeclaration(_Strict):
    """A runbook's Compose operation on a service."""

    service: str = Field(description="The service it acts on.")
    action: Literal["start", "restart", "recreate"] = Field(
        description="start, restart, or recreate (up -d --force-recreate --no-deps)."
    )


class HookDeclaration(_Strict):
    """Your command, run on the controller's host with the issue as JSON on stdin; its exit
    code is the outcome (0: it did something)."""

    argv: list[str] = Field(min_length=1, description="The command and its arguments (no shell).")
    env: dict[str, str] = Field(
        default_factory=dict, description="Environment variables set for the command."
    )
    timeout_seconds: float = Field(
        default=60.0, gt=0, le=3600, allow_inf_nan=False, description=TIMEOUT
    )


class WhenDeclaration(_Strict):
    """What makes a runbook run."""

    pattern: str = Field(
        description=(
            "A pattern id (the library's or your own), or predicted-memory, predicted-pids, "
            "predicted-writable-layer, predicted-volume for a forecast."
        )
    )
    services: list[str] = Field(
        default_factory=list,
        description="The services whose findings trigger it (default: any).",
    )


class RunbookDeclaration(_Strict):
    """A known fix for a known error: one step, tried before any generic one, once per cause."""

    name: str = Field(
        pattern=r"^[a-z0-9][a-z0-9-]{1,62}$",
        description="Its name, shown in issues (lower case, digits and dashes).",
    )
    when: WhenDeclaration = Field(description="The pattern, and the services, that trigger it.")
    capture_pattern: str = Field(
        default=DEFAULT_CAPTURE,
        description="What a named capture may be, in full, to be put into an argv.",
    )
    exec: ExecDeclaration | None = Field(
        default=None, description="A command in a container of a service."
    )
    compose: ComposeDeclaration | None = Field(
        default=None, description="A Compose operation on a service."
    )
    hook: HookDeclaration | None = Field(
        default=None, description="A command on the controller's host, the issue on stdin."
    )
    then_restart: bool = Field(
        default=False,
        description="Restart the service that logged the error afterwards (default false).",
    )


class RemediationDeclaration(_Strict):
    """How the controller fixes things: its budget, its backoff and the runbooks."""

    budget: int = Field(
        default=5,
        ge=1,
        le=1000,
        description="Fix steps per service within budget_window_seconds; then a human (default 5).",
    )
    budget_window_seconds: float = Field(
        default=3600.0,
        gt=0,
        le=WEEK,
        allow_inf_nan=False,
        description="The window the budget counts steps in (default 3600).",
    )
    backoff_initial_seconds: float = Field(
        default=10.0,
        gt=0,
        le=HOUR,
        allow_inf_nan=False,
        description=(
            "The wait before the second step for the same fault; each further step "
            "waits twice the one before, up to backoff_max_seconds (default 10)."
        ),
    )
    backoff_max_seconds: float = Field(
        default=300.0,
        gt=0,
        le=DAY,
        allow_inf_nan=False,
        description="The longest wait between two steps for the same fault (default 300).",
    )
    backoff_reset_seconds: float = Field(
        default=600.0,
        gt=0,
        le=WEEK,
        allow_inf_nan=False,
        description=(
            "Ready this long since the last step: stable again, the backoff and the crash "
            "pattern are reset (default 600)."
        ),
    )
    log_quiet_seconds: float = Field(
        default=10.0,
        ge=0,
        le=600,
        allow_inf_nan=False,
        description="A fixed log error must stay away this long for its fix to count (default 10).",
    )
    log_active_seconds: float = Field(
        default=60.0,
        gt=0,
        le=DAY,
        allow_inf_nan=False,
        description="Log errors seen more recently than this are acted on (default 60).",
    )
    operation_timeout_seconds: float = Field(
        default=300.0,
        gt=0,
        le=DAY,
        allow_inf_nan=False,
        description=(
            "A person's docker/compose operation the engine still shows after this long is "
            "called abandoned and handed to a human (default 300)."
        ),
    )
    hook: HookDeclaration | None = Field(
        default=None,
        description="The last step of every ladder, run instead of handing a service to a human.",
    )
    runbooks: list[RunbookDeclaration] = Field(
        default_factory=list,
        max_length=200,
        description="Known fixes for known errors, tried first.",
    )


class DiscoveryDeclaration(_Strict):
    """Error-looking lines no pattern matches, mined into templates (drain3)."""

    enabled: bool = Field(default=True, description="Mine them (default true).")
    min_occurrences: int = Field(
        default=3,
        ge=1,
        le=1000,
        description="Sightings of a template before it opens an unclassified issue (default 3).",
    )


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
    """What the controller looks for in the services' logs."""

    patterns: list[dict[str, Any]] = Field(  # checked by the library
        default_factory=list,
        max_length=1000,
        description="Patterns added to the library, with the same fields as a pack's.",
    )
    overrides: dict[str, PatternOverride] = Field(
        default_factory=dict, description="Changes to library patterns, by pattern id."
    )
    ignore: dict[str, list[str]] = Field(
        default_factory=dict,
        description='Per service, what is not reported: pattern ids, "unclassified" or "*".',
    )
    escalate_after: int = Field(
        default=10,
        ge=2,
        le=100_000,
        description=(
            "Occurrences within escalate_window_seconds that raise a log issue's severity "
            "one level, once (default 10)."
        ),
    )
    escalate_window_seconds: float = Field(
        default=60.0,
        gt=0,
        le=DAY,
        allow_inf_nan=False,
        description="The window of escalate_after, by the lines' own timestamps (default 60).",
    )
    resolve_after_quiet_seconds: float = Field(
        default=300.0,
        gt=0,
        le=WEEK,
        allow_inf_nan=False,
        description="A log issue not seen for this long is resolved (default 300).",
    )
    discovery: DiscoveryDeclaration = Field(
        default=DiscoveryDeclaration(),
        description="Templates of error-looking lines no pattern matches.",
    )
    learn: LearnDeclaration = Field(
        default=LearnDeclaration(),
        description="Precursors learned from history: templates seen before incidents.",
    )


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
            "limits, not moved by 1 % of a limit over the last sample_seconds, no rising "
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

    urls: list[str] = Field(
        default_factory=list,
        description='Apprise URLs to tell; "${VAR}" keeps a token out of the file.',
    )
    events: list[NotifyEventName] = Field(
        default_factory=lambda: list(_EVERY_EVENT),
        description="The transitions told (default: all four).",
    )
    min_severity: Literal["low", "medium", "high", "critical"] = Field(
        default="high", description="Issues below this severity are never told (default high)."
    )
    group_seconds: float = Field(
        default=10.0,
        ge=0,
        le=3600,
        description="A service's transitions within this go out as one message (default 10).",
    )
    max_per_hour: int = Field(
        default=12,
        ge=1,
        le=3600,
        description="Messages per service an hour; more wait, grouped, not lost (default 12).",
    )
    timeout_seconds: float = Field(
        default=10.0, gt=0, le=300, description="Per endpoint and message (default 10)."
    )


class DesiredStateFile(_Strict):
    project: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", description="The compose project name.")
    compose_files: list[str] = Field(
        min_length=1, description="The compose files, relative to this file (passed as -f)."
    )
    env_files: list[str] = Field(
        default_factory=list,
        description=(
            "Passed as --env-file, relative to this file (default: the .env beside the "
            "first compose file, if there is one)."
        ),
    )
    profiles: list[str] = Field(default_factory=list, description="Passed as --profile.")
    environment: dict[str, str | EnvInteger | EnvNumber | bool] = Field(
        default_factory=dict,
        description="Variables for Compose's interpolation (and this file's).",
    )
    remediation: RemediationDeclaration = Field(
        default=RemediationDeclaration(),
        description="How services are fixed: the budget, the backoff, the hook and runbooks.",
    )
    detection: DetectionDeclaration = Field(
        default=DetectionDeclaration(),
        description="Log detection: patterns of your own, overrides, what to ignore.",
    )
    notify: NotifyDeclaration = Field(
        default=NotifyDeclaration(), description="Who hears about issues, and which."
    )
    rollback: RollbackDeclaration = Field(
        default_factory=RollbackDeclaration,
        description=(
            "Last-good snapshots, a verdict on every change, and rollback: off, notify "
            "(the default) or auto, or a mapping with mode, scope, keep, window_seconds, "
            "deadline_seconds and severity."
        ),
    )
    predict: PredictDeclaration = Field(
        default=PredictDeclaration(),
        description="How resources are sampled and their trends fitted.",
    )
    services: dict[str, ServiceDeclaration | None] = Field(
        default_factory=dict,
        description="The services, by compose name; a service not listed gets the defaults.",
    )

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
