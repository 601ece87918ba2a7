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

from controller.observe.gateway import ContainerGone, EngineError, EngineUnavailable
from controller.observe.logwire import FrameSplitter, WireLog


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
    assert b"".join(stream) == b"".join(lines)
    assert engine.request.startswith(b"GET /v1.41/containers/abc123/logs?follow=1&")
    assert b"timestamps=1" in engine.request and b"since=1700000000.5" in engine.request
    assert b" HTTP/1.0\r\n" in engine.request  # so the body comes unchunked


def test_a_tty_log_is_raw(sock_path):
    body = b"2026-11-28T10:00:00.000000000Z \x01 not a frame\r\n"
    Engine(sock_path, [HEAD, body])
    assert b"".join(WireLog((socket.AF_UNIX, str(sock_path)), "1.41", "t", None)) == body


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
    reader = threading.Thread(target=lambda: got.extend(stream))
    reader.start()
    stream.close()
    reader.join(10)
    engine.release.set()
    assert not reader.is_alive()
    assert b"".join(got) in (b"", b"2026-11-28T10:00:00.000000000Z one\n")


def test_a_busy_log_arrives_whole_through_a_buffer_that_grows(sock_path):
    lines = [f"2026-11-28T10:00:00.{n:09d}Z {'x' * (n % 300)}\n".encode() for n in range(5000)]
    body = b"".join(frame(line) for line in lines)
    Engine(sock_path, [HEAD + body])
    stream = WireLog((socket.AF_UNIX, str(sock_path)), "1.41", "x", None)
    assert b"".join(stream) == b"".join(lines)
