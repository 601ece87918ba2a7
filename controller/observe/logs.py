"""Follow the log of every container of the project, reading each line exactly once.

One thread per container streams its log with timestamps. A cursor per container (the
newest timestamp read, plus the lines read at that very timestamp) survives the end of a
stream: when a container restarts under the same id, following resumes from the cursor
without losing or repeating a line; a recreated container (a new id) is read from its
start. The cursors are saved with the issues, so a restarted controller resumes too.

The stream hands over a read's complete lines at once (``LogStream``), and they go to
``sink`` cleaned and bounded, a whole read at a time (``LogBlock``): per read, one check of
all the timestamps, one cleaning pass (``observe.lines``), and the cursor taken from the
newest timestamp of the read. Timestamps are parsed line by line only at a
stream's start, where resuming needs them, and for lines a caller asks about. The sink may
block, which slows the reader rather than growing memory.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Mapping, Sequence

from loguru import logger

from controller.model import ContainerSnapshot, LogBlock, ObservedState
from controller.observe.gateway import EngineError, EngineGateway, LogStream
from controller.observe.lines import (
    MAX_LINE_BYTES,
    STAMP_WIDTH,
    clean,
    clean_block,
    parse_timestamp,
    stamped,
)


def _digest(body: bytes) -> bytes:
    return hashlib.blake2b(body, digest_size=8).digest()


class _Cursor:
    """The newest timestamp read from one container, and the lines read at exactly it.

    A cursor saved by an earlier run keeps only its timestamp (``seen`` is None): every
    line stamped at or before it counts as read.
    """

    __slots__ = ("seen", "ts_ns")

    def __init__(self, ts_ns: int = -1, seen: set[bytes] | None = None) -> None:
        self.ts_ns = ts_ns
        self.seen = seen

    def advance(self, ts_ns: int, digests: set[bytes]) -> None:
        """Lines stamped ``ts_ns`` (with these digests) were read."""
        if ts_ns > self.ts_ns:
            self.ts_ns = ts_ns
            self.seen = digests
        elif ts_ns == self.ts_ns and self.seen is not None:
            self.seen |= digests


class _Resume:
    """Where a new stream of one container picks up: lines up to the cursor were read.

    Only the start of a stream is filtered: within one stream the engine never repeats a
    line, so lines whose stamps are slightly out of order (stdout and stderr are stamped
    separately) are never dropped.
    """

    __slots__ = ("passed", "seen", "ts_ns")

    def __init__(self, cursor: _Cursor) -> None:
        self.ts_ns = cursor.ts_ns
        self.seen = None if cursor.seen is None else frozenset(cursor.seen)
        self.passed = cursor.ts_ns < 0

    def admit(self, ts_ns: int, digest: bytes) -> bool:
        if self.passed or ts_ns > self.ts_ns:
            self.passed = True
            return True
        return ts_ns == self.ts_ns and self.seen is not None and digest not in self.seen


class LogReader:
    def __init__(
        self,
        gateway: EngineGateway,
        sink: Callable[[LogBlock], None],
        cursors: Mapping[str, int] | None = None,
        on_lines: Callable[[str, int], None] = lambda service, count: None,
        on_end: Callable[[str], None] = lambda container: None,
    ) -> None:
        """``on_end``: a container's run was read to its end (its last block, named by the
        container's name as blocks are, went to the ``sink`` already): nothing more can
        continue what it printed."""
        self._gateway = gateway
        self._sink = sink
        self._on_lines = on_lines
        self._on_end = on_end
        self._lock = threading.Lock()
        self._cursors = {cid: _Cursor(ts) for cid, ts in (cursors or {}).items()}
        self._threads: dict[str, threading.Thread] = {}
        self._streams: dict[str, LogStream] = {}
        self._drained: dict[str, str] = {}  # container id -> started_at read to its end
        self._stopping = False

    def restore(self, cursors: Mapping[str, int]) -> None:
        """Resume from cursors an earlier run saved (before the first ``sync``)."""
        with self._lock:
            for cid, ts_ns in cursors.items():
                self._cursors.setdefault(cid, _Cursor(ts_ns))

    def cursors(self) -> dict[str, int]:
        with self._lock:
            return {cid: c.ts_ns for cid, c in self._cursors.items() if c.ts_ns >= 0}

    def following(self) -> frozenset[str]:
        with self._lock:
            return frozenset(cid for cid, t in self._threads.items() if t.is_alive())

    def read_to_end(self, containers: Sequence[ContainerSnapshot]) -> bool:
        """True when the run of each of these (stopped) containers was read to its end; the
        ones no reader follows yet are followed now (a container that died before any
        pass saw it running must not be judged before its last lines are read)."""
        done = True
        with self._lock:
            if self._stopping:
                return False
            for container in containers:
                cid = container.id
                if self._drained.get(cid) == container.started_at:
                    continue
                done = False
                if cid not in self._threads or not self._threads[cid].is_alive():
                    self._start(container)
        return done

    def sync(self, observed: ObservedState) -> list[str]:
        """Follow every container that may have unread lines; forget removed ones.

        Returns the names of containers that disappeared (their records can be closed).
        """
        present = {c.id: c for c in observed.containers if not c.oneoff}
        gone: list[str] = []
        with self._lock:
            if self._stopping:
                return gone
            for cid, thread in list(self._threads.items()):
                if not thread.is_alive():
                    del self._threads[cid]
                    self._streams.pop(cid, None)
                    if cid not in present:
                        gone.append(thread.name.removeprefix("logs-"))
            for cid in list(self._cursors):
                if cid not in present and cid not in self._threads:
                    del self._cursors[cid]
                    self._drained.pop(cid, None)
            for cid, container in present.items():
                if cid in self._threads:
                    continue
                running = container.status.has_process
                if not running and self._drained.get(cid) == container.started_at:
                    continue  # this run of it was read to its end already
                self._start(container)
        return gone

    def _start(self, container: ContainerSnapshot) -> None:
        """Follow ``container`` in a thread of its own (the lock held)."""
        thread = threading.Thread(
            target=self._follow,
            args=(container,),
            name=f"logs-{container.name}",
            daemon=True,
        )
        self._threads[container.id] = thread
        self._cursors.setdefault(container.id, _Cursor(seen=set()))
        thread.start()

    def _follow(self, container: ContainerSnapshot) -> None:
        cid = container.id
        with self._lock:
            cursor = self._cursors.setdefault(cid, _Cursor(seen=set()))
            resume = _Resume(cursor)
            # a microsecond early: float seconds cannot carry every nanosecond
            since = (cursor.ts_ns - 1000) / 1e9 if cursor.ts_ns >= 0 else None
        try:
            stream = self._gateway.follow_logs(cid, since)
        except EngineError as exc:
            logger.debug("{}: cannot follow its log: {}", container.name, exc)
            return
        with self._lock:
            if self._stopping:
                stream.close()
                return
            self._streams[cid] = stream
        try:
            for lines in stream:
                self._read(container, cursor, resume, lines)
        except EngineError as exc:
            logger.debug("{}: log stream ended: {}", container.name, exc)
        else:
            with self._lock:
                self._drained[cid] = container.started_at
            self._on_end(container.name)

    def _read(
        self, container: ContainerSnapshot, cursor: _Cursor, resume: _Resume, lines: list[bytes]
    ) -> None:
        """One read's complete lines: skip what was read before, advance the cursor, send."""
        if not resume.passed:
            lines = [raw for raw in lines if resume.admit(*_stamp_and_digest(raw, cursor))]
            if not lines:
                return
        block = self._block(container, cursor, lines)
        if block is None:
            block = self._line_by_line(container, cursor, lines)
        self._on_lines(container.service, block.count)
        self._sink(block)

    def _block(
        self, container: ContainerSnapshot, cursor: _Cursor, lines: list[bytes]
    ) -> LogBlock | None:
        """The whole read at once when every line is stamped by the engine and none is over
        the length limit; None if it needs more care (line by line)."""
        longest = max(map(len, lines)) - STAMP_WIDTH
        stamps = [raw[:STAMP_WIDTH] for raw in lines]
        if longest > MAX_LINE_BYTES or not stamped(stamps):
            return None
        newest = max(stamps)  # fixed-width UTC stamps sort as they read
        ts_ns = parse_timestamp(newest[:-1])
        if ts_ns is None:
            return None
        bodies = [raw[STAMP_WIDTH:] for raw in lines]
        text = clean_block(bodies, longest)
        assert text is not None  # no line is over the limit
        if stamps[-1] == newest and stamps.count(newest) == 1:
            digests = {_digest(bodies[-1])}
        else:
            digests = {_digest(b) for s, b in zip(stamps, bodies, strict=True) if s == newest}
        with self._lock:
            cursor.advance(ts_ns, digests)

        def stamp(index: int) -> int:
            parsed = parse_timestamp(stamps[index][:-1])
            return ts_ns if parsed is None else parsed

        return LogBlock(container.service, container.name, text, len(lines), stamp)

    def _line_by_line(
        self, container: ContainerSnapshot, cursor: _Cursor, lines: list[bytes]
    ) -> LogBlock:
        texts: list[str] = []
        stamps: list[int] = []
        for raw in lines:
            ts_ns, body = _split(raw, cursor.ts_ns)
            with self._lock:
                cursor.advance(ts_ns, {_digest(body)})
            texts.append(clean(body))
            stamps.append(ts_ns)
        text = "".join(f"{t}\n" for t in texts).encode("utf-8")
        return LogBlock(container.service, container.name, text, len(texts), stamps.__getitem__)

    def stop(self, timeout: float = 2.0) -> None:
        with self._lock:
            self._stopping = True
            streams = list(self._streams.values())
            threads = list(self._threads.values())
        for stream in streams:
            stream.close()
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))


def _split(raw: bytes, cursor_ts: int) -> tuple[int, bytes]:
    """A raw line's timestamp and text; a line without one is kept at the cursor's time."""
    stamp, _, body = raw.partition(b" ")
    ts_ns = parse_timestamp(stamp)
    if ts_ns is None:
        return max(cursor_ts, 0), raw
    return ts_ns, body


def _stamp_and_digest(raw: bytes, cursor: _Cursor) -> tuple[int, bytes]:
    ts_ns, body = _split(raw, cursor.ts_ns)
    return ts_ns, _digest(body)
