"""Settings declared in the compose files themselves: ``x-controller`` and labels.

Two places in a compose file may say what the desired state says, validated by the same
models (``desired.schema``):

- ``x-controller:`` at the top level: the stack's settings (``remediation``,
  ``detection``, ``notify``, ``rollback``, ``predict``); and under a service, that
  service's settings (``enforce``, ``min_ready_seconds``, ``probes`` ... as under
  ``services.NAME`` of a desired-state file);
- a service's ``labels`` named ``compose-controller.FIELD`` (``compose-controller.enforce:
  "true"``), a dot for a nested field (``compose-controller.rollback.mode: auto``),
  commas between the items of ``depends_on`` and ``addresses``.

A service's ``x-controller`` wins over its labels, field by field. Both come from the
model Compose renders (interpolated, merged over every ``-f`` file, ``extends`` done).
A problem names the compose file, the line where it can be found, and the field as it is
written there (``services.web.labels.compose-controller.min_ready_seconds``).
Called by ``desired.zeroconfig`` and, below a desired-state file, by ``desired``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from controller.desired.errors import DesiredStateError, Loc, Problem
from controller.desired.schema import DesiredStateFile, ServiceDeclaration, document_loc
from controller.desired.yamlsource import Document, read_document

EXTENSION = "x-controller"
LABEL_PREFIX = "compose-controller."
LIST_LABELS = frozenset({"depends_on", "addresses"})  # comma-separated in a label
STACK_KEYS = frozenset({"remediation", "detection", "notify", "rollback", "predict"})


@dataclass(frozen=True, slots=True)
class ComposeLayer:
    """What the compose files declare, normalised (the models' own dump of what was set):
    the stack's settings and each service's."""

    stack: dict[str, Any] = field(default_factory=dict)
    services: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.stack or self.services)

    def document(self) -> dict[str, Any]:
        """As the top of a desired-state file would say it (no project, no files)."""
        return {**self.stack, "services": {n: dict(s) for n, s in self.services.items()}}


def compose_layer(model: Mapping[str, Any], files: Sequence[Path]) -> ComposeLayer:
    """The settings of the rendered compose ``model``; ``DesiredStateError`` lists every
    problem, each naming the file of ``files`` (and line) where it is written."""
    where = Locator(files)
    found: list[Problem] = []
    stack = _stack(model.get(EXTENSION), where, found)
    services: dict[str, dict[str, Any]] = {}
    for name, service in sorted((model.get("services") or {}).items()):
        service = service if isinstance(service, Mapping) else {}
        labels, label_keys = _from_labels(name, service.get("labels"), where, found)
        from_labels = _service(name, labels, where, found, label_keys)
        extension = service.get(EXTENSION)
        from_extension: dict[str, Any] = {}
        if extension is not None:
            if isinstance(extension, Mapping):
                from_extension = _service(name, dict(extension), where, found, None)
            else:
                found.append(where.problem(("services", name, EXTENSION), "expected a mapping"))
        if merged := deep_merge(from_labels, from_extension):
            services[name] = merged
    if found:
        raise DesiredStateError.of(sorted(found, key=lambda p: (p.source, p.line or 0)))
    return ComposeLayer(stack, services)


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` on ``base``: mappings merged key by key, anything else replaced (a list
    too); a ``None`` over a mapping (``web:`` with nothing under it) keeps the mapping."""
    merged = dict(base)
    for key, value in over.items():
        mine = merged.get(key)
        if isinstance(mine, Mapping) and isinstance(value, Mapping):
            merged[key] = deep_merge(mine, value)
        elif not (value is None and isinstance(mine, Mapping)):
            merged[key] = value
    return merged


class Locator:
    """Where a field of the compose model is written: the last of the files that spells
    out most of its path, and the line there (the files are read only when asked)."""

    def __init__(self, files: Sequence[Path]) -> None:
        self._files = tuple(files)
        self._documents: list[Document] | None = None

    def _read(self) -> list[Document]:
        if self._documents is None:
            self._documents = []
            for file in self._files:
                try:
                    self._documents.append(read_document(file))
                except DesiredStateError:  # Compose read it; its lines are only a help
                    continue
        return self._documents

    def where(self, loc: Loc) -> tuple[str, int | None]:
        best: tuple[int, Document] | None = None
        for doc in self._read():
            depth = next((n for n in range(len(loc), 0, -1) if tuple(loc[:n]) in doc.lines), 0)
            if depth and (best is None or depth >= best[0]):
                best = (depth, doc)
        if best is None:
            return (str(self._files[0]) if self._files else "compose"), None
        return str(best[1].source), best[1].line_of(loc)

    def problem(self, loc: Loc, message: str, field: str | None = None) -> Problem:
        source, line = self.where(loc)
        return Problem(source, field or ".".join(map(str, loc)), message, line)


def _stack(extension: Any, where: Locator, found: list[Problem]) -> dict[str, Any]:
    if extension is None:
        return {}
    if not isinstance(extension, Mapping):
        found.append(where.problem((EXTENSION,), "expected a mapping"))
        return {}
    settings: dict[str, Any] = {}
    for key, value in extension.items():
        if key in STACK_KEYS:
            settings[key] = value
        else:
            found.append(
                where.problem(
                    (EXTENSION, key),
                    f"not a stack setting (one of {', '.join(sorted(STACK_KEYS))}; a"
                    " service's go under services.NAME.x-controller)",
                )
            )
    probe = {"project": "x", "compose_files": ["x"], **settings}
    model = _validated(DesiredStateFile, probe, (EXTENSION,), where, found)
    if model is None:
        return {}
    return {k: v for k, v in model.model_dump(exclude_unset=True).items() if k in STACK_KEYS}


def _service(
    name: str,
    raw: dict[str, Any],
    where: Locator,
    found: list[Problem],
    label_keys: set[str] | None,
) -> dict[str, Any]:
    if not raw:
        return {}
    prefix: Loc = ("services", name, "labels" if label_keys is not None else EXTENSION)
    model = _validated(ServiceDeclaration, raw, prefix, where, found, label_keys)
    return {} if model is None else model.model_dump(exclude_unset=True)


def _validated(
    kind: type[BaseModel],
    raw: dict[str, Any],
    prefix: Loc,
    where: Locator,
    found: list[Problem],
    label_keys: set[str] | None = None,
) -> Any:
    try:
        return kind.model_validate(raw)
    except ValidationError as exc:
        for error in exc.errors():
            loc = document_loc(raw, error["loc"])
            if label_keys is None:
                found.append(where.problem((*prefix, *loc), error["msg"]))
                continue
            label = _label_of(loc, label_keys)  # a label's key is one field of the file
            found.append(where.problem((*prefix, label), error["msg"], _field(prefix, label)))
        return None


def _field(prefix: Loc, label: str) -> str:
    return ".".join(map(str, (*prefix, label)))


def _label_of(loc: Loc, label_keys: set[str]) -> str:
    """The label an error at ``loc`` of the labels' mapping is about."""
    parts = [str(p) for p in loc if isinstance(p, str)]
    for n in range(len(parts), 0, -1):
        key = LABEL_PREFIX + ".".join(parts[:n])
        if key in label_keys:
            return key
    return LABEL_PREFIX + ".".join(parts)


def _from_labels(
    name: str, labels: Any, where: Locator, found: list[Problem]
) -> tuple[dict[str, Any], set[str]]:
    """The service's ``compose-controller.*`` labels as a nested mapping, and their keys."""
    if isinstance(labels, list):  # the list form, in case a loader did not normalise it
        labels = dict(str(item).partition("=")[::2] for item in labels)
    if not isinstance(labels, Mapping):
        return {}, set()
    settings: dict[str, Any] = {}
    keys: set[str] = set()
    for key, value in sorted(labels.items()):
        if not str(key).startswith(LABEL_PREFIX):
            continue
        keys.add(key)
        path = str(key)[len(LABEL_PREFIX) :].split(".")
        loc: Loc = ("services", name, "labels", key)
        if not all(path):
            found.append(where.problem(loc, "an empty part in its name", _field(loc[:3], key)))
            continue
        node, clash = settings, False
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                clash = True
                break
            node = child
        field = _field(loc[:3], key)
        if clash or isinstance(node.get(path[-1]), dict):
            found.append(where.problem(loc, "other labels set it as a value and a mapping", field))
            continue
        text = "" if value is None else str(value)
        if len(path) == 1 and path[0] in LIST_LABELS:
            node[path[0]] = [item.strip() for item in text.split(",") if item.strip()]
        else:
            node[path[-1]] = text
    return settings, keys
