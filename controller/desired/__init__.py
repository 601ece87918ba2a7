"""Load ``desired_state/<env>.yaml``, merge it over the compose model, validate it.

The file says which compose files and project an environment is, and what healthy means
for each service. Compose itself resolves the compose model (``docker compose config``,
injected here as a function), so interpolation, profiles and ``extends`` behave exactly as
they do for the user. Anything wrong becomes one ``DesiredStateError`` line that names the
file and the field.

Modules: ``schema`` (what the file may say), ``services`` (merge over compose),
``actions`` (detection and remediation settings), ``notify`` (who hears about issues),
``predict`` (forecasts and learned precursors),
``interpolate`` (``${VAR}`` and
``{capture}`` in argv), ``errors``, ``reloadable`` (what only a restart applies).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from controller.desired.actions import detection_settings, remediation_settings
from controller.desired.errors import DesiredStateError
from controller.desired.notify import notify_settings
from controller.desired.predict import predict_settings
from controller.desired.schema import read_declaration
from controller.desired.services import default_verify_timeout, merge_services, parse_duration
from controller.model import ComposeProject, DesiredState, RollbackScope, RollbackSettings

ComposeModelLoader = Callable[[ComposeProject], Mapping[str, Any]]

ENV_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")

__all__ = [
    "ComposeModelLoader",
    "DesiredStateError",
    "default_verify_timeout",
    "desired_state_path",
    "detection_settings",
    "environments",
    "load_desired",
    "parse_duration",
]


_DECLARES = re.compile(r"^(?:project|compose_files):", re.MULTILINE)


def environments(directory: Path) -> list[str]:
    """The environments ``directory`` declares, sorted: its ``<env>.yaml`` files that say
    ``project:`` or ``compose_files:`` at the top level (a compose file kept beside them
    is not an environment)."""
    names = []
    try:
        for path in directory.glob("*.yaml"):
            if path.is_file() and ENV_NAME.match(path.stem):
                with path.open(encoding="utf-8", errors="replace") as handle:
                    if _DECLARES.search(handle.read(1 << 16)):
                        names.append(path.stem)
    except OSError:
        return sorted(names)
    return sorted(names)


def desired_state_path(directory: Path, env: str) -> Path:
    if not ENV_NAME.match(env):
        raise DesiredStateError(
            "--env", "", f"{env!r} is not an environment name (letters, digits, . _ -)"
        )
    path = directory / f"{env}.yaml"
    if not path.exists() and not path.is_symlink():
        known = ", ".join(environments(directory)) or "none"
        raise DesiredStateError(
            path, "", f"no such file: there is no environment {env!r} in {directory} (has: {known})"
        )
    return path


def load_desired(
    env: str,
    directory: Path,
    load_compose: ComposeModelLoader,
    environ: Mapping[str, str] | None = None,
) -> DesiredState:
    """The declared state of ``env``; ``DesiredStateError`` lists every problem found.

    ``environ`` is the process environment for interpolation (``os.environ`` by default).
    """
    path = desired_state_path(directory, env)
    declaration = read_declaration(path, environ)
    declared, problems = declaration.model, declaration.problems
    base = path.parent.resolve()
    project = ComposeProject(
        name=declared.project,
        files=tuple((base / f).resolve() for f in declared.compose_files),
        workdir=base,
        env_files=tuple((base / f).resolve() for f in declared.env_files),
        profiles=tuple(declared.profiles),
        environment=declaration.environment,
    )
    for i, file in enumerate(project.files):
        if not file.is_file():
            problems.add(("compose_files", i), f"no such file: {file}")
    problems.raise_any()
    try:
        compose_model = load_compose(project)
    except Exception as exc:  # the loader's own error text is the useful part
        problems.add(("compose_files",), f"docker compose config failed: {exc}")
        problems.raise_any()
        raise
    services = merge_services(declared, compose_model, problems)
    detection = detection_settings(declared.detection, services, problems)
    remediation = remediation_settings(declared.remediation, services, detection, problems)
    notify = notify_settings(declared.notify, problems)
    predict = predict_settings(declared.predict, problems)
    problems.raise_any()
    return DesiredState(
        env=env,
        source=path,
        compose=project,
        services=services,
        detection=detection,
        remediation=remediation,
        notify=notify,
        rollback=RollbackSettings(
            scope=RollbackScope(declared.rollback.scope), keep=declared.rollback.keep
        ),
        predict=predict,
    )
