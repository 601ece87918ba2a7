"""A bad ``docker stack deploy`` Swarm paused, on the one-node private swarm
(tests/e2e/swarm.py): its new task exits 1, Swarm pauses the update and keeps the
previous spec. ``rollback: auto``: the controller rolls it back through Swarm and says
from what to what; ``notify``: its issue names the command, and nothing is rolled back.
An update whose task fails only after Swarm's monitor period (Swarm completes it) is
judged bad by the controller and rolled back the same way; after a second deploy of the
same file it is a person's (Swarm's ``PreviousSpec`` is the spec it runs then); a fix
deployed over a task whose restart policy gave up is judged good (the old spec's death is
not the fix's).
One Swarm rolled back by itself (``failure_action: rollback``) runs its previous spec
while the stack file asks for the change: ``controller --once`` exits 5 until a deploy
brings the declaration back.
With ``scope: stack`` the service the same deploy updated is rolled back with it."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import CONTROLLER, STACKS, wait_for
from tests.e2e.swarm import Swarm
from tests.e2e.swarmctl import Controller

STACK_FILE = STACKS / "swarm-rollback.yaml"
GOOD = {"MODE": "good", "IMAGE": "cc-busybox:1"}
BAD = {"MODE": "bad", "IMAGE": "cc-busybox:2"}

DESIRED = """\
project: {stack}
compose_files: [{file}]
environment:
  MODE: good
  IMAGE: cc-busybox:1
rollback: {mode}
services:
  app: {{}}
