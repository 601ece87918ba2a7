"""The seam between the controller and the Docker engine.

Everything above ``observe`` talks to the engine through ``EngineGateway``; the docker SDK
stays inside ``engine.py``. Unit tests pass a fake gateway (tests/fakes.py), never a mock
of the SDK.

Errors, drawn once::

    EngineError                 anything the engine refused or failed to do
    ├── EngineUnavailable       the engine did not answer (socket gone, daemon restarting)
    ├── ContainerGone           the container named no longer exists
    └── ComposeError            a `docker compose` command failed or timed out
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from controller.model import ContainerSnapshot, ContainerUsage, DiskUsage


class EngineError(Exception):
    """The engine refused or failed an operation; the message is one line for humans."""


class EngineUnavailable(EngineError):
    """The engine could not be reached; nothing was observed or changed."""


class NodeUnreachable(EngineError):
    """A step that must run on one node of a swarm (a runbook's exec in a task there)
    cannot reach that node's engine: none is known, or the one given does not answer. No
    retry reaches it: a person must (``--node-engine``, or the node brought back)."""


class ContainerGone(EngineError):
    """The container was removed between observation and action."""


class ComposeError(EngineError):
    """`docker compose` exited non-zero or timed out; the message carries its last words."""


@dataclass(frozen=True, slots=True)
class ContainerSummary:
    """One container as the engine's list call shows it: not a snapshot, but enough to
    tell that it changed (the informer inspects it again then)."""

    id: str
    state: str  # running, exited, restarting, paused, created, dead, removing
    marks: str  # what the engine's status says besides durations: "(healthy)", "(137)"


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """An image as the engine knows it: its id, the digests a registry gave it, its tags."""

    id: str
    repo_digests: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class EngineIdentity:
    """Which engine answers: where it was reached, its own id and name, its version."""

    host: str  # the address the controller uses: unix:///var/run/docker.sock, tcp://...
    id: str  # the engine's ID (docker info): stable across its restarts
    name: str  # its host name
    version: str  # Docker's version, and the API version spoken

    def __str__(self) -> str:
        return f"{self.host} (engine id {self.id}, name {self.name}, Docker {self.version})"


class LogStream(Protocol):
    """A container's log as its complete lines, a read at a time: each line is its RFC 3339
    timestamp, a space and the text, without the newline, and at most ``lines.MAX_LINE_BYTES
    + lines.STAMP_ROOM`` bytes (a longer one is cut to one byte more, which marks it)."""

    def __iter__(self) -> Iterator[list[bytes]]: ...

    def close(self) -> None: ...


class EventStream(Protocol):
    """The engine's event stream, decoded (one dict per event)."""

    def __iter__(self) -> Iterator[dict[str, Any]]: ...

    def close(self) -> None: ...


class EngineGateway(Protocol):
    def ping(self) -> bool:
        """True when the engine answers."""
        ...

    def identity(self) -> EngineIdentity:
        """Which engine answers (raises ``EngineError`` when none does)."""
        ...

    def list_containers(self, project: str) -> list[ContainerSnapshot]:
        """Every container (any state) labelled with the compose project."""
        ...

    def list_summaries(self, project: str) -> list[ContainerSummary]:
        """The same containers, in one call (no inspect of each)."""
        ...

    def inspect(self, container_id: str) -> ContainerSnapshot:
        """One container now; raises ``ContainerGone`` when it no longer exists."""
        ...

    def follow_logs(self, container_id: str, since: float | None) -> LogStream:
        """Follow stdout and stderr from ``since`` (epoch seconds; None: the beginning)."""
        ...

    def events(self, project: str) -> EventStream:
        """Container events of the project, from now on, until closed."""
        ...

    def usage(self, container_id: str) -> ContainerUsage:
        """One sample of a running container's memory and pids (the engine's one-shot
        stats: it answers at its collector's next tick, within a second); raises
        ``ContainerGone`` when it no longer exists."""
        ...

    def disk_usage(self, project: str) -> DiskUsage:
        """The writable layers of the project's containers and its volumes' sizes, as the
        engine's disk usage reports them (one call for all; it walks every layer and
        volume on the host, so it is called at the sampler's disk cadence only)."""
        ...

    def exec(
        self,
        container_id: str,
        argv: Sequence[str],
        *,
        user: str = "",
        env: Mapping[str, str] | None = None,
        timeout: float = 60.0,
    ) -> tuple[int, bytes]:
        """Run ``argv`` in the container (no shell); its exit code and combined output."""
        ...

    def restart(self, container_id: str, timeout: float) -> None: ...

    def unpause(self, container_id: str) -> None: ...

    def image(self, ref: str) -> ImageInfo | None:
        """The image ``ref`` names (a tag or an id), or None when the engine has none."""
        ...

    def tag_image(self, image_id: str, repository: str, tag: str) -> None:
        """Tag the image ``repository:tag`` (the engine keeps a tagged image from
        ``docker image prune``)."""
        ...

    def untag_image(self, ref: str) -> None:
        """Remove the tag ``ref`` (the image itself goes only if nothing else names it)."""
        ...

    def close(self) -> None: ...
