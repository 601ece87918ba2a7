"""Real-engine fixtures: a compose project per test, its own ports, cleaned up after.

Every stack here uses ``network_mode: host`` (loopback ports) or ``none``. Nothing is
mocked: these tests drive the real Docker engine, the real ``docker compose`` and the
installed ``controller`` command.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.swarm import swarm1, swarm3  # noqa: F401 (fixtures, for every e2e test)

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "demo" / "compose.yaml"
STACKS = Path(__file__).parent / "stacks"
CONTROLLER = str(Path(sys.executable).parent / "controller")

pytestmark = pytest.mark.e2e
LOG_TAIL = 80  # lines of each controller's log a failed test's report carries
STACKS_OF: pytest.StashKey[list[Stack]] = pytest.StashKey()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failed test's report carries the end of each of its controllers' logs: on a busy
    CI machine the run is gone by the time anyone reads why it failed."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.when != "call" or not report.failed:
        return
    for stack in item.stash.get(STACKS_OF, []):
        lines = stack.log().splitlines()[-LOG_TAIL:]
        if lines:
            report.sections.append((f"controller log of {stack.root.name}", "\n".join(lines)))


@pytest.fixture(scope="session", autouse=True)
def engine() -> None:
    done = subprocess.run(["docker", "info"], capture_output=True, check=False)
    if done.returncode != 0:
        pytest.fail("no Docker engine answers `docker info`: run scripts/engine-up first")
    done = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    if done.returncode != 0:
        pytest.fail("no `docker compose` v2: run scripts/engine-up first")


def wait_for(
    predicate: Callable[[], Any],
    timeout: float = 120.0,
    what: str = "condition",
    interval: float = 0.25,
    seen: Callable[[], Any] | None = None,
) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` s,
    saying what ``seen`` returns then (what the test was looking at)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            shown = "" if seen is None else f"; saw {seen()!r:.2000}"
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}{shown}")
        time.sleep(interval)


_HANDED_OUT: set[int] = set()  # ports given in this session: reserved, maybe not bound yet
PORTS_VARIABLE = "CC_TEST_PORTS"  # "FIRST-LAST": the ports this process may hand out


def port_range() -> range:
    """The loopback ports this process hands out: ``CC_TEST_PORTS`` when set (the soak's
    command sets its own), else 18000-18999, split between pytest-xdist's workers so two
    processes never reserve the same port before binding it."""
    first, last = 18000, 18999
    if spec := os.environ.get(PORTS_VARIABLE):
        low, _, high = spec.partition("-")
        first, last = int(low), int(high)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if worker.startswith("gw") and count > 1:
        size = (last - first + 1) // count
        first += int(worker[2:]) * size
        last = first + size - 1
    return range(first, last + 1)


def free_ports(count: int) -> list[int]:
    """Distinct loopback ports of ``port_range()`` that nothing listens on now and that no
    earlier call gave out: a port chosen for a service not started yet (the backend's,
    while only the database is up) must not become the controller's metrics port."""
    pool = port_range()
    ports: list[int] = []
    while len(ports) < count:
        if len(_HANDED_OUT) + len(ports) >= len(pool):
            raise RuntimeError(f"every test port in {pool.start}-{pool.stop - 1} was handed out")
        port = random.choice(pool)
        if port in ports or port in _HANDED_OUT:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        ports.append(port)
    _HANDED_OUT.update(ports)
    return ports


