"""Every pattern at once over line-aligned buffers.

Hyperscan (Vectorscan) compiles the whole library into one automaton and scans a buffer
of many lines in one call, reporting (pattern, end offset) pairs; an end offset maps back
to its line because no pattern crosses a line break (``library`` enforces it). Only lines
that hit are then looked at again with Python ``re`` (for the matched span and named
captures). A pattern Hyperscan refuses (a user's) is matched with ``re`` line by line; the
rest keep the fast path.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller.detect.library import compile_python, to_ere
from controller.model import PatternDef

hyperscan: Any
try:  # Hyperscan is a dependency; without it (an unusual platform) everything uses `re`
    import hyperscan
except ImportError:  # pragma: no cover - exercised only where the wheel is missing
    hyperscan = None
_HS_FLAGS = hyperscan.HS_FLAG_CASELESS | hyperscan.HS_FLAG_MULTILINE if hyperscan else 0

CHUNK_BYTES = 8 << 20


@dataclass(frozen=True, slots=True)
class Hit:
    line: int  # index of the line in the scanned sequence (or file, 0-based)
    pattern: int  # index into ``Matcher.patterns``


class Matcher:
    def __init__(self, patterns: Sequence[PatternDef]) -> None:
        self.patterns = tuple(patterns)
        self.regexes = tuple(compile_python(p.regex) for p in self.patterns)
        self.fallback: tuple[int, ...] = ()
        self._db: Any = None
        if hyperscan is not None and self.patterns:
            self._db, self.fallback = _compile(self.patterns)
        elif self.patterns:
            self.fallback = tuple(range(len(self.patterns)))

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
        if self._db is not None:
            data = "\n".join(lines).encode("utf-8", "surrogateescape")
            starts = _line_starts(lines)
            for pattern, end in self._scan(data):
                found.add((_line_of(starts, end), pattern))
        for index in self.fallback:
            regex = self.regexes[index]
            found.update((n, index) for n, line in enumerate(lines) if regex.search(line))
        return [Hit(line, pattern) for line, pattern in sorted(found)]

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
            if self.fallback:
                for n, line in enumerate(chunk.decode("utf-8", "replace").split("\n")):
                    if any(self.regexes[i].search(line) for i in self.fallback):
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


def _compile(patterns: Sequence[PatternDef]) -> tuple[Any, tuple[int, ...]]:
    """One Hyperscan database of every pattern it accepts; the others fall back to ``re``."""
    accepted: list[int] = []
    refused: list[int] = []
    for index, pattern in enumerate(patterns):
        probe = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        try:
            probe.compile(
                expressions=[pattern.regex.encode()], ids=[index], elements=1, flags=[_HS_FLAGS]
            )
        except hyperscan.error:
            refused.append(index)
        else:
            accepted.append(index)
    if not accepted:
        return None, tuple(refused)
    db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    db.compile(
        expressions=[patterns[i].regex.encode() for i in accepted],
        ids=accepted,
        elements=len(accepted),
        flags=[_HS_FLAGS] * len(accepted),
    )
    return db, tuple(refused)


def _line_starts(lines: Sequence[str]) -> list[int]:
    starts, offset = [], 0
    for line in lines:
        starts.append(offset)
        offset += len(line.encode("utf-8", "surrogateescape")) + 1
    return starts


def _line_of(starts: list[int], end: int) -> int:
    """The line in which a match ending at byte ``end`` lies (it ends after the line start)."""
    from bisect import bisect_right

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
