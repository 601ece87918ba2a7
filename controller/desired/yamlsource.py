"""Read a desired-state file as YAML, defensively, remembering the line of every value.

What a loader that trusts its input gets wrong, and what this one does instead:

- a FIFO, a device or a huge file in place of the file: only a regular file of at most
  ``MAX_BYTES`` is read (a FIFO would block the controller forever);
- a key written twice: an error at the second one (a second ``project:`` must not win
  silently and point the controller at another project's containers);
- deep nesting or an alias bomb: at most ``MAX_DEPTH`` levels and ``MAX_NODES`` values
  (each alias counts every time it is used), never a RecursionError;
- only YAML's safe types; keys are the text written (``on:`` stays ``"on"``).

``lines`` maps the path of every value (``("services", "web", "replicas")``) to the line
its key (or list item) is on, so every error can say ``FILE:LINE: field: problem``.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from controller.desired.errors import DesiredStateError, Loc

MAX_BYTES = 1 << 20  # 1 MiB: far beyond any real desired state
MAX_DEPTH = 32
MAX_NODES = 100_000


@dataclass(frozen=True, slots=True)
class Document:
    """A parsed file: plain data, and the line of each value by its path."""

    source: Path
    data: Any
    lines: Mapping[Loc, int] = field(default_factory=dict)

    def line_of(self, loc: Loc) -> int | None:
        """The line of ``loc``, or of its nearest ancestor that the file spells out."""
        for end in range(len(loc), -1, -1):
            line = self.lines.get(tuple(loc[:end]))
            if line is not None:
                return line
        return None


def read_document(path: Path) -> Document:
    """Parse ``path``; raises ``DesiredStateError`` (with the line where YAML says)."""
    text = _read_text(path)
    try:
        loader = yaml.SafeLoader(text)  # its reader refuses control characters at once
    except yaml.reader.ReaderError as exc:
        refused = f"invalid YAML: {str(exc).splitlines()[0]}"
        at = text.count("\n", 0, exc.position) + 1
        raise DesiredStateError(path, "", refused, line=at) from None
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:
            raise DesiredStateError(path, "", f"nested deeper than {MAX_DEPTH} levels") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            line = mark.line + 1 if mark is not None else None
            raise DesiredStateError(path, "", f"invalid YAML: {problem}", line=line) from None
        if node is None:
            return Document(path, None, {})
        walker = _Walker(path, loader)
        walker.lines[()] = node.start_mark.line + 1
        data = walker.value(node, (), 0)
        return Document(path, data, walker.lines)
    finally:
        loader.dispose()


def _read_text(path: Path) -> str:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise DesiredStateError(path, "", "no such file") from None
    except OSError as exc:
        raise DesiredStateError(path, "", f"cannot read: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise DesiredStateError(path, "", "not a regular file")
        if info.st_size > MAX_BYTES:
            raise DesiredStateError(path, "", f"larger than {MAX_BYTES // 1024} KiB")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            raw = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise DesiredStateError(path, "", f"cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(raw) > MAX_BYTES:
        raise DesiredStateError(path, "", f"larger than {MAX_BYTES // 1024} KiB")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DesiredStateError(path, "", f"not UTF-8 (byte {exc.start})") from None


class _Walker:
    """Nodes to plain data, counting depth and values, recording lines."""

    def __init__(self, path: Path, loader: yaml.SafeLoader) -> None:
        self._path = path
        self._loader = loader
        self._nodes = 0
        self.lines: dict[Loc, int] = {}

    def _fail(self, node: yaml.Node, loc: Loc, message: str) -> DesiredStateError:
        where = ".".join(str(p) for p in loc)
        return DesiredStateError(self._path, where, message, line=node.start_mark.line + 1)

    def value(self, node: yaml.Node, loc: Loc, depth: int) -> Any:
        self._nodes += 1
        if self._nodes > MAX_NODES:
            raise self._fail(node, loc, f"more than {MAX_NODES} values (an alias bomb?)")
        if depth > MAX_DEPTH:
            raise self._fail(node, loc, f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, loc, depth)
        if isinstance(node, yaml.SequenceNode):
            items = []
            for i, item in enumerate(node.value):
                self.lines.setdefault((*loc, i), item.start_mark.line + 1)
                items.append(self.value(item, (*loc, i), depth + 1))
            return items
        try:
            return self._loader.construct_object(node, deep=False)
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or "cannot read this value"
            raise self._fail(node, loc, f"invalid YAML: {problem}") from None
        except (ValueError, OverflowError) as exc:  # a timestamp like 0000-0-0T0:00:00
            raise self._fail(node, loc, f"invalid YAML value: {exc}") from None

    def _mapping(self, node: yaml.MappingNode, loc: Loc, depth: int) -> dict[str, Any]:
        seen: dict[str, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                raise self._fail(key_node, loc, "a key must be a plain value")
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise self._fail(
                    key_node, (*loc, key), f"duplicate key (first on line {seen[key]})"
                )
            seen[key] = line
        try:
            self._loader.flatten_mapping(node)  # resolves `<<: *anchor` merges
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or "invalid merge"
            raise self._fail(node, loc, f"invalid YAML: {problem}") from None
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise self._fail(key_node, loc, "a key must be a plain value")
            key = str(key_node.value)
            self.lines[(*loc, key)] = seen.get(key, key_node.start_mark.line + 1)
            out[key] = self.value(value_node, (*loc, key), depth + 1)
        return out