"""


def inspect(swarm: Swarm, service: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(swarm.docker("service", "inspect", service))[0]
    return found


def spec_of(swarm: Swarm, service: str) -> tuple[str, str, str]:
    """The service's image and MODE as its spec says, and its update's state."""
    found = inspect(swarm, service)
    container = found["Spec"]["TaskTemplate"]["ContainerSpec"]
    env = [e for e in container.get("Env") or [] if e.startswith("MODE=")]
    state = (found.get("UpdateStatus") or {}).get("State", "")
    return container["Image"].split("@", 1)[0], ",".join(env), state


def deploy(
    swarm: Swarm, stack: str, environment: dict[str, str], stack_file: Path = STACK_FILE
) -> None:
    swarm.docker(
        "stack", "deploy", "--resolve-image", "never", "-c", str(stack_file), stack,
        environment=environment,
    )  # fmt: skip


def deploy_bad(swarm: Swarm, stack: str, stack_file: Path = STACK_FILE, **more: str) -> None:
    swarm.docker("tag", "cc-busybox:1", "cc-busybox:2")  # the "new" image, on the node
    deploy(swarm, stack, {**BAD, **more}, stack_file)


def running(swarm: Swarm, service: str) -> bool:
    return bool(swarm.running(service))


def rolled_back_by(controller: Controller, swarm: Swarm, service: str) -> dict[str, Any]:
    """The service's bad-change issue once the controller's rollback resolved it; Swarm
    runs the old spec again (the manager's word), and its task runs."""
    issue = wait_for(
        lambda: controller.resolved("change:app:bad-change"),
        300,
        "the rollback",
        1,
        lambda: (controller.seen(), spec_of(swarm, service)),
    )
    assert spec_of(swarm, service) == ("cc-busybox:1", "MODE=good", "rollback_completed")
    wait_for(lambda: running(swarm, service), 60, "the old spec's task", 1)
    found: dict[str, Any] = issue
    return found


def controller_of(swarm: Swarm, tmp_path: Path, text: str) -> Controller:
    """The controller on the stack, with ``text`` as its desired state."""
    desired = tmp_path / "desired"
    desired.mkdir()
    (desired / "dev.yaml").write_text(text)
    return Controller(swarm, tmp_path, "--desired-state-dir", str(desired))


@pytest.mark.timeout(600)
def test_auto_rolls_back_an_update_swarm_paused(swarm1: Swarm, tmp_path: Path):
    with swarm1.stack(STACK_FILE, environment=GOOD) as stack:
        text = DESIRED.format(stack=stack, file=STACK_FILE, mode="auto")
        controller = controller_of(swarm1, tmp_path, text)
        service = f"{stack}_app"
        try:
            wait_for(lambda: controller.status()["converged"], 120, "convergence", 1)
            deploy_bad(swarm1, stack)
            issue = rolled_back_by(controller, swarm1, service)
            assert issue["resolution"].startswith(
                "rolled back from cc-busybox:2 to cc-busybox:1 because Swarm paused its update"
            ), issue
            assert "docker service rollback" in issue["attempts"][0]["detail"], issue
            rolled = wait_for(
                lambda: (
                    (i := controller.issue("change:app:rolled-back")) and i["state"] == "open" and i
                ),
                60,
                "the rolled-back issue",
                1,
                controller.seen,
            )
            assert rolled["title"].startswith("rolled back from cc-busybox:2 to cc-busybox:1"), (
                rolled
            )
        finally:
            controller.stop()


@pytest.mark.timeout(600)
def test_auto_rolls_back_an_update_that_went_bad_after_swarm_completed_it(
    swarm1: Swarm, tmp_path: Path
):
    with swarm1.stack(STACK_FILE, environment=GOOD) as stack:
        text = DESIRED.format(stack=stack, file=STACK_FILE, mode="auto")
        controller = controller_of(swarm1, tmp_path, text)
        service = f"{stack}_app"
        try:
            wait_for(lambda: controller.status()["converged"], 120, "convergence", 1)
            deploy_bad(swarm1, stack, MODE="late")
            # Swarm calls the update completed: its task ran through the monitor period
            wait_for(
                lambda: spec_of(swarm1, service) == ("cc-busybox:2", "MODE=late", "completed"),
                120,
                "Swarm's completed update",
                0.5,
                lambda: spec_of(swarm1, service),
            )
            issue = rolled_back_by(controller, swarm1, service)
            assert issue["resolution"].startswith(
                "rolled back from cc-busybox:2 to cc-busybox:1 because after Swarm completed "
                "its update, "
            ), issue
            assert "exited with code 3" in issue["resolution"], issue
        finally:
            controller.stop()


@pytest.mark.timeout(600)
def test_a_restart_swarm_paused_goes_to_a_person_and_is_no_bad_change(
    swarm1: Swarm, tmp_path: Path
):
    """A task that cannot start (its image is not on the node) and that Swarm does not
    replace: the controller's forced update fails the same way and Swarm pauses it. That
    update was a restart, not a change: no rollback is offered, a person is told why."""
    missing = {"MODE": "good", "IMAGE": "cc-missing:1"}
    with swarm1.stack(STACK_FILE, environment=missing) as stack:
        text = DESIRED.format(stack=stack, file=STACK_FILE, mode="auto")
        controller = controller_of(swarm1, tmp_path, text)
        try:

            def handed_over() -> dict[str, Any] | None:
                issue = controller.issue("drift:app:")
                return issue if issue and issue["state"] == "needs-human" else None

            issue = wait_for(handed_over, 240, "a person's issue", 1, controller.seen)
            assert "Swarm paused the forced update of" in issue["resolution"], (
                issue,
                controller.log()[-6000:],
            )
            assert [a["action"] for a in issue["attempts"]] == ["restart"], issue
            assert controller.issue("change:app:bad-change") is None, controller.seen()
        finally:
            controller.stop()


@pytest.mark.timeout(600)
def test_a_second_deploy_of_the_same_file_in_the_window_leaves_a_bad_change_to_a_person(
    swarm1: Swarm, tmp_path: Path
):
    """CI deploys the same file twice: Swarm resets the update's record and its
    ``PreviousSpec`` (the spec it runs now) and replaces no task. The task of the change
    still fails later: the controller still judges it, but does not ``docker service
    rollback`` (that would go to the spec it runs); a person is told the way back."""
    with swarm1.stack(STACK_FILE, environment=GOOD) as stack:
        text = DESIRED.format(stack=stack, file=STACK_FILE, mode="auto")
        controller = controller_of(swarm1, tmp_path, text)
        service = f"{stack}_app"
        try:
            wait_for(lambda: controller.status()["converged"], 120, "convergence", 1)
            deploy_bad(swarm1, stack, MODE="later")
            wait_for(
                lambda: spec_of(swarm1, service) == ("cc-busybox:2", "MODE=later", "completed"),
                120,
                "Swarm's completed update",
                0.5,
                lambda: spec_of(swarm1, service),
            )
            deploy(swarm1, stack, {**BAD, "MODE": "later"})
            assert spec_of(swarm1, service) == ("cc-busybox:2", "MODE=later", "")

            def handed_over() -> dict[str, Any] | None:
                issue = controller.issue("change:app:bad-change")
                return issue if issue and issue["state"] == "needs-human" else None

            issue = wait_for(handed_over, 300, "the bad-change issue", 1, controller.seen)
            assert "exited with code 3" in issue["title"], issue
            assert "Swarm no longer keeps the spec before it" in issue["resolution"], issue
            assert "asks for cc-busybox:1 again" in issue["resolution"], issue
            steps = [a["detail"] for i in controller.issues() for a in i["attempts"]]
            assert not [s for s in steps if "docker service" in s], steps  # no rollback
            assert spec_of(swarm1, service) == ("cc-busybox:2", "MODE=later", "")
        finally:
            controller.stop()


@pytest.mark.timeout(600)
def test_a_fix_deployed_over_a_task_swarm_gave_up_on_is_judged_good(swarm1: Swarm, tmp_path: Path):
    """The stack's task failed and its restart policy (``condition: none``) left it so;
    the fix is deployed: Swarm puts a task of the new spec in the slot (no task ran, none
    was shut down). The old spec's death is not the fix's: the fix is judged good, not
    rolled back to the crash."""
    with swarm1.stack(STACK_FILE, environment={**GOOD, "MODE": "bad"}) as stack:
        service = f"{stack}_app"
        wait_for(
            lambda: [t for t in swarm1.tasks(service) if t["Status"]["State"] == "failed"],
            120,
            "the failed task",
            0.5,
            lambda: swarm1.states(service),
        )
        swarm1.docker("tag", "cc-busybox:1", "cc-busybox:2")
        deploy(swarm1, stack, {**GOOD, "IMAGE": "cc-busybox:2"})
        text = DESIRED.format(stack=stack, file=STACK_FILE, mode="auto")
        controller = controller_of(swarm1, tmp_path, text.replace("busybox:1", "busybox:2"))
        try:
            good = "app: Swarm's update to cc-busybox:2 is good"
            wait_for(
                lambda: good in controller.log() or controller.issue("change:app:bad-change"),
                240,
                "the verdict",
                1,
                controller.seen,
            )
            assert controller.issue("change:app:bad-change") is None, controller.seen()
            assert spec_of(swarm1, service) == ("cc-busybox:2", "MODE=good", "completed")
        finally:
            controller.stop()


@pytest.mark.timeout(600)
def test_notify_names_the_command_and_rolls_nothing_back(swarm1: Swarm, tmp_path: Path):
    with swarm1.stack(STACK_FILE, environment=GOOD) as stack:
        text = DESIRED.format(stack=stack, file=STACK_FILE, mode="notify")
        controller = controller_of(swarm1, tmp_path, text)
        service = f"{stack}_app"
        try:
            wait_for(lambda: controller.status()["converged"], 120, "convergence", 1)
            deploy_bad(swarm1, stack)

            def handed_over() -> dict[str, Any] | None:
                issue = controller.issue("change:app:bad-change")
                return issue if issue and issue["state"] == "needs-human" else None

            issue = wait_for(handed_over, 300, "the bad-change issue", 1, controller.seen)
            assert "Swarm paused its update" in issue["title"], issue
            assert "from cc-busybox:1 to cc-busybox:2" in issue["detail"], issue
            assert f"`docker service rollback {service}`" in issue["resolution"], issue
            steps = [a["detail"] for i in controller.issues() for a in i["attempts"]]
            assert not [s for s in steps if "docker service" in s], steps  # no step of ours
            assert spec_of(swarm1, service) == ("cc-busybox:2", "MODE=bad", "paused")
        finally:
            controller.stop()


def gate(swarm: Swarm, stack: str, root: Path) -> subprocess.CompletedProcess[str]:
    """``controller --once`` on the stack, the stack file's variables those of the bad
    deploy (what CI would deploy again), its state in ``root``."""
    return subprocess.run(
        [
            CONTROLLER,
            *("--env", "dev", "--engine", "swarm", "-f", str(STACK_FILE), "-p", stack),
            *("--once", "--timeout", "120", "--state-dir", str(root)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, **BAD, "DOCKER_HOST": swarm.manager.host},
        cwd=root,
    )


def issue_of(root: Path, fingerprint: str) -> dict[str, Any]:
    issues = json.loads((root / "docker_issues_dev.json").read_text())["issues"]
    found: dict[str, Any] = next(i for i in issues if i["fingerprint"] == fingerprint)
    return found


@pytest.mark.timeout(600)
def test_once_exits_5_after_swarm_rolled_back_by_itself_until_a_good_deploy(
    swarm1: Swarm, tmp_path: Path
):
    itself = {"FAILURE_ACTION": "rollback"}
    with swarm1.stack(STACK_FILE, environment={**GOOD, **itself}) as stack:
        service = f"{stack}_app"
        wait_for(lambda: running(swarm1, service), 120, "the first task", 1)
        deploy_bad(swarm1, stack, **itself)
        wait_for(
            lambda: spec_of(swarm1, service) == ("cc-busybox:1", "MODE=good", "rollback_completed"),
            300,
            "Swarm's own rollback",
            1,
            lambda: spec_of(swarm1, service),
        )
        wait_for(lambda: running(swarm1, service), 60, "the old spec's task", 1)

        done = gate(swarm1, stack, tmp_path)
        out = done.stdout + done.stderr
        assert done.returncode == 5, out[-3000:]
        assert "ROLLED BACK" in out, out[-3000:]
        said = "app rolled back from cc-busybox:2 to cc-busybox:1 (Swarm's rollback"
        assert said in out, out[-3000:]
        issue = issue_of(tmp_path, "change:app:rolled-back")
        assert issue["state"] == "open" and not issue["blocking"], issue
        assert f"docker stack deploy -c {STACK_FILE} {stack}" in issue["detail"], issue

        deploy(swarm1, stack, {**GOOD, **itself})  # the file fixed: deployed again
        wait_for(
            lambda: spec_of(swarm1, service)[2] != "rollback_completed",
            60,
            "the new deploy",
            1,
            lambda: spec_of(swarm1, service),
        )
        done = gate(swarm1, stack, tmp_path)
        out = done.stdout + done.stderr
        assert done.returncode == 0, out[-3000:]
        issue = issue_of(tmp_path, "change:app:rolled-back")
        assert issue["state"] == "resolved", issue
        assert issue["resolution"].startswith("Swarm updated it again"), issue


WHOLE_STACK = STACKS / "swarm-rollback-stack.yaml"

STACK_DESIRED = """\
project: {stack}
compose_files: [{file}]
environment:
  MODE: good
  IMAGE: cc-busybox:1
rollback: {{mode: auto, scope: stack}}
services:
  db: {{}}
  idle: {{}}
  app: {{}}
"""


@pytest.mark.timeout(900)
def test_scope_stack_rolls_back_every_service_the_bad_deploy_updated(swarm1: Swarm, tmp_path: Path):
    with swarm1.stack(WHOLE_STACK, environment=GOOD) as stack:
        text = STACK_DESIRED.format(stack=stack, file=WHOLE_STACK)
        controller = controller_of(swarm1, tmp_path, text)
        db, app = f"{stack}_db", f"{stack}_app"
        try:
            wait_for(lambda: controller.status()["converged"], 120, "convergence", 1)
            deploy_bad(swarm1, stack, WHOLE_STACK)  # db's new task runs, app's fails

            def both() -> tuple[dict[str, Any], dict[str, Any]] | None:
                found = (
                    controller.resolved("change:db:bad-change"),
                    controller.resolved("change:app:bad-change"),
                )
                return found if all(found) else None  # type: ignore[return-value]

            issues = wait_for(
                both,
                600,
                "the rollback of both",
                1,
                lambda: (controller.seen(), spec_of(swarm1, db), spec_of(swarm1, app)),
            )
            db_issue, app_issue = issues
            assert db_issue["title"].startswith(
                "a change made db worse: app's update was paused"
            ), db_issue
            assert db_issue["resolution"].startswith(
                "rolled back from cc-busybox:2 to cc-busybox:1 because app's update was paused"
            ), db_issue
            assert app_issue["resolution"].startswith(
                "rolled back from cc-busybox:2 to cc-busybox:1 because Swarm paused its update"
            ), app_issue
            assert "fixed" not in db_issue["resolution"] + app_issue["resolution"]
            # both run their old spec again, as the manager says
            assert spec_of(swarm1, db)[::2] == ("cc-busybox:1", "rollback_completed")
            assert spec_of(swarm1, app) == ("cc-busybox:1", "MODE=good", "rollback_completed")
            # db (app's dependency) was rolled back first
            began = {i["service"]: i["attempts"][0]["started_at"] for i in issues}
            assert began["db"] < began["app"], issues
            wait_for(lambda: running(swarm1, db) and running(swarm1, app), 60, "old tasks", 1)
            # the deploy left idle's spec as it was: no update of its, left alone
            assert controller.issue("change:idle:bad-change") is None
            assert spec_of(swarm1, f"{stack}_idle")[2] not in (
                "rollback_started",
                "rollback_completed",
            )
        finally:
            controller.stop()
