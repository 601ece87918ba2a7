"""`docker compose` for one project, run as an argv list (never through a shell).

The controller asks Compose for its model (``config --format json``, so interpolation,
profiles and ``extends`` are exactly Compose's) and for its service config hashes, and
uses ``up`` to start and recreate services.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from controller.model import ComposeProject
from controller.observe.gateway import ComposeError

DEFAULT_COMMAND: tuple[str, ...] = ("docker", "compose")


@dataclass(frozen=True, slots=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


class ComposeCli:
    def __init__(self, project: ComposeProject, command: Sequence[str] = DEFAULT_COMMAND) -> None:
        self.project = project
        self._command = tuple(command)

    def _base_argv(self) -> list[str]:
        argv = [*self._command, "--project-name", self.project.name]
        for path in self.project.files:
            argv += ["--file", str(path)]
        for env_file in self.project.env_files:
            argv += ["--env-file", str(env_file)]
        for profile in self.project.profiles:
            argv += ["--profile", profile]
        return argv

    def _environment(self) -> Mapping[str, str]:
        return {**os.environ, **self.project.environment}

    def run(self, args: Sequence[str], timeout: float) -> CommandResult:
        argv = (*self._base_argv(), *args)
        try:
            done = subprocess.run(  # noqa: S603 - argv list, no shell; args are ours
                argv,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=timeout,
                env=self._environment(),
                cwd=self.project.workdir,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise ComposeError(f"compose {args[0]}: timed out after {timeout:.0f} s") from exc
        except OSError as exc:
            raise ComposeError(f"compose {args[0]}: cannot run {self._command[0]}: {exc}") from exc
        result = CommandResult(argv, done.returncode, done.stdout, done.stderr)
        if done.returncode != 0:
            raise ComposeError(
                f"compose {' '.join(args[:1])} exited {done.returncode}: {_last_line(done.stderr)}"
            )
        return result

    def config(self, timeout: float = 60.0) -> dict[str, Any]:
        """The resolved compose model, as `docker compose config --format json` prints it."""
        out = self.run(["config", "--format", "json"], timeout).stdout
        try:
            model = json.loads(out)
        except json.JSONDecodeError as exc:
            raise ComposeError(f"compose config printed invalid JSON: {exc}") from exc
        if not isinstance(model, dict):
            raise ComposeError("compose config printed JSON that is not an object")
        return model

    def config_hashes(self, timeout: float = 60.0) -> dict[str, str]:
        """Service -> the config hash Compose labels its containers with."""
        out = self.run(["config", "--hash", "*"], timeout).stdout
        hashes: dict[str, str] = {}
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 2:
                hashes[parts[0]] = parts[1]
        return hashes

    def up(
        self,
        service: str,
        *,
        force_recreate: bool = False,
        build: bool = False,
        replicas: int | None = None,
        timeout: float = 120.0,
    ) -> CommandResult:
        """`up -d --no-deps` one service: starts what is missing, leaves the rest alone."""
        args = ["up", "--detach", "--no-deps", "--no-color", "--quiet-pull"]
        if force_recreate:
            args.append("--force-recreate")
        if build:
            args.append("--build")
        if replicas is not None:
            args += ["--scale", f"{service}={replicas}"]
        args.append(service)
        return self.run(args, timeout if not build else max(timeout, 900.0))
