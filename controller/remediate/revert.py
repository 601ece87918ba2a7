"""Carrying a rollback out, and keeping a rolled-back service where it was put.

A rollback is one step (the reconciler decides it, the runner records it before it runs,
the prover proves it like any other): ``docker compose up --detach --no-deps
--force-recreate --no-build --pull never SERVICE`` with the last-good snapshot's compose
file, under the project's own name, so Compose itself recreates the service as it was
when it was good, and its dependencies are left alone. Before anything is stopped, the
snapshot's image must still be there (its tag) and its file readable; otherwise the step
fails and the running containers are untouched.

Once rolled back, the service is the snapshot's until its compose files change: a later
start or recreate of it by the controller uses the snapshot's file too (the controller
never brings back a change that was bad), and a service whose declared image does not
exist is never recreated onto it (nothing is stopped for an image that is not there).
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

from loguru import logger

from controller.logfields import about
from controller.metrics import Metrics
from controller.model import (
    Action,
    ChangeVerdict,
    Clock,
    RolledBack,
    ServiceSpec,
    Snapshot,
    to_datetime,
)
from controller.observe.gateway import EngineGateway
from controller.remediate.lastgood import LastGood, target
from controller.remediate.strategies import StepFailed


class DeclaredModel:
    """What the compose files declare now (``observe.compose_model.ConfigHashes``), and
    whether an image exists in the engine."""

    def __init__(
        self,
        hashes: Callable[[], Mapping[str, str]],
        image_of: Callable[[str], str],
        builds: Callable[[str], bool],
        image_exists: Callable[[str], bool],
    ) -> None:
        self.hashes = hashes
        self.image_of = image_of
        self.builds = builds
        self.image_exists = image_exists


class RevertCompose(Protocol):
    def revert(self, file: Path, service: str, timeout: float = 300.0) -> object: ...

    def revert_args(self, file: Path, service: str) -> list[str]: ...


class Reverter:
    def __init__(
        self,
        *,
        lastgood: LastGood,
        compose: RevertCompose,
        gateway: EngineGateway,
        declared: DeclaredModel,
        metrics: Metrics,
        clock: Clock,
    ) -> None:
        self._lastgood = lastgood
        self._compose = compose
        self._gateway = gateway
        self._declared = declared
        self._metrics = metrics
        self._clock = clock

    def revert(self, spec: ServiceSpec) -> str:
        """Roll ``spec``'s service back to the last good snapshot of its bad change;
        ``StepFailed`` when that cannot be done (nothing was stopped then)."""
        service = spec.name
        record = self._lastgood.get(service)
        change = record.change
        snapshot = target(record, change) if change is not None else None
        if snapshot is None:
            raise StepFailed("no last-good snapshot to roll back to")
        self._check(snapshot)
        self._compose.revert(Path(snapshot.file), service)
        return f"docker compose up with snapshot {snapshot.number} ({snapshot.file})"

    def command(self, snapshot: Snapshot, service: str) -> str:
        """The exact command that rolls ``service`` back to ``snapshot``, for a person
        (quoted for a shell; the controller itself runs it as an argv)."""
        return shlex.join(self._compose.revert_args(Path(snapshot.file), service))

    def _check(self, snapshot: Snapshot) -> None:
        if self._gateway.image(snapshot.tag) is None:
            raise StepFailed(
                f"the snapshot's image {snapshot.tag} is gone (removed or pruned); "
                "nothing was stopped"
            )
        if not Path(snapshot.file).is_file():
            raise StepFailed(f"the snapshot's file {snapshot.file} is gone; nothing was stopped")

    def pinned(self, service: str) -> Path | None:
        """The snapshot file a rolled-back service runs (a start or recreate uses it)."""
        record = self._lastgood.get(service)
        rolled = record.rolled_back
        if rolled is None:
            return None
        for snapshot in record.snapshots:
            if snapshot.number == rolled.snapshot:
                self._check(snapshot)
                return Path(snapshot.file)
        return None

    def missing_image(self, service: str) -> str:
        """The image the compose files declare for ``service`` when it does not exist and
        cannot be built ("" otherwise): a recreate onto it would stop what runs for
        nothing."""
        if self._declared.builds(service):
            return ""
        image = self._declared.image_of(service)
        return image if image and not self._declared.image_exists(image) else ""

    def done(self, service: str, *, proven: bool) -> None:
        """The rollback step was proven (the service runs the snapshot now) or failed."""
        record = self._lastgood.get(service)
        change = record.change
        if proven and change is None:  # a swarm's: Swarm put back its previous spec
            self._metrics.rollback_done(service, "rolled_back")
            return
        if not proven or change is None:
            self._lastgood.revert_failed(service)
            self._metrics.rollback_done(service, "failed")
            return
        snapshot = target(record, change)
        if snapshot is None:  # let go meanwhile (it never is while a rollback is pending)
            self._lastgood.revert_failed(service)
            return
        self._lastgood.rolled_back(
            service,
            RolledBack(
                change=change.id,
                bad=change.after,
                snapshot=snapshot.number,
                runs=snapshot.reverts_to,
                because=change.reason,
                declared_hash=self._declared.hashes().get(service, ""),
                at=to_datetime(self._clock()),
            ),
        )
        self._metrics.rollback_done(service, "rolled_back")
        about(service, action=Action.ROLLBACK).warning(
            "{}: rolled back from {} to snapshot {} because {}",
            service,
            change.after,
            snapshot.number,
            change.reason,
        )

    def held(self, service: str) -> str:
        """A bad change that never ran (its image does not exist) while the service runs
        its last good snapshot: it is held there, nothing is run. The resolution."""
        record = self._lastgood.get(service)
        change = record.change
        snapshot = target(record, change) if change is not None else None
        if change is None or snapshot is None or change.verdict is not ChangeVerdict.BAD:
            return ""
        self._lastgood.rolled_back(
            service,
            RolledBack(
                change=change.id,
                bad=change.after,
                snapshot=snapshot.number,
                runs=record.running or snapshot.identity,
                because=change.reason,
                declared_hash=change.after.config_hash,
                held=True,
                at=to_datetime(self._clock()),
            ),
        )
        self._metrics.rollback_done(service, "held")
        text = (
            f"held back on snapshot {snapshot.number} ({snapshot.identity}): the change to "
            f"{change.missing_image} never ran because {change.reason}"
        )
        logger.warning("{}: {}", service, text)
        return text
