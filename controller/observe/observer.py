"""Observation: one consistent read of the project's containers, what the declared probes
say, and the config hashes the compose model has now."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from controller.model import Clock, ObservedState, ProbeView, system_clock
from controller.observe.gateway import EngineGateway


def _none() -> Mapping[str, ProbeView]:
    return {}


def _no_hashes() -> Mapping[str, str]:
    return {}


class Observer:
    def __init__(
        self,
        gateway: EngineGateway,
        project: str,
        clock: Clock = system_clock,
        probes: Callable[[], Mapping[str, ProbeView]] = _none,
        config_hashes: Callable[[], Mapping[str, str]] = _no_hashes,
    ) -> None:
        self._gateway = gateway
        self._project = project
        self._clock = clock
        self._probes = probes
        self._config_hashes = config_hashes

    def observe(self) -> ObservedState:
        """Read the project now; raises ``EngineUnavailable`` when it cannot."""
        containers = tuple(self._gateway.list_containers(self._project))
        return ObservedState(
            self._project, self._clock(), containers, self._probes(), self._config_hashes()
        )
