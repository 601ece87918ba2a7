"""Taking a last-good snapshot of a service, and letting one go.

A snapshot is what made the service good: the image it ran (its id, its repo digest
where it has one), the service's config as Compose renders it (``docker compose config``:
interpolated, ``env_file`` resolved into ``environment``), the env files' contents, and
when. It is taken only when the compose files render exactly what runs: the rendered
config's hash (``config --hash``) must be the one Compose labelled the running containers
with, else the files were edited since and would not bring back what was good.

Kept on disk in ``<state dir>/lastgood/<service>/<n>/`` (mode 0700; the config and the
env files hold secrets, so they never go into the issues file, which names them and
their digests): ``compose.json``, the compose file a rollback runs (the service and the
services it names through ``network_mode``, ``volumes_from`` or ``links``, with their
``depends_on`` dropped, its image replaced by the snapshot's tag, no build, never
pulled), and ``env-files.json``.

The image is kept from garbage collection by a tag,
``compose-controller/lastgood/<project>/<service>:<n>``: ``docker image prune`` leaves a
tagged image alone, and the image stays when the tag it ran under moves on (a rebuilt
``app:latest``). ``docker image prune -a`` and ``docker rmi`` of the tag still remove it:
the engine has no stronger pin for an image no container uses. A snapshot let go (more
than ``keep``) loses its tag and its directory.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import yaml
from loguru import logger

from controller.model import (
    Clock,
    ComposeProject,
    ContainerSnapshot,
    Identity,
    Snapshot,
    to_datetime,
)
from controller.observe.gateway import EngineError, EngineGateway

TAG_PREFIX = "compose-controller/lastgood"
MAX_ENV_FILE = 1 << 20  # bytes of one env file kept
_NOT_IN_NAME = re.compile(r"[^a-z0-9._-]+")


class SnapshotCompose(Protocol):
    """What a snapshot needs of Compose (``ComposeCli``; the fake world in unit tests)."""

    def config(self, timeout: float = 60.0) -> dict[str, Any]: ...

    def hashes_of(self, document: Mapping[str, Any], timeout: float = 60.0) -> dict[str, str]: ...

    def hashes_of_file(self, file: Path, timeout: float = 60.0) -> dict[str, str]: ...


class SnapshotError(Exception):
    """No snapshot could be taken now; the message says why, in one line."""


def name_part(text: str) -> str:
    """``text`` as one component of an image repository name (lower case, ``a-z0-9._-``,
    beginning and ending with a letter or digit)."""
    cleaned = _NOT_IN_NAME.sub("-", text.lower()).strip("._-")
    return cleaned or "x"


def tag_repository(project: str, service: str) -> str:
    """The repository of a service's last-good tags."""
    return f"{TAG_PREFIX}/{name_part(project)}/{name_part(service)}"


def _named_services(config: Mapping[str, Any]) -> list[str]:
    """Services a service's config names besides ``depends_on`` (Compose needs them in
    the same file to read it)."""
    names: list[str] = []
    mode = str(config.get("network_mode") or "")
    if mode.startswith("service:"):
        names.append(mode.removeprefix("service:"))
    for entry in config.get("volumes_from") or []:
        text = str(entry)
        if not text.startswith("container:"):
            names.append(text.split(":", 1)[0])
    for link in config.get("links") or []:
        names.append(str(link).split(":", 1)[0])
    return names


def service_document(model: Mapping[str, Any], service: str, project: str) -> dict[str, Any]:
    """A compose document of ``service`` as the rendered ``model`` has it: with the
    services it names, their ``depends_on`` dropped (a rollback leaves dependencies
    alone), and the model's networks, volumes, secrets and configs."""
    services: Mapping[str, Any] = model.get("services") or {}
    included: dict[str, Any] = {}
    wanted = [service]
    while wanted:
        name = wanted.pop()
        if name in included or name not in services:
            continue
        config = copy.deepcopy(dict(services[name] or {}))
        config.pop("depends_on", None)
        included[name] = config
        wanted.extend(_named_services(config))
    document: dict[str, Any] = {"name": str(model.get("name") or project), "services": included}
    for key in ("networks", "volumes", "secrets", "configs"):
        if model.get(key):
            document[key] = copy.deepcopy(model[key])
    return document


