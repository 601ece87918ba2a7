"""The compose model as Compose renders it now, and the config hash it has for each
service, refreshed when the compose or env files change.

A container's ``com.docker.compose.config-hash`` label is the hash of the service's config
when Compose created it; the hash the rendered model has now (``ComposeCli.rendered``) is
the one it would have today. They differ when someone edited the compose file (or an env
file) since: the container is outdated. The rendered model also says which image each
service declares (a rollback asks whether that image exists). Both are recomputed only
when a file's size or modification time changed, so a pass costs a few ``stat`` calls,
not a run of ``docker compose``.

A service that shares another service's namespace (``network_mode``, ``ipc`` or ``pid``
set to ``service:X``) is hashed by Compose with ``container:<X's container id>`` in its
place (``up`` resolves the reference before it hashes), so its hash depends on which
container X runs: ``for_containers`` substitutes the observed id and hashes that model,
again only when a file or that id changed. A service with ``volumes_from`` a service is
hashed with a bare container id no compose file can express: its hash is unknown and its
containers are never called outdated (a missed report, never a false one).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from loguru import logger

from controller.model import ContainerSnapshot
from controller.observe.compose_cli import signature
from controller.observe.gateway import EngineError

SHARED = ("network_mode", "ipc", "pid")  # ``service:X`` here is hashed as X's container


class HashSource(Protocol):
    def config(self, timeout: float = 60.0) -> dict[str, Any]: ...

    def hashes_of(self, document: Mapping[str, Any], timeout: float = 60.0) -> dict[str, str]: ...


def shared_namespaces(model: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """Service -> {field: the service whose namespace it shares} (``service:X`` values)."""
    services = model.get("services") or {}
    found: dict[str, dict[str, str]] = {}
    for name, spec in services.items() if isinstance(services, dict) else ():
        if not isinstance(spec, dict):
            continue
        refs = {
            key: value.removeprefix("service:")
            for key in SHARED
            if isinstance(value := spec.get(key), str) and value.startswith("service:")
        }
        if refs:
            found[name] = refs
    return found


def volumes_from_services(model: Mapping[str, Any]) -> set[str]:
    """Services with ``volumes_from`` naming a service (not ``container:...``)."""
    services = model.get("services") or {}
    return {
        name
        for name, spec in (services.items() if isinstance(services, dict) else ())
        if isinstance(spec, dict)
        and any(
            isinstance(entry, str) and not entry.startswith("container:")
            for entry in spec.get("volumes_from") or ()
        )
    }


class ConfigHashes:
    def __init__(self, compose: HashSource, files: Sequence[Path]) -> None:
        self._compose = compose
        self._files = tuple(files)
        self._signature: tuple[tuple[int, int], ...] | None = None
        self._hashes: dict[str, str] = {}
        self._model: dict[str, Any] = {}
        self._shared: dict[str, dict[str, str]] = {}
        self._resolved_for: tuple[tuple[str, str, str], ...] | None = None
        self._resolved: dict[str, str] = {}
        self._hashed: tuple[tuple[int, int], ...] | None = None  # files the hashes are of
        self._model_lock = threading.Lock()  # one reading of the model at a time
        self._hash_lock = threading.Lock()  # ... and of its hashes (taken first)

    def warm(self) -> None:
        """Read the model and then its hashes now, on a thread of their own (two runs of
        Compose), while the controller starts: its first step (a start asks which image
        the model declares) waits at most for the model, never for the hashes."""
        threading.Thread(target=self.current, name="compose-model", daemon=True).start()

    def _stat(self) -> tuple[tuple[int, int], ...]:
        return signature(self._files)

    def _refresh(self) -> None:
        """The model as Compose renders the files now (read again when one changed)."""
        with self._model_lock:
            signature = self._stat()
            if signature == self._signature:
                return
            try:
                self._model = self._compose.config()
            except EngineError as exc:
                logger.warning("cannot read the compose model: {}", exc)
                return
            self._shared = shared_namespaces(self._model)
            if self._signature is not None:
                logger.info("compose model changed on disk; config hashes recomputed")
            self._signature = signature

    def _refresh_hashes(self) -> None:
        """The model's config hashes, computed again when the model was read again."""
        with self._hash_lock:
            self._refresh()
            with self._model_lock:
                model, signature = self._model, self._signature
            if signature is None or signature == self._hashed:
                return
            try:
                hashes = self._compose.hashes_of(model)
            except EngineError as exc:
                logger.warning("cannot compute compose config hashes: {}", exc)
                return
            for service in volumes_from_services(model):
                hashes.pop(service, None)
            self._hashes, self._hashed, self._resolved_for = hashes, signature, None

    def changed_on_disk(self) -> bool:
        """A file changed since the model was last read (the next ``current`` reads it)."""
        return self._stat() != self._signature

    def current(self) -> Mapping[str, str]:
        """Service -> the config hash Compose would give its containers now."""
        self._refresh_hashes()
        return self._hashes

    def for_containers(self, containers: Sequence[ContainerSnapshot]) -> Mapping[str, str]:
        """Service -> the config hash Compose would label its container with now, given
        the containers that run (see the module's docstring); a service sharing the
        namespace of one that has no single container has none."""
        if not containers:  # nothing to compare: Compose renders it once one exists
            return {}
        hashes = self.current()
        if not self._shared:
            return hashes
        owners: dict[str, list[str]] = {}
        for container in containers:
            owners.setdefault(container.service, []).append(container.id)
        wanted = tuple(
            sorted(
                (service, key, ids[0] if len(ids := owners.get(target, [])) == 1 else "")
                for service, refs in self._shared.items()
                for key, target in refs.items()
            )
        )
        if wanted != self._resolved_for:
            self._resolved = self._resolve(wanted)
            self._resolved_for = wanted
        merged = {k: v for k, v in hashes.items() if k not in self._shared}
        merged.update(self._resolved)
        return merged

    def _resolve(self, wanted: tuple[tuple[str, str, str], ...]) -> dict[str, str]:
        unknown = {service for service, _, cid in wanted if not cid}
        if not set(self._shared) - unknown:
            return {}  # no shared container runs: nothing to hash
        document = copy.deepcopy(self._model)
        for service, key, cid in wanted:
            if service not in unknown:
                document["services"][service][key] = f"container:{cid}"
        try:
            hashes = self._compose.hashes_of(document)
        except EngineError as exc:
            logger.warning("cannot compute the config hashes of shared namespaces: {}", exc)
            return {}
        return {s: h for s, h in hashes.items() if s in self._shared and s not in unknown}

    def image_of(self, service: str) -> str:
        """The image the compose model declares for ``service`` now ("" when none is
        declared: Compose builds it and names it after the project)."""
        self._refresh()
        services = self._model.get("services") or {}
        declared = (services.get(service) or {}) if isinstance(services, dict) else {}
        image = declared.get("image") if isinstance(declared, dict) else None
        return str(image) if image else ""

    def builds(self, service: str) -> bool:
        """The compose model can build ``service``'s image."""
        self._refresh()
        services = self._model.get("services") or {}
        declared = (services.get(service) or {}) if isinstance(services, dict) else {}
        return isinstance(declared, dict) and bool(declared.get("build"))
