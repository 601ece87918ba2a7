"""Observation: one consistent read of the project's containers, what the declared probes
say, and the config hashes the compose model has now for the containers that run.

With a ``ContainerCache`` (the long-running controller) a read costs one list call and an
inspect of each container that changed; without one, every container is inspected. On a
swarm, the stack's services as the manager keeps them (their replicas, which are
deployed) come with it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from controller.model import (
    Clock,
    ContainerSnapshot,
    ObservedState,
    ProbeView,
    StackView,
    system_clock,
)
from controller.observe.gateway import EngineGateway
from controller.observe.informer import ContainerCache


def _none() -> Mapping[str, ProbeView]:
    return {}


def _no_hashes(containers: Sequence[ContainerSnapshot]) -> Mapping[str, str]:
    return {}


class Observer:
    def __init__(
        self,
        gateway: EngineGateway,
        project: str,
        clock: Clock = system_clock,
        probes: Callable[[], Mapping[str, ProbeView]] = _none,
        config_hashes: Callable[[Sequence[ContainerSnapshot]], Mapping[str, str]] = _no_hashes,
        cache: ContainerCache | None = None,
        stack: Callable[[], StackView] | None = None,
    ) -> None:
        self._gateway = gateway
        self._project = project
        self._clock = clock
        self._probes = probes
        self._config_hashes = config_hashes
        self.cache = cache
        self._stack = stack  # on a swarm: the stack's services as the manager keeps them

    def observe(self) -> ObservedState:
        """Read the project now; raises ``EngineUnavailable`` when it cannot."""
        began = self._clock()
        if self.cache is not None:
            containers = tuple(self.cache.containers())
        else:
            containers = tuple(self._gateway.list_containers(self._project))
        stack = self._stack() if self._stack is not None else None
        return ObservedState(
            self._project,
            self._clock(),
            containers,
            self._probes(),
            self._config_hashes(containers),
            began_at=began,
            stack=stack,
        )