def pinned(document: Mapping[str, Any], service: str, tag: str) -> dict[str, Any]:
    """The document that runs ``service`` on the snapshot's ``tag``: never built, never
    pulled."""
    out = copy.deepcopy(dict(document))
    config = out["services"][service]
    config.pop("build", None)
    config["image"] = tag
    config["pull_policy"] = "never"
    return out


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Keeper:
    def __init__(
        self,
        *,
        compose: SnapshotCompose,
        gateway: EngineGateway,
        project: ComposeProject,
        directory: Path,
        clock: Clock,
    ) -> None:
        self._compose = compose
        self._gateway = gateway
        self._project = project
        # compose reads a snapshot's file from the project's directory: a relative state
        # directory (the default ".") is made absolute against the controller's own
        self._directory = directory.absolute()
        self._clock = clock

    def folder(self, service: str, number: int) -> Path:
        return self._directory / name_part(service) / str(number)

    def capture(
        self, service: str, number: int, containers: Sequence[ContainerSnapshot]
    ) -> Snapshot:
        """Snapshot ``service`` as ``containers`` run it, numbered ``number``; raises
        ``SnapshotError`` (or ``EngineError``) when it cannot be taken now."""
        identities = {(c.config_hash or "", c.image_id) for c in containers}
        if len(identities) != 1 or not containers:
            raise SnapshotError("its containers do not all run the same config and image")
        ((config_hash, image_id),) = identities
        if not config_hash or not image_id:
            raise SnapshotError("its containers carry no compose config hash or image id")
        model = self._compose.config()
        if service not in (model.get("services") or {}):
            raise SnapshotError("the compose files no longer declare it")
        document = service_document(model, service, self._project.name)
        rendered = self._compose.hashes_of(document).get(service, "")
        if rendered != config_hash:
            raise SnapshotError(
                f"the compose files render config {rendered[:12] or '?'}, it runs "
                f"{config_hash[:12]}: they were changed since it started"
            )
        info = self._gateway.image(image_id)
        if info is None:
            raise SnapshotError(f"its image {image_id[:19]} is gone")
        repository = tag_repository(self._project.name, service)
        tag = f"{repository}:{number}"
        folder = self.folder(service, number)
        self._gateway.tag_image(image_id, repository, str(number))
        try:
            env_files = self._env_files(service)
            file = self._write(folder, pinned(document, service, tag), env_files)
            reverts = self._compose.hashes_of_file(file).get(service, "")
        except (OSError, EngineError) as exc:
            self._let_go(tag, folder)
            raise SnapshotError(f"cannot keep it: {exc}") from exc
        config = document["services"][service]
        return Snapshot(
            number=number,
            identity=Identity(config_hash=config_hash, image_id=image_id),
            image=containers[0].image,
            repo_digest=info.repo_digests[0] if info.repo_digests else "",
            tag=tag,
            file=str(file),
            config_sha256=_digest(json.dumps(config, sort_keys=True).encode()),
            env_files={path: _digest(text.encode()) for path, text in env_files.items()},
            reverts_to=Identity(config_hash=reverts, image_id=image_id),
            taken_at=to_datetime(self._clock()),
        )

    def release(self, snapshots: Iterable[Snapshot]) -> None:
        """Let snapshots go: their tags (the image goes when nothing else names it) and
        their files."""
        for snapshot in snapshots:
            self._let_go(snapshot.tag, Path(snapshot.file).parent)

    def _let_go(self, tag: str, folder: Path) -> None:
        try:
            self._gateway.untag_image(tag)
        except EngineError as exc:
            logger.warning("cannot remove the tag {}: {}", tag, exc)
        shutil.rmtree(folder, ignore_errors=True)

    def _write(self, folder: Path, document: Mapping[str, Any], env: Mapping[str, str]) -> Path:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(folder, 0o700)
        file = folder / "compose.json"
        for path, content in ((file, document), (folder / "env-files.json", env)):
            temporary = path.with_name(path.name + ".tmp")
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                json.dump(content, handle, indent=2, sort_keys=True)
            temporary.replace(path)
        return file

    def _env_files(self, service: str) -> dict[str, str]:
        """The env files that went into the service's config: the project's (``--env-file``,
        else the ``.env`` beside the first compose file) and the ``env_file`` entries the
        compose files give the service, by path, with their contents."""
        paths: list[Path] = list(self._project.env_files)
        if not paths and self._project.files:
            paths.append(self._project.files[0].parent / ".env")
        for compose_file in self._project.files:
            paths.extend(_service_env_files(compose_file, service))
        contents: dict[str, str] = {}
        for path in paths:
            try:
                with path.open("rb") as handle:
                    data = handle.read(MAX_ENV_FILE)
            except OSError:
                continue
            contents[str(path)] = data.decode("utf-8", "replace")
        return contents


def _service_env_files(compose_file: Path, service: str) -> list[Path]:
    """The ``env_file`` paths a compose file gives ``service`` (relative to the file)."""
    try:
        data = yaml.safe_load(compose_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return []
    services = data.get("services") if isinstance(data, dict) else None
    config = services.get(service) if isinstance(services, dict) else None
    entries = config.get("env_file") if isinstance(config, dict) else None
    if isinstance(entries, str | dict):
        entries = [entries]
    found: list[Path] = []
    for entry in entries if isinstance(entries, list) else []:
        path = entry.get("path") if isinstance(entry, dict) else entry
        if isinstance(path, str) and "$" not in path:
            found.append(compose_file.parent / path)
    return found
