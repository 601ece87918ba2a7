"""Private Docker Swarms for the e2e tests, made by scripts/swarm-up: never the main engine.

``swarm1`` (one manager) and ``swarm3`` (one manager, two workers) are session-scoped:
made once by each pytest process that asks for one (about 2 s for three nodes), stopped
and removed by scripts/swarm-down when it ends. Each node is a dockerd of its own with a
socket of its own (``SwarmNode.host``); the manager's API sees services, tasks and nodes
of the whole swarm, a node's own engine its containers only. The nodes share a network
namespace of their own (``Swarm.netns``), where containers with host networking live:
``Swarm.in_netns(argv)`` runs a command there. docs/swarm-testing.md says how and why.

The swarms are shared by the tests of a process: a test removes what it deploys
(``Swarm.stack`` does, and waits until the containers are gone).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest

ROOT = Path(__file__).resolve().parents[2]
SWARM_UP = ROOT / "scripts" / "swarm-up"
SWARM_DOWN = ROOT / "scripts" / "swarm-down"
CANNOT = 3  # swarm-up's exit status when this machine cannot run a swarm


@dataclass(frozen=True)
class SwarmNode:
    name: str  # n1, n2, ...: the node's directory under the swarm's
    role: str  # manager | worker
    host: str  # DOCKER_HOST of the node's own dockerd
    node_id: str  # the swarm's ID of the node (a task's NodeID)
    hostname: str  # its engine's, so its host-networked containers' too


class Swarm:
    """A swarm scripts/swarm-up made in ``root``; n1 is its leader."""

    def __init__(self, root: Path, nodes: list[SwarmNode]) -> None:
        self.root = root
        self.nodes = nodes
        self.netns = root / "netns"
        self._clients: dict[str, docker.DockerClient] = {}

    @property
    def manager(self) -> SwarmNode:
        return self.nodes[0]

    @property
    def workers(self) -> list[SwarmNode]:
        return [node for node in self.nodes if node.role == "worker"]

    def node(self, node_id: str) -> SwarmNode:
        return next(node for node in self.nodes if node.node_id == node_id)

    def client(self, node: SwarmNode | None = None) -> docker.DockerClient:
        """The SDK on a node's engine (the manager's by default), kept until the end."""
        host = (node or self.manager).host
        if host not in self._clients:
            self._clients[host] = docker.DockerClient(base_url=host, timeout=30)
        return self._clients[host]

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    def docker(
        self,
        *args: str,
        node: SwarmNode | None = None,
        check: bool = True,
        timeout: float = 60,
        environment: dict[str, str] | None = None,
    ) -> str:
        """The docker CLI on a node's engine (the manager's by default); its stdout."""
        argv = ["docker", "-H", (node or self.manager).host, *args]
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={**os.environ, **(environment or {})},
        )
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} failed: {done.stderr[-2000:]}")
        return done.stdout

    def stop_node(self, node: SwarmNode) -> None:
        """Stop a node's dockerd (SIGTERM), as a machine that goes down; swarm-down copes."""
        pid = int((self.root / node.name / "pid").read_text())
        os.kill(pid, signal.SIGTERM)

    def in_netns(self, *argv: str) -> list[str]:
        """``argv`` run in the swarm's network namespace, where host-networked tasks listen."""
        return ["nsenter", f"--net={self.netns}", *argv]

    def tasks(self, service: str) -> list[dict[str, Any]]:
        """Every task of a service the manager knows, old ones too (as ``service ps``)."""
        tasks: list[dict[str, Any]] = self.client().api.tasks(filters={"service": service})
        return tasks

    def running(self, service: str) -> list[dict[str, Any]]:
        """The service's tasks that run and are meant to."""
        return [
            task
            for task in self.tasks(service)
            if task["DesiredState"] == "running" and task["Status"]["State"] == "running"
        ]

    def states(self, service: str) -> list[tuple[Any, ...]]:
        """What a failed wait shows: (slot, node, state, desired state, error) of each task."""
        names = {node.node_id: node.name for node in self.nodes}
        return sorted(
            (
                task.get("Slot"),
                names.get(task.get("NodeID", ""), "-"),
                task["Status"]["State"],
                task["DesiredState"],
                task["Status"].get("Err", ""),
            )
            for task in self.tasks(service)
        )

    @contextmanager
    def stack(
        self,
        compose_file: Path,
        name: str | None = None,
        environment: dict[str, str] | None = None,
    ) -> Iterator[str]:
        """``docker stack deploy`` of ``compose_file`` as ``name`` (a fresh one by default),
        ``environment`` added to the CLI's for the file's ``${VARIABLES}``; removed on the
        way out, waiting until no node has a container of it."""
        name = name or f"t{uuid.uuid4().hex[:8]}"
        # --resolve-image never: the images are local; asking a registry for their digest
        # is a lookup that may hang on a machine without one
        self.docker(
            "stack",
            "deploy",
            "--resolve-image",
            "never",
            "-c",
            str(compose_file),
            name,
            environment=environment,
        )
        try:
            yield name
        finally:
            self.docker("stack", "rm", name, check=False)
            self._wait_gone(name)

    def _wait_gone(self, stack: str, timeout: float = 60) -> None:
        label = f"label=com.docker.stack.namespace={stack}"
        deadline = time.monotonic() + timeout
        left: list[str] = []
        while time.monotonic() < deadline:
            left = [
                f"{node.name}:{line}"
                for node in self.nodes
                for line in self.docker("ps", "-aq", "--filter", label, node=node).split()
            ]
            left += self.docker("service", "ls", "-q", "--filter", label).split()
            if not left:
                return
            time.sleep(0.25)
        raise AssertionError(f"stack {stack} still has {left} after {timeout:g} s")


