"""Fakes of OUR seams (EngineGateway, ComposeActions, the clock), never of the docker SDK.

``FakeWorld`` is a tiny in-memory engine plus Compose: containers per service, and a few
behaviours a test can switch on (a service that crashes right after every start, one whose
healthcheck keeps failing, an engine that does not answer).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from controller.issues.store import IssueStore
from controller.metrics import StateView
from controller.model import (
    ComposeProject,
    ContainerSnapshot,
    ContainerUsage,
    DesiredState,
    DetectionSettings,
    DiskUsage,
    RemediationSettings,
    ServiceRecord,
    ServiceRunState,
    ServiceSpec,
    StackView,
    SwarmNode,
    SwarmPause,
    SwarmUpdate,
    TaskFailure,
    TaskRun,
    VolumeUsage,
)
from controller.observe.gateway import (
    ComposeError,
    ContainerGone,
    ContainerSummary,
    EngineError,
    EngineIdentity,
    EngineUnavailable,
    ImageInfo,
)
from controller.observe.lines import split_lines


class FakeClock:
    """Epoch seconds that move only when a test (or a wait) moves them."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def wait(self, seconds: float) -> bool:
        """A stop-aware sleep that never sleeps: time jumps, and no stop is requested."""
        self.now += seconds
        return False


def spec(name: str, **fields: object) -> ServiceSpec:
    defaults: dict[str, object] = {"verify_timeout": 10.0, "min_ready": 1.0}
    defaults.update(fields)
    return ServiceSpec(name=name, **defaults)  # type: ignore[arg-type]


def desired(
    *specs: ServiceSpec,
    env: str = "dev",
    remediation: RemediationSettings | None = None,
    detection: DetectionSettings | None = None,
) -> DesiredState:
    return DesiredState(
        env=env,
        source=Path("desired_state") / f"{env}.yaml",
        compose=ComposeProject(name="demo", files=(Path("compose.yaml"),), workdir=Path(".")),
        services={s.name: s for s in specs},
        remediation=remediation or RemediationSettings(log_quiet=0.0),
        detection=detection or DetectionSettings(),
    )


def store_view(
    store: IssueStore,
    *,
    queue_depth: int = 0,
    busy: int = 0,
    records: Callable[[], dict[str, ServiceRecord]] = dict,
    clock: Callable[[], float] = time.time,
) -> StateView:
    """What the metrics collector reads, of a store alone: no rollback record, no trend,
    nothing learned; 3 workers at most."""
    return StateView(
        issues=store.issues,
        services=store.services,
        queue_depth=lambda: queue_depth,
        workers_busy=lambda: busy,
        workers_max=3,
        records=records,
        rollback=dict,
        clock=clock,
        trends=list,
        learned=dict,
    )


