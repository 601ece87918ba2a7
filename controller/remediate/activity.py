"""What people (and their tools) are doing to the project, read from the engine.

The controller must not fight a person. Two things make a service a person's:

- **An operation in progress**, read from the engine's own state, not from a quiet time:
  a container of the service is created but not started, or carries Compose's temporary
  ``<id>_`` name (both are what ``docker compose up`` shows while it recreates a
  container), or is being stopped (the engine sent it a signal for someone, and it has
  not died yet: a process that ignores SIGTERM keeps ``docker compose up`` busy for its
  whole stop timeout). The operation is over when the engine shows none of this. One
  that the engine still shows after ``operation_timeout`` seconds is called abandoned.
- **A stop or a pause on purpose**: a ``stop`` or ``pause`` event the controller did not
  cause, or a signal other than SIGKILL followed by the container's death (``docker
  stop``, ``docker compose stop``). The service stays the person's until any container
  of it starts again. A bare ``die`` (a crash) or a SIGKILL (``docker kill``) is not.

Events caused by the controller's own fixes are not people: the remediator marks the span
of each action it takes (``acting``), and an event is the controller's when the engine
stamped it inside that span or it arrives while the action runs.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Iterator, Sequence, Set
from contextlib import contextmanager

from controller.model import Clock, ContainerSnapshot, system_clock

PERSON_STOPS = frozenset({"stop", "pause"})
STARTS = frozenset({"start", "unpause"})
SIGKILL = 9
COMPOSE_TEMPORARY = re.compile(r"^[0-9a-f]{12}_")


def operation_in(containers: Sequence[ContainerSnapshot], ours: Set[str] = frozenset()) -> str:
    """What in the engine's state says an operation is in progress ("" when none);
    containers in ``ours`` were left so by the controller's own command, not a person's."""
    theirs = [c for c in containers if c.id not in ours]
    for c in theirs:
        if COMPOSE_TEMPORARY.match(c.name):
            return f"container {c.name} carries Compose's temporary name (a recreate)"
    for c in theirs:
        if c.status == "created":
            return f"container {c.name} is created but not started"
    return ""


class OperatorActivity:
    def __init__(self, clock: Clock = system_clock, operation_timeout: float = 300.0) -> None:
        self._clock = clock
        self._timeout = operation_timeout
        self._lock = threading.Lock()
        self._stopped: dict[str, str] = {}  # service -> the action a person took
        self._stopping: dict[str, int] = {}  # service -> signal a person's kill sent
        self._seen_since: dict[str, float] = {}  # service -> operation first seen
        self._left_by_us: set[str] = set()  # containers our own command left half-done
        # service -> (start, end) of the controller's last action on it; end None: running
        self._acting: dict[str, tuple[float, float | None]] = {}

    @contextmanager
    def acting(self, service: str) -> Iterator[None]:
        """The controller acts on ``service`` inside this block."""
        start = self._clock()
        with self._lock:
            self._acting[service] = (start, None)
        try:
            yield
        finally:
            with self._lock:
                self._acting[service] = (start, self._clock())

    def assume_acting(self, service: str, start: float, end: float) -> None:
        """A command of an earlier run of the controller may still be at work (it was
        killed while the command ran, and the engine carries on): events stamped from
        ``start`` to ``end`` are the controller's, not a person's."""
        with self._lock:
            self._acting[service] = (start, end)

    def left_by_us(self, containers: Iterable[ContainerSnapshot]) -> None:
        """What the controller's own command left created or under a temporary name
        (a ``compose up`` that failed half-way) is not a person's operation."""
        with self._lock:
            self._left_by_us.update(
                c.id for c in containers if c.status == "created" or COMPOSE_TEMPORARY.match(c.name)
            )

    def is_acting(self, service: str) -> bool:
        """A command of the controller is running on ``service`` right now (or may be: one
        an earlier run started and did not see end, within its assumed window)."""
        return self.acting_left(service) > 0

    def assumed_over(self, service: str) -> None:
        """The command an earlier run left unfinished is seen done (``assume_acting``):
        its window ends now, not at its assumed end."""
        with self._lock:
            window = self._acting.get(service)
            if window is not None and window[1] is not None:
                self._acting[service] = (window[0], min(window[1], self._clock()))

    def command_running(self, service: str) -> bool:
        """A command of this controller is running on ``service`` right now."""
        with self._lock:
            window = self._acting.get(service)
        return window is not None and window[1] is None

    def acting_left(self, service: str) -> float:
        """Seconds a command of the controller may still be at work on ``service``: inf
        while one runs, the rest of an assumed window (``assume_acting``), else 0."""
        with self._lock:
            window = self._acting.get(service)
        if window is None:
            return 0.0
        if window[1] is None:
            return float("inf")
        return max(0.0, window[1] - self._clock())

    def event(
        self, service: str, action: str, at: float | None = None, signal: int | None = None
    ) -> bool:
        """Record an engine event about ``service`` stamped ``at`` (epoch s; None if the
        engine did not say); True when it came from the controller's own action."""
        if not service:
            return False
        with self._lock:
            ours = self._caused_by_us(service, at)
            if action in STARTS:
                self._stopped.pop(service, None)
                self._stopping.pop(service, None)
            if ours:
                return True
            if action == "kill" and signal is not None:
                self._stopping[service] = signal
            elif action == "die" and service in self._stopping:
                if self._stopping.pop(service) != SIGKILL:
                    self._stopped[service] = "stop"  # a signal for someone, then death
            elif action in PERSON_STOPS:
                self._stopping.pop(service, None)
                self._stopped[service] = action
            return False

    def _caused_by_us(self, service: str, at: float | None) -> bool:
        window = self._acting.get(service)
        if window is None:
            return False
        start, end = window
        if end is None:  # an action is running: what arrives now is its doing
            return True
        return at is not None and start <= at <= end  # stamped inside it, delivered late

    def operation(self, service: str, containers: Sequence[ContainerSnapshot]) -> str:
        """Why a person's operation holds ``service`` now ("" when none does)."""
        with self._lock:
            if self._acting.get(service, (0.0, 0.0))[1] is None:
                return ""  # our own action: not a person's
            why = operation_in(containers, self._left_by_us)
            signal = self._stopping.get(service)
            if not why and signal is not None:
                why = f"a person's signal {signal} is stopping it"
            if not why:
                self._seen_since.pop(service, None)
                return ""
            self._seen_since.setdefault(service, self._clock())
            return why

    def abandoned(self, service: str) -> float:
        """Seconds the current operation has been seen for, past the timeout (<= 0: not
        abandoned yet; the negative value says how long until it is)."""
        with self._lock:
            since = self._seen_since.get(service)
        if since is None:
            return -self._timeout
        return self._clock() - since - self._timeout

    def stopped_by_person(self, service: str) -> str | None:
        """``"stop"`` or ``"pause"`` when a person did that last, else None."""
        with self._lock:
            return self._stopped.get(service)
