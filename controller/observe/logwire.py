"""A container's log read straight off the engine's socket: engine.py's transport for logs.

The docker SDK reads a log stream one frame (one line) at a time, through HTTP chunked
decoding of one chunk per line: several Python calls for every line, which cost more than
matching the line. Here the request is sent as HTTP/1.0, so the engine writes the body
unchunked and ends it by closing the connection; the body is read 64 KiB at a time.

The engine writes one frame per line: an 8-byte header (the stream, three zero bytes, the
size), then the line and its newline. So a read's lines are found by splitting it at its
newlines once and taking the 8 bytes after each newline as a header (``FramedLines``); that
reading is right exactly when every header's size reaches the next newline, which one
comparison of two arrays checks. A read that does not read so (a line longer than the
engine's 16 KiB message, sent as several frames; another engine's framing) goes through the
frame-by-frame ``FrameSplitter`` and the ``LineSplitter``, which any reads do until the
stream is back at the end of a frame and a line.

The engine's socket buffer holds only a few hundred frames, so reading as fast as possible
means one small read per few lines. Instead, reads are gathered into blocks of up to
``BLOCK_BYTES``: after a short read the stream waits ``COALESCE_SECONDS`` for more and
reads again without blocking; a block goes out when it is full, when nothing more has
come, or ``LINGER_SECONDS`` after its first byte. A quiet log's line is still read the
moment it comes and handed on a few milliseconds later.

Only engine.py and swarm.py use this module (the rest of the controller sees
``LogStream``); it needs no docker SDK: they hand it the socket address and the API
version. swarm.py reads a service's log with it (``service=True``), every task's lines.
"""

from __future__ import annotations

import json
import operator
import socket
import struct
import sys
import threading
import time
from array import array
from collections.abc import Callable, Iterator
from itertools import repeat
from urllib.parse import quote, urlencode

from controller.observe.gateway import ContainerGone, EngineError, EngineUnavailable
from controller.observe.lines import MAX_LINE_BYTES, STAMP_ROOM, LineSplitter

READ_BYTES = 64 * 1024
QUIET_READ_BYTES = 4 * 1024  # a quiet log's buffer: hundreds of them are followed at once
BLOCK_BYTES = 64 * 1024
SHORT_READ = 16 * 1024  # a read this short: more is coming slowly, wait a little for it
COALESCE_SECONDS = 0.002
LINGER_SECONDS = 0.02  # the longest a line waits for others to share its block
# a frame header: the stream (0 stdin, 1 stdout, 2 stderr), 3 zero bytes, the size
_SIZE = struct.Struct(">L")
_U32 = next(code for code in "IL" if array(code).itemsize == 4)
_MAX_HEAD = 64 * 1024
CARRY_BYTES = 64 * 1024  # the most of a frame cut by a read kept whole for the next read

Address = tuple[int, str | tuple[str, int]]  # (socket family, path or (host, port))


class FrameSplitter:
    """The payload of the engine's multiplexed stream (frames: an 8-byte header, then as
    many bytes as it says), from reads that cut frames anywhere. Holds at most 7 bytes of a
    header between reads; a frame's payload passes through as it arrives, however large."""

    def __init__(self) -> None:
        self._head = b""
        self._remaining = 0  # payload bytes of the current frame still to come

    def feed(self, data: bytes | memoryview) -> bytes:
        """The payload bytes in ``data`` (a copy: ``data`` may be a reused buffer)."""
        if self._head:
            data, self._head = self._head + bytes(data), b""
        view = memoryview(data)
        end = len(view)
        position = min(self._remaining, end)
        parts: list[memoryview] = [view[:position]] if position else []
        self._remaining -= position
        unpack = _SIZE.unpack_from
        while position + 8 <= end:
            start = position + 8
            stop = start + unpack(view, position + 4)[0]
            if stop > end:
                parts.append(view[start:end])
                self._remaining = stop - end
                position = end
                break
            parts.append(view[start:stop])
            position = stop
        if position < end:
            self._head = bytes(view[position:])
        return b"".join(parts)

    @property
    def idle(self) -> bool:
        """True at a frame's start (nothing of a frame pending)."""
        return not self._head and not self._remaining