def container(service: str, number: int = 1, **fields: object) -> ContainerSnapshot:
    base = ContainerSnapshot(
        id=f"{service}-{number}-id",
        name=f"demo-{service}-{number}",
        service=service,
        number=number,
        status="running",
        health=None,
        exit_code=0,
        oom_killed=False,
        restart_count=0,
        started_at="2026-01-01T00:00:00Z",
        config_hash="h",
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def _stamp(ts_ns: int) -> bytes:
    seconds, nanos = divmod(ts_ns, 1_000_000_000)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{text}.{nanos:09d}Z".encode()


class FakeStream:
    """A finished stream of chunks (the fake engine's logs end when printed out)."""

    def __init__(self, chunks: list[Any]) -> None:
        self._chunks = chunks
        self.closed = False

    def __iter__(self) -> Iterator[Any]:
        return iter(self._chunks)

    def close(self) -> None:
        self.closed = True


class FakeWorld:
    """An EngineGateway and ComposeActions over an in-memory set of containers."""

    def __init__(self, project: str = "demo") -> None:
        self.project = project
        self.containers: dict[str, ContainerSnapshot] = {}
        self.healthchecked: set[str] = set()  # services whose containers report health
        # the state the list call shows instead, by container id: the engine lists a
        # container being restarted as exited until its start is done; inspect waits for it
        self.listed: dict[str, str] = {}
        self.crashing: set[str] = set()  # services that exit 1 right after every start
        self.sick: set[str] = set()  # services whose healthcheck fails after every start
        self.reachable = True
        self.engine_id = "FAKE:ENGINE:ID"
        self.actions: list[tuple[str, str]] = []
        self.logs: dict[str, list[tuple[int, bytes]]] = {}
        self.follows: list[tuple[str, float | None]] = []
        self.exec_result: tuple[int, bytes] = (0, b"")
        self.cured_by_exec: set[str] = set()  # services a successful exec heals
        self.piece_bytes: int | None = None  # logs in pieces of this size (None: per line)
        # list summaries as coarse as the engine's (state and health only); by default
        # they show every change, so tests that send no events see every change too
        self.coarse_summaries = False
        self.calls: list[str] = []  # list_summaries / inspect calls, for the informer's tests
        # resources, as the engine's stats and disk usage say them: by service
        self.memory: dict[str, int] = {}  # working set in bytes (default 50 MiB)
        self.memory_limit: dict[str, int] = {}  # its limit (default none: the host's)
        self.pids: dict[str, tuple[int, int]] = {}  # (pids, pids limit 0: none)
        self.writable: dict[str, int] = {}  # bytes of its writable layer
        self.volumes: dict[str, int] = {}  # volume (compose name) -> bytes in it
        self.host_memory = 16 << 30
        self.usage_calls = 0
        self.lock = threading.Lock()
        self._starts = 0
        # images the engine has (by id and by tag) and the compose model ``config`` gives
        self.images: dict[str, ImageInfo] = {}
        self.tags: dict[str, str] = {}  # repository:tag -> image id
        self.model: dict[str, Any] = {"name": project, "services": {}}
        self.reverted: list[tuple[str, str]] = []  # (service, file) of every rollback

    # images and the compose model, for changes and rollbacks
    def add_image(self, image_id: str, *tags: str, digests: tuple[str, ...] = ()) -> None:
        self.images[image_id] = ImageInfo(image_id, digests, tags)
        for tag in tags:
            self.tags[tag] = image_id

    @staticmethod
    def hash_of(config: Mapping[str, Any]) -> str:
        """The fake's config hash: of the service's config without ``depends_on``."""
        kept = {k: v for k, v in config.items() if k != "depends_on"}
        return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()

    def declare(self, service: str, **config: Any) -> str:
        """The compose model declares ``service`` so; its config hash."""
        self.model["services"][service] = config
        return self.hash_of(config)

    # arranging a scene
    def run(self, service: str, replicas: int = 1, **fields: object) -> None:
        for n in range(1, replicas + 1):
            snap = container(service, n, **fields)
            if service in self.healthchecked and "health" not in fields:
                snap = replace(snap, health="healthy")
            self.containers[snap.id] = snap

    def set(self, service: str, **fields: object) -> None:
        for cid, snap in list(self.containers.items()):
            if snap.service == service:
                self.containers[cid] = replace(snap, **fields)  # type: ignore[arg-type]

    def _started(self, snap: ContainerSnapshot) -> ContainerSnapshot:
        self._starts += 1
        started = f"2026-01-01T00:00:{self._starts:02d}Z"
        if snap.service in self.crashing:
            return replace(
                snap,
                status="exited",
                exit_code=1,
                health=None,
                started_at=started,
                restart_count=snap.restart_count,
            )
        health = None
        if snap.service in self.healthchecked:
            health = "unhealthy" if snap.service in self.sick else "healthy"
        return replace(  # a new start begins a new health history, as the engine's does
            snap,
            status="running",
            exit_code=0,
            health=health,
            started_at=started,
            failing_streak=0,
            failing_since="",
        )

    # logs: what each container printed, as (timestamp ns, line) pairs
    def print(self, container_id: str, ts_ns: int, line: bytes) -> None:
        self.logs.setdefault(container_id, []).append((ts_ns, line))

    # EngineGateway
    def follow_logs(self, container_id: str, since: float | None) -> FakeStream:
        """The engine's behaviour: lines stamped at or after ``since``, then the end."""
        if not self.reachable:
            raise EngineUnavailable("logs: engine unreachable (fake)")
        self.follows.append((container_id, since))
        chunks = [
            _stamp(ts) + b" " + line + b"\n"
            for ts, line in self.logs.get(container_id, [])
            if since is None or ts >= int(since * 1e9)
        ]
        if self.piece_bytes:
            data, size = b"".join(chunks), self.piece_bytes
            chunks = [data[i : i + size] for i in range(0, len(data), size)]
        return FakeStream(list(split_lines(chunks)))

    def events(self, project: str) -> FakeStream:
        return FakeStream([])

    def identity(self) -> EngineIdentity:
        if not self.reachable:
            raise EngineUnavailable("info: engine unreachable (fake)")
        return EngineIdentity("unix:///fake.sock", self.engine_id, "fake", "20.10.24, API 1.41")

    def ping(self) -> bool:
        return self.reachable

    def usage(self, container_id: str) -> ContainerUsage:
        self.usage_calls += 1
        if not self.reachable:
            raise EngineUnavailable("stats: engine unreachable (fake)")
        with self.lock:
            snap = self.containers.get(container_id)
        if snap is None or not snap.status.running:
            raise ContainerGone(f"stats {container_id}: no such running container")
        limit = self.memory_limit.get(snap.service, 0)
        pids, pids_limit = self.pids.get(snap.service, (3, 0))
        return ContainerUsage(
            container=container_id,
            memory=self.memory.get(snap.service, 50 << 20),
            memory_limit=limit or self.host_memory,
            memory_limited=bool(limit),
            pids=pids,
            pids_limit=pids_limit,
        )

    def disk_usage(self, project: str) -> DiskUsage:
        if not self.reachable:
            raise EngineUnavailable("disk usage: engine unreachable (fake)")
        with self.lock:
            writable = {c.id: self.writable.get(c.service, 0) for c in self.containers.values()}
        volumes = tuple(VolumeUsage(name, size) for name, size in sorted(self.volumes.items()))
        return DiskUsage(writable, volumes)

    def list_containers(self, project: str) -> list[ContainerSnapshot]:
        if not self.reachable:
            raise EngineUnavailable("list containers: engine unreachable (fake)")
        with self.lock:
            return sorted(
                (c for c in self.containers.values() if project == self.project),
                key=lambda c: (c.service, c.number),
            )

    def list_summaries(self, project: str) -> list[ContainerSummary]:
        self.calls.append("list")
        return [
            ContainerSummary(
                c.id,
                self.listed.get(c.id, c.status),
                f"({c.health})" if self.coarse_summaries else repr(c),
            )
            for c in self.list_containers(project)
        ]

    def inspect(self, container_id: str) -> ContainerSnapshot:
        self.calls.append(f"inspect {container_id}")
        if not self.reachable:
            raise EngineUnavailable("inspect: engine unreachable (fake)")
        with self.lock:
            snap = self.containers.get(container_id)
        if snap is None:
            raise ContainerGone(f"inspect {container_id}: no such container")
        return snap

    def restart(self, container_id: str, timeout: float) -> None:
        with self.lock:
            snap = self.containers.get(container_id)
            if snap is None:
                raise ContainerGone(f"restart {container_id}: no such container")
            self.actions.append(("restart", snap.name))
            self.containers[container_id] = self._started(snap)

    def exec(
        self,
        container_id: str,
        argv: Any,
        *,
        user: str = "",
        env: Any = None,
        timeout: float = 60.0,
    ) -> tuple[int, bytes]:
        with self.lock:
            snap = self.containers[container_id]
            self.actions.append(("exec", f"{snap.name}: {' '.join(argv)}"))
            code, output = self.exec_result
            if code == 0:
                for service in self.cured_by_exec:
                    self.sick.discard(service)
                    self.crashing.discard(service)
            return code, output

    def unpause(self, container_id: str) -> None:
        with self.lock:
            snap = self.containers[container_id]
            self.actions.append(("unpause", snap.name))
            self.containers[container_id] = replace(snap, status="running")

    def close(self) -> None:
        pass

    # HashSource: the compose model and its config hashes (none declared: nothing is
    # outdated)
    def rendered(self, timeout: float = 60.0) -> tuple[dict[str, Any], dict[str, str]]:
        return self.model, self.hashes_of(self.model)

    def image(self, ref: str) -> ImageInfo | None:
        if not self.reachable:
            raise EngineUnavailable("inspect image: engine unreachable (fake)")
        return self.images.get(self.tags.get(ref, ref))

    def tag_image(self, image_id: str, repository: str, tag: str) -> None:
        self.actions.append(("tag", f"{repository}:{tag}"))
        self.tags[f"{repository}:{tag}"] = image_id

    def untag_image(self, ref: str) -> None:
        self.actions.append(("untag", ref))
        self.tags.pop(ref, None)

    # SnapshotCompose and RevertCompose
    def config(self, timeout: float = 60.0) -> dict[str, Any]:
        if not self.reachable:
            raise ComposeError("compose config exited 1: cannot connect (fake)")
        return json.loads(json.dumps(self.model))

    def hashes_of(self, document: Mapping[str, Any], timeout: float = 60.0) -> dict[str, str]:
        services = document.get("services") or {}
        return {name: self.hash_of(config) for name, config in services.items()}

    def hashes_of_file(self, file: Path, timeout: float = 60.0) -> dict[str, str]:
        return self.hashes_of(json.loads(file.read_text()))

    def revert_args(self, file: Path, service: str) -> list[str]:
        return [
            "docker",
            "compose",
            "--project-name",
            self.project,
            "--file",
            str(file),
            "up",
            "--detach",
            "--no-deps",
            "--force-recreate",
            service,
        ]

    def revert(self, file: Path, service: str, timeout: float = 300.0) -> object:
        """Compose's recreate of ``service`` from a snapshot's ``file``: its containers
        replaced by ones of that config and image."""
        if not self.reachable:
            raise ComposeError("compose up exited 1: cannot connect to the engine (fake)")
        config = json.loads(file.read_text())["services"][service]
        with self.lock:
            self.actions.append(("revert", service))
            self.reverted.append((service, str(file)))
            for c in [c for c in self.containers.values() if c.service == service]:
                del self.containers[c.id]
            fresh = container(
                service,
                1,
                id=f"{service}-1-id{self._starts}",
                config_hash=self.hash_of(config),
                image_id=self.tags.get(config["image"], ""),
                image=config["image"],
            )
            self.containers[fresh.id] = self._started(fresh)
        return None

    # ComposeActions
    def up(
        self,
        service: str,
        *,
        force_recreate: bool = False,
        build: bool = False,
        replicas: int | None = None,
        timeout: float = 120.0,
    ) -> object:
        if not self.reachable:
            raise ComposeError("compose up exited 1: cannot connect to the engine (fake)")
        with self.lock:
            verb = "rebuild" if build else "recreate" if force_recreate else "up"
            self.actions.append((verb, service))
            existing = [c for c in self.containers.values() if c.service == service]
            if force_recreate:
                for c in existing:
                    del self.containers[c.id]
                existing = []
            wanted = replicas or 1
            for c in existing:
                if c.status != "running":
                    self.containers[c.id] = self._started(c)
            for n in range(len(existing) + 1, wanted + 1):
                fresh = container(service, n, id=f"{service}-{n}-id{self._starts}")
                self.containers[fresh.id] = self._started(fresh)
        return None


DEPLOYED = "2026-12-05T20:00:00.5Z"  # when a fake stack deploy's updates began
ROLLED_BACK = "2026-12-05T20:01:30Z"  # when a fake rollback began


class FakeStack:
    """Our ``StackControl`` (a swarm manager's updates) over a ``FakeWorld``: a forced
    update replaces every container of the service, a scale sets its replicas."""

    def __init__(self, world: FakeWorld, replicas: Mapping[str, int] | None = None) -> None:
        self.world = world
        self.replicas = dict(replicas or {})  # what Swarm keeps, by compose service
        self.missing: set[str] = set()  # services the stack does not deploy
        self.pauses: dict[str, SwarmPause] = {}  # updates Swarm paused, by compose service
        self.rolled: dict[str, SwarmPause] = {}  # rollbacks Swarm completed, by compose service
        self._rollbacks = 0  # rollbacks carried out (each begins at its own time)
        self.updated: dict[str, SwarmUpdate] = {}  # each service's last update, if any
        self.nodes: list[SwarmNode] = []  # the swarm's nodes (docker node ls)
        self.failures: list[TaskFailure] = []  # the stack's tasks that failed, on their node
        self.runs: list[TaskRun] = []  # the stack's tasks that run now, on their node

    def pause(
        self, service: str, image: str, previous: str, message: str, started: str = DEPLOYED
    ) -> None:
        """Swarm paused the update of ``service`` from ``previous`` to ``image`` (begun at
        ``started``): its tasks (of the new spec) crash and say the update is paused."""
        self.pauses[service] = SwarmPause(
            f"demo_{service}", "paused", message, image=image, previous=previous
        )
        self.updated[service] = SwarmUpdate(f"demo_{service}", "paused", started, image, previous)
        self.world.crashing.add(service)
        self.world.set(service, update="paused", status="exited", exit_code=1, image=image)

    def update(self, service: str, image: str, previous: str, started: str = DEPLOYED) -> None:
        """Swarm carried out an update of ``service`` from ``previous`` to ``image`` (begun
        at ``started``): its tasks run the new image."""
        self.updated[service] = SwarmUpdate(
            f"demo_{service}", "completed", started, image, previous
        )
        self.world.set(service, update="completed", update_started=started, image=image)

    def paused(self, project: str, service: str) -> SwarmPause | None:
        self._name(project, service)
        return self.pauses.get(service)

    def rolled_back(self, project: str, service: str) -> SwarmPause | None:
        self._name(project, service)
        return self.rolled.get(service)

    def updates(self, project: str) -> dict[str, SwarmUpdate]:
        return {s: u for s, u in self.updated.items() if s not in self.missing}

    def rollback(self, project: str, service: str) -> SwarmPause | None:
        """Swarm puts the previous spec back: fresh tasks of the old image that run."""
        name = self._name(project, service)
        self.world.actions.append(("service rollback", name))
        pause = self.pauses.pop(service, None)
        update = self.updated.pop(service, None)
        if update is not None:  # the bad spec is the previous one now
            self._rolled_back(service, update.image, update.previous)
            self.updated[service] = SwarmUpdate(
                name, "rollback_completed", ROLLED_BACK, update.previous, update.image
            )
        else:
            self._rolled_back(
                service, pause.image if pause else "", pause.previous if pause else ""
            )
        return pause

    def roll_back(self, service: str, image: str, previous: str) -> None:
        """Swarm rolled the update of ``service`` from ``previous`` to ``image`` back by
        itself (its ``failure_action: rollback``): fresh tasks of ``previous`` that run."""
        self._rolled_back(service, image, previous)

    def _rolled_back(self, service: str, bad: str, previous: str) -> None:
        self.world.crashing.discard(service)
        self.world.up(service, force_recreate=True, replicas=self.replicas.get(service, 1))
        self.world.actions.pop(-1)
        self.rolled[service] = SwarmPause(
            f"demo_{service}", "rollback_completed", "rollback completed", previous, bad
        )
        self._rollbacks += 1
        began = f"2026-01-01T01:00:{self._rollbacks:02d}Z"
        self.world.set(service, update="rollback_completed", update_started=began, image=previous)

    def deploy(self, service: str, image: str) -> None:
        """A new ``docker stack deploy`` of ``service`` (``image``) that Swarm completed:
        its update status starts afresh (a rollback is over)."""
        self.rolled.pop(service, None)
        self.pauses.pop(service, None)
        self.updated.pop(service, None)
        self.world.crashing.discard(service)
        self.world.up(service, force_recreate=True, replicas=self.replicas.get(service, 1))
        self.world.actions.pop(-1)
        self.world.set(service, update="completed", update_started="", image=image)

    def view(self) -> StackView:
        """What the manager keeps of the stack (the observer's ``stack``): every service
        the world knows or Swarm keeps replicas of, but those not deployed."""
        known = {c.service for c in self.world.containers.values()}
        known |= set(self.replicas) | set(self.world.model["services"])
        return StackView(
            "demo",
            {s: self.replicas.get(s, 1) for s in sorted(known - self.missing)},
            "docker stack deploy -c /srv/demo/stack.yaml demo",
            tuple(self.nodes),
            tuple(self.failures),
            tuple(self.runs),
        )

    def stack_view(self, project: str, deploy: str) -> StackView:
        return replace(self.view(), deploy=deploy)

    def stack_replicas(self, project: str) -> dict[str, int | None]:
        return dict(self.view().replicas)

    def _name(self, project: str, service: str) -> str:
        if service in self.missing:
            raise EngineError(f"service {project}_{service} is not deployed (fake)")
        return f"{project}_{service}"

    def force_update(self, project: str, service: str) -> str:
        name = self._name(project, service)
        self.world.actions.append(("service update --force", name))
        replicas = self.replicas.get(service, 1)
        self.world.up(service, force_recreate=True, replicas=replicas)
        self.world.actions.pop(-1)  # the world's own record of it: this one says it
        return name

    def scale(self, project: str, service: str, replicas: int) -> tuple[str, int | None]:
        name = self._name(project, service)
        before = self.replicas.get(service, 1)
        self.replicas[service] = replicas
        self.world.actions.append(("service scale", f"{name}={replicas}"))
        if before != replicas:
            self.world.up(service, replicas=replicas)
            self.world.actions.pop(-1)
        return name, before


__all__ = [
    "FakeClock",
    "FakeStack",
    "FakeWorld",
    "ServiceRunState",
    "container",
    "desired",
    "spec",
    "store_view",
]
