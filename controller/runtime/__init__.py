"""Wiring: the stages joined into a controller, scheduled, and shut down cleanly.

- ``settings``: how it was asked to run, and loading the desired state.
- ``declared``: the desired state in force, read by every part that decides.
- ``reload``: reloading it while it runs (SIGHUP, ``POST /-/reload``, its files).
- ``assembly``: the composition root: every part built once and connected (``wires``
  for the calls to a part built later); ``parts`` names what was built.
- ``controller``: one pass, the verdict with its evidence, the life cycle
  (``start``/``stop``, and ``open_once``/``close_once`` for the CI gate).
- ``statefiles``: the JSON file and the report, written and read back.
- ``journal``: one log line per decision, and the time to detect a fault.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from controller.runtime.assembly import assemble
    from controller.runtime.controller import Controller
    from controller.runtime.journal import fault_started
    from controller.runtime.settings import Settings, load

__all__ = ["Controller", "Settings", "assemble", "fault_started", "load"]
_HOME = {
    "assemble": "assembly",
    "Controller": "controller",
    "fault_started": "journal",
    "Settings": "settings",
    "load": "settings",
}


def __getattr__(name: str) -> Any:
    """Each part imported on first use: the CLI reads the desired state
    (``runtime.settings``) while the rest of the controller is still being imported."""
    if name in _HOME:
        return getattr(importlib.import_module(f"controller.runtime.{_HOME[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
