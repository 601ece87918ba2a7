"""Reading a value out of a line: where a quoted value ends, where a bare one stops.

Shared by the redaction rules (``redact``, ``redact_urls``, ``redact_argv``): each rule
finds where a secret begins, and these say where it ends. Pure, no state but a cache of
compiled stop sets.
"""

from __future__ import annotations

import re

Span = tuple[int, int]


def quoted(text: str, start: int) -> Span | None:
    """The inside of a quoted value starting at ``start`` (``"..."``, ``'...'``, or with
    escaped quotes ``\\"...\\"`` as JSON inside JSON has them); an unclosed quote runs to
    the end of the line. None when no quote starts there."""
    escaped = text.startswith("\\", start)
    opening = start + 1 if escaped else start
    if opening >= len(text) or text[opening] not in "\"'`":
        return None
    quote = text[opening]
    at = opening + 1
    skip_next = False
    while at < len(text) and text[at] != "\n":
        # one character of the value, and how many characters of text it takes: inside
        # an escaped string, \\ is a backslash and \" a quote of the inner string
        char, width = text[at], 1
        if escaped and char == "\\" and at + 1 < len(text) and text[at + 1] in ("\\", quote):
            char, width = text[at + 1], 2
        elif escaped and char == quote:
            char = ""  # a bare quote inside an escaped string is just a character
        if skip_next:
            skip_next = False
        elif char == "\\":
            skip_next = True
        elif char == quote:
            return opening + 1, at
        at += width
    return opening + 1, at


_STOPS: dict[str, re.Pattern[str]] = {}


def until(text: str, start: int, stops: str) -> int:
    """The index of the first of ``stops`` at or after ``start`` (or the text's end)."""
    stop = _STOPS.get(stops)
    if stop is None:
        stop = _STOPS[stops] = re.compile("[" + re.escape(stops) + "]")
    found = stop.search(text, start)
    return found.start() if found else len(text)


def line_end(text: str, start: int) -> int:
    """The end of the line ``start`` is on (before its ``\\r\\n`` or ``\\n``)."""
    end = text.find("\n", start)
    end = len(text) if end < 0 else end
    return end - 1 if end > start and text[end - 1] == "\r" else end
