"""Lines off a stream (cleaning, bounds) and multi-line records."""

from controller.detect.records import HEAD_LINES, TAIL_LINES, RecordAssembler
from controller.model import LogLine
from controller.observe.lines import MAX_LINE_BYTES, LineSplitter, clean


def test_cleaning_never_raises_and_drops_nul_ansi_and_bad_utf8():
    assert clean(b"\x1b[31mERROR\x1b[0m boom\x00 \xff\xfe end\r\n") == "ERROR boom \ufffd\ufffd end"


def test_a_line_longer_than_the_limit_is_cut_and_says_so():
    text = clean(b"x" * (MAX_LINE_BYTES + 10))
    assert text.endswith(" [line cut]")
    assert len(text) == MAX_LINE_BYTES + len(" [line cut]")


def test_lines_split_across_chunks_come_out_whole():
    splitter = LineSplitter()
    assert splitter.feed(b"one\ntw") == [b"one"]
    assert splitter.feed(b"o\nthree") == [b"two"]
    assert splitter.finish() == [b"three"]


def test_a_ten_megabyte_line_is_cut_not_held():
    splitter = LineSplitter(limit=1024)
    out: list[bytes] = []
    piece = b"y" * 65536
    for _ in range(160):  # 10 MiB without a newline
        out += splitter.feed(piece)
        assert len(splitter._buffer) <= 1025
    out += splitter.feed(b"tail\nnext line\n")
    assert [len(line) for line in out] == [1025, 9]
    assert out[1] == b"next line"


def lines(texts: list[str], container: str = "c1") -> list[LogLine]:
    return [LogLine("svc", container, n, t) for n, t in enumerate(texts)]


def assemble(texts: list[str]) -> list[list[str]]:
    assembler = RecordAssembler()
    records = []
    for line in lines(texts):
        records += assembler.feed(line)
    records += assembler.flush()
    return [list(r.lines) for r in records]


PY_CHAINED = [
    "Traceback (most recent call last):",
    '  File "/app/db.py", line 3, in connect',
    "    raise KeyError('DATABASE_URL')",
    "KeyError: 'DATABASE_URL'",
    "",
    "During handling of the above exception, another exception occurred:",
    "",
    "Traceback (most recent call last):",
    '  File "/app/main.py", line 9, in <module>',
    "    connect()",
    "RuntimeError: cannot configure the database",
]


def test_a_chained_python_traceback_is_one_record():
    records = assemble(["INFO starting", *PY_CHAINED, "INFO next"])
    assert records == [["INFO starting"], PY_CHAINED, ["INFO next"]]


def test_a_java_stack_trace_with_causes_is_one_record():
    java = [
        'Exception in thread "main" java.lang.IllegalStateException: pool closed',
        "\tat com.acme.Pool.get(Pool.java:42)",
        "\tat com.acme.Main.main(Main.java:7)",
        "Caused by: java.net.ConnectException: Connection refused",
        "\tat java.base/sun.nio.ch.Net.connect0(Native Method)",
        "\t... 2 more",
    ]
    assert assemble([*java, "12:00:01 INFO done"]) == [java, ["12:00:01 INFO done"]]


def test_a_go_panic_with_its_goroutine_dump_is_one_record():
    go = [
        "panic: runtime error: index out of range [5] with length 3",
        "",
        "goroutine 1 [running]:",
        "main.main()",
        "\t/app/main.go:12 +0x1d",
        "exit status 2",
    ]
    assert assemble([*go, "level=info msg=restarted"]) == [go, ["level=info msg=restarted"]]


def test_single_lines_are_records_of_their_own():
    assert assemble(["a", "b", "c"]) == [["a"], ["b"], ["c"]]


def test_a_huge_traceback_keeps_its_head_and_its_last_lines():
    body = [f'  File "/app/x.py", line {n}, in f' for n in range(500)]
    assembler = RecordAssembler()
    for line in lines(["Traceback (most recent call last):", *body, "RecursionError: deep"]):
        assembler.feed(line)
    (record,) = assembler.flush()
    assert len(record.lines) == HEAD_LINES + TAIL_LINES
    assert record.lines[-1] == "RecursionError: deep"
    assert record.omitted == 502 - HEAD_LINES - TAIL_LINES
    assert "lines omitted" in record.text
