"""A validated declaration and its compose model into one ``DesiredState``.

The last stage of loading, shared by a desired-state file (``desired.load_desired``) and
the zero-config compose project (``desired.zeroconfig``): the compose layer
(``x-controller`` and labels) under the declaration, the notification URLs from the
environment (and, zero-config, Apprise's files), then the services merged over compose
and every section turned into settings, each problem noted in ``problems``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from controller.desired.actions import detection_settings, remediation_settings
from controller.desired.composelayer import ComposeLayer, deep_merge
from controller.desired.errors import Problems
from controller.desired.notify import notify_settings
from controller.desired.notifysources import (
    urls_from_apprise_files,
    urls_from_environment,
)
from controller.desired.predict import predict_settings
from controller.desired.schema import DesiredStateFile, document_loc
from controller.desired.services import merge_services
from controller.model import ComposeProject, DesiredState, RollbackScope, RollbackSettings

ComposeModelLoader = Callable[[ComposeProject], Mapping[str, Any]]


def layered(
    declared: DesiredStateFile, layer: ComposeLayer, problems: Problems
) -> DesiredStateFile:
    """``declared`` over the compose layer, field by field (what the declaration sets
    wins); ``declared`` itself when the compose files declare nothing."""
    if not layer:
        return declared
    document: dict[str, Any] = deep_merge(layer.document(), declared.model_dump(exclude_unset=True))
    try:
        return DesiredStateFile.model_validate(document)
    except ValidationError as exc:  # each part passed alone: not expected
        for error in exc.errors():
            problems.add(document_loc(document, error["loc"]), error["msg"])
        problems.raise_any()
        raise


def with_notify_urls(
    declared: DesiredStateFile,
    environ: Mapping[str, str],
    apprise_files: list[Path] | None = None,
) -> DesiredStateFile:
    """``notify.urls`` from ``CONTROLLER_NOTIFY_URLS`` when set; else, when nothing names
    a URL and ``apprise_files`` are given, from those of them that exist."""
    urls = urls_from_environment(environ)
    if urls is None and not declared.notify.urls and apprise_files is not None:
        urls = urls_from_apprise_files(apprise_files)[0] or None
    if urls is None:
        return declared
    notify = declared.notify.model_copy(update={"urls": urls})
    return declared.model_copy(update={"notify": notify})


def settle(
    env: str,
    source: Path,
    project: ComposeProject,
    declared: DesiredStateFile,
    compose_model: Mapping[str, Any],
    problems: Problems,
) -> DesiredState:
    """The desired state; raises ``DesiredStateError`` with every problem found."""
    services = merge_services(declared, compose_model, problems)
    detection = detection_settings(declared.detection, services, problems)
    remediation = remediation_settings(declared.remediation, services, detection, problems)
    notify = notify_settings(declared.notify, problems)
    predict = predict_settings(declared.predict, problems)
    problems.raise_any()
    return DesiredState(
        env=env,
        source=source,
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
