"""Env files in Compose's dotenv format, read the way Compose reads them.

- ``KEY=value`` and ``export KEY=value``; a key may hold ``.`` and ``-`` (``app.port``);
  ``KEY`` alone takes its value from the environment (nothing to record here);
- ``#`` starts a comment at the start of a line, or after a blank in an unquoted value
  (``D=value # note``) and after a closing quote (``E='x' # note``);
- single quotes are literal; double quotes take ``\\n``, ``\\t``, ``\\r``, ``\\"`` and
  ``\\\\`` escapes and interpolation; either may span lines (a PEM key, a JSON blob);
- a UTF-8 byte order mark (editors on Windows write one) is not part of the first key.

Values are interpolated with the lookup given and then the variables defined above them.
A bad line is reported with its number and the lines after it are still read, so one
run lists every problem of a file (``EnvFile.errors``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from controller.desired.interpolate import InterpolationError, Lookup, substitute

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r"}
_COMMENT = re.compile(r"\s#")


@dataclass(slots=True)
class EnvFile:
    values: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)  # "line N: problem", in file order


def read_env_file(path: Path, lookup: Lookup) -> EnvFile:
    """The variables of the env file at ``path`` and the problems of its bad lines.

    Raises ``OSError`` or ``UnicodeDecodeError`` when the file cannot be read as text.
    """
    result = EnvFile()

    def known(name: str) -> str | None:
        value = lookup(name)
        return value if value is not None else result.values.get(name)

    lines = path.read_text(encoding="utf-8-sig").splitlines()
    i = 0
    while i < len(lines):
        number, line = i + 1, lines[i].strip()
        i += 1
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, rest = line.partition("=")
        key = key.strip()
        if not _KEY.fullmatch(key):
            result.errors.append(f"line {number}: not a KEY=value line")
            continue
        if not sep:
            continue  # `KEY` alone: Compose takes it from the environment
        rest = rest.lstrip()
        try:
            if rest[:1] in ("'", '"'):
                body, i = _quoted(rest, lines, i, number)
                value = body if rest[0] == "'" else substitute(_unescape(body), known)
            else:
                comment = _COMMENT.search(rest)
                value = substitute(rest[: comment.start()] if comment else rest, known)
        except (InterpolationError, ValueError) as exc:
            result.errors.append(f"line {number}: {exc}")
            continue
        result.values[key] = value
    return result


def _quoted(rest: str, lines: list[str], i: int, number: int) -> tuple[str, int]:
    """The text between ``rest``'s opening quote and its closing one, reading on into the
    next lines while it is not closed; and the index of the line after the value."""
    quote, body = rest[0], rest[1:]
    end = _closing(body, quote)
    while end < 0 and i < len(lines):
        body += "\n" + lines[i]
        i += 1
        end = _closing(body, quote)
    kind = "single" if quote == "'" else "double"
    if end < 0:
        raise ValueError(f"the {kind} quote opened here is never closed")
    tail = body[end + 1 :].strip()
    if tail and not tail.startswith("#"):
        raise ValueError(f"text after the closing {kind} quote: {tail[:40]!r}")
    return body[:end], i


def _closing(body: str, quote: str) -> int:
    """Index of the quote that closes ``body`` (-1 if none); in double quotes a
    backslash escapes the character after it."""
    if quote == "'":
        return body.find("'")
    j = 0
    while j < len(body):
        if body[j] == "\\":
            j += 2
            continue
        if body[j] == '"':
            return j
        j += 1
    return -1


def _unescape(text: str) -> str:
    return _ESCAPE.sub(lambda m: _ESCAPES.get(m.group(1), m.group(1)), text)
