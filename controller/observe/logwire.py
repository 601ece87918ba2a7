"""A container's log read straight off the engine's socket: engine.py's transport for logs.

The docker SDK reads a log stream one frame (one line) at a time, through HTTP chunked
decoding of one chunk per line: several Python calls for every line, which cost more than
matching the line. Here the request is sent as HTTP/1.0, so the engine writes the body
unchunked and ends it by closing the connection; the body is read 64 KiB at a time and the
engine's 8-byte frame headers are stripped in one loop over the read (``FrameSplitter``).

The engine writes one frame per line, and its socket buffer holds only a few hundred of
them, so reading as fast as possible means one small read per few lines. Instead, reads
are gathered into blocks of up to ``BLOCK_BYTES``: after a short read the stream waits
``COALESCE_SECONDS`` for more and reads again without blocking; a block goes out when it
is full, when nothing more has come, or ``LINGER_SECONDS`` after its first byte. A quiet
log's line is still read the moment it comes and handed on a few milliseconds later.

Only engine.py uses this module (the rest of the controller sees ``LogStream``); it needs
no docker SDK: engine.py hands it the socket address and the API version.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from urllib.parse import quote, urlencode

from controller.observe.gateway import ContainerGone, EngineError, EngineUnavailable

READ_BYTES = 64 * 1024
QUIET_READ_BYTES = 4 * 1024  # a quiet log's buffer: hundreds of them are followed at once
BLOCK_BYTES = 64 * 1024
SHORT_READ = 16 * 1024  # a read this short: more is coming slowly, wait a little for it
COALESCE_SECONDS = 0.002
LINGER_SECONDS = 0.02  # the longest a line waits for others to share its block
# a frame header: the stream (0 stdin, 1 stdout, 2 stderr), 3 zero bytes, the size
_SIZE = struct.Struct(">L")
_MAX_HEAD = 64 * 1024

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


def _request(container_id: str, version: str, since: float | None) -> bytes:
    query = {"follow": "1", "stdout": "1", "stderr": "1", "timestamps": "1"}
    if since is not None and since > 0:
        query["since"] = str(since)  # seconds with a fraction, as the SDK sends it
    path = f"/v{version}/containers/{quote(container_id, safe='')}/logs?{urlencode(query)}"
    return (
        f"GET {path} HTTP/1.0\r\nHost: docker\r\nUser-Agent: compose-controller\r\n\r\n"
    ).encode("ascii")


class WireLog:
    """One followed log (``LogStream``): bytes of timestamped lines, in large pieces."""

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
    ) -> None:
        """Connect and read the response head; raises our errors (the container is gone,
        the engine refused, it cannot be reached)."""
        self._what = f"logs {container_id[:12]}"
        self._engine_alive = engine_alive
        self._coalesce = coalesce
        self._closed = threading.Event()
        family, where = address
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            self._sock.settimeout(timeout)
            self._sock.connect(where)
            self._sock.sendall(_request(container_id, version, since))
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

    def __iter__(self) -> Iterator[bytes]:
        # one buffer, reused: no allocation per read; small until a read fills it
        view = memoryview(bytearray(QUIET_READ_BYTES))
        frames: FrameSplitter | None = None
        started = False
        block: list[bytes] = []
        size, since = 0, 0.0
        data: bytes | memoryview | None = self._first or None
        try:
            while not self._closed.is_set():
                if data is None:
                    data = self._receive(view, wait=not block)
                    if data is not None and not data:
                        break  # the end of the log
                    if data is not None and len(data) == len(view) < READ_BYTES:
                        data = bytes(data)  # the small buffer is replaced: keep what it holds
                        view = memoryview(bytearray(READ_BYTES))
                if data is not None:
                    if not started:  # a TTY's log is raw; otherwise the first byte is 0-2
                        started = True
                        frames = FrameSplitter() if data[0] in (0, 1, 2) else None
                    payload = frames.feed(data) if frames is not None else bytes(data)
                    if payload:
                        if not block:
                            since = time.monotonic()
                        block.append(payload)
                        size += len(payload)
                read, data = data, None
                if block and (
                    read is None
                    or size >= BLOCK_BYTES
                    or time.monotonic() - since >= LINGER_SECONDS
                ):
                    yield b"".join(block)
                    block, size = [], 0
                elif (
                    read is not None
                    and len(read) < SHORT_READ
                    and self._closed.wait(self._coalesce)
                ):
                    return
            if block:
                yield b"".join(block)
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
