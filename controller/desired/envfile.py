r"""Env files in Compose's dotenv format, read the way Compose (compose-go) reads them.

- lines end at ``\n`` only (``\r\n`` counts as ``\n``); a UTF-8 byte order mark (editors
  on Windows write one) is not part of the first key;
- ``KEY=value``, ``KEY: value`` (YAML style) and ``export KEY=value``; a key holds
  letters, digits, ``_ . - [ ]``; ``KEY`` alone takes its value from the environment
  (nothing to record here); blank lines and lines starting with ``#`` are skipped;
- an unquoted value ends at the line's end or at `` #`` (a blank, then ``#``), and its
  trailing blanks are dropped: ``PORT=8080   # web`` is ``8080``;
- single quotes are literal but for ``\'`` (a quote); double quotes take the escapes
  ``\a \b \f \n \r \t \v \" \\`` and ``\0NNN`` (three octal digits), ``\$`` is a literal
  ``$``, any other backslash is kept (``"C:\Users"``), then interpolation; either quote
  may span lines (a PEM key, a JSON blob); what follows the closing quote on its line is
  the next statement (or a ``#`` comment).

Unquoted and double-quoted values are interpolated with the lookup given and then the
variables defined above them. A bad statement is reported with its line number and the
statements after it are still read, so one run lists every problem of a file
(``EnvFile.errors``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from controller.desired.interpolate import InterpolationError, Lookup, substitute

_EXPORT = re.compile(r"export[ \t]+")
_KEY = re.compile(r"[\w.\-\[\]]+")  # \w: letters and digits of any script, and _
_ESCAPE = re.compile(r"\\(?:([abfnrtv\"\\$])|0([0-3][0-7]{2}))")
_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_ESCAPES |= {'"': '"', "\\": "\\", "$": "$$"}  # `\$`: `$$` is interpolation's literal $


@dataclass(slots=True)
class EnvFile:
    values: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)  # "line N: problem", in file order


class _BadStatement(ValueError):
    def __init__(self, message: str, resume: int) -> None:
        super().__init__(message)
        self.resume = resume  # the index of the line to read next


def read_env_file(path: Path, lookup: Lookup) -> EnvFile:
    """The variables of the env file at ``path`` and the problems of its bad lines.

    Raises ``OSError`` or ``UnicodeDecodeError`` when the file cannot be read as text.
    """
    result = EnvFile()

    def known(name: str) -> str | None:
        value = lookup(name)
        return value if value is not None else result.values.get(name)

    lines = path.read_text(encoding="utf-8-sig").replace("\r\n", "\n").split("\n")
    i, number, tail = 0, 0, ""
    while i < len(lines) or tail:
        if tail:  # what followed a closing quote: the next statement, on the same line
            line, tail = tail, ""
        else:
            number, line = i + 1, lines[i].lstrip()
            i += 1
        if not line or line.startswith("#"):
            continue
        try:
            key, value, i, tail = _statement(line, lines, i, known)
        except _BadStatement as exc:
            result.errors.append(f"line {number}: {exc}")
            i = exc.resume
            continue
        if value is not None:
            result.values[key] = value
    return result


def _statement(
    line: str, lines: list[str], i: int, lookup: Lookup
) -> tuple[str, str | None, int, str]:
    """(key, value or None for `KEY` alone, the index of the next line to read, what
    followed a closing quote on its line)."""
    if export := _EXPORT.match(line):
        line = line[export.end() :]
    cut = min((p for p in (line.find("="), line.find(":")) if p >= 0), default=-1)
    key = (line if cut < 0 else line[:cut]).rstrip()
    if not _KEY.fullmatch(key):
        raise _BadStatement("not a KEY=value line", i)
    if cut < 0:
        return key, None, i, ""  # `KEY` alone: Compose takes it from the environment
    rest = line[cut + 1 :].lstrip()
    try:
        if rest[:1] == "'":
            body, i, tail = _quoted(rest, lines, i)
            return key, body.replace("\\'", "'"), i, tail
        if rest[:1] == '"':
            body, i, tail = _quoted(rest, lines, i)
            return key, substitute(_ESCAPE.sub(_unescape, body), lookup), i, tail
        comment = rest.find(" #")
        value = (rest if comment < 0 else rest[:comment]).rstrip()
        return key, substitute(value, lookup), i, ""
    except InterpolationError as exc:
        raise _BadStatement(str(exc), i) from None


def _quoted(rest: str, lines: list[str], i: int) -> tuple[str, int, str]:
    """The text between ``rest``'s opening quote and its closing one, reading on into the
    next lines while it is not closed; the index of the line after the value; and what
    follows the closing quote on its line."""
    quote, body = rest[0], rest[1:]
    start = i
    end = _closing(body, quote)
    while end < 0 and i < len(lines):
        body += "\n" + lines[i]
        i += 1
        end = _closing(body, quote)
    if end < 0:  # nothing closes it: report it, and read on from the line after it
        kind = "single" if quote == "'" else "double"
        raise _BadStatement(f"the {kind} quote opened here is never closed", start)
    return body[:end], i, body[end + 1 :].strip()


def _closing(body: str, quote: str) -> int:
    r"""Index of the quote that closes ``body`` (-1 if none). In double quotes a backslash
    escapes the character after it (``"C:\\"`` ends after the pair); in single quotes
    only ``\'`` is not a closing quote."""
    j = 0
    while j < len(body):
        char = body[j]
        if char == "\\" and (quote == '"' or body[j + 1 : j + 2] == "'"):
            j += 2
            continue
        if char == quote:
            return j
        j += 1
    return -1


def _unescape(match: re.Match[str]) -> str:
    if match.group(1) is not None:
        return _ESCAPES[match.group(1)]
    return chr(int(match.group(2), 8))
