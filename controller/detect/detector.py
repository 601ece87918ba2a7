"""Records in, findings out: the detection stage of the loop.

Lines are grouped into records per container (``records``), every record of a batch is
matched in one scan (``matcher``), and each record yields at most one finding: its best
pattern, where specific patterns beat generic catch-alls, then higher severity wins, then
the pattern listed first. Records that match nothing but look like errors go to
``discovery``. Everything a finding carries from the log is redacted first. Every such
record is also a ``Sighting`` (``take_sightings``), before any threshold: what the
precursor learner counts.

``feed_block`` takes a whole read of one container's log (``LogBlock``) and gives the same
findings as ``feed`` would line by line: one Hyperscan scan finds the pattern hits, the lines
that may look like errors and the lines that shape multi-line records; lines none of these
hit are one-line records that match nothing, and Python never looks at them.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from concurrent.futures import Executor

from controller.detect.discovery import ERRORISH_HINTS, Discovery, looks_like_error
from controller.detect.fingerprint import fingerprint
from controller.detect.matcher import Extra, Matcher
from controller.detect.names import named_endpoints
from controller.detect.records import STRUCTURAL, Record, RecordAssembler
from controller.detect.redact import MASK, Span, mask, overlaps, redact, secret_spans
from controller.model import (
    LINKED_CATEGORIES,
    Category,
    DetectionSettings,
    Finding,
    FindingKind,
    LogBlock,
    LogLine,
    Severity,
    Sighting,
)

EVIDENCE_CHARS = 4000
LINE_CHARS = 300
UNCLASSIFIED = FindingKind.UNCLASSIFIED


def _captures(match: re.Match[str] | None, secrets: list[Span]) -> dict[str, str]:
    """The pattern's named captures; one that lies in a secret of the line (``secrets``) is
    masked, since captures are kept in the issue as they are (and a masked one fails any
    runbook's capture pattern, so nothing runs with it)."""
    if match is None:
        return {}
    return {
        name: MASK if overlaps(match.span(name), secrets) else value
        for name, value in match.groupdict().items()
        if value is not None
    }


def _redacted(text: str, line: str, secrets: list[Span]) -> str:
    """``redact(text)``, without looking again when ``text`` is ``line``, whose secrets are
    known (most records are that one line)."""
    return mask(line, secrets) if text == line else redact(text)


def _bounded(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 12] + " [...cut]"


class Detector:
    def __init__(self, settings: DetectionSettings, compiler: Executor | None = None) -> None:
        """``compiler``: where the patterns are compiled (``Matcher``; inline without)."""
        self.settings = settings
        self.matcher = Matcher(
            settings.patterns,
            [Extra(regex) for regex in STRUCTURAL]
            + [Extra(regex, caseless) for regex, caseless in ERRORISH_HINTS],
            compiler,
        )
        self._structural = frozenset(
            range(len(settings.patterns), len(settings.patterns) + len(STRUCTURAL))
        )
        self.discovery = (
            Discovery(settings.discovery_min_occurrences) if settings.discovery else None
        )
        self._assemblers: dict[str, RecordAssembler] = {}
        self._last_line_at: dict[str, float] = {}
        self._sightings: list[Sighting] = []

    # --- lines to records ---------------------------------------------------------------

    def feed(self, lines: Iterable[LogLine], now: float) -> list[Finding]:
        """Take new lines; returns the findings of every record they completed."""
        records: list[Record] = []
        for line in lines:
            assembler = self._assemblers.get(line.container)
            if assembler is None:
                assembler = self._assemblers[line.container] = RecordAssembler()
            records.extend(assembler.feed(line))
            self._last_line_at[line.container] = now
        return self.detect(records)

    def feed_block(self, block: LogBlock, now: float) -> list[Finding]:
        """Take a read of one container's log; returns the findings of the records it
        completed (the same as ``feed`` of its lines)."""
        assembler = self._assemblers.get(block.container)
        if assembler is None:
            assembler = self._assemblers[block.container] = RecordAssembler()
        self._last_line_at[block.container] = now
        shaping: dict[int, int] = {}  # line -> its start offset
        hit: dict[int, int] = {}
        for line, ident, start in self.matcher.scan_block(block.text):
            (shaping if ident in self._structural else hit)[line] = start
        return self.detect(_BlockRecords(block, assembler, shaping, hit).records())

    def flush(self, now: float, idle: float = 0.25) -> list[Finding]:
        """Close records whose container printed nothing for ``idle`` seconds."""
        records: list[Record] = []
        for container, assembler in self._assemblers.items():
            if assembler.pending and now - self._last_line_at.get(container, 0.0) >= idle:
                records.extend(assembler.flush())
        return self.detect(records)

    def close(self, container: str) -> list[Finding]:
        """Close the open record of a container whose run ended (read to its end): no line
        can continue it, so it need not wait out the idle flush."""
        assembler = self._assemblers.get(container)
        return self.detect(assembler.flush() if assembler is not None else [])

    def forget(self, containers: Iterable[str]) -> list[Finding]:
        """Close and drop the records of containers that are gone."""
        records: list[Record] = []
        for container in containers:
            assembler = self._assemblers.pop(container, None)
            self._last_line_at.pop(container, None)
            if assembler is not None:
                records.extend(assembler.flush())
        return self.detect(records)

    def containers(self) -> list[str]:
        return list(self._assemblers)

    def quiet_at(self, idle: float) -> float | None:
        """When the first open record may be closed by ``flush`` (its container quiet for
        ``idle`` seconds), on the clock ``feed`` was given; None when no record is open."""
        times = [
            self._last_line_at.get(container, 0.0) + idle
            for container, assembler in self._assemblers.items()
            if assembler.pending
        ]
        return min(times) if times else None

    def take_sightings(self) -> list[Sighting]:
        """Every record that matched a pattern or looked like an error since the last call
        (each one, before any threshold)."""
        taken, self._sightings = self._sightings, []
        return taken

    def pending(self) -> bool:
        """True while a record is still open (waiting for more lines or the idle flush)."""
        return any(a.pending for a in self._assemblers.values())

    # --- records to findings ------------------------------------------------------------

    def detect(self, records: Sequence[Record]) -> list[Finding]:
        if not records:
            return []
        flat: list[str] = []
        owner: list[int] = []
        for index, record in enumerate(records):
            flat.extend(record.lines)
            owner.extend([index] * len(record.lines))
        best: dict[int, tuple[tuple[int, int, int], int, int]] = {}
        for hit in self.matcher.scan_lines(flat):
            record = records[owner[hit.line]]
            pattern = self.matcher.patterns[hit.pattern]
            if self.settings.ignored(record.service, pattern.id):
                continue
            rank = (0 if pattern.generic else 1, pattern.severity.rank, -hit.pattern)
            current = best.get(owner[hit.line])
            if current is None or rank > current[0]:
                best[owner[hit.line]] = (rank, hit.pattern, hit.line)
        findings: list[Finding] = []
        for index, record in enumerate(records):
            if index in best:
                _, pattern_index, line_index = best[index]
                findings.append(self._matched(record, pattern_index, flat[line_index]))
            elif self.discovery is not None:
                found = self._discovered(record)
                if found is not None:
                    findings.append(found)
        return findings

    def _matched(self, record: Record, pattern_index: int, line: str) -> Finding:
        pattern = self.matcher.patterns[pattern_index]
        match = self.matcher.search(pattern_index, line)
        secrets = secret_spans(line)  # found once: for the captures, the line, the evidence
        captures = _captures(match, secrets)
        if pattern.generic:  # a bare traceback: what identifies it is its head and last line
            last = next((t for t in reversed(record.lines) if t.strip()), line)
            identity, shown = f"{record.lines[0]} | {last}", last
        else:
            identity, shown = (match.group(0) if match else line), line
            last = next((t for t in reversed(record.lines) if t.strip()), line)
            if last != line:  # a record's last line says how it ended (the exception)
                shown = f"{line.strip()} | {last.strip()}"
        shown = _bounded(_redacted(shown.strip(), line, secrets), LINE_CHARS)
        ts = record.ts_ns / 1e9
        self._sightings.append(
            Sighting(
                record.service, record.container, pattern.id, pattern.id, pattern.title, shown, ts
            )
        )
        return Finding(
            service=record.service,
            container=record.container,
            ts=record.ts_ns / 1e9,
            kind=FindingKind.LOG,
            pattern_id=pattern.id,
            category=pattern.category,
            severity=pattern.severity,
            title=pattern.title,
            fingerprint=fingerprint(record.service, pattern.id, identity),
            evidence=_bounded(_redacted(record.text, line, secrets), EVIDENCE_CHARS),
            line=shown,
            hint=pattern.hint,
            suggested=pattern.remediation,
            captures=captures,
            # which dependency a connection or database error is about (root causes)
            named=(
                named_endpoints(shown, captures) if pattern.category in LINKED_CATEGORIES else ()
            ),
        )

    def _discovered(self, record: Record) -> Finding | None:
        assert self.discovery is not None
        if self.settings.ignored(record.service, UNCLASSIFIED):
            return None
        line = next((t for t in record.lines if looks_like_error(t)), None)
        if line is None:
            return None
        shown = redact(line.strip())
        mined = self.discovery.add(record.service, shown)
        template_id, template = mined.template_id, mined.template
        self._sightings.append(
            Sighting(
                record.service,
                record.container,
                f"{UNCLASSIFIED}:{template_id}",
                UNCLASSIFIED,
                template,
                _bounded(shown, LINE_CHARS),
                record.ts_ns / 1e9,
            )
        )
        if not mined.recurring:
            return None
        loud = any(word in line for word in ("FATAL", "CRITICAL", "PANIC", "EMERG"))
        return Finding(
            service=record.service,
            container=record.container,
            ts=record.ts_ns / 1e9,
            kind=UNCLASSIFIED,
            pattern_id=UNCLASSIFIED,
            category=Category.HEALTH,
            severity=Severity.MEDIUM if loud else Severity.LOW,
            title=_bounded(f"Unclassified error: {template}", 160),
            fingerprint=f"log:{record.service}:{UNCLASSIFIED}:{template_id}",
            evidence=_bounded(redact(record.text), EVIDENCE_CHARS),
            line=_bounded(shown, LINE_CHARS),
            hint="No pattern knows this error; add one to detection.patterns if it matters.",
        )


class _BlockRecords:
    """The records of one block that can yield a finding, in log order.

    Walks from line to line only where it must: a line that shapes a record (``shaping``)
    and every line of an open traceback or panic go through the assembler; a run of plain
    lines between them is that many one-line records, of which only those with a hit
    (``hit``) are made, and its last line is left open (the next line may continue it).
    """

    def __init__(
        self,
        block: LogBlock,
        assembler: RecordAssembler,
        shaping: dict[int, int],
        hit: dict[int, int],
    ) -> None:
        self._block = block
        self._assembler = assembler
        self._shaping = shaping
        self._shaping_lines = sorted(shaping)
        self._hit = hit
        self._hit_lines = sorted(hit)

    def _line(self, index: int, start: int, end: int) -> LogLine:
        block = self._block
        text = block.text[start:end].decode("utf-8")
        return LogLine(block.service, block.container, block.stamp(index), text)

    def records(self) -> list[Record]:
        data, count, assembler = self._block.text, self._block.count, self._assembler
        records: list[Record] = []
        line, start = 0, 0  # the next line to read and where it starts
        while line < count:
            following = bisect_left(self._shaping_lines, line)
            shaping = (
                self._shaping_lines[following] if following < len(self._shaping_lines) else count
            )
            if assembler.line_by_line or shaping == line:
                end = data.find(b"\n", start)
                records.extend(assembler.feed(self._line(line, start, end)))
                line, start = line + 1, end + 1
                continue
            # plain lines up to the next shaping one: each a record of its own
            records.extend(assembler.flush())
            last = shaping - 1
            for index in self._hit_lines[
                bisect_left(self._hit_lines, line) : bisect_left(self._hit_lines, last)
            ]:
                at = self._hit[index]
                records.append(_single(self._line(index, at, data.find(b"\n", at))))
            end = self._shaping[shaping] - 1 if shaping < count else len(data) - 1
            last_start = data.rfind(b"\n", 0, end) + 1
            records.extend(assembler.feed(self._line(last, last_start, end)))
            line, start = shaping, end + 1
        return records


def _single(line: LogLine) -> Record:
    return Record(line.service, line.container, line.ts_ns, (line.text,))
