"""The strategy ladder for each kind of drift, and running one step of it.

A ladder lists actions from the gentlest to the strongest; a worker moves up it only
when the previous step did not verify. Kinds a controller must not "fix" on its own
(a container a person paused) have an empty ladder unless the service is enforced.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from controller.model import Action, ContainerSnapshot, Drift, DriftKind, ServiceSpec
from controller.observe.gateway import EngineGateway

LADDERS: dict[DriftKind, tuple[Action, ...]] = {
    DriftKind.MISSING: (Action.START,),
    DriftKind.REPLICAS: (Action.START,),
    DriftKind.EXITED: (Action.RESTART, Action.RECREATE),
    DriftKind.UNHEALTHY: (Action.RESTART, Action.RECREATE),
    DriftKind.RESTARTING: (Action.RESTART, Action.RECREATE),
    DriftKind.DEAD: (Action.RECREATE,),
    DriftKind.JOB_FAILED: (Action.START, Action.RECREATE),
    DriftKind.PAUSED: (Action.UNPAUSE,),
}

# When a service has several drifts, the first kind here decides the action.
PRECEDENCE: tuple[DriftKind, ...] = (
    DriftKind.MISSING,
    DriftKind.DEAD,
    DriftKind.EXITED,
    DriftKind.RESTARTING,
    DriftKind.UNHEALTHY,
    DriftKind.REPLICAS,
    DriftKind.JOB_FAILED,
    DriftKind.PAUSED,
)

RESTART_TIMEOUT = 10.0  # seconds a container gets to stop before SIGKILL


def primary(drifts: Sequence[Drift]) -> Drift:
    """The drift that decides the action when a service has several."""
    return min(drifts, key=lambda d: PRECEDENCE.index(d.kind))


def ladder(drift: Drift, spec: ServiceSpec) -> tuple[Action, ...]:
    if drift.kind is DriftKind.PAUSED and not spec.enforce:
        return ()
    return LADDERS[drift.kind]


def left_alone_reason(drift: Drift, spec: ServiceSpec) -> str:
    """Why a drift with an empty ladder is left to a person."""
    if drift.kind is DriftKind.PAUSED:
        return (
            f"{spec.name} was paused, which a person does on purpose: the controller leaves "
            f"it alone (declare services.{spec.name}.enforce: true to unpause it)"
        )
    return f"no strategy fits a {drift.kind} drift"


class ComposeActions(Protocol):
    """What the actuator needs of Compose (``ComposeCli`` in production, a fake in tests)."""

    def up(
        self,
        service: str,
        *,
        force_recreate: bool = False,
        replicas: int | None = None,
        timeout: float = 120.0,
    ) -> object: ...


class Actuator:
    """Runs one action against the engine or Compose; raises ``EngineError`` when it fails."""

    def __init__(self, gateway: EngineGateway, compose: ComposeActions) -> None:
        self._gateway = gateway
        self._compose = compose

    def run(self, action: Action, spec: ServiceSpec, targets: Sequence[ContainerSnapshot]) -> str:
        """Do ``action`` on ``spec``'s service; ``targets`` are the containers that drifted."""
        if action is Action.START:
            self._compose.up(spec.name, replicas=spec.replicas)
            return f"docker compose up --no-deps --scale {spec.name}={spec.replicas}"
        if action is Action.RECREATE:
            self._compose.up(spec.name, force_recreate=True, replicas=spec.replicas)
            return "docker compose up --no-deps --force-recreate"
        if action is Action.RESTART:
            if not targets:  # nothing to restart (it vanished): start it instead
                self._compose.up(spec.name, replicas=spec.replicas)
                return "no container to restart; docker compose up --no-deps"
            for container in targets:
                self._gateway.restart(container.id, timeout=RESTART_TIMEOUT)
            return "restarted " + ", ".join(c.name for c in targets)
        if action is Action.UNPAUSE:
            for container in targets:
                self._gateway.unpause(container.id)
            return "unpaused " + ", ".join(c.name for c in targets)
        raise ValueError(f"unknown action {action}")