def make_swarm(nodes: int, images: str = "cc-busybox:1", managers: int = 1) -> Iterator[Swarm]:
    """A swarm of ``nodes`` nodes for the session; skipped where this machine cannot."""
    if os.geteuid() != 0:
        pytest.skip("a private swarm needs root: scripts/swarm-up starts dockerd processes")
    if shutil.which("dockerd") is None:
        pytest.skip("no dockerd binary (Debian: docker.io): scripts/swarm-up starts its own")
    root = Path(tempfile.mkdtemp(prefix=f"ccsw{nodes}-", dir="/tmp"))  # short: socket paths
    swarm: Swarm | None = None
    try:
        done = subprocess.run(
            [
                str(SWARM_UP),
                *("--nodes", str(nodes), "--managers", str(managers), "--images", images),
                str(root),
            ],
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        if done.returncode == CANNOT:
            pytest.skip(f"scripts/swarm-up: {done.stderr.strip().splitlines()[-1]}")
        if done.returncode != 0:
            pytest.fail(f"scripts/swarm-up --nodes {nodes} failed:\n{done.stderr[-3000:]}")
        swarm = Swarm(root, [SwarmNode(*line.split()) for line in done.stdout.splitlines()])
        yield swarm
    finally:
        if swarm is not None:
            swarm.close()
        down = subprocess.run(
            [str(SWARM_DOWN), str(root)], capture_output=True, text=True, timeout=180, check=False
        )
        if down.returncode != 0:
            raise AssertionError(f"scripts/swarm-down {root} failed:\n{down.stderr[-3000:]}")


@pytest.fixture(scope="session")
def swarm1() -> Iterator[Swarm]:
    """A one-node swarm: its manager runs the tasks (the demo's images too)."""
    yield from make_swarm(1, "cc-busybox:1 cc-pg15:1")


@pytest.fixture(scope="session")
def swarm3() -> Iterator[Swarm]:
    """A three-node swarm: n1 manages (and runs tasks too), n2 and n3 are workers."""
    yield from make_swarm(3)
