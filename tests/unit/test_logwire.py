"""Reading a log straight off the engine's socket: frames, TTYs, errors, closing.

The server here is a few lines that answer as the engine's API does (HTTP/1.0, the body
multiplexed in frames and ended by closing the connection), on a unix socket of our own.
"""

from __future__ import annotations

import random
import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.observe.gateway import ContainerGone, EngineError, EngineUnavailable
from controller.observe.lines import MAX_LINE_BYTES, STAMP_ROOM, LineSplitter
from controller.observe.logwire import CARRY_BYTES, FramedLines, FrameSplitter, WireLog


def frame(payload: bytes, stream: int = 1) -> bytes:
    return struct.pack(">BxxxL", stream, len(payload)) + payload


def test_frames_cut_anywhere_give_back_their_payload():
    rng = random.Random(5)
    payloads = [rng.randbytes(rng.choice((0, 1, 7, 120, 70_000))) for _ in range(300)]
    wire = b"".join(frame(p, rng.choice((1, 2))) for p in payloads)
    splitter, out, at = FrameSplitter(), [], 0
    while at < len(wire):
        step = rng.choice((1, 3, 8, 9, 500, 65536))
        out.append(splitter.feed(memoryview(wire)[at : at + step]))
        at += step
    assert b"".join(out) == b"".join(payloads)


def read_all(stream: WireLog) -> list[bytes]:
    return [line for lines in stream for line in lines]


def frame_by_frame(reads: list[bytes], limit: int) -> list[bytes]:
    """The lines of a framed stream the plain way: every frame's payload, then its lines."""
    frames, lines = FrameSplitter(), LineSplitter(limit)
    return [line for read in reads for line in lines.feed(frames.feed(read))] + lines.finish()


def framed_lines(reads: list[bytes], limit: int) -> list[bytes]:
    splitter = FramedLines(limit)
    return [line for read in reads for line in splitter.feed(read)] + splitter.finish()


def cut(wire: bytes, sizes: list[int]) -> list[bytes]:
    reads, at = [], 0
    for size in sizes:
        reads.append(wire[at : at + size])
        at += size
    return [*reads, wire[at:]]


_LINE = st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"") + b"\n")
_PAYLOAD = st.one_of(
    _LINE,  # what the engine sends: one line per frame
    _LINE,
    st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")),  # a part of a long line
    st.binary(max_size=60),  # anything, newlines and header-like bytes included
    st.lists(_LINE, min_size=2, max_size=4).map(b"".join),  # several lines in one frame
    st.builds(lambda n: struct.pack(">BxxxL", 1, n) + b"x\n", st.integers(0, 20)),  # forged
)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    payloads=st.lists(st.tuples(st.sampled_from((0, 1, 2)), _PAYLOAD), max_size=40),
    sizes=st.lists(st.integers(0, 200), max_size=30),
    limit=st.sampled_from((8, 30, MAX_LINE_BYTES + STAMP_ROOM)),
)
def test_framed_lines_are_the_lines_frame_by_frame_gives(payloads, sizes, limit):
    wire = b"".join(frame(payload, stream) for stream, payload in payloads)
    reads = cut(wire, sizes)
    assert framed_lines(reads, limit) == frame_by_frame(reads, limit)


