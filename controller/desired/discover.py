"""Find the compose project of a directory the way ``docker compose`` finds it (zero-config).

With no desired-state file the controller manages the project Compose would manage when
run in the same directory with the same flags and variables:

- the compose files: ``-f/--file`` (repeated, in order), else ``COMPOSE_FILE`` (split at
  ``COMPOSE_PATH_SEPARATOR``, by default ``:``), else the first of ``compose.yaml``,
  ``compose.yml``, ``docker-compose.yml``, ``docker-compose.yaml`` in the directory or
  the nearest parent that has one, with its override file (``compose.override.yaml`` ...)
  beside it;
- the project name: ``-p/--project-name``, else ``COMPOSE_PROJECT_NAME``, else what
  Compose itself decides (the files' top-level ``name:``, else the project directory's
  name): left empty here, read from ``docker compose config`` by the loader;
- ``COMPOSE_FILE`` and ``COMPOSE_PROJECT_NAME`` may also come from the ``.env`` of the
  directory, as Compose reads them; the process environment wins.

Anything wrong is one ``DesiredStateError`` naming the flag, variable or directory.
Called by ``desired.zeroconfig``; touches only the file system.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from controller.desired.envfile import read_env_file
from controller.desired.errors import DesiredStateError
from controller.desired.interpolate import chain
from controller.model import ComposeProject

DEFAULT_FILES = ("compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml")
OVERRIDE_FILES = (
    "compose.override.yaml",
    "compose.override.yml",
    "docker-compose.override.yml",
    "docker-compose.override.yaml",
)
PROJECT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")  # Compose's rule for a project name


def find_project(
    cwd: Path,
    files: Sequence[Path],
    project_name: str | None,
    environ: Mapping[str, str],
) -> ComposeProject:
    """The compose project of ``cwd``: its files and, when a flag or variable names it,
    its name (``""``: Compose decides). Raises ``DesiredStateError``."""
    variables = _variables(cwd, environ)
    if files:
        chosen, origin = [cwd / f for f in files], "--file"
    elif variables.get("COMPOSE_FILE"):
        separator = variables.get("COMPOSE_PATH_SEPARATOR") or ":"
        parts = [p for p in variables["COMPOSE_FILE"].split(separator) if p]
        chosen, origin = [cwd / p for p in parts], "COMPOSE_FILE"
    else:
        chosen, origin = _default_files(cwd), ""
    for file in chosen:
        if str(file) == str(cwd / "-"):
            raise DesiredStateError(origin, "", "a compose file on stdin (-) cannot be watched")
        if not file.is_file():
            raise DesiredStateError(origin or file, "", f"no such file: {file.resolve()}")
    if project_name is not None:
        name, named_by = project_name, "--project-name"
    else:
        name, named_by = variables.get("COMPOSE_PROJECT_NAME", ""), "COMPOSE_PROJECT_NAME"
    if name and not PROJECT_NAME.match(name):
        raise DesiredStateError(
            named_by,
            "",
            f"{name!r} is not a compose project name (lower-case letters, digits, - and _,"
            " starting with a letter or digit)",
        )
    resolved = tuple(f.resolve() for f in chosen)
    return ComposeProject(name=name, files=resolved, workdir=resolved[0].parent)


def _default_files(cwd: Path) -> list[Path]:
    """The first default file in ``cwd`` or its nearest parent that has one, and its
    override file beside it."""
    for directory in (cwd, *cwd.resolve().parents):
        for name in DEFAULT_FILES:
            if (directory / name).is_file():
                found = [directory / name]
                override = next(
                    (directory / o for o in OVERRIDE_FILES if (directory / o).is_file()), None
                )
                return found + ([override] if override is not None else [])
    names = ", ".join(DEFAULT_FILES)
    raise DesiredStateError(
        cwd,
        "",
        f"no compose file: none of {names} here or in a parent directory (name one with "
        "-f FILE or COMPOSE_FILE, or declare desired_state/<env>.yaml)",
    )


def _variables(cwd: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """``COMPOSE_*`` variables: the process environment over the directory's ``.env``."""
    wanted = ("COMPOSE_FILE", "COMPOSE_PROJECT_NAME", "COMPOSE_PATH_SEPARATOR")
    values: dict[str, str] = {}
    dotenv = cwd / ".env"
    if dotenv.is_file() and not all(k in environ for k in wanted):
        try:
            found = read_env_file(dotenv, chain(dict(environ)))
        except (OSError, UnicodeDecodeError) as exc:
            raise DesiredStateError(dotenv, "", f"cannot read: {exc}") from None
        values.update({k: v for k, v in found.values.items() if k in wanted})
    values.update({k: environ[k] for k in wanted if k in environ})
    return values
