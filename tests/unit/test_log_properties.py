"""Random log bytes never crash the log pipeline (issue 12's fault suite).

Whatever a container writes (invalid UTF-8, NUL, lone carriage returns, broken ANSI
codes, lines far past the 16 KiB cut, tracebacks that never end) and however the engine
cuts its stream into chunks: the splitter, the cleaner, the follower, the record
assembler and the detector (matching, redaction, discovery, fingerprints) take it, count
every line once, and keep everything bounded.
"""

from __future__ import annotations

from collections.abc import Iterator

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.detect.detector import EVIDENCE_CHARS, LINE_CHARS, Detector
from controller.detect.library import build_patterns
from controller.detect.records import RecordAssembler
from controller.model import DetectionSettings, LogBlock, LogLine, ObservedState
from controller.observe.lines import (
    MAX_LINE_BYTES,
    LineSplitter,
    clean,
    parse_timestamp,
    split_lines,
)
from controller.observe.logs import LogReader
from tests.fakes import FakeStream, container

# one detector for every example (compiling the library takes a while); each example
# closes its records, so none carries over
DETECTOR = Detector(DetectionSettings(patterns=build_patterns(), discovery_min_occurrences=1))

# pieces real logs are made of, so that random lines also look like errors, tracebacks,
# secrets and escape codes often enough to reach every stage
_PIECES = st.sampled_from(
    [
        b"ERROR ", b"FATAL: ", b"Traceback (most recent call last):", b"  File \"x.py\"",
        b"panic: ", b"goroutine 1 [running]:", b"\tat com.x.Y(Y.java:1)", b"Caused by: ",
        b"password=", b"postgres://a:b@c/d", b"Authorization: Bearer ", b'{"token": "',
        b"connection refused", b'database "orders" does not exist', b"\x1b[31m", b"\x1b]0;",
        b"\x1b", b"\x00", b"\r", b"\r\n", b"\n", b"\xff\xfe", b"\xc3", b"\xe2\x82", b" ",
        b"2026-12-02T10:00:00.123456789Z ", b"-----BEGIN RSA PRIVATE KEY-----",
    ]
)  # fmt: skip
_BYTES = st.lists(st.one_of(_PIECES, st.binary(max_size=40)), max_size=40).map(b"".join)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(_BYTES, st.binary(max_size=300)), max_size=12), st.integers(8, 64))
def test_the_splitter_keeps_every_line_and_never_more_than_its_limit(chunks, limit):
    splitter = LineSplitter(limit)
    lines = [line for chunk in chunks for line in splitter.feed(chunk)] + splitter.finish()
    data = b"".join(chunks)
    # one line per newline, and one for what follows the last newline, if anything does
    assert len(lines) == data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
    assert all(len(line) <= limit + 1 for line in lines)
    assert all(b"\n" not in line for line in lines)


@settings(max_examples=1000, deadline=None)
@given(st.one_of(_BYTES, st.binary(max_size=MAX_LINE_BYTES * 2 + 10)))
def test_cleaning_any_bytes_gives_bounded_text_without_nul(raw):
    text = clean(raw)
    assert "\x00" not in text and not text.endswith(("\r", "\n"))
    assert len(text.encode("utf-8", "surrogatepass")) <= MAX_LINE_BYTES * 3 + 20
    parse_timestamp(raw[:40])  # never raises, whatever the bytes


class _Engine:
    """Our EngineGateway's log side: one container whose stream is the given chunks."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    def follow_logs(self, container_id: str, since: float | None) -> FakeStream:
        return FakeStream(list(split_lines(self.chunks)))


def _stream(lines: list[bytes], cuts: list[int]) -> Iterator[bytes]:
    data = b"".join(
        b"2026-12-02T10:00:%02d.%09dZ " % (n % 60, n) + line + b"\n" for n, line in enumerate(lines)
    )
    at = 0
    for cut in cuts:
        yield data[at : at + cut]
        at += cut
    yield data[at:]


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    st.lists(st.one_of(_BYTES, st.binary(max_size=200)), min_size=1, max_size=40),
    st.lists(st.integers(1, 300), max_size=30),
    st.booleans(),
)
def test_any_log_goes_through_follower_records_and_detector_whole_and_bounded(lines, cuts, long):
    if long:
        lines = [*lines, b"ERROR " + b"x" * (MAX_LINE_BYTES * 3)]
    chunks = [c for c in _stream(lines, cuts) if c]
    blocks: list[LogBlock] = []
    reader = LogReader(_Engine(chunks), blocks.append)  # type: ignore[arg-type]
    web = container("web", status="exited")
    reader.sync(ObservedState("demo", 0.0, (web,)))
    for thread in list(reader._threads.values()):
        thread.join(10)
    sink: list[LogLine] = [line for block in blocks for line in block.lines()]
    # each line once: the lines the container wrote, split where it wrote a newline
    assert len(sink) == sum(line.count(b"\n") + 1 for line in lines)
    assert all(len(line.text) <= MAX_LINE_BYTES + 20 for line in sink)
    findings = DETECTOR.feed(sink, now=0.0) + DETECTOR.flush(now=10.0)
    findings += DETECTOR.forget(DETECTOR.containers())
    for finding in findings:
        assert len(finding.evidence) <= EVIDENCE_CHARS and len(finding.line) <= LINE_CHARS
        assert finding.fingerprint.startswith("log:web:")


@settings(max_examples=300, deadline=None)
@given(st.lists(_BYTES.map(clean), max_size=200))
def test_records_stay_bounded_however_long_a_traceback_runs(texts):
    assembler = RecordAssembler()
    head = [LogLine("web", "web-1", 0, "Traceback (most recent call last):")]
    body = [LogLine("web", "web-1", n, "  " + t) for n, t in enumerate(texts, 1)]
    records = [r for line in head + body for r in assembler.feed(line)] + assembler.flush()
    assert sum(len(r.lines) + r.omitted for r in records) == len(head) + len(body)
    assert all(len(r.lines) <= 80 for r in records)
