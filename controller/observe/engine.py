"""The Docker engine through the docker SDK: the only module that imports ``docker``.

It returns our frozen snapshots and raises our errors (gateway.py); SDK and HTTP errors are
translated here, at the boundary, so no other module needs to know them.

A followed log is read straight off the engine's socket by ``logwire`` (the SDK's one read
per line cost more than matching the lines); TLS, ssh and named pipes keep the SDK's reader.
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import docker
import docker.errors
import requests.exceptions
from docker.constants import IS_WINDOWS_PLATFORM
from docker.utils import kwargs_from_env, parse_host

from controller.model import (
    ContainerSnapshot,
    ContainerState,
    ContainerUsage,
    DiskUsage,
    Health,
    VolumeUsage,
    engine_time,
    healthcheck_timing,
)
from controller.observe.gateway import (
    ContainerGone,
    ContainerSummary,
    EngineError,
    EngineIdentity,
    EngineUnavailable,
    EventStream,
    ImageInfo,
    LogStream,
)
from controller.observe.lines import clean, split_lines
from controller.observe.logwire import Address, WireLog

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
NUMBER_LABEL = "com.docker.compose.container-number"
HASH_LABEL = "com.docker.compose.config-hash"
ONEOFF_LABEL = "com.docker.compose.oneoff"
VOLUME_LABEL = "com.docker.compose.volume"

T = TypeVar("T")
# the parts of a list call's "Status" that are not durations: "Up 2 hours (healthy)"
_MARKS = re.compile(r"\([^)]*\)")


@contextmanager
def _translated(what: str) -> Iterator[None]:
    try:
        yield
    except docker.errors.NotFound as exc:
        raise ContainerGone(f"{what}: {exc.explanation or exc}") from exc
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
        raise EngineUnavailable(f"{what}: engine unreachable ({type(exc).__name__})") from exc
    except docker.errors.APIError as exc:
        raise EngineError(f"{what}: {exc.explanation or exc}") from exc
    except docker.errors.DockerException as exc:
        raise EngineUnavailable(f"{what}: {exc}") from exc


def snapshot_from_inspect(data: dict[str, Any]) -> ContainerSnapshot:
    """Our snapshot of one `docker inspect` document (pure; tested on recorded documents)."""
    labels: dict[str, str] = data.get("Config", {}).get("Labels") or {}
    state: dict[str, Any] = data.get("State") or {}
    health = state.get("Health") or {}
    number = labels.get(NUMBER_LABEL, "0")
    streak = int(health.get("FailingStreak") or 0)
    log = health.get("Log") or []
    failing_since = str(log[-min(streak, len(log))].get("Start") or "") if streak and log else ""
    output = str(log[-1].get("Output") or "") if streak and log else ""
    finished = str(state.get("FinishedAt") or "")
    started = str(state.get("StartedAt") or "")
    interval, timeout, start_period, retries = (
        _healthcheck_timing(data) if health else (0.0, 0.0, 0.0, 0)
    )
    last_check = _epoch(str(log[-1].get("End") or log[-1].get("Start") or "")) if log else 0.0
    return ContainerSnapshot(
        id=data["Id"],
        name=str(data.get("Name", "")).lstrip("/"),
        service=labels.get(SERVICE_LABEL, ""),
        number=int(number) if number.isdigit() else 0,
        status=ContainerState.of(str(state.get("Status", "unknown"))),
        health=Health.of(health.get("Status")),
        exit_code=int(state.get("ExitCode") or 0),
        oom_killed=bool(state.get("OOMKilled")),
        restart_count=int(data.get("RestartCount") or 0),
        started_at=started,
        config_hash=labels.get(HASH_LABEL),
        oneoff=labels.get(ONEOFF_LABEL, "False") == "True",
        finished_at="" if finished.startswith("0001-") else finished,
        failing_since=failing_since,
        failing_streak=streak,
        health_output=_last_line(output),
        health_interval=interval,
        health_timeout=timeout,
        health_start_period=start_period,
        health_retries=retries,
        # a start begins a new health history: checks before it say nothing of this run
        last_check_at=max(last_check, _epoch(started)) if interval else 0.0,
        image_id=str(data.get("Image") or ""),
        image=str((data.get("Config") or {}).get("Image") or ""),
        created_at=str(data.get("Created") or ""),
    )


def usage_from_stats(container_id: str, data: dict[str, Any], host_memory: int) -> ContainerUsage:
    """Our sample of one stats document (pure; tested on recorded documents). The working
    set is the usage less the inactive page cache, as the kubelet counts it (cgroup v1
    ``total_inactive_file``, v2 ``inactive_file``); a limit at or above the host's memory
    is no limit."""
    memory: dict[str, Any] = data.get("memory_stats") or {}
    stats: dict[str, Any] = memory.get("stats") or {}
    used = int(memory.get("usage") or 0)
    inactive = stats.get("total_inactive_file", stats.get("inactive_file", 0))
    working = max(0, used - int(inactive or 0))
    limit = int(memory.get("limit") or 0)
    limited = 0 < limit < host_memory if host_memory else limit > 0
    pids: dict[str, Any] = data.get("pids_stats") or {}
    pids_limit = int(pids.get("limit") or 0)
    return ContainerUsage(
        container=container_id,
        memory=working,
        memory_limit=limit if limited else host_memory,
        memory_limited=limited,
        pids=int(pids.get("current") or 0),
        pids_limit=pids_limit if 0 < pids_limit < 1 << 62 else 0,
    )


def disk_from_df(project: str, data: dict[str, Any]) -> DiskUsage:
    """Our view of one disk usage document, the project's part of it (pure; tested on
    recorded documents). The engine sizes only local volumes without driver options (a
    tmpfs or NFS volume is not in it) and leaves a size it did not work out at -1."""
    writable = {
        str(c["Id"]): int(c.get("SizeRw") or 0)
        for c in data.get("Containers") or []
        if (c.get("Labels") or {}).get(PROJECT_LABEL) == project
    }
    volumes = []
    for v in data.get("Volumes") or []:
        labels = v.get("Labels") or {}
        if labels.get(PROJECT_LABEL) != project:
            continue
        size = int((v.get("UsageData") or {}).get("Size", -1))
        if size >= 0:
            volumes.append(VolumeUsage(str(labels.get(VOLUME_LABEL) or v["Name"]), size))
    return DiskUsage(writable, tuple(sorted(volumes, key=lambda v: v.name)))


def _healthcheck_timing(data: dict[str, Any]) -> tuple[float, float, float, int]:
    """(interval, timeout, start period) in seconds and the retries of the container's
    healthcheck (compose's or the image's: the engine merges them); zeros if none."""
    return healthcheck_timing((data.get("Config") or {}).get("Healthcheck") or {})


def _epoch(text: str) -> float:
    """Epoch seconds of an RFC 3339 time as the engine writes it (UTC ``Z`` or the
    daemon's own offset); 0.0 when unset (year 1) or unreadable."""
    moment = engine_time(text.strip())
    seconds = moment.timestamp() if moment is not None else 0.0
    return seconds if seconds > 0 else 0.0


def _last_line(output: str, limit: int = 200) -> str:
    """What a failed healthcheck said last, on one line, bounded."""
    lines = [line for line in (clean(raw.encode()) for raw in output.splitlines()) if line]
    last = lines[-1].strip() if lines else ""
    return last if len(last) <= limit else last[: limit - 1] + "…"


class _Stream:
    """A streamed response (logs, events) whose read errors come out as our errors."""

    def __init__(self, stream: Any, what: str) -> None:
        self._stream = stream
        self._what = what

    def __iter__(self) -> Iterator[Any]:
        with _translated(self._what):
            yield from self._stream

    def close(self) -> None:
        try:
            self._stream.close()
        except Exception:  # closing a stream that already ended is not an error
            return


class _Lines:
    """A followed log read by the SDK (raw pieces of it) as a ``LogStream`` (its lines)."""

    def __init__(self, stream: _Stream) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[list[bytes]]:
        return split_lines(self._stream)

    def close(self) -> None:
        self._stream.close()


class DockerEngine:
    """``EngineGateway`` over the docker SDK's low-level API client."""

    def __init__(self, base_url: str | None = None, timeout: float = 30.0) -> None:
        self._base_url = base_url
        self._timeout = timeout
        self._api: docker.APIClient | None = None
        self._host_memory = 0  # the engine's MemTotal, asked once

    def _client(self) -> docker.APIClient:
        if self._api is None:
            with _translated("connect"):
                if self._base_url:
                    self._api = docker.APIClient(
                        base_url=self._base_url, version="auto", timeout=int(self._timeout)
                    )
                else:
                    self._api = docker.from_env(version="auto", timeout=int(self._timeout)).api
        return self._api

    def _call(self, what: str, fn: Callable[[docker.APIClient], T]) -> T:
        with _translated(what):
            return fn(self._client())

    def reach(self) -> None:
        """Raises ``EngineError`` (``EngineUnavailable`` when it is not there, with why)
        unless the engine answers a ping."""
        try:
            if not self._call("ping", lambda api: api.ping()):
                raise EngineUnavailable("ping: the engine did not answer OK")
        except EngineError:
            self._api = None  # reconnect (and renegotiate the API version) next time
            raise

    def ping(self) -> bool:
        try:
            self.reach()
        except EngineError:
            return False
        return True

    def identity(self) -> EngineIdentity:
        info: dict[str, Any] = self._call("info", lambda api: api.info())
        api_version = str(self._call("version", lambda api: api.api_version))
        host = self._base_url or str(kwargs_from_env().get("base_url") or "")
        return EngineIdentity(
            host=host or "unix:///var/run/docker.sock",
            id=str(info.get("ID") or "?"),
            name=str(info.get("Name") or "?"),
            version=f"{info.get('ServerVersion') or '?'}, API {api_version}",
        )

    def list_containers(self, project: str) -> list[ContainerSnapshot]:
        summaries = self._call(
            "list containers",
            lambda api: api.containers(all=True, filters={"label": f"{PROJECT_LABEL}={project}"}),
        )
        snapshots = []
        for summary in summaries:
            container_id: str = summary["Id"]
            try:
                data = self._inspect(container_id)
            except ContainerGone:
                continue  # removed since the list call: it is simply not there
            snapshots.append(snapshot_from_inspect(data))
        return sorted(snapshots, key=lambda c: (c.service, c.number, c.name))

    def list_summaries(self, project: str) -> list[ContainerSummary]:
        summaries = self._call(
            "list containers",
            lambda api: api.containers(all=True, filters={"label": f"{PROJECT_LABEL}={project}"}),
        )
        return [
            ContainerSummary(
                id=str(s["Id"]),
                state=str(s.get("State") or ""),
                marks=" ".join(_MARKS.findall(str(s.get("Status") or ""))),
            )
            for s in summaries
        ]

    def inspect(self, container_id: str) -> ContainerSnapshot:
        return snapshot_from_inspect(self._inspect(container_id))

    def _inspect(self, container_id: str) -> dict[str, Any]:
        data: dict[str, Any] = self._call(
            f"inspect {container_id[:12]}", lambda api: api.inspect_container(container_id)
        )
        return data

    def _log_address(self) -> Address | None:
        """Where to read logs straight off the socket (a local socket or plain TCP, as the
        SDK would connect); None for TLS, ssh or a named pipe (the SDK reads those)."""
        url: str | None
        if self._base_url:
            url, tls = self._base_url, False
        else:
            env = kwargs_from_env()
            url, tls = env.get("base_url"), bool(env.get("tls"))
        host = str(parse_host(url, IS_WINDOWS_PLATFORM, tls=tls))
        if host.startswith("http+unix://"):
            return socket.AF_UNIX, host.removeprefix("http+unix://")
        if host.startswith("http://"):
            name, _, port = host.removeprefix("http://").rstrip("/").rpartition(":")
            family = socket.AF_INET6 if ":" in name else socket.AF_INET
            return (family, (name.strip("[]"), int(port))) if port.isdigit() else None
        return None

    def follow_logs(self, container_id: str, since: float | None) -> LogStream:
        address = self._log_address()
        if address is not None:
            version = str(self._call("version", lambda api: api.api_version))
            return WireLog(
                address, version, container_id, since, timeout=self._timeout, engine_alive=self.ping
            )
        options: dict[str, Any] = {"stream": True, "follow": True, "timestamps": True}
        if since is not None and since > 0:
            options["since"] = since
        what = f"logs {container_id[:12]}"
        return _Lines(
            _Stream(self._call(what, lambda api: api.logs(container_id, **options)), what)
        )

    def events(self, project: str) -> EventStream:
        filters = {"type": "container", "label": [f"{PROJECT_LABEL}={project}"]}
        what = "events"
        return _Stream(self._call(what, lambda api: api.events(decode=True, filters=filters)), what)

    def usage(self, container_id: str) -> ContainerUsage:
        if not self._host_memory:
            info = self._call("info", lambda api: api.info())
            self._host_memory = int(info.get("MemTotal") or 0)
        data: dict[str, Any] = self._call(
            f"stats {container_id[:12]}",
            lambda api: api.stats(container_id, stream=False, one_shot=True),
        )
        return usage_from_stats(container_id, data, self._host_memory)

    def disk_usage(self, project: str) -> DiskUsage:
        return disk_from_df(project, self._call("disk usage", lambda api: api.df()))

    def exec(
        self,
        container_id: str,
        argv: Sequence[str],
        *,
        user: str = "",
        env: Mapping[str, str] | None = None,
        timeout: float = 60.0,
    ) -> tuple[int, bytes]:
        what = f"exec in {container_id[:12]}"
        created = self._call(
            what,
            lambda api: api.exec_create(
                container_id,
                list(argv),
                user=user,
                environment=dict(env or {}),
                stdout=True,
                stderr=True,
            ),
        )
        exec_id = created["Id"]
        result: dict[str, Any] = {}

        def run() -> None:
            try:
                result["output"] = self._call(what, lambda api: api.exec_start(exec_id))
            except EngineError as exc:
                result["error"] = exc

        worker = threading.Thread(target=run, name="exec", daemon=True)
        worker.start()
        worker.join(timeout)
        if worker.is_alive():
            raise EngineError(f"{what}: still running after {timeout:g} s (left running)")
        if "error" in result:
            raise result["error"]
        code = self._call(what, lambda api: api.exec_inspect(exec_id)).get("ExitCode")
        return int(code if code is not None else -1), bytes(result.get("output") or b"")

    def restart(self, container_id: str, timeout: float) -> None:
        self._call(
            f"restart {container_id[:12]}",
            lambda api: api.restart(container_id, timeout=int(timeout)),
        )

    def unpause(self, container_id: str) -> None:
        self._call(f"unpause {container_id[:12]}", lambda api: api.unpause(container_id))

    def image(self, ref: str) -> ImageInfo | None:
        def inspect(api: docker.APIClient) -> dict[str, Any]:
            found: dict[str, Any] = api.inspect_image(ref)  # type: ignore[no-untyped-call]
            return found

        try:
            data = self._call(f"inspect image {ref[:80]}", inspect)
        except ContainerGone:  # the engine's "no such image"
            return None
        return ImageInfo(
            id=str(data.get("Id") or ""),
            repo_digests=tuple(str(d) for d in data.get("RepoDigests") or ()),
            tags=tuple(str(t) for t in data.get("RepoTags") or ()),
        )

    def tag_image(self, image_id: str, repository: str, tag: str) -> None:
        self._call(
            f"tag {repository}:{tag}",
            lambda api: api.tag(image_id, repository, tag=tag, force=True),
        )

    def untag_image(self, ref: str) -> None:
        # force: a tag is removed even while a container runs the image (the image stays
        # for it); only our own tags are ever passed here, never an image id
        try:
            self._call(
                f"untag {ref[:80]}", lambda api: api.remove_image(ref, force=True, noprune=True)
            )
        except ContainerGone:
            return  # already gone

    def close(self) -> None:
        if self._api is not None:
            self._api.close()
            self._api = None
