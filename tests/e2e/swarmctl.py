"""The controller run on a private swarm's manager by the e2e tests (tests/e2e/swarm.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.e2e.conftest import CONTROLLER, free_ports, http_get, wait_for
from tests.e2e.swarm import Swarm


class Controller:
    """``controller --env dev --engine swarm FLAGS`` on a swarm's manager, its files in
    ``root``, serving on a free port (``base``)."""

    def __init__(self, swarm: Swarm, root: Path, *flags: str) -> None:
        self.root = root
        self.file = root / "docker_issues_dev.json"
        (port,) = free_ports(1)
        self.base = f"http://127.0.0.1:{port}"
        argv = [
            CONTROLLER,
            *("--env", "dev", "--engine", "swarm", "--state-dir", str(root)),
            *("--metrics-port", str(port), "--interval-active", "1", *flags),
        ]
        self.environment = {**os.environ, "DOCKER_HOST": swarm.manager.host}
        with open(root / "controller.log", "w") as log:
            self.process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, env=self.environment, cwd=root
            )
        wait_for(lambda: http_get(self.base + "/readyz")[0] == 200, 60, "the controller")

    def log(self) -> str:
        return (self.root / "controller.log").read_text()

    def issues(self) -> list[dict[str, Any]]:
        try:
            found: list[dict[str, Any]] = json.loads(self.file.read_text())["issues"]
        except (OSError, ValueError):  # not written yet, or being replaced
            return []
        return found

    def issue(self, fingerprint: str) -> dict[str, Any] | None:
        """The issue of ``fingerprint`` (a log issue's: up to its pattern)."""
        return next((i for i in self.issues() if i["fingerprint"].startswith(fingerprint)), None)

    def resolved(self, prefix: str, after: str = "") -> dict[str, Any] | None:
        """The issue of ``prefix`` once it resolved later than ``after`` (an ISO time)."""
        issue = self.issue(prefix)
        if issue and issue["state"] == "resolved" and (issue["resolved_at"] or "") > after:
            return issue
        return None

    def seen(self) -> list[tuple[str, str, str, str]]:
        return [(i["fingerprint"], i["state"], i["detail"], i["resolution"]) for i in self.issues()]

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def status(self) -> dict[str, Any]:
        """What GET /status says now."""
        code, body = http_get(self.base + "/status")
        assert code == 200, (code, body[:500])
        found: dict[str, Any] = json.loads(body)
        return found


@contextmanager
def controlling(
    swarm: Swarm, stack_file: Path, desired: str, root: Path, *flags: str
) -> Iterator[tuple[str, Controller]]:
    """``stack_file`` deployed on ``swarm``, and the controller on it with the desired
    state ``desired`` (``{stack}`` and ``{file}`` filled in); both gone on the way out."""
    with swarm.stack(stack_file) as stack:
        directory = root / "desired"
        directory.mkdir()
        (directory / "dev.yaml").write_text(desired.format(stack=stack, file=stack_file))
        controller = Controller(swarm, root, "--desired-state-dir", str(directory), *flags)
        try:
            yield stack, controller
        finally:
            controller.stop()
