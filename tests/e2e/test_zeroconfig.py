"""Zero-config on a real engine: a compose file alone, no desired_state directory, the
controller started in its directory with no flag that names a desired state."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import CONTROLLER, Stack, free_ports, http_get, wait_for

# trio.yaml's services; gamma declares a setting in x-controller, beta in a label
COMPOSE = """\
name: {project}
x-service: &service
  image: cc-busybox:1
  network_mode: none
  command: ["sh", "-c", "trap 'exit 0' TERM; touch /tmp/healthy; while :; do sleep 1 & wait $$!; done"]
  healthcheck:
    test: ["CMD", "test", "-f", "/tmp/healthy"]
    interval: 1s
    timeout: 5s
    retries: 2
    start_period: 5s

services:
  alpha: *service
  beta:
    <<: *service
    labels:
      compose-controller.required: "false"
  gamma:
    <<: *service
    x-controller:
      required: false
"""


class ZeroConfigStack(Stack):
    """A compose file alone in its directory; the controller runs there, as `dev`."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True)
        self.project = f"cce2e-{uuid.uuid4().hex[:10]}"
        self.env = "dev"
        self.root = root
        self.compose_file = root / "compose.yaml"
        self.compose_file.write_text(COMPOSE.format(project=self.project))
        self.environment = {}
        # nothing of the test runner's own settings: what the controller finds, it found
        self.process_env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("CONTROLLER_", "COMPOSE_", "APPRISE_"))
        }
        self.desired_dir = root / "desired_state"  # never made
        self.state_dir = root
        self.started = []

    def argv(self, *flags: str) -> list[str]:
        return [CONTROLLER, *flags]


@pytest.fixture
def zero_stack(tmp_path: Path) -> Iterator[Callable[[], ZeroConfigStack]]:
    stacks: list[ZeroConfigStack] = []

    def make() -> ZeroConfigStack:
        stack = ZeroConfigStack(tmp_path / f"z{len(stacks)}")
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        for proc in stack.started:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        stack.down()


def test_a_compose_file_alone_is_kept_healthy_with_its_own_settings(zero_stack):
    stack = zero_stack()
    assert not stack.desired_dir.exists()
    check = subprocess.run(
        [CONTROLLER, "check"],
        capture_output=True,
        text=True,
        cwd=stack.root,
        env=stack.process_env,
        timeout=120,
        check=False,
    )
    assert check.returncode == 0, check.stderr
    assert check.stdout.startswith(f"{stack.compose_file}: ok: project {stack.project}, 3 service")

    stack.up()
    (port,) = free_ports(1)
    stack.start_controller(
        "--interval-active", "1", "--interval-quiet", "2", "--metrics-port", str(port)
    )
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: http_get(base + "/readyz")[0] == 200, 60, "the controller to be ready")
    wait_for(lambda: stack.issues()["converged"], 60, "the running stack to count as converged")
    required = {s["name"]: s["required"] for s in stack.issues()["services"]}
    assert required == {"alpha": True, "beta": False, "gamma": False}

    stack.kill("alpha")
    issue = stack.wait_issue("drift:alpha:exited", "resolved")
    assert stack.healthy("alpha")
    assert issue["resolution"] == "fixed by restart"
    assert f"project {stack.project}" in stack.log()
