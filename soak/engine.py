"""What the engine says about the soak stack: the injector's eyes, independent of the
controller's. A service's container is found and inspected through bench/latency.py's
``Project`` (the docker SDK, by compose labels); readiness, runs, health checks and log
timestamps are read here from ``docker inspect`` and ``docker logs``.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import docker
from docker.errors import DockerException

from bench.latency import Project, parse_time
from soak.stack import JOBS, SERVICES, SoakStack


class Engine:
    def __init__(self, stack: SoakStack, client: docker.DockerClient) -> None:
        self.stack = stack
        self.client = client
        self._project = Project(stack.project, client, SERVICES)
        self._lock = threading.Lock()  # the Project's id cache is shared by the threads

    def inspect(self, service: str) -> dict[str, Any] | None:
        with self._lock:
            try:
                return self._project.inspect(service)
            except DockerException:
                return None

    def run_of(self, service: str) -> str:
        """The current run of the service's container (``id@StartedAt``)."""
        data = self.inspect(service)
        return "" if data is None else f"{data['Id']}@{data['State']['StartedAt']}"

    def ready(self, service: str, not_run: str | None = None) -> bool:
        """Running (healthy, where it has a healthcheck); a job: exited 0. With ``not_run``,
        only in another run than that one."""
        data = self.inspect(service)
        if data is None:
            return False
        state = data["State"]
        if not_run is not None and f"{data['Id']}@{state['StartedAt']}" == not_run:
            return False
        if service in JOBS:
            return bool(state["Status"] == "exited" and state["ExitCode"] == 0)
        if not state["Running"] or state["Restarting"] or state["Paused"]:
            return False
        health = state.get("Health")
        return health is None or health.get("Status") == "healthy"

    def all_ready(self, services: tuple[str, ...] | list[str]) -> bool:
        return all(self.ready(s) for s in services)

    def finished_at(self, service: str) -> float | None:
        data = self.inspect(service)
        if data is None or data["State"]["Running"]:
            return None
        stamp = data["State"].get("FinishedAt") or ""
        return None if stamp.startswith("0001") or not stamp else parse_time(stamp)

    def last_exit(self, service: str, since: float) -> float | None:
        """When the service's container last died, if after ``since`` (``FinishedAt``
        stays the last death's time when a restart policy starts it again)."""
        data = self.inspect(service)
        stamp = ((data or {}).get("State") or {}).get("FinishedAt") or ""
        if not stamp or stamp.startswith("0001"):
            return None
        at = parse_time(stamp)
        return at if at >= since - 1.0 else None

    def failed_check_after(self, service: str, since: float) -> float | None:
        """When the first failed healthcheck that began after ``since`` ended."""
        data = self.inspect(service)
        health = (data or {}).get("State", {}).get("Health") or {}
        for entry in health.get("Log") or []:
            if entry.get("ExitCode") != 0 and parse_time(entry["Start"]) >= since:
                return parse_time(entry["End"])
        return None

    def line_time(self, service: str, first_line: str, since: float) -> float | None:
        """The engine's timestamp of ``first_line`` in the service's log, printed after
        ``since`` (the newest such line)."""
        data = self.inspect(service)
        if data is None:
            return None
        try:
            raw = self.client.api.logs(
                data["Id"], stdout=True, stderr=True, timestamps=True, since=int(since) - 1
            )
        except DockerException:
            return None
        wanted = first_line.strip()
        for line in reversed(raw.decode("utf-8", "replace").splitlines()):
            stamp, _, text = line.partition(" ")
            if text.strip() == wanted:
                at = parse_time(stamp)
                return at if at >= since - 1.0 else None
        return None

    def logged_since(self, service: str, needle: str, since: float) -> bool:
        data = self.inspect(service)
        if data is None:
            return False
        try:
            raw = self.client.api.logs(data["Id"], stdout=True, stderr=True, since=int(since) - 1)
        except DockerException:
            return False
        return needle in raw.decode("utf-8", "replace")


def wait_until(
    predicate: Any, timeout: float, every: float = 0.1, stop: threading.Event | None = None
) -> bool:
    """Poll ``predicate`` until it is true (True), ``timeout`` passes or ``stop`` is set
    (False)."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline or (stop is not None and stop.is_set()):
            return False
        time.sleep(every)
