"""A fix step in Swarm's terms: what the actuator does when the project is a stack.

Swarm keeps a service's replicas and replaces a task that ended (its restart policy, read
as the service's ``restart``: ``deference`` leaves those to it, as it leaves a container
to Docker's restart policy). What Swarm does not do, the controller adds, each one call
to the manager:

- **restart, recreate**: ``docker service update --force``: Swarm replaces every task of
  the service as its update config says (a task cannot be restarted where it runs).
- **start**: ``docker service scale`` to the declared replicas where a person scaled it
  down and the service is declared ``enforce: true`` (otherwise a person's scale down is
  theirs: ``drift`` calls it ``scaled-down``, reported and left alone); where Swarm
  already wants them, the step says so and changes nothing. A service the stack does
  not deploy and a task Swarm cannot place have no step: they go to a human at once.
- **runbooks and the hook** as on one engine; an ``exec`` runs in a task's container
  through its node's engine.

- **rollback** (``rollback: auto``, an update Swarm paused: ``swarmchanges``):
  ``docker service rollback``: Swarm puts the service back on its ``PreviousSpec``.

Refused with the reason, as a failed step (the budget hands it to a human): a rebuild (a
swarm runs images from a registry: build, push, then ``docker stack deploy``) and an
unpause (a task is paused on its node's engine).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from controller.model import (
    Action,
    ContainerSnapshot,
    Issue,
    ObservedState,
    Runbook,
    RunbookStep,
    ServiceSpec,
    SwarmPause,
    SwarmUpdate,
)
from controller.observe.gateway import EngineGateway
from controller.remediate.strategies import Actuator, ComposeActions, Rollbacks, StepFailed
from controller.remediate.swarmchanges import rolled_back_from


class StackControl(Protocol):
    """What a step asks of a swarm manager (``observe.swarm.SwarmEngine``)."""

    def force_update(self, project: str, service: str) -> str: ...

    def scale(self, project: str, service: str, replicas: int) -> tuple[str, int | None]: ...

    def paused(self, project: str, service: str) -> SwarmPause | None: ...

    def rolled_back(self, project: str, service: str) -> SwarmPause | None: ...

    def rollback(self, project: str, service: str) -> SwarmPause | None: ...

    def updates(self, project: str) -> Mapping[str, SwarmUpdate]: ...


REFUSED = {
    Action.REBUILD: (
        "a swarm runs images from a registry, it does not build them: build and push the "
        "image, then docker stack deploy"
    ),
    Action.UNPAUSE: "a task is paused on its node's engine: docker unpause it there",
}


class SwarmActuator(Actuator):
    """``Actuator`` for a stack on a swarm (``project``: the stack's name)."""

    def __init__(
        self,
        stack: StackControl,
        project: str,
        gateway: EngineGateway,
        compose: ComposeActions,
        specs: Callable[[], Mapping[str, ServiceSpec]],
        observe: Callable[[], ObservedState],
        hook: Callable[[], RunbookStep | None],
        rollbacks: Rollbacks,
    ) -> None:
        super().__init__(gateway, compose, specs, observe, hook, rollbacks)
        self._stack = stack
        self._project = project

    def run(
        self,
        action: Action,
        spec: ServiceSpec,
        targets: Sequence[ContainerSnapshot],
        *,
        runbook: Runbook | None = None,
        issue: Issue | None = None,
    ) -> str:
        if action in REFUSED:
            raise StepFailed(REFUSED[action])
        if action in (Action.RESTART, Action.RECREATE):
            name = self._stack.force_update(self._project, spec.name)
            return f"docker service update --force {name} (Swarm replaces its tasks)"
        if action is Action.ROLLBACK:
            pause = self._stack.rollback(self._project, spec.name)
            if pause is None:
                return f"docker service rollback {self._project}_{spec.name}"
            return rolled_back_from(pause)
        if action is Action.START:
            name, before = self._stack.scale(self._project, spec.name, spec.replicas)
            if before is None:
                return f"{name} is global: Swarm runs a task on every node it fits"
            if before != spec.replicas:
                return f"docker service scale {name}={spec.replicas} (it was {before})"
            return (
                f"Swarm already keeps {spec.replicas} replica(s) of {name} and is placing "
                "them; nothing changed"
            )
        return super().run(action, spec, targets, runbook=runbook, issue=issue)
