"""`docker compose` for one project, run as an argv list (never through a shell).

The controller asks Compose for its model (``config --format json``, so interpolation,
profiles and ``extends`` are exactly Compose's) and for its service config hashes, uses
``build`` and ``up`` to start, recreate and rebuild services, and ``up`` with a last-good
snapshot's file to roll one back.

The config hashes are those of the *rendered* model (``config --format json``, then
``config --hash`` of that document): ``config --hash`` on the files themselves hashes a
service's ``env_file`` unresolved, while ``up`` labels the container with the hash of its
resolved environment, so every service with an ``env_file`` looked outdated forever.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import yaml

from controller.model import ComposeProject
from controller.observe.gateway import ComposeError

DEFAULT_COMMAND: tuple[str, ...] = ("docker", "compose")
SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's when PyYAML has it
STANDALONE_COMMAND: tuple[str, ...] = ("docker-compose",)
COMMAND_VARIABLE = "CONTROLLER_COMPOSE_COMMAND"


def compose_command(
    environ: Mapping[str, str] | None = None,
    which: Callable[[str], str | None] = shutil.which,
) -> tuple[str, ...]:
    """How Compose is run: ``CONTROLLER_COMPOSE_COMMAND`` when set (split as a shell
    would, e.g. ``docker-compose``), else ``docker compose`` where a ``docker`` CLI is on
    the PATH, else the standalone ``docker-compose`` binary where that is (the image
    carries Compose alone, no docker CLI), else ``docker compose`` (its error names it)."""
    said = (os.environ if environ is None else environ).get(COMMAND_VARIABLE, "").strip()
    if said:
        return tuple(shlex.split(said))
    if which("docker") is None and which("docker-compose") is not None:
        return STANDALONE_COMMAND
    return DEFAULT_COMMAND


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
    def __init__(self, project: ComposeProject, command: Sequence[str] | None = None) -> None:
        self.project = project
        self._command = compose_command() if command is None else tuple(command)

    def _base_argv(self, files: Sequence[str] | None = None) -> list[str]:
        """The project's argv; ``files`` instead of its compose files (a rendered document
        on stdin, ``-``, or a snapshot's file): those are already interpolated, so the
        env files are left out."""
        argv = [*self._command]
        if self.project.name:  # none yet (zero-config): Compose names it, as it would
            argv += ["--project-name", self.project.name]
        for path in self.project.files if files is None else files:
            argv += ["--file", str(path)]
        for env_file in self.project.env_files if files is None else ():
            argv += ["--env-file", str(env_file)]
        for profile in self.project.profiles:
            argv += ["--profile", profile]
        return argv

    def _environment(self) -> Mapping[str, str]:
        return {**os.environ, **self.project.environment}

    def run(
        self,
        args: Sequence[str],
        timeout: float,
        *,
        files: Sequence[str] | None = None,
        stdin: str | None = None,
    ) -> CommandResult:
        """``docker compose`` with ``args`` on the project (``files`` instead of its
        compose files; ``stdin`` given to it, else nothing).

        Its output goes to files, not pipes, in a session of its own: a controller that
        dies while Compose recreates a service (a rollback half-way) leaves Compose to
        finish, instead of killing it at its next line of progress (a write to a pipe
        nobody reads) with a container stopped and its successor not yet started."""
        argv = (*self._base_argv(files), *args)
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            try:
                done = subprocess.run(  # noqa: S603 - argv list, no shell; args are ours
                    argv,
                    stdout=out,
                    stderr=err,
                    timeout=timeout,
                    env=self._environment(),
                    cwd=self.project.workdir,
                    input=None if stdin is None else stdin.encode(),
                    stdin=subprocess.DEVNULL if stdin is None else None,
                    start_new_session=True,
                    check=False,
                )
            except subprocess.TimeoutExpired as exc:
                raise ComposeError(f"compose {args[0]}: timed out after {timeout:.0f} s") from exc
            except OSError as exc:
                raise ComposeError(
                    f"compose {args[0]}: cannot run {self._command[0]}: {exc}"
                ) from exc
            stdout, stderr = _read(out), _read(err)
        result = CommandResult(argv, done.returncode, stdout, stderr)
        if done.returncode != 0:
            raise ComposeError(
                f"compose {' '.join(args[:1])} exited {done.returncode}: {_last_line(stderr)}"
            )
        return result

    def _reads(self) -> tuple[tuple[int, int], ...]:
        """Size and modification time of the files Compose reads to render the project
        (its ``.env`` when no env file is named)."""
        paths = [*self.project.files, *self.project.env_files]
        if not self.project.env_files:
            paths.append(Path(self.project.workdir) / ".env")
        return signature(paths)

    def _handoff_key(self) -> tuple[object, ...]:
        return (
            tuple(self._base_argv()),
            tuple(sorted(self.project.environment.items())),
            str(self.project.workdir),
        )

    def config(self, timeout: float = 60.0) -> dict[str, Any]:
        """The resolved compose model, as `docker compose config --format json` prints it
        (the rendering ``declared`` just made when it is handed over)."""
        text = _HANDOFF.take(self._handoff_key(), self._reads())
        if text is None:
            text = self.run(["config", "--format", "json"], timeout).stdout
        return _json_model(text)

    def declared(self, timeout: float = 60.0) -> dict[str, Any]:
        """The resolved model with each service's ``x-`` extensions (``x-controller``):
        ``config --format json`` leaves a service's extensions out (Compose 2.40), its YAML
        form keeps them. Both forms are asked for at once (two Composes side by side: a
        start waits for one, not two). Always read anew (a reload); the JSON form is then
        handed to the next ``config`` of the same files (``Handoff``)."""
        reads = self._reads()
        with ThreadPoolExecutor(2, thread_name_prefix="compose-config") as pool:
            as_yaml = pool.submit(self.run, ["config"], timeout)
            rendered_json = self.run(["config", "--format", "json"], timeout).stdout
            text = as_yaml.result().stdout
        model = _json_model(rendered_json)
        _HANDOFF.put(self._handoff_key(), reads, rendered_json)
        try:
            rendered = yaml.load(text, Loader=SafeLoader)  # a safe loader (C when available)
        except yaml.YAMLError as exc:
            raise ComposeError(f"compose config printed invalid YAML: {exc}") from exc
        services = rendered.get("services") if isinstance(rendered, dict) else None
        for name, service in (model.get("services") or {}).items():
            theirs = (services or {}).get(name)
            if isinstance(service, dict) and isinstance(theirs, dict):
                service.update({k: v for k, v in theirs.items() if str(k).startswith("x-")})
        return model

    def rendered(self, timeout: float = 60.0) -> tuple[dict[str, Any], dict[str, str]]:
        """The resolved compose model and, per service, the config hash Compose labels a
        container created from it with (the hash of the rendered model, see above)."""
        model = self.config(timeout)
        return model, self.hashes_of(model, timeout)

    def config_hashes(self, timeout: float = 60.0) -> dict[str, str]:
        """Service -> the config hash Compose labels its containers with."""
        return self.rendered(timeout)[1]

    def hashes_of(self, document: Mapping[str, Any], timeout: float = 60.0) -> dict[str, str]:
        """The config hash of every service of a rendered compose ``document``."""
        text = json.dumps(document)
        return _hashes(self.run(["config", "--hash", "*"], timeout, files=["-"], stdin=text).stdout)

    def hashes_of_file(self, file: Path, timeout: float = 60.0) -> dict[str, str]:
        """The config hash of every service of a compose file of ours (a snapshot's)."""
        return _hashes(self.run(["config", "--hash", "*"], timeout, files=[str(file)]).stdout)

    def up(
        self,
        service: str,
        *,
        force_recreate: bool = False,
        build: bool = False,
        replicas: int | None = None,
        timeout: float = 120.0,
    ) -> CommandResult:
        """`up -d --no-deps` one service: starts what is missing, leaves the rest alone;
        with ``build`` its image is built first (``build``) and only then are containers
        recreated (``--no-build``), so a failed build never stops one that runs."""
        args = ["up", "--detach", "--no-deps", "--no-color", "--quiet-pull"]
        if force_recreate:
            args.append("--force-recreate")
        if build:
            args.append("--no-build")  # built first (``build``): a failed build stops nothing
        if replicas is not None:
            args += ["--scale", f"{service}={replicas}"]
        args.append(service)
        if build:
            self.build(service, max(timeout, BUILD_TIMEOUT))
        return self.run(args, timeout)

    def build(self, service: str, timeout: float = 900.0) -> CommandResult:
        """`build` one service's image, before anything of it is stopped."""
        return self.run(["build", "--quiet", service], timeout)

    def revert_args(self, file: Path, service: str) -> list[str]:
        """What rolls ``service`` back to a last-good snapshot's ``file``: Compose itself,
        the same project, the snapshot's config, its dependencies left alone, no build and
        no pull (the snapshot's image is kept here by its tag)."""
        return [
            *self._base_argv([str(file)]),
            *("up", "--detach", "--no-deps", "--force-recreate", "--no-build"),
            *("--pull", "never", service),
        ]

    def revert(self, file: Path, service: str, timeout: float = 300.0) -> CommandResult:
        """Roll ``service`` back to the snapshot in ``file`` (``revert_args``)."""
        args = self.revert_args(file, service)[len(self._base_argv([str(file)])) :]
        return self.run(args, timeout, files=[str(file)])


BUILD_TIMEOUT = 900.0
HANDOFF_SECONDS = 30.0


class Handoff:
    """One rendering of a project's model, passed from the reader that had to run Compose
    (the desired state's load, ``declared``) to the next that asks for the same model
    (the config hashes, as the controller starts): a start runs Compose's ``config`` once,
    not twice, before its first step. Taken once, within ``HANDOFF_SECONDS``, and only
    while the files Compose read are as they were when it began."""

    def __init__(self, seconds: float = HANDOFF_SECONDS) -> None:
        self._seconds = seconds
        self._lock = threading.Lock()
        self._held: dict[tuple[object, ...], tuple[tuple[tuple[int, int], ...], float, str]] = {}

    def put(self, key: tuple[object, ...], reads: tuple[tuple[int, int], ...], text: str) -> None:
        with self._lock:
            self._held[key] = (reads, time.monotonic(), text)

    def take(self, key: tuple[object, ...], reads: tuple[tuple[int, int], ...]) -> str | None:
        with self._lock:
            held = self._held.pop(key, None)
        if held is None:
            return None
        then, at, text = held
        return text if then == reads and time.monotonic() - at < self._seconds else None


_HANDOFF = Handoff()


def signature(paths: Sequence[Path]) -> tuple[tuple[int, int], ...]:
    """Modification time and size of each file ((-1, -1): missing): what changed since."""
    out = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            out.append((-1, -1))
        else:
            out.append((st.st_mtime_ns, st.st_size))
    return tuple(out)


def _json_model(text: str) -> dict[str, Any]:
    try:
        model = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ComposeError(f"compose config printed invalid JSON: {exc}") from exc
    if not isinstance(model, dict):
        raise ComposeError("compose config printed JSON that is not an object")
    return model


def _read(handle: IO[bytes]) -> str:
    handle.seek(0)
    return handle.read().decode("utf-8", "replace")


def _hashes(out: str) -> dict[str, str]:
    hashes: dict[str, str] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2:
            hashes[parts[0]] = parts[1]
    return hashes
