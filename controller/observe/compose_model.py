"""The compose model as Compose renders it now, and the config hash it has for each
service, refreshed when the compose or env files change.

A container's ``com.docker.compose.config-hash`` label is the hash of the service's config
when Compose created it; the hash the rendered model has now (``ComposeCli.rendered``) is
the one it would have today. They differ when someone edited the compose file (or an env
file) since: the container is outdated. The rendered model also says which image each
service declares (a rollback asks whether that image exists). Both are recomputed only
when a file's size or modification time changed, so a pass costs a few ``stat`` calls,
not a run of ``docker compose``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from loguru import logger

from controller.observe.gateway import EngineError


class HashSource(Protocol):
    def rendered(self, timeout: float = 60.0) -> tuple[dict[str, Any], dict[str, str]]: ...


class ConfigHashes:
    def __init__(self, compose: HashSource, files: Sequence[Path]) -> None:
        self._compose = compose
        self._files = tuple(files)
        self._signature: tuple[tuple[int, int], ...] | None = None
        self._hashes: dict[str, str] = {}
        self._model: dict[str, Any] = {}

    def _stat(self) -> tuple[tuple[int, int], ...]:
        out = []
        for path in self._files:
            try:
                st = os.stat(path)
            except OSError:
                out.append((-1, -1))
            else:
                out.append((st.st_mtime_ns, st.st_size))
        return tuple(out)

    def _refresh(self) -> None:
        signature = self._stat()
        if signature == self._signature:
            return
        try:
            self._model, self._hashes = self._compose.rendered()
        except EngineError as exc:
            logger.warning("cannot compute compose config hashes: {}", exc)
            return
        if self._signature is not None:
            logger.info("compose model changed on disk; config hashes recomputed")
        self._signature = signature

    def changed_on_disk(self) -> bool:
        """A file changed since the model was last read (the next ``current`` reads it)."""
        return self._stat() != self._signature

    def current(self) -> Mapping[str, str]:
        """Service -> the config hash Compose would give its containers now."""
        self._refresh()
        return self._hashes

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
