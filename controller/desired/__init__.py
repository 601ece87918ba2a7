"""Load ``desired_state/<env>.yaml``, merge it over the compose model, validate it.

The file says which compose files and project an environment is, and what healthy means
for each service. Compose itself resolves the compose model (``docker compose config``,
injected here as a function), so interpolation, profiles and ``extends`` behave exactly as
they do for the user. Anything wrong becomes one ``DesiredStateError`` line that names the
file and the field.

Without a desired-state file (and no ``--desired-state-dir``), the compose project of the
current directory is the desired state, as Compose declares it (``zeroconfig``).

Modules: ``schema`` (what the file may say), ``services`` (merge over compose),
``actions`` (detection and remediation settings), ``notify`` (who hears about issues),
``predict`` (forecasts and learned precursors),
``interpolate`` (``${VAR}`` and
``{capture}`` in argv), ``composelayer`` (``x-controller`` and labels in the compose
files), ``notifysources`` (URLs from the environment and Apprise's files), ``discover``
(the compose project as Compose finds it), ``zeroconfig``, ``settle`` (the last stage of
both), ``errors``, ``reloadable`` (what only a restart applies).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from controller.desired.actions import detection_settings
from controller.desired.composelayer import compose_layer
from controller.desired.discover import find_project
from controller.desired.errors import DesiredStateError
from controller.desired.notifysources import apprise_config_paths
from controller.desired.schema import read_declaration
from controller.desired.services import default_verify_timeout, parse_duration
from controller.desired.settle import ComposeModelLoader, layered, settle, with_notify_urls
from controller.desired.zeroconfig import load_compose_project
from controller.model import ComposeProject, DesiredState

ENV_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")

__all__ = [
    "ComposeModelLoader",
    "DesiredStateError",
    "default_verify_timeout",
    "desired_state_path",
    "detection_settings",
    "environments",
    "find_project",
    "load_compose_project",
    "load_desired",
    "load_zero_config",
    "parse_duration",
    "zero_config_applies",
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


def zero_config_applies(directory: Path, env: str, explicit_directory: bool) -> bool:
    """Whether ``env`` runs on the compose project of the current directory: no
    ``--desired-state-dir`` was given and ``directory`` declares no environment at all
    (one that declares others keeps its error for an unknown ``--env``: a typo must not
    quietly manage whatever compose project the directory holds)."""
    if explicit_directory:
        return False
    path = directory / f"{env}.yaml"
    return not (path.exists() or path.is_symlink()) and not environments(directory)


def load_zero_config(
    env: str,
    cwd: Path,
    files: Sequence[Path],
    project_name: str | None,
    load_compose: ComposeModelLoader,
    environ: Mapping[str, str] | None = None,
    home: Path | None = None,
) -> DesiredState:
    """The desired state of the compose project in ``cwd``, found as Compose finds it
    (``-f`` ``files``, ``-p`` ``project_name``, ``COMPOSE_FILE`` ...)."""
    process = os.environ if environ is None else environ
    found = find_project(cwd, files, project_name, process)
    paths = apprise_config_paths(process, home)
    return load_compose_project(env, found, load_compose, process, paths)


def load_desired(
    env: str,
    directory: Path,
    load_compose: ComposeModelLoader,
    environ: Mapping[str, str] | None = None,
    files: Sequence[Path] = (),
    project_name: str | None = None,
) -> DesiredState:
    """The declared state of ``env``; ``DesiredStateError`` lists every problem found.

    ``environ`` is the process environment for interpolation (``os.environ`` by default).
    ``files`` and ``project_name`` (the ``-f`` and ``-p`` flags, relative to the current
    directory) win over the file's ``compose_files`` and ``project``.
    """
    path = desired_state_path(directory, env)
    declaration = read_declaration(path, environ)
    declared, problems = declaration.model, declaration.problems
    base = path.parent.resolve()
    compose_files = [f.resolve() for f in files] or [
        (base / f).resolve() for f in declared.compose_files
    ]
    project = ComposeProject(
        name=project_name or declared.project,
        files=tuple(compose_files),
        workdir=base,
        env_files=tuple((base / f).resolve() for f in declared.env_files),
        profiles=tuple(declared.profiles),
        environment=declaration.environment,
    )
    for i, file in enumerate(project.files):
        if not file.is_file():
            where = "--file" if files else f"compose_files.{i}"
            problems.add(tuple(where.split(".")), f"no such file: {file}")
    problems.raise_any()
    try:
        compose_model = load_compose(project)
    except Exception as exc:  # the loader's own error text is the useful part
        problems.add(("compose_files",), f"docker compose config failed: {exc}")
        problems.raise_any()
        raise
    declared = layered(declared, compose_layer(compose_model, project.files), problems)
    declared = with_notify_urls(declared, os.environ if environ is None else environ)
    return settle(env, path, project, declared, compose_model, problems)
