"""``docker_foresight_<env>.json``: the rings of samples and what was learned, kept across
restarts of the controller.

Written atomically at most every ``SAVE_SECONDS`` (a pass asks, ``maybe_save``) and at
shutdown; a write that fails is said once and tried again at the next save. Read back at
start, so a restarted controller forecasts from the history it had and keeps the
precursors it learned. An unreadable file is kept aside, named, and the run starts
afresh, as the issues file is.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from loguru import logger

from controller.foresight.learning import Learning
from controller.foresight.trends import Trends
from controller.issues.files import atomic_write
from controller.model import Clock

SCHEMA_VERSION = 1
SAVE_SECONDS = 60.0


class ForesightFile:
    def __init__(
        self, *, state_dir: Path, env: str, trends: Trends, learning: Learning, clock: Clock
    ) -> None:
        self.path = state_dir / f"docker_foresight_{env}.json"
        self._trends, self._learning, self._clock = trends, learning, clock
        self._lock = threading.Lock()
        self._saved_at = float("-inf")
        self._failing = False  # the last save failed (said once, until one works)

    def load(self) -> None:
        """Take back what an earlier run saved (nothing when there is no file)."""
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(raw, dict) or raw.get("schema_version") != SCHEMA_VERSION:
                raise ValueError(f"schema_version: expected {SCHEMA_VERSION}")
            self._trends.load(raw.get("trends") or {})
            self._learning.load(raw.get("learned") or {})
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError) as exc:
            aside = self.path.with_name(f"{self.path.name}.unreadable-{int(self._clock())}")
            try:
                self.path.replace(aside)
            except OSError:
                aside = self.path
            logger.warning("{}: cannot read it ({}); kept it as {}", self.path, exc, aside.name)

    def maybe_save(self) -> None:
        if self._clock() - self._saved_at >= SAVE_SECONDS:
            self.save()

    def save(self) -> None:
        """Write the file; a write that fails (a full disk) is said once and tried again
        at the next save: what it holds stays in memory meanwhile."""
        with self._lock:
            document = {
                "schema_version": SCHEMA_VERSION,
                "saved_at": self._clock(),
                "trends": self._trends.dump(),
                "learned": self._learning.dump(),
            }
            self._saved_at = self._clock()
            try:
                atomic_write(self.path, json.dumps(document, separators=(",", ":")) + "\n")
            except OSError as exc:
                if not self._failing:
                    logger.error(
                        "{}: cannot write it ({}); the samples and what was learned stay "
                        "in memory until it can",
                        self.path,
                        exc.strerror or exc,
                    )
                self._failing = True
                return
            if self._failing:
                logger.info("{}: written again", self.path)
            self._failing = False
