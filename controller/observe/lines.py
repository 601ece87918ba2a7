"""Bytes off a log stream to clean, bounded lines.

Cleaning never raises: invalid UTF-8 is replaced, NUL bytes and ANSI colour codes go, and a
line longer than ``MAX_LINE_BYTES`` is cut: the rest of it is dropped as it arrives, never
held, however long the line.
"""

from __future__ import annotations

import calendar
import re
import time

MAX_LINE_BYTES = 16 * 1024

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")


def clean(raw: bytes) -> str:
    """A log line as text: cut to MAX_LINE_BYTES, decoded leniently, no NUL, no ANSI."""
    cut = len(raw) > MAX_LINE_BYTES
    if cut:
        raw = raw[:MAX_LINE_BYTES]
    text = raw.decode("utf-8", "replace").replace("\x00", "")
    if "\x1b" in text:
        text = _ANSI.sub("", text)
    text = text.rstrip("\r\n")
    return text + " [line cut]" if cut else text


class LineSplitter:
    """Bytes in, complete lines out; a line never grows past ``limit`` bytes in memory."""

    def __init__(self, limit: int = MAX_LINE_BYTES) -> None:
        self._limit = limit
        self._buffer = bytearray()
        self._discarding = False

    def feed(self, chunk: bytes) -> list[bytes]:
        lines: list[bytes] = []
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            if end < 0:
                self._keep(chunk[start:])
                return lines
            self._keep(chunk[start:end])  # nothing more is kept of a line already cut
            lines.append(bytes(self._buffer))
            self._buffer.clear()
            self._discarding = False
            start = end + 1

    def _keep(self, piece: bytes) -> None:
        if self._discarding:
            return
        room = self._limit + 1 - len(self._buffer)  # one byte more marks the line as cut
        self._buffer += piece[:room]
        if len(piece) > room:
            self._discarding = True

    def finish(self) -> list[bytes]:
        """What is left when the stream ends (a last line without a newline)."""
        rest = bytes(self._buffer) if self._buffer else b""
        self._buffer.clear()
        self._discarding = False
        return [rest] if rest else []


_EPOCH_CACHE: dict[str, int] = {}


def parse_timestamp(text: bytes) -> int | None:
    """Nanoseconds since the epoch of an RFC 3339 UTC timestamp as Docker prints it."""
    s = text.decode("ascii", "replace")
    if len(s) < 20 or s[10] != "T" or not s.endswith("Z"):
        return None
    second = s[:19]
    base = _EPOCH_CACHE.get(second)
    if base is None:
        try:
            base = calendar.timegm(time.strptime(second, "%Y-%m-%dT%H:%M:%S"))
        except ValueError:
            return None
        if len(_EPOCH_CACHE) > 4096:
            _EPOCH_CACHE.clear()
        _EPOCH_CACHE[second] = base
    fraction = s[20:-1] if s[19] == "." else ""
    if fraction and not fraction.isdigit():
        return None
    return base * 1_000_000_000 + int((fraction + "000000000")[:9] or 0)
