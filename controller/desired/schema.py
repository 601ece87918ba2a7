"""The schema of ``desired_state/<env>.yaml``: what a user may write, checked by pydantic.

Every model forbids unknown keys, so a typo is an error naming its field, not a silently
ignored setting. ``read_declaration`` turns the file into a ``DesiredStateFile`` or one
``DesiredStateError`` line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from controller.desired.errors import DesiredStateError
from controller.detect.library import PatternOverride
from controller.model import DEFAULT_CAPTURE


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HttpProbeDeclaration(_Strict):
    url: str = Field(pattern=r"^https?://")
    status: int | None = Field(default=None, ge=100, le=599)
    body: str = ""


class TcpProbeDeclaration(_Strict):
    host: str = "127.0.0.1"
    port: int | str  # a number, or "${VAR}"


class ExecProbeDeclaration(_Strict):
    argv: list[str] = Field(min_length=1)


class ProbeDeclaration(_Strict):
    http: HttpProbeDeclaration | None = None
    tcp: TcpProbeDeclaration | None = None
    exec: ExecProbeDeclaration | None = None
    period_seconds: float = Field(default=10.0, gt=0, le=3600)
    timeout_seconds: float = Field(default=1.0, gt=0, le=600)
    failure_threshold: int = Field(default=3, ge=1, le=1000)
    success_threshold: int = Field(default=1, ge=1, le=1000)
    initial_delay_seconds: float = Field(default=0.0, ge=0, le=3600)


class ServiceDeclaration(_Strict):
    state: Literal["running", "completed"] = "running"
    replicas: int | None = Field(default=None, ge=0)
    healthy: bool | None = None
    required: bool = True
    enforce: bool = False
    depends_on: list[str] = Field(default_factory=list)
    verify_timeout_seconds: float | None = Field(default=None, gt=0, le=3600)
    min_ready_seconds: float = Field(default=2.0, ge=0, le=600)
    recreate_outdated: bool = False
    probes: list[ProbeDeclaration] = Field(default_factory=list)


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
    operation_settle_seconds: float = Field(default=3.0, ge=0, le=600)
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


def env_value(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
