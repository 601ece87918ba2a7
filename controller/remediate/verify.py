"""Verification: a fix counts only once the service is ready, stays ready, and the error
that triggered it has stopped.

Ready means exactly as declared (``reconcile.service_ready``: running, the declared number
of replicas, healthy where a healthcheck is declared) for ``hold`` seconds in a row with no
restart in between, and no recurrence of the triggering log error (``recurred``) since the
step began, all before ``timeout`` runs out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from controller.model import Clock, ContainerSnapshot, ObservedState, ServiceSpec
from controller.observe.gateway import EngineError
from controller.reconcile import drifts_of, ready_in

POLL_SECONDS = 0.5


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    detail: str
    cancelled: bool = False


def _fingerprint(containers: tuple[ContainerSnapshot, ...]) -> tuple[tuple[str, str, int], ...]:
    # the same containers, not restarted since: id, start time and restart count unchanged
    return tuple((c.id, c.started_at, c.restart_count) for c in containers)


def verify(
    spec: ServiceSpec,
    observe: Callable[[], ObservedState],
    clock: Clock,
    wait: Callable[[float], bool],
    *,
    hold: float | None = None,
    timeout: float | None = None,
    recurred: Callable[[], str | None] = lambda: None,
) -> VerifyResult:
    """Poll until the service is ready for ``hold`` s (default ``spec.min_ready``).

    ``wait(seconds)`` sleeps and returns True when the controller is shutting down;
    ``clock`` and ``wait`` are injected so tests run without sleeping.
    """
    hold = spec.min_ready if hold is None else hold
    deadline = clock() + max(spec.verify_timeout if timeout is None else timeout, hold + 5.0)
    ready_since: float | None = None
    ready_set: tuple[tuple[str, str, int], ...] = ()
    last = "not observed yet"
    while True:
        now = clock()
        again = recurred()
        if again:
            return VerifyResult(False, f"the error came back: {again}")
        try:
            observed = observe()
        except EngineError as exc:
            ready_since, last = None, f"engine error while verifying: {exc}"
        else:
            containers = observed.of(spec.name)
            if ready_in(spec, observed):
                current = _fingerprint(containers)
                if ready_since is None or current != ready_set:
                    ready_since, ready_set = now, current
                if now - ready_since >= hold:
                    return VerifyResult(True, f"ready for {hold:g} s")
                last = "ready, waiting to see it stay ready"
            else:
                ready_since = None
                drifts = drifts_of(spec, observed)
                last = drifts[0].title if drifts else "health or probes not passing yet"
        if now >= deadline:
            return VerifyResult(False, f"not verified in time: {last}")
        if wait(POLL_SECONDS):
            return VerifyResult(False, "cut short by shutdown", cancelled=True)
