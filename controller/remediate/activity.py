"""What people (and other tools) are doing to the project, read from engine events.

The controller must not fight a person: a container someone stopped or paused stays as
they left it (unless the service is declared ``enforce: true``), and a service in the
middle of a ``docker compose up``/``down``/recreate is not touched until it settles.

Events caused by the controller's own fixes are not people: the remediator marks the span
of each action it takes (``acting``), and an event is the controller's when the engine
stamped it inside that span or it arrives while the action runs. Not "while a worker is on
the service": a worker starts on a service because of a ``die``, and the ``stop`` that a
person's ``docker stop`` sends just after it must still count as the person's.

- ``stop`` or ``pause`` not caused by us: the service is "stopped by a person" until any
  container of it starts again (``start``/``unpause``).
- ``create``, ``destroy``, ``rename``, ``stop``, ``pause``, ``unpause`` not caused by us: an
  operation is in progress; the service is held for ``settle`` seconds after the last one.
  ``kill``/``die``/``oom`` alone are what a crash looks like: they hold nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from controller.model import Clock, system_clock

OPERATIONS = frozenset({"create", "destroy", "rename", "stop", "pause", "unpause"})
PERSON_STOPS = frozenset({"stop", "pause"})
STARTS = frozenset({"start", "unpause"})


class OperatorActivity:
    def __init__(self, clock: Clock = system_clock, settle: float = 3.0) -> None:
        self._clock = clock
        self._settle = settle
        self._lock = threading.Lock()
        self._held_until: dict[str, float] = {}
        self._stopped: dict[str, str] = {}  # service -> the action a person took
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

    def event(self, service: str, action: str, at: float | None = None) -> bool:
        """Record an engine event about ``service`` stamped ``at`` (epoch s; None if the
        engine did not say); True when it came from the controller's own action."""
        if not service:
            return False
        with self._lock:
            ours = self._caused_by_us(service, at)
            if action in STARTS:
                self._stopped.pop(service, None)
            if ours:
                return True
            if action in PERSON_STOPS:
                self._stopped[service] = action
            if action in OPERATIONS:
                self._held_until[service] = self._clock() + self._settle
            return False

    def _caused_by_us(self, service: str, at: float | None) -> bool:
        window = self._acting.get(service)
        if window is None:
            return False
        start, end = window
        if end is None:  # an action is running: what arrives now is its doing
            return True
        return at is not None and start <= at <= end  # stamped inside it, delivered late

    def held_for(self, service: str) -> float:
        """Seconds until an operation on ``service`` has settled (0 when none)."""
        with self._lock:
            return max(0.0, self._held_until.get(service, 0.0) - self._clock())

    def stopped_by_person(self, service: str) -> str | None:
        """``"stop"`` or ``"pause"`` when a person did that last, else None."""
        with self._lock:
            return self._stopped.get(service)
