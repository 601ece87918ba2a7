"""The config hash Compose has for each service now, refreshed when its files change.

A container's ``com.docker.compose.config-hash`` label is the hash of the service's config
when Compose created it; ``docker compose config --hash '*'`` is the hash it would have
now. They differ when someone edited the compose file (or an env file) since: the
container is outdated. The hashes are recomputed only when a file's size or modification
time changed, so a pass costs a few ``stat`` calls, not a run of ``docker compose``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from loguru import logger

from controller.observe.gateway import EngineError


class HashSource(Protocol):
    def config_hashes(self, timeout: float = 60.0) -> dict[str, str]: ...


class ConfigHashes:
    def __init__(self, compose: HashSource, files: Sequence[Path]) -> None:
        self._compose = compose
        self._files = tuple(files)
        self._signature: tuple[tuple[int, int], ...] | None = None
        self._hashes: dict[str, str] = {}

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

    def current(self) -> Mapping[str, str]:
        signature = self._stat()
        if signature != self._signature:
            try:
                self._hashes = self._compose.config_hashes()
            except EngineError as exc:
                logger.warning("cannot compute compose config hashes: {}", exc)
                return self._hashes
            if self._signature is not None:
                logger.info("compose model changed on disk; config hashes recomputed")
            self._signature = signature
        return self._hashes
