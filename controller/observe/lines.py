"""Bytes off a log stream to clean, bounded lines, a whole read at a time.

Cleaning never raises: invalid UTF-8 is replaced, NUL bytes and ANSI colour codes go, and a
line longer than ``MAX_LINE_BYTES`` is cut: the rest of it is dropped as it arrives, never
held, however long the line.

A busy log arrives in reads of up to 64 KiB holding hundreds of lines. Handling each line in
Python cost more than matching them, so this module works on whole reads: one split, one
check that every line starts with Docker's fixed-width timestamp, one join, and cleaning
done once over the joined bytes (``clean_block``), which gives the same text as ``clean``
line by line. Only unusual input (a line without a timestamp, a line over the limit) takes
the line-by-line path.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from controller.model import engine_ns

MAX_LINE_BYTES = 16 * 1024
STAMP_ROOM = 64  # bytes a raw line may carry before its text: the engine's timestamp
CUT_MARK = " [line cut]"

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
# the same codes in bytes; an OSC sequence never runs past the end of its line
_ANSI_BYTES = re.compile(
    rb"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b\n]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]"
)
_CR_AT_END = re.compile(rb"\r+(?=\n)")

# Docker's RFC3339NanoFixed in UTC and the space after it, digits shown as 0
_STAMP_SHAPE = b"0000-00-00T00:00:00.000000000Z "
STAMP_WIDTH = len(_STAMP_SHAPE)
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")


def clean(raw: bytes) -> str:
    """A log line as text: cut to MAX_LINE_BYTES, decoded leniently, no NUL, no ANSI."""
    cut = len(raw) > MAX_LINE_BYTES
    if cut:
        raw = raw[:MAX_LINE_BYTES]
    text = raw.decode("utf-8", "replace").replace("\x00", "")
    if "\x1b" in text:
        text = _ANSI.sub("", text)
    text = text.rstrip("\r\n")
    return text + CUT_MARK if cut else text


def clean_block(texts: list[bytes], longest: int | None = None) -> bytes | None:
    """Lines (none over MAX_LINE_BYTES) cleaned as ``clean`` does, joined, each ended by a
    newline, in valid UTF-8; None when a line is over the limit (use ``clean`` on each).
    ``longest`` is the length of the longest line when the caller knows it.

    Equal to ``"".join(clean(t) + "\\n" for t in texts).encode()``: a newline ends any
    invalid UTF-8 sequence, and no ANSI code spans one, so doing it once is the same.
    """
    if not texts:
        return b""
    if (max(map(len, texts)) if longest is None else longest) > MAX_LINE_BYTES:
        return None
    data = b"\n".join(texts) + b"\n"
    if not data.isascii():
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            data = data.decode("utf-8", "replace").encode("utf-8")
    if b"\x00" in data:
        data = data.replace(b"\x00", b"")
    if b"\x1b" in data:
        data = _ANSI_BYTES.sub(b"", data)
    if b"\r" in data:
        data = _CR_AT_END.sub(b"", data)
    return data


def stamped(stamps: list[bytes]) -> bool:
    """True when each of ``stamps`` (the first ``STAMP_WIDTH`` bytes of each line) is a
    timestamp and a space as the engine writes them (UTC, nine decimals).

    With every digit made 0, a stamp reads ``_STAMP_SHAPE``: one pass over them all.
    """
    return b"".join(stamps).translate(_DIGITS_TO_ZERO) == _STAMP_SHAPE * len(stamps)


class LineSplitter:
    """Bytes in, complete lines out; a line never grows past ``limit`` bytes in memory.

    A line longer than ``limit`` comes out as its first ``limit + 1`` bytes (one more than
    allowed marks it as cut); the rest of it is dropped as it arrives.
    """

    def __init__(self, limit: int = MAX_LINE_BYTES + STAMP_ROOM) -> None:
        self._limit = limit
        self._buffer = bytearray()
        self._discarding = False

    def feed(self, chunk: bytes) -> list[bytes]:
        first = chunk.find(b"\n")
        if first < 0:
            self._keep(chunk)
            return []
        self._keep(chunk[:first])  # the end of the line carried over (nothing, if cut)
        head = bytes(self._buffer)
        self._buffer.clear()
        self._discarding = False
        last = chunk.rfind(b"\n")
        lines = [head, *chunk[first + 1 : last].split(b"\n")] if last > first else [head]
        self._keep(chunk[last + 1 :])
        if max(map(len, lines)) > self._limit:
            room = self._limit + 1
            lines = [line[:room] for line in lines]
        return lines

    @property
    def idle(self) -> bool:
        """True at a line's start (nothing of a line held)."""
        return not self._buffer

    def _keep(self, piece: bytes) -> None:
        if self._discarding or not piece:
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


def split_lines(chunks: Iterable[bytes]) -> Iterator[list[bytes]]:
    """The complete lines of a stream of bytes, a chunk's worth at a time (a ``LogStream``
    from a stream of raw bytes); the last line, without a newline, when the stream ends."""
    splitter = LineSplitter()
    for chunk in chunks:
        lines = splitter.feed(chunk)
        if lines:
            yield lines
    rest = splitter.finish()
    if rest:
        yield rest


def parse_timestamp(text: bytes) -> int | None:
    """Nanoseconds since the epoch of a log line's time stamp (``model.engine_ns``, the one
    parser of the engine's times)."""
    return engine_ns(text)
