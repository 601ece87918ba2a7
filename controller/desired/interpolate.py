"""Compose's variable interpolation, exactly, over every string of a desired state.

The syntax is Compose's (its interpolation reference and compose-go's template tests):

- ``$VAR`` and ``${VAR}``; ``$$`` is a literal ``$``; a ``$`` that starts no valid
  reference (``^REGEX$``, ``a $ sign``, ``$}``) is kept as written;
- ``${VAR:-default}`` (unset or empty), ``${VAR-default}`` (unset);
- ``${VAR:?error}`` (unset or empty is an error), ``${VAR?error}`` (unset is an error);
- ``${VAR:+alternative}`` (set and non-empty), ``${VAR+alternative}`` (set);
- nesting in the default, error and alternative parts (``${A:-${B:-x}}``), evaluated
  only when that part is used; braces inside them balance (``${A:-{"json":1}}``).

One deliberate difference: Compose replaces an unset ``${VAR}`` that has no default with
an empty string and a warning; here it is an error naming the field, because a desired
state that silently probes ``http://127.0.0.1:/health`` can never pass. ``${`` that does
not close, or ``${ name}``, is an error as in Compose.

Where values come from, with Compose's own precedence (so the desired state sees the
values the compose model was resolved with): the desired state's ``environment``, then
the controller's process environment, then the env files (``env_files``, or the ``.env``
beside the first compose file when none is declared; a later file wins over an earlier).

``{capture}`` placeholders in a runbook's argv are not variables: they are checked here
against the pattern's named captures and filled at run time after validation.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

Lookup = Callable[[str], str | None]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CAPTURE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_OPERATORS = (":-", ":?", ":+", "-", "?", "+")


class InterpolationError(ValueError):
    """A template that cannot be filled; ``str()`` says why in one line."""


MAX_NESTING = 32  # ${A:-${B:-...}} this deep at most: deeper is an error, not a crash


def substitute(template: str, lookup: Lookup, depth: int = 0) -> str:
    """``template`` with every variable reference filled from ``lookup``."""
    if "$" not in template:
        return template
    if depth > MAX_NESTING:
        raise InterpolationError(f"variables nested more than {MAX_NESTING} deep")
    out: list[str] = []
    i, end = 0, len(template)
    while i < end:
        dollar = template.find("$", i)
        if dollar < 0:
            out.append(template[i:])
            break
        out.append(template[i:dollar])
        after = template[dollar + 1 : dollar + 2]
        if after == "$":
            out.append("$")
            i = dollar + 2
        elif after == "{":
            close = _closing_brace(template, dollar + 2)
            if close < 0:
                raise InterpolationError(f"invalid interpolation: {template!r}: ${{ is not closed")
            out.append(_braced(template[dollar + 2 : close], lookup, template, depth))
            i = close + 1
        elif (name := _NAME.match(template, dollar + 1)) is not None:
            out.append(_required(name.group(), lookup))
            i = name.end()
        else:  # a lone `$` is kept, as Compose keeps it
            out.append("$")
            i = dollar + 1
    return "".join(out)


def _closing_brace(text: str, start: int) -> int:
    depth = 1
    for index in range(start, len(text)):
        char = text[index]
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return index
    return -1


def _braced(inner: str, lookup: Lookup, template: str, depth: int) -> str:
    name_match = _NAME.match(inner)
    if name_match is None:
        raise InterpolationError(f"invalid interpolation: {template!r}: ${{{inner}}}")
    name, rest = name_match.group(), inner[name_match.end() :]
    if not rest:
        return _required(name, lookup)
    operator = next((op for op in _OPERATORS if rest.startswith(op)), None)
    if operator is None:
        raise InterpolationError(f"invalid interpolation: {template!r}: ${{{inner}}}")
    argument = rest[len(operator) :]
    value = lookup(name)
    if operator == ":-":
        return value if value else substitute(argument, lookup, depth + 1)
    if operator == "-":
        return value if value is not None else substitute(argument, lookup, depth + 1)
    if operator == ":+":
        return substitute(argument, lookup, depth + 1) if value else ""
    if operator == "+":
        return substitute(argument, lookup, depth + 1) if value is not None else ""
    present = bool(value) if operator == ":?" else value is not None
    if present:
        return value or ""
    reason = substitute(argument, lookup, depth + 1)
    raise InterpolationError(
        f"required variable {name} is missing a value" + (f": {reason}" if reason else "")
    )


def _required(name: str, lookup: Lookup) -> str:
    value = lookup(name)
    if value is None:
        raise InterpolationError(f"${{{name}}} is not set (give it a value or a default)")
    return value


def chain(*sources: Mapping[str, str]) -> Lookup:
    """A lookup that asks each source in turn: the first that has the name wins."""

    def lookup(name: str) -> str | None:
        for source in sources:
            if name in source:
                return source[name]
        return None

    return lookup


# --- runbook captures -----------------------------------------------------------------------


def unknown_captures(text: str, groups: set[str]) -> list[str]:
    """``{capture}`` placeholders in ``text`` that the pattern does not capture."""
    return [name for name in _CAPTURE.findall(text) if name not in groups]