def test_an_engine_log_with_long_lines_read_in_any_pieces_gives_the_same_lines():
    """The engine's own shape: one line per frame, a line over 16 KiB sent as several frames
    without a newline, lines over the limit, reads of every size."""
    rng = random.Random(11)
    payloads: list[bytes] = []
    for n in range(4000):
        text = b"2026-11-28T10:00:00.%09dZ " % n + rng.randbytes(rng.choice((5, 90, 300)))
        text = text.replace(b"\n", b" ")
        if n % 500 == 7:  # a long line: 16 KiB parts, the last one with the newline
            long = text + b"y" * rng.choice((20_000, 70_000, CARRY_BYTES + 5))
            payloads += [long[i : i + 16384] for i in range(0, len(long), 16384)]
            payloads[-1] += b"\n"
        else:
            payloads.append(text + b"\n")
    wire = b"".join(frame(p, rng.choice((1, 2))) for p in payloads)
    for step in ((1, 9), (100, 5000), (17_000, 70_000)):
        sizes = [rng.randint(*step) for _ in range(len(wire) // step[0] + 1)]
        reads = cut(wire, sizes)
        got = framed_lines(reads, MAX_LINE_BYTES + STAMP_ROOM)
        assert got == frame_by_frame(reads, MAX_LINE_BYTES + STAMP_ROOM)
        assert len(got) == 4000 and max(map(len, got)) == MAX_LINE_BYTES + STAMP_ROOM + 1


class Engine:
    """A unix socket that answers one request with ``reply`` and remembers the request."""

    def __init__(self, path: Path, reply: list[bytes], hold: bool = False) -> None:
        self.path, self.reply, self.hold = path, reply, hold
        self.request = b""
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(1)
        self.release = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        with self.server:
            conn, _ = self.server.accept()
        with conn:
            while b"\r\n\r\n" not in self.request:
                self.request += conn.recv(4096)
            for piece in self.reply:
                conn.sendall(piece)
            if self.hold:  # a followed log of a running container: no end yet
                self.release.wait(10)


@pytest.fixture
def sock_path(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "engine.sock"


HEAD = b"HTTP/1.0 200 OK\r\nApi-Version: 1.41\r\n\r\n"


def test_a_multiplexed_log_comes_out_as_its_lines(sock_path):
    lines = [f"2026-11-28T10:00:0{n}.000000000Z line {n}\n".encode() for n in range(5)]
    body = b"".join(frame(line, 1 + n % 2) for n, line in enumerate(lines))
    engine = Engine(sock_path, [HEAD + body[:3], body[3:50], body[50:]])
    stream = WireLog((socket.AF_UNIX, str(sock_path)), "1.41", "abc123", 1700000000.5)
    assert read_all(stream) == [line.rstrip(b"\n") for line in lines]
    assert engine.request.startswith(b"GET /v1.41/containers/abc123/logs?follow=1&")
    assert b"timestamps=1" in engine.request and b"since=1700000000.5" in engine.request
    assert b" HTTP/1.0\r\n" in engine.request  # so the body comes unchunked


def test_a_tty_log_is_raw(sock_path):
    body = b"2026-11-28T10:00:00.000000000Z \x01 not a frame\r\n"
    Engine(sock_path, [HEAD, body])
    stream = WireLog((socket.AF_UNIX, str(sock_path)), "1.41", "t", None)
    assert read_all(stream) == [body.rstrip(b"\n")]


def test_a_container_that_is_gone_and_an_engine_that_refuses_are_our_errors(sock_path):
    Engine(sock_path, [b"HTTP/1.0 404 Not Found\r\n\r\n", b'{"message":"No such container: x"}'])
    with pytest.raises(ContainerGone, match="No such container: x"):
        WireLog((socket.AF_UNIX, str(sock_path)), "1.41", "x", None)
    other = sock_path.with_name("other.sock")
    Engine(other, [b"HTTP/1.0 500 Internal Server Error\r\n\r\n", b'{"message":"boom"}'])
    with pytest.raises(EngineError, match="boom"):
        WireLog((socket.AF_UNIX, str(other)), "1.41", "x", None)
    with pytest.raises(EngineUnavailable):
        WireLog((socket.AF_UNIX, str(sock_path.with_name("nobody.sock"))), "1.41", "x", None)


def test_an_end_of_stream_while_the_engine_is_gone_is_an_error(sock_path):
    Engine(sock_path, [HEAD + frame(b"2026-11-28T10:00:00.000000000Z last\n")])
    stream = WireLog(
        (socket.AF_UNIX, str(sock_path)), "1.41", "x", None, engine_alive=lambda: False
    )
    with pytest.raises(EngineUnavailable, match="went away"):
        list(stream)


def test_closing_a_followed_log_ends_it_without_an_error(sock_path):
    engine = Engine(sock_path, [HEAD + frame(b"2026-11-28T10:00:00.000000000Z one\n")], hold=True)
    stream = WireLog((socket.AF_UNIX, str(sock_path)), "1.41", "x", None)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.extend(read_all(stream)))
    reader.start()
    stream.close()
    reader.join(10)
    engine.release.set()
    assert not reader.is_alive()
    assert got in ([], [b"2026-11-28T10:00:00.000000000Z one"])


def test_a_busy_log_arrives_whole_through_a_buffer_that_grows(sock_path):
    lines = [f"2026-11-28T10:00:00.{n:09d}Z {'x' * (n % 300)}\n".encode() for n in range(5000)]
    body = b"".join(frame(line) for line in lines)
    Engine(sock_path, [HEAD + body])
    stream = WireLog((socket.AF_UNIX, str(sock_path)), "1.41", "x", None)
    assert read_all(stream) == [line.rstrip(b"\n") for line in lines]
