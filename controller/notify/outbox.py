"""Grouping and rate limiting per service, so a flapping service is one message, not fifty.

A service's transitions wait ``group_seconds`` from the first of them and then go out
together as one message. Each service has a token bucket of ``max_per_hour`` messages
refilled evenly over the hour: while it is empty, transitions keep waiting and are
grouped with later ones, not lost. What waits per service is bounded; beyond the bound
the oldest transitions are dropped (and counted by the caller). Pure: time is passed in.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from controller.notify.transitions import Transition

MAX_WAITING = 50  # transitions kept per service while it waits


@dataclass(frozen=True, slots=True)
class Batch:
    """One message's worth: a service's waiting transitions, oldest first."""

    service: str
    transitions: tuple[Transition, ...]


@dataclass(slots=True)
class _Waiting:
    tokens: float
    refilled_at: float
    since: float | None = None  # when the oldest waiting transition arrived
    items: deque[Transition] = field(default_factory=deque)


class Outbox:
    def __init__(self, group_seconds: float, max_per_hour: int) -> None:
        self._group = group_seconds
        self._capacity = float(max_per_hour)
        self._rate = max_per_hour / 3600.0
        self._services: dict[str, _Waiting] = {}

    def add(self, transition: Transition, now: float) -> list[Transition]:
        """Queue ``transition``; the transitions dropped to keep the bound (oldest)."""
        waiting = self._services.setdefault(
            transition.service, _Waiting(tokens=self._capacity, refilled_at=now)
        )
        if waiting.since is None:
            waiting.since = now
        waiting.items.append(transition)
        dropped: list[Transition] = []
        while len(waiting.items) > MAX_WAITING:
            dropped.append(waiting.items.popleft())
        return dropped

    def due(self, now: float) -> list[Batch]:
        """The batches to send now: grouped long enough, and a token left."""
        batches: list[Batch] = []
        for service, waiting in self._services.items():
            self._refill(waiting, now)
            if waiting.since is None or now - waiting.since < self._group:
                continue
            if waiting.tokens < 1.0:
                continue
            waiting.tokens -= 1.0
            batches.append(self._take(service, waiting))
        return batches

    def next_due(self, now: float) -> float | None:
        """Seconds until ``due`` may have something (None: nothing waits)."""
        waits: list[float] = []
        for waiting in self._services.values():
            if waiting.since is None:
                continue
            self._refill(waiting, now)
            grouped = waiting.since + self._group - now
            refilled = (1.0 - waiting.tokens) / self._rate if waiting.tokens < 1.0 else 0.0
            waits.append(max(grouped, refilled, 0.0))
        return min(waits) if waits else None

    def drain(self) -> list[Batch]:
        """Everything still waiting, whatever the window and the rate (at shutdown)."""
        return [
            self._take(service, waiting)
            for service, waiting in self._services.items()
            if waiting.items
        ]

    def _refill(self, waiting: _Waiting, now: float) -> None:
        elapsed = max(0.0, now - waiting.refilled_at)
        waiting.tokens = min(self._capacity, waiting.tokens + elapsed * self._rate)
        waiting.refilled_at = now

    @staticmethod
    def _take(service: str, waiting: _Waiting) -> Batch:
        batch = Batch(service, tuple(waiting.items))
        waiting.items.clear()
        waiting.since = None
        return batch
