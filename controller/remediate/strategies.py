"""The strategy ladder for each kind of drift, and running one step of it.

A ladder lists actions from the gentlest to the strongest; a worker moves up it only
when the previous step did not verify. Kinds a controller must not "fix" on its own
(a container a person paused) have an empty ladder unless the service is enforced.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from controller.detect.redact import redact
from controller.issues.present import presented
from controller.model import (
    DEFAULT_CAPTURE,
    Action,
    ContainerSnapshot,
    Drift,
    DriftKind,
    Issue,
    ObservedState,
    Runbook,
    RunbookStep,
    ServiceSpec,
    StepKind,
)
from controller.observe.gateway import EngineGateway

LADDERS: dict[DriftKind, tuple[Action, ...]] = {
    DriftKind.MISSING: (Action.START,),
    DriftKind.REPLICAS: (Action.START,),
    DriftKind.EXITED: (Action.RESTART, Action.RECREATE),
    DriftKind.UNHEALTHY: (Action.RESTART, Action.RECREATE),
    DriftKind.FAILING_HEALTHCHECK: (),
    DriftKind.HEALTHCHECK_STALLED: (),  # a person decides: a restart only resumes the check
    DriftKind.RESTARTING: (Action.RESTART, Action.RECREATE),
    DriftKind.DEAD: (Action.RECREATE,),
    DriftKind.JOB_FAILED: (Action.START, Action.RECREATE),
    DriftKind.PAUSED: (Action.UNPAUSE,),
    DriftKind.PROBE_FAILED: (Action.RESTART, Action.RECREATE),
    DriftKind.OUTDATED: (Action.RECREATE,),
    DriftKind.ORPHAN: (),
    DriftKind.SCALED_DOWN: (Action.START,),  # only with enforce: a person scaled it
    DriftKind.UNPLACEABLE: (),  # where Swarm places a task is not the controller's to change
    DriftKind.UNDEPLOYED: (),  # a scale cannot bring back a service that does not exist
}

# When a service has several drifts, the first kind here decides the action.
PRECEDENCE: tuple[DriftKind, ...] = (
    DriftKind.UNDEPLOYED,
    DriftKind.UNPLACEABLE,
    DriftKind.MISSING,
    DriftKind.DEAD,
    DriftKind.EXITED,
    DriftKind.RESTARTING,
    DriftKind.UNHEALTHY,
    DriftKind.PROBE_FAILED,
    DriftKind.SCALED_DOWN,
    DriftKind.REPLICAS,
    DriftKind.JOB_FAILED,
    DriftKind.PAUSED,
    DriftKind.OUTDATED,
    DriftKind.FAILING_HEALTHCHECK,
    DriftKind.HEALTHCHECK_STALLED,
    DriftKind.ORPHAN,
)
# Reported, never acted on: the engine is still judging (its verdict is another drift).
WATCHED = frozenset({DriftKind.FAILING_HEALTHCHECK})


def primary(drifts: Sequence[Drift]) -> Drift:
    """The drift that decides the action when a service has several."""
    return min(drifts, key=lambda d: PRECEDENCE.index(d.kind))


def ladder(drift: Drift, spec: ServiceSpec) -> tuple[Action, ...]:
    if drift.kind in (DriftKind.PAUSED, DriftKind.SCALED_DOWN) and not spec.enforce:
        return ()
    if drift.kind is DriftKind.OUTDATED and not spec.recreate_outdated:
        return ()
    return LADDERS[drift.kind]


def left_alone_reason(drift: Drift, spec: ServiceSpec) -> str:
    """Why a drift with an empty ladder is left to a person (or, for an outdated config,
    only reported)."""
    if drift.kind is DriftKind.PAUSED:
        return (
            f"{spec.name} was paused, which a person does on purpose: the controller leaves "
            f"it alone (declare services.{spec.name}.enforce: true to unpause it)"
        )
    if drift.kind is DriftKind.SCALED_DOWN:
        return (
            f"{drift.title} by a person: the controller leaves it alone (declare "
            f"services.{spec.name}.enforce: true to have it brought back)"
        )
    if drift.kind is DriftKind.UNPLACEABLE:
        return (
            f"{drift.title} ({drift.detail}): the controller cannot change where Swarm "
            "places tasks; a person relaxes the service's placement constraints or resource "
            "reservations (then docker stack deploy), or adds a node that fits"
        )
    if drift.kind is DriftKind.UNDEPLOYED:
        return drift.detail  # service S is not deployed: run docker stack deploy ...
    if drift.kind is DriftKind.OUTDATED:
        return (
            f"{spec.name} runs a config older than the compose model: `docker compose up -d "
            f"{spec.name}` recreates it (or declare services.{spec.name}.recreate_outdated: "
            "true to let the controller do it)"
        )
    if drift.kind is DriftKind.HEALTHCHECK_STALLED:
        return (
            f"the engine stopped running {spec.name}'s healthcheck, so its health is unknown: "
            f"`docker restart {' '.join(drift.containers)}` (or docker pause then docker "
            "unpause) starts it again; the controller does not restart a service for this"
        )
    return f"no strategy fits a {drift.kind} drift"


class ComposeActions(Protocol):
    """What the actuator needs of Compose (``ComposeCli`` in production, a fake in tests)."""

    def up(
        self,
        service: str,
        *,
        force_recreate: bool = False,
        build: bool = False,
        replicas: int | None = None,
        timeout: float = 120.0,
    ) -> object: ...

    def revert(self, file: Path, service: str, timeout: float = 300.0) -> object: ...


class StepFailed(Exception):
    """A runbook or hook step ran and failed (non-zero exit, rejected capture ...)."""


_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
OUTPUT_CHARS = 300


def fill_argv(argv: Sequence[str], captures: Mapping[str, str], allowed: str) -> list[str]:
    """``argv`` with ``{name}`` replaced by captured values that pass ``allowed``.

    A value is never split, quoted or interpreted: it becomes (part of) one argv element,
    and only after the strict pattern accepted it. Nothing here reaches a shell.
    """
    check = re.compile(allowed)

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in captures:
            raise StepFailed(f"the finding captured no {name!r}")
        if check.fullmatch(captures[name]) is None:
            raise StepFailed(f"captured {name} rejected by {allowed}")
        return captures[name]

    return [_PLACEHOLDER.sub(value, arg) for arg in argv]


def _tail(output: bytes | str) -> str:
    text = output.decode("utf-8", "replace") if isinstance(output, bytes) else output
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return redact(lines[-1][:OUTPUT_CHARS]) if lines else "(no output)"


class Rollbacks(Protocol):
    """What the actuator asks of rollbacks (``revert.Reverter``)."""

    def revert(self, spec: ServiceSpec) -> str: ...

    def pinned(self, service: str) -> Path | None: ...

    def missing_image(self, service: str) -> str: ...


class Actuator:
    """Runs one step against the engine, Compose, or the user's hook.

    Raises ``EngineError`` or ``StepFailed`` when the step fails; returns what it did.
    A service rolled back to a snapshot is started and recreated from the snapshot's file
    (never onto the change that was bad); one whose declared image does not exist is not
    recreated at all (nothing is stopped for an image that is not there).
    """

    def __init__(
        self,
        gateway: EngineGateway,
        compose: ComposeActions,
        specs: Callable[[], Mapping[str, ServiceSpec]],  # the declaration in force
        observe: Callable[[], ObservedState],
        hook: Callable[[], RunbookStep | None],
        rollbacks: Rollbacks,
    ) -> None:
        self._gateway = gateway
        self._compose = compose
        self._specs = specs
        self._observe = observe
        self._hook = hook
        self._rollbacks = rollbacks

    def run(
        self,
        action: Action,
        spec: ServiceSpec,
        targets: Sequence[ContainerSnapshot],
        *,
        runbook: Runbook | None = None,
        issue: Issue | None = None,
    ) -> str:
        """Do ``action`` on ``spec``'s service; ``targets`` are the containers that drifted."""
        if action is Action.ROLLBACK:
            return self._rollbacks.revert(spec)
        if action in (Action.START, Action.RECREATE, Action.REBUILD):
            pinned = self._rollbacks.pinned(spec.name)
            if pinned is not None:
                self._compose.revert(pinned, spec.name)
                return f"docker compose up --force-recreate with its last-good snapshot ({pinned})"
            missing = "" if action is Action.REBUILD else self._rollbacks.missing_image(spec.name)
            if missing:
                raise StepFailed(f"its image {missing} does not exist here; nothing was stopped")
        if action is Action.START:
            self._compose.up(spec.name, replicas=spec.replicas)
            return f"docker compose up --no-deps --scale {spec.name}={spec.replicas}"
        if action is Action.RECREATE:
            self._compose.up(spec.name, force_recreate=True, replicas=spec.replicas)
            return "docker compose up --no-deps --force-recreate"
        if action is Action.REBUILD:
            self._compose.up(spec.name, force_recreate=True, build=True, replicas=spec.replicas)
            return "docker compose up --no-deps --build --force-recreate"
        if action is Action.RESTART:
            if not targets:  # nothing to restart (it vanished): start it instead
                self._compose.up(spec.name, replicas=spec.replicas)
                return "no container to restart; docker compose up --no-deps"
            for container in targets:  # as long to stop as compose would give it
                self._gateway.restart(container.id, timeout=spec.stop_timeout)
            return "restarted " + ", ".join(c.name for c in targets)
        if action is Action.UNPAUSE:
            for container in targets:
                self._gateway.unpause(container.id)
            return "unpaused " + ", ".join(c.name for c in targets)
        if action is Action.RUNBOOK and runbook is not None:
            done = self._step(runbook.step, issue, runbook.capture_pattern)
            if runbook.then_restart:
                done += "; " + self.run(Action.RESTART, spec, self._containers(spec.name))
            return f"runbook {runbook.name}: {done}"
        hook = self._hook()
        if action is Action.HOOK and hook is not None:
            return "hook: " + self._step(hook, issue, DEFAULT_CAPTURE)
        raise StepFailed(f"{action} cannot run here")

    def _containers(self, service: str) -> list[ContainerSnapshot]:
        return [c for c in self._observe().of(service) if c.status.running]

    def _step(self, step: RunbookStep, issue: Issue | None, allowed: str) -> str:
        captures = issue.captures if issue is not None else {}
        argv = fill_argv(step.argv, captures, allowed)
        if step.kind == StepKind.EXEC:
            running = self._containers(step.service)
            if not running:
                raise StepFailed(f"no running container of {step.service} to exec in")
            code, output = self._gateway.exec(
                running[0].id, argv, user=step.user, env=step.env, timeout=step.timeout
            )
            if code != 0:
                raise StepFailed(f"{argv[0]} in {step.service} exited {code}: {_tail(output)}")
            return f"{argv[0]} in {step.service} exited 0"
        if step.kind == StepKind.COMPOSE and step.action is not None:
            target = self._specs().get(step.service)
            if target is None:  # a reload took it out of the declaration
                raise StepFailed(f"{step.service} is no longer declared")
            return self.run(step.action, target, self._containers(step.service))
        if step.kind == StepKind.HOOK:
            doing = Action.HOOK if step == self._hook() else Action.RUNBOOK
            return self._run_hook(argv, step, _payload(issue, doing))
        raise StepFailed(f"unknown step kind {step.kind}")

    @staticmethod
    def _run_hook(argv: list[str], step: RunbookStep, payload: str) -> str:
        try:
            done = subprocess.run(  # noqa: S603 - the user's own command, declared by them
                argv,
                input=payload,
                capture_output=True,
                text=True,
                timeout=step.timeout,
                env={**os.environ, **step.env},
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise StepFailed(f"hook {argv[0]} timed out after {step.timeout:g} s") from None
        except OSError as exc:
            raise StepFailed(f"hook {argv[0]} cannot run: {exc}") from None
        if done.returncode != 0:
            raise StepFailed(f"hook {argv[0]} exited {done.returncode}: {_tail(done.stderr)}")
        return f"{argv[0]} exited 0"


def _payload(issue: Issue | None, running: Action) -> str:
    """The issue as a hook reads it on stdin: as the JSON document shows it, its step
    running."""
    if issue is None:
        return "{}"
    return json.dumps({**presented(issue, None), "plan": f"running: {running}"})
