"""A whole read at a time gives exactly what line by line gave: lines, cursors, findings."""

from __future__ import annotations

import random

import pytest

from controller.detect.detector import Detector
from controller.detect.discovery import ERRORISH_HINTS, looks_like_error
from controller.detect.library import build_patterns, library_specs
from controller.detect.matcher import Extra, Matcher
from controller.detect.redact import all_spans, mask, redact
from controller.model import DetectionSettings, Finding, LogBlock, LogLine, ObservedState
from controller.observe.lines import MAX_LINE_BYTES, clean, clean_block
from controller.observe.logs import LogReader
from tests.fakes import FakeWorld

T0 = 1_800_000_000_000_000_000
SPECS = library_specs()
EXAMPLES = [e for s in SPECS for e in s.examples]
NEAR = [m for s in SPECS for m in s.near_misses]
PLAIN = [
    '10.0.3.4 - - [28/Nov/2026:10:00:00 +0000] "GET /api/orders HTTP/1.1" 200 512 "-" "curl/8"',
    "2026-11-28 10:00:00.123 UTC [42] LOG:  checkpoint starting: time",
    "2026-11-28T10:00:00.000Z INFO app.orders: order 4711 created for customer 1234",
    '{"ts": "2026-11-28T10:00:00Z", "level": "info", "msg": "worker heartbeat ok"}',
    "",
    "Caused by somebody, not a Java cause",
    "a line with Traceback (most recent call last): in its middle",
]
SHAPES = [
    [
        "Traceback (most recent call last):",
        '  File "/app/db.py", line 3, in connect',
        "    raise KeyError('DATABASE_URL')",
        "KeyError: 'DATABASE_URL'",
        "",
        "During handling of the above exception, another exception occurred:",
        "",
        "Traceback (most recent call last):",
        '  File "/app/main.py", line 9, in <module>',
        "RuntimeError: cannot configure the database",
    ],
    [
        "Traceback (most recent call last):",
        '  File "/app/x.py", line 1',
        "json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)",
    ],
    [
        'Exception in thread "main" java.lang.IllegalStateException: pool closed',
        "\tat com.acme.Pool.get(Pool.java:42)",
        "Caused by: java.net.ConnectException: Connection refused",
        "\t... 2 more",
    ],
    [
        "panic: runtime error: index out of range [5] with length 3",
        "",
        "goroutine 1 [running]:",
        "main.main()",
        "\t/app/main.go:12 +0x1d",
        "exit status 2",
    ],
    ["2026-11-28 10:00:00 ERROR payments: order 17 declined by gateway acme"],
    ['{"level": "error", "msg": "quota of tenant 42 exceeded"}'],
    ["level=cr\u0131t\u0131cal msg=disk 7 is failing"],  # dotless i: re.I folds it
    ["   an indented line after anything"],
]
ODD = [
    b"\x1b[31mERROR\x1b[0m connect ECONNREFUSED 127.0.0.1:6379",
    b'bad utf-8 \xff\xfe then FATAL: password authentication failed for user "app"',
    b"nul\x00 bytes\x00 and a carriage return\r",
    b"\x1b]0;a title\x07OOMKilled",
    b"x" * (MAX_LINE_BYTES + 500) + b" ERROR at the end of a long line",
    b"y" * (MAX_LINE_BYTES - 3) + "é".encode() + b"tail",
]


def random_log(rng: random.Random, events: int) -> list[bytes]:
    lines: list[bytes] = []
    for _ in range(events):
        roll = rng.random()
        if roll < 0.45:
            lines.append(rng.choice(PLAIN).encode())
        elif roll < 0.6:
            lines.append(rng.choice(EXAMPLES).encode())
        elif roll < 0.7:
            lines.append(rng.choice(NEAR).encode())
        elif roll < 0.95:
            lines.extend(line.encode() for line in rng.choice(SHAPES))
        else:
            lines.append(rng.choice(ODD))
    return lines


def stamps(rng: random.Random, count: int) -> list[int]:
    """Mostly rising, some equal (one nanosecond, many lines), some a little out of order
    (the engine stamps stdout and stderr apart)."""
    out, ts = [], T0
    for _ in range(count):
        ts += rng.choice((0, 1, 1000, 250_000, 3_000_000_000))
        out.append(ts - rng.choice((0, 0, 0, 0, 0, 0, 0, 0, 0, 500)))
    return out


def read_blocks(world: FakeWorld) -> list[LogBlock]:
    blocks: list[LogBlock] = []
    reader = LogReader(world, blocks.append)
    reader.sync(ObservedState("demo", 0.0, tuple(world.list_containers("demo"))))
    for thread in list(reader._threads.values()):
        thread.join(10)
    return blocks


def line_by_line(detector: Detector, lines: list[LogLine]) -> list[Finding]:
    return detector.feed(lines, 0.0) + detector.flush(10.0)


def by_blocks(detector: Detector, blocks: list[LogBlock]) -> list[Finding]:
    found: list[Finding] = []
    for block in blocks:
        found += detector.feed_block(block, 0.0)
    return found + detector.flush(10.0)


