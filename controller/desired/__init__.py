"""Load ``desired_state/<env>.yaml``, merge it over the compose model, validate it.

The file says which compose files and project an environment is, and what healthy means
for each service. Compose itself resolves the compose model (``docker compose config``,
injected here as a function), so interpolation, profiles and ``extends`` behave exactly as
they do for the user. Anything wrong becomes one ``DesiredStateError`` line that names the
file and the field.

Modules: ``schema`` (what the file may say), ``services`` (merge over compose),
``actions`` (detection and remediation settings), ``interpolate`` (``${VAR}`` and
``{capture}`` in argv), ``errors``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from controller.desired.actions import detection_settings, remediation_settings
from controller.desired.errors import DesiredStateError
from controller.desired.schema import env_value, read_declaration
from controller.desired.services import default_verify_timeout, merge_services, parse_duration
from controller.model import ComposeProject, DesiredState

ComposeModelLoader = Callable[[ComposeProject], Mapping[str, Any]]

ENV_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")

__all__ = [
    "ComposeModelLoader",
    "DesiredStateError",
    "default_verify_timeout",
    "desired_state_path",
    "detection_settings",
    "load_desired",
    "parse_duration",
]


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
        environment={k: env_value(v) for k, v in declared.environment.items()},
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
    services = merge_services(path, declared, compose_model, project.environment)
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