class FramedLines:
    """The complete lines of a multiplexed log, from reads that cut frames anywhere (the
    reads' ``LineSplitter``, for a stream in frames). Lines over ``limit`` bytes are cut
    as ``LineSplitter`` cuts them; at most ``CARRY_BYTES`` of a cut frame are held."""

    def __init__(self, limit: int = MAX_LINE_BYTES + STAMP_ROOM) -> None:
        self._limit = limit
        self._frames = FrameSplitter()  # for reads that are not one line per frame
        self._lines = LineSplitter(limit)
        self._carry = b""  # the start of a frame the last read cut (only at a line's start)

    def feed(self, data: bytes) -> list[bytes]:
        if not (self._frames.idle and self._lines.idle):
            return self._lines.feed(self._frames.feed(data))
        if self._carry:
            data, self._carry = self._carry + data, b""
        pieces = data.split(b"\n")
        rest = pieces.pop()  # after the last newline: the start of a frame, if any
        lines = _one_line_frames(pieces, self._limit) if pieces else []
        if lines is None:
            return self._lines.feed(self._frames.feed(data))
        if len(rest) <= CARRY_BYTES:
            self._carry = rest
            return lines
        return lines + self._lines.feed(self._frames.feed(rest))

    def finish(self) -> list[bytes]:
        """What is left when the stream ends (a last line without a newline)."""
        carry, self._carry = self._carry, b""
        lines = self._lines.feed(self._frames.feed(carry)) if carry else []
        return lines + self._lines.finish()


def _one_line_frames(pieces: list[bytes], limit: int) -> list[bytes] | None:
    """The lines of ``pieces`` (a read split at its newlines, from a frame's start, without
    what follows the last newline) when each is a frame of one line: its 8-byte header and
    its line, the header's size counting the line and its newline. None when not.

    Checked as a whole: the header taken from each piece must give that piece's length.
    The first piece starts at a frame, so its header is one; when its size holds, the next
    frame starts just after its newline, where the next piece starts; and so on. The
    lines then hold no newline, so they are the payload's lines.
    """
    heads = b"".join([piece[:8] for piece in pieces])
    if len(heads) != 8 * len(pieces):
        return None  # a piece too short to hold a header
    words = array(_U32, heads)  # per frame: the stream word, then the size
    if sys.byteorder == "little":
        words.byteswap()  # the engine writes them big-endian
    sizes = words[1::2]
    if array(_U32, map(operator.sub, map(len, pieces), repeat(7))) != sizes:
        return None
    if max(sizes) > limit + 1:  # as LineSplitter: a long line cut to one byte more
        return [piece[8 : 9 + limit] for piece in pieces]
    return [piece[8:] for piece in pieces]


def _request(
    container_id: str,
    version: str,
    since: float | None,
    *,
    service: bool = False,
    follow: bool = True,
) -> bytes:
    """The request of a container's log, or of a swarm service's (every task's lines, with
    the details that name each line's node, service and task before its text)."""
    query = {"follow": "1" if follow else "0", "stdout": "1", "stderr": "1", "timestamps": "1"}
    if since is not None and since > 0:
        query["since"] = str(since)  # seconds with a fraction, as the SDK sends it
    if service:
        query["details"] = "1"
    kind = "services" if service else "containers"
    path = f"/v{version}/{kind}/{quote(container_id, safe='')}/logs?{urlencode(query)}"
    return (
        f"GET {path} HTTP/1.0\r\nHost: docker\r\nUser-Agent: compose-controller\r\n\r\n"
    ).encode("ascii")