class Stack:
    """One compose project for one test, declared in its own desired_state directory."""

    def __init__(
        self,
        root: Path,
        compose_file: Path,
        environment: dict[str, str],
        services: str = "",
        docker_host: str | None = None,
    ) -> None:
        self.project = f"cce2e-{uuid.uuid4().hex[:10]}"
        self.env = "e2e"
        self.root = root
        self.compose_file = compose_file
        self.environment = environment
        # the engine this stack runs on (None: the default one), for every process we start
        self.process_env = {**os.environ, **({"DOCKER_HOST": docker_host} if docker_host else {})}
        self.desired_dir = root / "desired_state"
        self.state_dir = root / "state"
        self.started: list[subprocess.Popen[str]] = []  # the controllers started for it
        self.desired_dir.mkdir(parents=True)
        self.state_dir.mkdir()
        env_lines = "".join(f'  {k}: "{v}"\n' for k, v in environment.items())
        self.desired_file = self.desired_dir / f"{self.env}.yaml"
        self.desired_file.write_text(
            f"project: {self.project}\n"
            f"compose_files: [{compose_file}]\n"
            + (f"environment:\n{env_lines}" if environment else "")
            + (f"services:\n{services}" if services else "")
        )

    # --- compose and engine -------------------------------------------------------------

    def compose(
        self, *args: str, check: bool = True, timeout: float = 180, stdin: str | None = None
    ) -> str:
        argv = ["docker", "compose", "-p", self.project, "-f", str(self.compose_file), *args]
        done = subprocess.run(
            argv,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**self.process_env, **self.environment},
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} failed: {done.stderr[-2000:]}")
        return done.stdout

    def say(self, service: str, text: str) -> None:
        """Make a talker-like service print ``text`` (it prints what lands in /tmp/say)."""
        self.compose(
            "exec",
            "-T",
            service,
            "sh",
            "-c",
            "cat > /tmp/say.new && mv /tmp/say.new /tmp/say",
            stdin=text,
        )

    def up(self, *services: str) -> None:
        self.compose("up", "--detach", "--wait", "--wait-timeout", "150", *services)

    def down(self) -> None:
        self.compose("down", "--volumes", "--remove-orphans", "--timeout", "1", check=False)
        # a test may have left the compose file unreadable: remove by project label too
        label = f"label=com.docker.compose.project={self.project}"
        ids = self.docker("ps", "-aq", "--filter", label, check=False).split()
        if ids:
            self.docker("rm", "-f", *ids, check=False)
        # the last-good tags the controller kept for the project's services
        kept = self.docker(
            "images",
            "--format",
            "{{.Repository}}:{{.Tag}}",
            f"compose-controller/lastgood/{self.project}/*",
            check=False,
        ).split()
        if kept:
            self.docker("rmi", "-f", *kept, check=False)

    def inspect(self, service: str) -> dict[str, Any] | None:
        ids = self.compose("ps", "--all", "--quiet", service).split()
        if not ids:
            return None
        data: dict[str, Any] = json.loads(self.docker("inspect", ids[0]))[0]
        return data

    def state(self, service: str) -> tuple[str, str | None]:
        """(status, health) of the service's first container; ('missing', None) if none."""
        data = self.inspect(service)
        if data is None:
            return "missing", None
        health = (data["State"].get("Health") or {}).get("Status")
        return data["State"]["Status"], health

    def healthy(self, service: str) -> bool:
        return self.state(service) == ("running", "healthy")

    def docker(self, *args: str, check: bool = True) -> str:
        return subprocess.run(
            ["docker", *args],
            capture_output=True,
            text=True,
            check=check,
            timeout=60,
            env=self.process_env,
        ).stdout

    def crash(self, service: str) -> None:
        """SIGKILL the container's main process from the host: a real crash (the engine
        does not count it as a manual stop, as it may `docker kill`)."""
        data = self.inspect(service)
        assert data is not None and data["State"]["Pid"], f"{service} is not running"
        os.kill(int(data["State"]["Pid"]), signal.SIGKILL)

    def kill(self, service: str) -> None:
        data = self.inspect(service)
        assert data is not None, f"{service} has no container"
        self.docker("kill", "--signal", "KILL", data["Id"])

    # --- the controller -----------------------------------------------------------------

    def argv(self, *flags: str) -> list[str]:
        return [
            CONTROLLER,
            "--env",
            self.env,
            "--desired-state-dir",
            str(self.desired_dir),
            "--state-dir",
            str(self.state_dir),
            *flags,
        ]

    def run_controller(self, *flags: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(*flags),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.root,
            check=False,
            env=self.process_env,
        )

    def run_patterns(self, *flags: str) -> str:
        """``controller patterns`` with ``flags``; its output (it must exit 0)."""
        done = subprocess.run(
            [CONTROLLER, "patterns", *flags],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=self.process_env,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def start_controller(self, *flags: str) -> subprocess.Popen[str]:
        with open(self.root / "controller.log", "w") as log:  # the child keeps its own copy
            proc = subprocess.Popen(
                self.argv(*flags),
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
                cwd=self.root,
                env=self.process_env,
            )
        self.started.append(proc)
        return proc

    def serve(self, *flags: str) -> str:
        """Start the long-running controller on a free port; its base URL once ready."""
        (port,) = free_ports(1)
        self.start_controller("--metrics-port", str(port), *flags)
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: http_get(base + "/readyz")[0] == 200, 60, "the controller to be ready")
        return base

    def psql(self, *args: str, check: bool = True) -> str:
        """psql as postgres in the db service, over its unix socket."""
        port = self.environment["DB_PORT"]
        return self.compose(
            "exec",
            "-T",
            "db",
            "psql",
            "-h",
            "/tmp",
            "-p",
            port,
            "-U",
            "postgres",
            *args,
            check=check,
        )

    def wait_issue(self, fingerprint: str, state: str, timeout: float = 120) -> dict[str, Any]:
        issue: dict[str, Any] = wait_for(
            lambda: (i := self.issue(fingerprint)) and i["state"] == state and i,
            timeout,
            f"{fingerprint} to be {state}",
        )
        return issue

    def log(self) -> str:
        path = self.root / "controller.log"
        return path.read_text() if path.exists() else ""

    def issues(self) -> dict[str, Any]:
        path = self.state_dir / f"docker_issues_{self.env}.json"
        try:
            data: dict[str, Any] = json.loads(path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {"issues": [], "services": [], "converged": False}
        return data

    def issue(self, fingerprint: str) -> dict[str, Any] | None:
        return next((i for i in self.issues()["issues"] if i["fingerprint"] == fingerprint), None)

    def report(self) -> str:
        return (self.state_dir / f"docker_issues_report_{self.env}.md").read_text()


def metric(base: str, name: str, labels: str) -> float | None:
    """One sample of the controller's /metrics, by name and exact label text."""
    code, text = http_get(base + "/metrics")
    if code != 200:
        return None
    found = re.search(rf"^{name}\{{{labels}\}} ([0-9.e+]+)$", text, flags=re.MULTILINE)
    return float(found.group(1)) if found else None


def http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()
    except OSError:
        return 0, ""


@pytest.fixture
def make_stack(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., Stack]]:
    stacks: list[Stack] = []
    request.node.stash[STACKS_OF] = stacks
    procs: list[subprocess.Popen[str]] = []

    def make(
        compose_file: Path = DEMO,
        environment: dict[str, str] | None = None,
        services: str = "",
        docker_host: str | None = None,
    ) -> Stack:
        if environment is None and compose_file == DEMO:
            db, backend, frontend = free_ports(3)
            environment = {
                "DB_PORT": str(db),
                "BACKEND_PORT": str(backend),
                "FRONTEND_PORT": str(frontend),
            }
        stack = Stack(
            tmp_path / f"s{len(stacks)}", compose_file, environment or {}, services, docker_host
        )
        stacks.append(stack)
        original = stack.start_controller

        def tracked(*flags: str) -> subprocess.Popen[str]:
            proc = original(*flags)
            procs.append(proc)
            return proc

        stack.start_controller = tracked  # type: ignore[method-assign]
        return stack

    yield make
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    for stack in stacks:
        stack.down()


