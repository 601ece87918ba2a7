"""A crash loop on a swarm is handed to a human, on a real one-node swarm.

Swarm's restart policy replaces a task that ended with a new task; the controller read
each new task as a person's ``create`` (a person bringing the service back: a fresh
budget), so a service that crashed forever was never handed over: its issue stayed
``remediating`` with a budget renewed after every crash. Swarm's replacements now count
against the budget as Docker's restarts do."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import STACKS, wait_for
from tests.e2e.swarm import Swarm
from tests.e2e.swarmctl import controlling

LOOP = STACKS / "swarm-loop.yaml"

DESIRED = """\
project: {stack}
compose_files: [{file}]
remediation: {{budget: 3, backoff_initial_seconds: 1, backoff_max_seconds: 2}}
services:
  crasher: {{}}
"""


def test_swarms_endless_replacements_of_a_crashing_task_go_to_a_human(
    swarm1: Swarm, tmp_path: Path
):
    with controlling(swarm1, LOOP, DESIRED, tmp_path) as (_, controller):
        handed = wait_for(
            lambda: next(
                (
                    i
                    for i in controller.issues()
                    if i["service"] == "crasher" and i["state"] == "needs-human"
                ),
                None,
            ),
            240,
            "the crash loop to be handed to a human",
            1,
            controller.seen,
        )
        assert "Swarm's restart policy" in handed["resolution"], handed
        assert handed["attempts"] == [], handed  # Swarm's replacements, no step of ours
        assert "a person acted on it" not in controller.log()
