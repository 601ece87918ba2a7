"""Observation: one consistent read of every container of the project."""

from __future__ import annotations

from controller.model import Clock, ObservedState, system_clock
from controller.observe.gateway import EngineGateway


class Observer:
    def __init__(self, gateway: EngineGateway, project: str, clock: Clock = system_clock) -> None:
        self._gateway = gateway
        self._project = project
        self._clock = clock

    def observe(self) -> ObservedState:
        """Read the project's containers now; raises ``EngineUnavailable`` when it cannot."""
        containers = tuple(self._gateway.list_containers(self._project))
        return ObservedState(self._project, self._clock(), containers)
