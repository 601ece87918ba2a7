"""Every pattern at once over line-aligned buffers.

Hyperscan (Vectorscan) compiles the whole library into one automaton and scans a buffer
of many lines in one call, reporting (pattern, end offset) pairs; an end offset maps back
to its line because no pattern crosses a line break (``library`` enforces it). Only lines
that hit are then looked at again with Python ``re`` (for the matched span and named
captures). A pattern Hyperscan refuses (a user's) is matched with ``re`` line by line; the
rest keep the fast path.

The same database can carry ``extras``: expressions a caller wants to know about in the
same scan (the detector's "this line starts or continues a multi-line record" and "this
line may look like an error"), so one scan of a whole read answers every question and
Python only touches the lines something hit (``scan_block``).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path
from typing import Any

from controller.detect.library import compile_python, to_ere
from controller.model import PatternDef

hyperscan: Any
UNAVAILABLE = ""  # why Hyperscan could not be loaded ("" when it was)
try:  # Hyperscan is a dependency; without it (an unusual platform) everything uses `re`
    import hyperscan
except ImportError as exc:  # pragma: no cover - exercised only where it cannot load
    hyperscan = None  # its wheel needs the C++ runtime (libstdc++.so.6), which apt brings
    UNAVAILABLE = str(exc)
_HS_FLAGS = hyperscan.HS_FLAG_CASELESS | hyperscan.HS_FLAG_MULTILINE if hyperscan else 0

CHUNK_BYTES = 8 << 20


@dataclass(frozen=True, slots=True)
class Hit:
    line: int  # index of the line in the scanned sequence (or file, 0-based)
    pattern: int  # index into ``Matcher.patterns``


@dataclass(frozen=True, slots=True)
class Extra:
    """An expression scanned along with the patterns (case-sensitive unless ``caseless``).

    It must keep to the library's rules (within one line); its hits carry the id
    ``len(patterns) + its index``.
    """

    regex: str
    caseless: bool = False


@dataclass(frozen=True, slots=True)
class _Built:
    db: Any  # the Hyperscan database (None: everything through ``re``)
    fallback: tuple[int, ...]  # the expressions Hyperscan refused
    block_regexes: dict[int, re.Pattern[str]]  # those, for whole blocks


class Matcher:
    """Compiled where the caller says: inline, or by an ``executor`` (Hyperscan lets go
    of the GIL while it compiles, so a start goes on meanwhile); the first scan waits for
    it, and raises what the compile raised."""

    def __init__(
        self,
        patterns: Sequence[PatternDef],
        extras: Sequence[Extra] = (),
        executor: Executor | None = None,
    ) -> None:
        self.patterns = tuple(patterns)
        self.extras = tuple(extras)
        self.regexes = tuple(compile_python(p.regex) for p in self.patterns)
        expressions = [(p.regex, True) for p in self.patterns]
        expressions += [(e.regex, e.caseless) for e in self.extras]
        if executor is not None:
            self._future = executor.submit(_build, expressions)
        else:
            self._future = Future()
            self._future.set_result(_build(expressions))

    @property
    def _built(self) -> _Built:
        return self._future.result()

    @property
    def _db(self) -> Any:
        return self._built.db

    @property
    def fallback(self) -> tuple[int, ...]:
        """The expressions Hyperscan refused (matched with ``re``)."""
        return self._built.fallback

    @property
    def _block_regexes(self) -> dict[int, re.Pattern[str]]:
        return self._built.block_regexes

    @property
    def engine(self) -> str:
        if self._db is None:
            return "re"
        return "hyperscan" if not self.fallback else "hyperscan+re"

    # --- lines --------------------------------------------------------------------------

    def scan_lines(self, lines: Sequence[str]) -> list[Hit]:
        """Every (line, pattern) that matches, in line order then pattern order."""
        if not lines:
            return []
        found: set[tuple[int, int]] = set()
        count = len(self.patterns)
        if self._db is not None:
            data = "\n".join(lines).encode("utf-8", "surrogateescape")
            starts = _line_starts(lines)
            for pattern, end in self._scan(data):
                if pattern < count:
                    found.add((_line_of(starts, end), pattern))
        for index in self.fallback:
            if index < count:
                regex = self.regexes[index]
                found.update((n, index) for n, line in enumerate(lines) if regex.search(line))
        return [Hit(line, pattern) for line, pattern in sorted(found)]

    def scan_block(self, data: bytes) -> list[tuple[int, int, int]]:
        """Every (line, id, line's start offset) that matches in ``data`` (UTF-8 lines, each
        ended by a newline), patterns and extras alike, in line order then id order.

        One scan for the whole buffer; lines are counted between hits, never one by one.
        """
        ends: list[tuple[int, int]] = []
        if self._db is not None:
            ends = [(end, ident) for ident, end in self._scan(data)]
        found: set[tuple[int, int, int]] = set()
        line = position = 0
        for end, ident in sorted(ends):
            last = end - 1  # the match's last byte: never a newline, so on its own line
            if last > position:
                line += data.count(b"\n", position, last)
                position = last
            found.add((line, ident, data.rfind(b"\n", 0, last) + 1))
        if self._block_regexes:
            found.update(_scan_text(self._block_regexes, data))
        return sorted(found)

    def search(self, pattern: int, line: str) -> re.Match[str] | None:
        """The ``re`` match of one pattern in one line (for its span and captures)."""
        return self.regexes[pattern].search(line)

    # --- files (the benchmark path: whole buffers, no per-line Python work) ------------

    def matching_lines(self, path: Path) -> list[int]:
        """0-based numbers of the lines of ``path`` that any pattern matches."""
        hits: set[int] = set()
        base_line = 0
        for chunk in _chunks(path):
            if self._db is not None:
                counted_to, lineno = 0, base_line
                for _pattern, end in self._scan(chunk):
                    start = chunk.rfind(b"\n", 0, max(end - 1, 0)) + 1 if end else 0
                    if start > counted_to:
                        lineno += chunk.count(b"\n", counted_to, start)
                        counted_to = start
                    hits.add(lineno)
            refused = [i for i in self.fallback if i < len(self.patterns)]
            if refused:
                for n, line in enumerate(chunk.decode("utf-8", "replace").split("\n")):
                    if any(self.regexes[i].search(line) for i in refused):
                        hits.add(base_line + n)
            base_line += chunk.count(b"\n")
        return sorted(hits)

    def export_ere(self) -> list[str]:
        """The patterns as ``grep -E`` lines (the benchmark's baseline uses them)."""
        return [to_ere(p.regex) for p in self.patterns]

    def _scan(self, data: bytes) -> list[tuple[int, int]]:
        matches: list[tuple[int, int]] = []

        def on_match(pattern: int, _start: int, end: int, _flags: int, _ctx: object) -> None:
            matches.append((pattern, end))

        self._db.scan(data, match_event_handler=on_match)
        return matches


def _build(expressions: Sequence[tuple[str, bool]]) -> _Built:
    db: Any = None
    if hyperscan is not None and expressions:
        db, fallback = _compile(expressions)
    else:
        fallback = tuple(range(len(expressions)))
    # the refused ones, for whole blocks: ``re`` over many lines at once
    block_regexes = {
        i: re.compile(regex, re.MULTILINE | (re.IGNORECASE if caseless else 0))
        for i, (regex, caseless) in enumerate(expressions)
        if i in fallback
    }
    return _Built(db, fallback, block_regexes)


def _compile(expressions: Sequence[tuple[str, bool]]) -> tuple[Any, tuple[int, ...]]:
    """One Hyperscan database of every expression it accepts (regex, caseless); the others
    fall back to ``re``. All at once first (the library always compiles: one compile, not
    one per expression); only when Hyperscan refuses the whole is each one tried alone."""
    flags = [
        _HS_FLAGS if caseless else hyperscan.HS_FLAG_MULTILINE for _regex, caseless in expressions
    ]
    everything = list(range(len(expressions)))
    try:
        return _database(expressions, everything, flags), ()
    except hyperscan.error:
        pass
    accepted: list[int] = []
    refused: list[int] = []
    for index in everything:
        try:
            _database(expressions, [index], flags)
        except hyperscan.error:
            refused.append(index)
        else:
            accepted.append(index)
    if not accepted:
        return None, tuple(refused)
    return _database(expressions, accepted, flags), tuple(refused)


def _database(
    expressions: Sequence[tuple[str, bool]], chosen: Sequence[int], flags: Sequence[int]
) -> Any:
    """The block-mode database of the ``chosen`` expressions (ids: their indexes)."""
    db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    db.compile(
        expressions=[expressions[i][0].encode() for i in chosen],
        ids=list(chosen),
        elements=len(chosen),
        flags=[flags[i] for i in chosen],
    )
    return db


def _scan_text(regexes: dict[int, re.Pattern[str]], data: bytes) -> Iterator[tuple[int, int, int]]:
    """(line, id, line's start offset in bytes) of each ``re`` match in a block."""
    text = data.decode("utf-8")
    lines = text.split("\n")
    char_starts = list(accumulate((len(line) + 1 for line in lines), initial=0))
    byte_starts: list[int] = []
    for ident, regex in regexes.items():
        for match in regex.finditer(text):
            if not byte_starts:
                byte_starts = _line_starts(lines)
            line = bisect_right(char_starts, max(match.end() - 1, 0)) - 1
            yield line, ident, byte_starts[line]


def _line_starts(lines: Sequence[str]) -> list[int]:
    starts, offset = [], 0
    for line in lines:
        starts.append(offset)
        offset += len(line.encode("utf-8", "surrogateescape")) + 1
    return starts


def _line_of(starts: list[int], end: int) -> int:
    """The line in which a match ending at byte ``end`` lies (it ends after the line start)."""
    return max(0, bisect_right(starts, max(end - 1, 0)) - 1)


def _chunks(path: Path) -> Iterator[bytes]:
    """The file in pieces of about CHUNK_BYTES that end at a line break (or the end)."""
    with path.open("rb") as handle:
        rest = b""
        while True:
            block = handle.read(CHUNK_BYTES)
            if not block:
                if rest:
                    yield rest
                return
            data = rest + block
            cut = data.rfind(b"\n")
            if cut < 0:
                rest = data
                continue
            yield data[: cut + 1]
            rest = data[cut + 1 :]