class PrivateEngine:
    """A Docker engine of the test's own (its own socket, data and exec roots), so that a
    test may stop and restart an engine without touching one it did not start.
    ``--live-restore`` keeps its containers running while it is down, as in production."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.host = f"unix://{root}/docker.sock"
        self._proc: subprocess.Popen[bytes] | None = None

    def docker(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            ["docker", "-H", self.host, *args], capture_output=True, check=False, timeout=120, **kw
        )

    def up(self) -> bool:
        return self.docker("info").returncode == 0

    def start(self) -> None:
        dockerd = shutil.which("dockerd")
        if dockerd is None:
            pytest.fail("no dockerd binary: run scripts/engine-up first")
        with open(self.root / "dockerd.log", "ab") as log:
            self._proc = subprocess.Popen(
                [
                    dockerd,
                    "--host",
                    self.host,
                    "--data-root",
                    str(self.root / "data"),
                    "--exec-root",
                    str(self.root / "exec"),
                    "--pidfile",
                    str(self.root / "pid"),
                    "--bridge=none",
                    "--iptables=false",
                    "--ip-masq=false",
                    "--live-restore",
                    "--log-level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for(self.up, 60, "the private engine to answer")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait(60)
        self._proc = None


@pytest.fixture
def private_engine() -> Iterator[PrivateEngine]:
    root = Path(tempfile.mkdtemp(prefix="cce", dir="/tmp"))  # a short path: socket names
    engine = PrivateEngine(root)
    engine.start()
    try:
        image = subprocess.run(
            ["docker", "save", "cc-busybox:1"], capture_output=True, check=True, timeout=120
        ).stdout
        assert engine.docker("load", input=image).returncode == 0
        yield engine
    finally:
        if not engine.up():
            engine.start()
        ids = engine.docker("ps", "-aq").stdout.decode().split()
        if ids:
            engine.docker("rm", "-f", *ids)
        engine.stop()
        mounts = Path("/proc/mounts").read_text().split("\n")
        for point in sorted({m.split()[1] for m in mounts if f" {root}/" in m}, reverse=True):
            subprocess.run(["umount", "-l", point], check=False)  # dockerd's own bind mount
        shutil.rmtree(root, ignore_errors=True)
