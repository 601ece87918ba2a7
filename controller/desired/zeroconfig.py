"""Zero-config: the desired state of a compose project that has no desired-state file.

Every service as Compose declares it (replicas, restart policy, healthcheck: the same
merge as a desired-state file's, ``desired.services``), with the settings the compose
files themselves declare (``x-controller`` and ``compose-controller.*`` labels,
``desired.composelayer``), the notification URLs of ``CONTROLLER_NOTIFY_URLS`` or
Apprise's own files (``desired.notifysources``), and the defaults for the rest. The
project is found as Compose finds it (``desired.discover``). Called by ``desired``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from controller.desired.composelayer import EXTENSION, Locator, compose_layer
from controller.desired.discover import PROJECT_NAME
from controller.desired.errors import DesiredStateError, Loc, Problems
from controller.desired.schema import DesiredStateFile
from controller.desired.settle import ComposeModelLoader, settle, with_notify_urls
from controller.model import ComposeProject, DesiredState


def load_compose_project(
    env: str,
    found: ComposeProject,
    load_compose: ComposeModelLoader,
    environ: Mapping[str, str],
    apprise_files: list[Path],
) -> DesiredState:
    """The desired state of the compose project ``found`` (``desired.discover``; its name
    empty when Compose decides it); ``DesiredStateError`` lists every problem."""
    source = found.files[0]
    try:
        model: Mapping[str, Any] = load_compose(found)
    except Exception as exc:  # the loader's own error text is the useful part
        raise DesiredStateError(source, "", f"docker compose config failed: {exc}") from exc
    name = found.name or str(model.get("name") or "")
    if not PROJECT_NAME.match(name):
        raise DesiredStateError(source, "name", f"{name!r} is not a compose project name")
    project = replace(found, name=name)
    layer = compose_layer(model, found.files)
    declared = DesiredStateFile.model_validate(
        {"project": name, "compose_files": [str(f) for f in found.files], **layer.document()}
    )  # each part of it was validated, with the file and line of a problem
    declared = with_notify_urls(declared, environ, apprise_files)
    where = Locator(found.files)
    return settle(env, source, project, declared, model, Problems(source, _lines(where, source)))


def _lines(where: Locator, source: Path) -> Callable[[Loc], int | None]:
    """A problem of the merge (``services.web.healthy``) at the line of the service's
    ``x-controller`` field, its labels or the service, when that is in ``source``."""

    def line_of(loc: Loc) -> int | None:
        if len(loc) >= 2 and loc[0] == "services":
            for candidate in ((*loc[:2], EXTENSION, *loc[2:]), (*loc[:2], "labels"), loc[:2]):
                file, line = where.where(candidate)
                if file == str(source) and line is not None:
                    return line
        return None

    return line_of
