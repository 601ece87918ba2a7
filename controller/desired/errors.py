"""The one error a desired-state file can cause: one line naming the file and the field."""

from __future__ import annotations

from pathlib import Path


class DesiredStateError(Exception):
    """A desired-state file cannot be used; ``str()`` is one line naming file and field."""

    def __init__(self, source: Path | str, field: str, message: str) -> None:
        self.source = str(source)
        self.field = field
        self.message = message
        where = f"{self.source}: {field}: " if field else f"{self.source}: "
        super().__init__(where + message)


# --- the file's schema ------------------------------------------------------------------
