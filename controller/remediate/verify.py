"""Verification: a fix counts only once the service is ready and stays ready.

Ready means exactly as declared (``reconcile.service_ready``: running, the declared number
of replicas, healthy where a healthcheck is declared) for ``min_ready`` seconds in a row
with no restart in between, before ``verify_timeout`` runs out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from controller.model import Clock, ContainerSnapshot, ObservedState, ServiceSpec
from controller.observe.gateway import EngineError
from controller.reconcile import service_drifts, service_ready

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
) -> VerifyResult:
    """Poll until ready for ``min_ready`` s, or ``verify_timeout`` s pass.

    ``wait(seconds)`` sleeps and returns True when the controller is shutting down;
    ``clock`` and ``wait`` are injected so tests run without sleeping.
    """
    deadline = clock() + spec.verify_timeout
    ready_since: float | None = None
    ready_set: tuple[tuple[str, str, int], ...] = ()
    last = "not observed yet"
    while True:
        now = clock()
        try:
            containers = observe().of(spec.name)
        except EngineError as exc:
            ready_since, last = None, f"engine error while verifying: {exc}"
        else:
            if service_ready(spec, containers):
                current = _fingerprint(containers)
                if ready_since is None or current != ready_set:
                    ready_since, ready_set = now, current
                if now - ready_since >= spec.min_ready:
                    return VerifyResult(True, f"ready for {spec.min_ready:g} s")
                last = "ready, waiting to see it stay ready"
            else:
                ready_since = None
                drifts = service_drifts(spec, containers)
                last = drifts[0].title if drifts else "health still starting"
        if now >= deadline:
            return VerifyResult(False, f"not ready after {spec.verify_timeout:g} s: {last}")
        if wait(POLL_SECONDS):
            return VerifyResult(False, "cut short by shutdown", cancelled=True)
