"""Log lines grouped into records, per container.

A record is one line, or a multi-line event read as one: a Python traceback (header to
exception line, chained tracebacks included), a Java stack trace (``\\tat``, ``Caused by``,
``... N more``), a Go panic with its goroutine dump, and generally any indented lines that
follow a line. Records are bounded: the first ``HEAD_LINES`` and the last ``TAIL_LINES``
lines are kept, the middle is counted.

Most lines are records of one line. Whether a line continues the record before it, or
starts a multi-line one, shows at its start (``STRUCTURAL``: indented, a Java ``Caused
by``, a Python or Go header); the detector has these found in the same scan as the patterns
and runs the assembler line by line only from such lines on, until the record ends.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass

from controller.model import LogLine

HEAD_LINES = 60
TAIL_LINES = 20

_PY_HEAD = "Traceback (most recent call last):"
_PY_CHAIN = (
    "During handling of the above exception",
    "The above exception was the direct cause",
    _PY_HEAD,
)
_GO_HEAD = re.compile(r"^(?:panic: |fatal error: |goroutine [0-9]+ \[)")
_GO_BODY = re.compile(
    r"^(?:goroutine [0-9]+ \[|\[signal |created by |[\w./*()\[\]-]+\(.*\)$|exit status )"
)
_JAVA_MORE = re.compile(r"^(?:Caused by: |Suppressed: |\.\.\. [0-9]+ more)")

# Lines that may continue a record or start a multi-line one, as Hyperscan expressions
# (case-sensitive, ``^`` at a line start). A line none of them matches ("plain") never
# continues a record in "line" mode and always starts a one-line record.
STRUCTURAL = (
    r"^[ \t]",
    _JAVA_MORE.pattern,
    r"^Traceback \(most recent call last\):",
    _GO_HEAD.pattern,
)


@dataclass(frozen=True, slots=True)
class Record:
    service: str
    container: str
    ts_ns: int
    lines: tuple[str, ...]
    omitted: int = 0  # lines dropped from the middle of a very long record

    @property
    def text(self) -> str:
        if not self.omitted:
            return "\n".join(self.lines)
        head = "\n".join(self.lines[:HEAD_LINES])
        tail = "\n".join(self.lines[HEAD_LINES:])
        return f"{head}\n[... {self.omitted} lines omitted ...]\n{tail}"


class _Pending:
    def __init__(self, line: LogLine, mode: str) -> None:
        self.first = line
        self.mode = mode  # "line" | "python" | "go"
        self.head: list[str] = [line.text]
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self.omitted = 0
        self.after_exception = False  # a Python traceback's exception line was seen

    def add(self, text: str) -> None:
        if len(self.head) < HEAD_LINES:
            self.head.append(text)
            return
        if len(self.tail) == self.tail.maxlen:
            self.omitted += 1
        self.tail.append(text)

    def record(self) -> Record:
        return Record(
            self.first.service,
            self.first.container,
            self.first.ts_ns,
            (*self.head, *self.tail),
            self.omitted,
        )


class RecordAssembler:
    """Groups one container's lines into records. ``feed`` returns the records it completed.

    A record stays open while lines continue it, so a caller flushes (``flush``) when no
    line came for a moment; a single-line record is then released at once.
    """

    def __init__(self) -> None:
        self._pending: _Pending | None = None

    @property
    def pending(self) -> bool:
        return self._pending is not None

    @property
    def line_by_line(self) -> bool:
        """The open record is a traceback or a panic: whether a plain line continues it
        depends on what came before, so it must see every line until it ends."""
        return self._pending is not None and self._pending.mode != "line"

    def feed(self, line: LogLine) -> list[Record]:
        done: list[Record] = []
        pending = self._pending
        if pending is not None and self._continues(pending, line.text):
            pending.add(line.text)
            return done
        if pending is not None:
            done.append(pending.record())
        self._pending = _Pending(line, self._mode(line.text))
        return done

    def flush(self) -> list[Record]:
        pending, self._pending = self._pending, None
        return [pending.record()] if pending is not None else []

    @staticmethod
    def _mode(text: str) -> str:
        if text.startswith(_PY_HEAD):
            return "python"
        if _GO_HEAD.match(text):
            return "go"
        return "line"

    @staticmethod
    def _continues(pending: _Pending, text: str) -> bool:
        indented = text[:1] in (" ", "\t")
        if pending.mode == "python":
            if text.startswith(_PY_CHAIN):  # a chained traceback: the record goes on
                pending.after_exception = False
                return True
            if pending.after_exception:  # only blank lines may follow the exception line
                return not text
            if not indented and text:
                pending.after_exception = True  # the exception line ends the traceback
            return True
        if pending.mode == "go":
            return indented or not text or bool(_GO_BODY.match(text))
        return indented or bool(_JAVA_MORE.match(text))