class WireLog:
    """One followed log (``LogStream``): its timestamped lines, many at a time."""

    def __init__(
        self,
        address: Address,
        version: str,
        container_id: str,
        since: float | None,
        *,
        timeout: float = 30.0,
        engine_alive: Callable[[], bool] = lambda: True,
        coalesce: float = COALESCE_SECONDS,
        service: bool = False,
        follow: bool = True,
    ) -> None:
        """Connect and read the response head; raises our errors (the container is gone,
        the engine refused, it cannot be reached). ``service``: ``container_id`` names a
        swarm service, whose log comes with details (``_request``); ``follow``: False
        reads the log to its end now and ends."""
        self._what = f"logs {container_id[:12]}"
        self._engine_alive = engine_alive
        self._coalesce = coalesce
        self._closed = threading.Event()
        family, where = address
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            self._sock.settimeout(timeout)
            self._sock.connect(where)
            self._sock.sendall(
                _request(container_id, version, since, service=service, follow=follow)
            )
            self._first = self._read_head()
            self._sock.settimeout(None)  # a followed log may stay quiet for days
        except OSError as exc:
            self._sock.close()
            raise EngineUnavailable(f"{self._what}: engine unreachable ({exc})") from exc
        except EngineError:
            self._sock.close()
            raise

    def _read_head(self) -> bytes:
        data = b""
        while b"\r\n\r\n" not in data:
            piece = self._sock.recv(READ_BYTES)
            if not piece or len(data) > _MAX_HEAD:
                raise EngineUnavailable(f"{self._what}: the engine closed the connection")
            data += piece
        head, _, body = data.partition(b"\r\n\r\n")
        status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = status_line.split(" ", 2)
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        if status == 200:
            return body
        while len(body) < _MAX_HEAD and (piece := self._sock.recv(READ_BYTES)):
            body += piece
        message = _message(body) or status_line
        if status == 404:
            raise ContainerGone(f"{self._what}: {message}")
        raise EngineError(f"{self._what}: {message}")

    def __iter__(self) -> Iterator[list[bytes]]:
        # one buffer, reused: no allocation per read; small until a read fills it
        view = memoryview(bytearray(QUIET_READ_BYTES))
        lines: FramedLines | LineSplitter | None = None  # known from the first byte
        block: list[bytes] = []  # reads not yet split into lines
        size, since = 0, 0.0
        data: bytes | None = self._first or None
        try:
            while not self._closed.is_set():
                if data is None:
                    got = self._receive(view, wait=not block)
                    if got is not None and not got:
                        break  # the end of the log
                    if got is not None:
                        data = bytes(got)
                        if len(got) == len(view) < READ_BYTES:  # a bigger buffer from now
                            view = memoryview(bytearray(READ_BYTES))
                if data is not None:
                    if lines is None:  # a TTY's log is raw; otherwise the first byte is 0-2
                        lines = FramedLines() if data[0] in (0, 1, 2) else LineSplitter()
                    if not block:
                        since = time.monotonic()
                    block.append(data)
                    size += len(data)
                read, data = data, None
                if (
                    lines is not None
                    and block
                    and (
                        read is None
                        or size >= BLOCK_BYTES
                        or time.monotonic() - since >= LINGER_SECONDS
                    )
                ):
                    found = lines.feed(b"".join(block))
                    block, size = [], 0
                    if found:
                        yield found
                elif (
                    read is not None
                    and len(read) < SHORT_READ
                    and self._closed.wait(self._coalesce)
                ):
                    return
            if lines is not None:
                found = lines.feed(b"".join(block)) + lines.finish()
                if found:
                    yield found
        except OSError as exc:
            if self._closed.is_set():
                return
            raise EngineUnavailable(f"{self._what}: {exc}") from exc
        finally:
            self._sock.close()
        if not self._closed.is_set() and not self._engine_alive():
            raise EngineUnavailable(f"{self._what}: the engine went away")

    def _receive(self, view: memoryview, wait: bool) -> memoryview | None:
        """The next bytes: empty at the end of the log, None when ``wait`` is false and
        nothing has come."""
        try:
            size = self._sock.recv_into(view, 0, 0 if wait else socket.MSG_DONTWAIT)
        except BlockingIOError:
            return None
        return view[:size]

    def close(self) -> None:
        self._closed.set()
        try:
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes a reader blocked in recv
        except OSError:
            return  # not connected any more: nothing to wake


def _message(body: bytes) -> str:
    """The engine's error message (a JSON object with "message"), else the body's text."""
    text = body.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text[:500]
    return str(data.get("message", text))[:500] if isinstance(data, dict) else text[:500]
