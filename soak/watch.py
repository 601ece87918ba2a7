"""What really happened that nobody injected: a healthcheck that failed on its own.

On a busy machine a service's healthcheck can exceed its timeout with no fault at all;
the engine records a failed check, and the controller is right to report it (docs/remediation.md:
"the issue opens at the first failed check"). So the ground truth includes it: this
thread follows the engine's events for the project and journals every exec that ended
non-zero (``exec_die`` with an exit code: a healthcheck, as the soak execs nothing itself)
as ``{"event": "engine", "what": "check-failed", ...}``. The scorer lets such a check
back a ``failing-healthcheck`` issue of that service, nothing more: no action, no human,
no stall.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import docker

from soak.journal import Journal

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"


class CheckFailures:
    def __init__(self, project: str, journal: Journal) -> None:
        self.project = project
        self.journal = journal
        self._client = docker.from_env()
        self._events: Any = None
        self._thread = threading.Thread(target=self._run, name="check-failures", daemon=True)

    def start(self) -> None:
        self._events = self._client.events(
            decode=True,
            filters={"type": "container", "label": f"{PROJECT_LABEL}={self.project}"},
        )
        self._thread.start()

    def _run(self) -> None:
        with contextlib.suppress(Exception):  # the stream is closed at the end
            for event in self._events:
                if event.get("Action") != "exec_die":
                    continue
                attributes = (event.get("Actor") or {}).get("Attributes") or {}
                if str(attributes.get("exitCode", "0")) == "0":
                    continue
                self.journal.write(
                    {
                        "event": "engine",
                        "what": "check-failed",
                        "service": attributes.get(SERVICE_LABEL, ""),
                        "t": int(event["timeNano"]) / 1e9,
                        "exit": attributes.get("exitCode"),
                    }
                )

    def stop(self) -> None:
        if self._events is not None:
            self._events.close()
        self._client.close()
