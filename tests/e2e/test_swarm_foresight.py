"""Seeing it coming on a swarm: a task's memory is sampled through the engine of its node,
and a leak toward the limit Swarm set is forecast before the kernel's OOM kill, as on one
host (tests/e2e/test_foresight.py). On the one-node private swarm (tests/e2e/swarm.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import STACKS, wait_for
from tests.e2e.swarm import Swarm
from tests.e2e.swarmctl import Controller

STACK_FILE = STACKS / "swarm-leaky.yaml"

DESIRED = """\
project: {stack}
compose_files: [{file}]
predict: {{sample_seconds: 5, min_history_seconds: 60, window_seconds: 600}}
services:
  leaky: {{predict: {{warning_seconds: 600, critical_seconds: 120}}}}
"""


@pytest.mark.timeout(600)
def test_a_leaking_task_is_forecast_before_its_oom_kill(swarm1: Swarm, tmp_path: Path):
    with swarm1.stack(STACK_FILE) as stack:
        desired = tmp_path / "desired"
        desired.mkdir()
        (desired / "dev.yaml").write_text(DESIRED.format(stack=stack, file=STACK_FILE))
        controller = Controller(swarm1, tmp_path, "--desired-state-dir", str(desired))
        try:

            def forecast() -> dict[str, Any] | None:
                return controller.issue("predict:leaky:memory")

            issue = wait_for(forecast, 300, "the leak's forecast", 1, controller.seen)
            # before the kernel killed the task: no death of it yet
            assert controller.issue("drift:leaky:") is None, controller.seen()
            assert issue["title"].startswith(
                "at this rate leaky reaches its 48 MiB memory limit in about"
            ), issue
            assert issue["category"] == "predicted", issue
        finally:
            controller.stop()