def settings() -> DetectionSettings:
    return DetectionSettings(patterns=build_patterns(), discovery_min_occurrences=2)


@pytest.mark.parametrize("seed", range(6))
def test_a_log_read_in_any_pieces_gives_the_same_lines_and_findings_as_line_by_line(seed):
    rng = random.Random(seed)
    raw = random_log(rng, 300)
    world = FakeWorld()
    world.run("web")
    world.piece_bytes = rng.choice((7, 100, 1000, 4096, 65536))
    for ts, line in zip(stamps(rng, len(raw)), raw, strict=True):
        world.print("web-1-id", ts, line)

    blocks = read_blocks(world)

    expected = [
        LogLine("web", "demo-web-1", ts, clean(line)) for ts, line in world.logs["web-1-id"]
    ]
    assert [line for block in blocks for line in block.lines()] == expected
    reference = line_by_line(Detector(settings()), expected)
    assert by_blocks(Detector(settings()), blocks) == reference
    assert {f.pattern_id for f in reference} >= {"python-traceback", "unclassified"}


def test_a_record_open_at_the_end_of_a_read_is_continued_by_the_next_read():
    detector = Detector(settings())
    traceback = SHAPES[1]

    def block(texts: list[str], first: int) -> LogBlock:
        text = "".join(f"{t}\n" for t in texts).encode()
        return LogBlock("web", "demo-web-1", text, len(texts), lambda i: T0 + first + i)

    assert detector.feed_block(block(["INFO starting", traceback[0]], 0), 0.0) == []
    assert detector.feed_block(block(traceback[1:], 2), 0.0) == []
    (finding,) = detector.flush(10.0)
    assert finding.pattern_id == "python-traceback"
    assert finding.evidence.splitlines() == traceback
    assert finding.ts == (T0 + 1) / 1e9


def test_cleaning_a_whole_read_equals_cleaning_each_line():
    rng = random.Random(3)
    alphabet = [b"a", b" ", b"\x1b[1m", b"\x1b]2;t\x07", b"\x1b", b"\x00", b"\r", b"\xc3", b"\xa9"]
    lines = [b"".join(rng.choices(alphabet, k=rng.randint(0, 30))) for _ in range(2000)]
    assert clean_block(lines) == "".join(clean(line) + "\n" for line in lines).encode()
    assert clean_block([b"x" * (MAX_LINE_BYTES + 1)]) is None  # cut line by line instead


def test_every_line_that_looks_like_an_error_has_a_hint_for_it():
    matcher = Matcher([], [Extra(regex, caseless) for regex, caseless in ERRORISH_HINTS])
    lines = [
        *EXAMPLES,
        *NEAR,
        "ERROR x",
        "LEVEL: Cr\u0130t\u0130cal",  # dotted capital I
        '"level" = "PAN\u0131C"',
        "KeyError: 'x'",
        "Boom ( ValueError (",
    ]
    erring = [line for line in lines if looks_like_error(line)]
    text = "".join(f"{line}\n" for line in erring).encode()
    hinted = {line for line, _ident, _start in matcher.scan_block(text)}
    assert len(erring) > 50 and hinted == set(range(len(erring)))


def full_redact(text: str) -> str:
    return mask(text, all_spans(text))


def test_redaction_that_skips_clean_text_masks_the_same_as_every_rule():
    texts = [
        *EXAMPLES,
        "password=hunter2 and token abcdefghijkl",
        "PASSWORD: x",
        "dsn postgresql://app:s3cret@db/app",
        "Authorization: Bearer abcdefghijklmnop",
        "key AKIAABCDEFGHIJKLMNOP",
        "jwt eyJabcdef.eyJabcdef.abcdefgh",
        "ghp_" + "a" * 36,
        "sk_live_" + "a" * 20,
        "-----BEGIN RSA PRIVATE KEY-----\nabc\n-----END RSA PRIVATE KEY-----",
        "\u017fecret=x (a long s)",
        "DB_PASSWORD=x PGPASSWORD=y X-Api-Key: z",
        'password="correct horse battery staple"',
        "redis://default:Pa/ss@cache:6379",
        "Cookie: session=abc; theme=dark",
        "--api-key=abcdef123",
        "token signature is invalid",
        "nothing secret here",
    ]
    assert [redact(t) for t in texts] == [full_redact(t) for t in texts]


def test_a_record_open_when_its_run_ended_is_closed_at_once_not_after_the_idle_flush():
    detector = Detector(settings())
    traceback = SHAPES[1]
    text = "".join(f"{t}\n" for t in traceback).encode()
    block = LogBlock("web", "demo-web-1", text, len(traceback), lambda i: T0 + i)
    assert detector.feed_block(block, 0.0) == []
    assert detector.pending()  # a traceback may go on: it waits for the next line

    (finding,) = detector.close("demo-web-1")  # the run was read to its end

    assert finding.pattern_id == "python-traceback"
    assert not detector.pending()
    assert detector.close("demo-web-1") == [] and detector.close("never-seen") == []
