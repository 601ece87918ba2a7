"""Rollback on a real engine: bad changes reverted (``auto``) or only reported
(``notify``), good ones never reverted, a stack rolled back together, a controller killed
in the middle of a rollback.

Every image is built here, from a two-line Dockerfile on ``cc-busybox:1``, tagged for the
test's own project. A person's change is what a person does: the compose file rewritten,
then ``docker compose up -d``. Nothing asserts a wall-clock figure; the times each test
sees (the verdict after the last start, the rollback after the verdict) are appended to
``$ROLLBACK_TIMES`` when it is set, for the report.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Stack, wait_for

READY = "touch /tmp/ready; exec sleep 86400"  # a good service: ready at once, runs
HEALTHCHECK = """    healthcheck:
      test: ["CMD", "test", "-f", "/tmp/ready"]
      interval: 1s
      timeout: 1s
      retries: 2
"""


# --- the scene ---------------------------------------------------------------------------


def build(stack: Stack, name: str, script: str) -> str:
    """An image of the test's own, whose process runs ``script`` under ``sh -c``."""
    tag = f"cc-rb-{stack.project}:{name}"
    dockerfile = f'FROM cc-busybox:1\nCMD ["sh", "-c", {json.dumps(script)}]\n'
    subprocess.run(
        ["docker", "build", "--network", "host", "--quiet", "--tag", tag, "-"],
        input=dockerfile,
        text=True,
        capture_output=True,
        check=True,
        timeout=120,
        env=stack.process_env,
    )
    return tag


def service(
    name: str,
    image: str,
    *,
    healthcheck: str = HEALTHCHECK,
    extra: str = "",
    init: bool = True,
) -> str:
    return (
        f"  {name}:\n    image: {image}\n    network_mode: none\n"
        f"    init: {'true' if init else 'false'}\n{extra}{healthcheck}"
    )


def write(stack_or_path: Stack | Path, *services: str) -> None:
    path = stack_or_path.compose_file if isinstance(stack_or_path, Stack) else stack_or_path
    path.write_text("services:\n" + "".join(services))


@pytest.fixture
def scene(make_stack, tmp_path):  # type: ignore[no-untyped-def]
    """``scene(rollback, services...)``: a stack on a compose file of ``services``, its
    desired state saying ``rollback``; its images untagged afterwards."""
    stacks: list[Stack] = []

    def make(rollback: str, *services: str, declared: str = "") -> Stack:
        compose = tmp_path / f"compose{len(stacks)}.yaml"
        write(compose, *services)
        stack = make_stack(compose, {}, declared)
        stack.desired_file.write_text(stack.desired_file.read_text() + f"rollback: {rollback}\n")
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        stack.down()
        tags = stack.docker(
            "images", "--format", "{{.Repository}}:{{.Tag}}", f"cc-rb-{stack.project}", check=False
        ).split()
        if tags:
            stack.docker("rmi", "-f", *tags, check=False)


def record(stack: Stack, service: str) -> dict[str, Any]:
    return dict(stack.issues().get("rollback", {}).get(service) or {})


def snapshots(stack: Stack, service: str) -> list[dict[str, Any]]:
    return list(record(stack, service).get("snapshots") or [])


def change(stack: Stack, service: str) -> dict[str, Any]:
    return dict(record(stack, service).get("change") or {})


def image_of(stack: Stack, service: str) -> str:
    data = stack.inspect(service)
    assert data is not None, f"{service} has no container"
    return str(data["Image"])


def image_id(stack: Stack, tag: str) -> str:
    return stack.docker("image", "inspect", "--format", "{{.Id}}", tag).strip()


def person_up(stack: Stack, *services: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """A person's ``docker compose up -d`` with the compose file as it is now."""
    done = subprocess.run(
        [
            "docker",
            "compose",
            "-p",
            stack.project,
            "-f",
            str(stack.compose_file),
            "up",
            "-d",
            *list(services),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env=stack.process_env,
        check=False,
    )
    if check:
        assert done.returncode == 0, done.stderr
    return done


def started(stack: Stack, service: str) -> datetime:
    data = stack.inspect(service)
    assert data is not None
    return _time(data["State"]["StartedAt"])


def _time(text: str) -> datetime:
    head, _, rest = text.partition(".")
    digits = "".join(ch for ch in rest if ch.isdigit())[:6]
    return datetime.fromisoformat(f"{head}.{digits or '0'}+00:00")


def times(name: str, **figures: float) -> None:
    """Append a test's measured figures (seconds) to ``$ROLLBACK_TIMES``, for the report."""
    path = os.environ.get("ROLLBACK_TIMES")
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"test": name, **figures}) + "\n")


def controller(stack: Stack) -> str:
    return stack.serve("--interval-active", "1")


def last_good(stack: Stack, service: str, image: str) -> dict[str, Any]:
    """Wait for a last-good snapshot of ``service`` on ``image``; the snapshot."""
    wanted = image_id(stack, image)
    found: dict[str, Any] = wait_for(
        lambda: next(
            (s for s in snapshots(stack, service) if s["identity"]["image_id"] == wanted), None
        ),
        90,
        f"a last-good snapshot of {service} on {image}",
    )
    return found


# --- the fault suite: bad changes ------------------------------------------------------


BAD_SCRIPTS = {
    "exits-1": "echo starting; exit 1",
    "fails-its-healthcheck": "exec sleep 86400",  # never ready: its check fails
    "prints-a-fatal-error": (
        "touch /tmp/ready; sleep 3; "
        "echo 'panic: runtime error: invalid memory address or nil pointer dereference'; "
        "exec sleep 86400"
    ),
}


def bad_change_reverted_or_reported(
    scene, mode: str, bad_script: str, *, extra: str = "", rollback_extra: str = ""
) -> tuple[Stack, dict[str, Any]]:  # type: ignore[no-untyped-def]
    """A good service, then a person's change to an image whose process runs
    ``bad_script``; the bad-change issue once the controller has acted (``auto``: rolled
    back, ``notify``: handed to a person)."""
    stack = scene(f"{{mode: {mode}{rollback_extra}}}", "")
    good = build(stack, "good", READY)
    bad = build(stack, "bad", bad_script)
    write(stack, service("app", good, extra=extra))
    stack.up("app")
    controller(stack)
    snapshot = last_good(stack, "app", good)
    before = stack.inspect("app")
    assert before is not None

    write(stack, service("app", bad, extra=extra))
    person_up(stack, "app")
    return stack, {"snapshot": snapshot, "good": good, "bad": bad, "before": before}


def assert_rolled_back(stack: Stack, seen: dict[str, Any], case: str) -> None:
    issue = stack.wait_issue("change:app:bad-change", "resolved", timeout=150)
    resolution = issue["resolution"]
    assert resolution.startswith("rolled back from "), resolution
    assert f"to snapshot {seen['snapshot']['number']}" in resolution
    assert " because " in resolution and "fixed" not in resolution
    (attempt,) = issue["attempts"]  # one step, never repeated
    assert attempt["action"] == "rollback" and attempt["outcome"] == "success", attempt
    wait_for(lambda: stack.healthy("app"), 60, "app healthy on its last good image")
    assert image_of(stack, "app") == image_id(stack, seen["good"])
    # honest afterwards: not at its declared config, until the files change
    rolled = stack.wait_issue("change:app:rolled-back", "open", timeout=30)
    assert "not at its declared config" in rolled["title"]
    # said once, by the rolled-back issue; the file edited before the person's up may have
    # shown the old container outdated for a pass or two (a true report): that one is over
    outdated = stack.issue("drift:app:outdated")
    assert outdated is None or outdated["state"] == "resolved", outdated
    state = record(stack, "app")
    assert state["rolled_back"]["snapshot"] == seen["snapshot"]["number"]
    judged = change(stack, "app")
    assert judged["verdict"] == "bad"
    _order_and_times(stack, case, judged, attempt)


def _order_and_times(
    stack: Stack, case: str, judged: dict[str, Any], attempt: dict[str, Any]
) -> None:
    """The verdict came after the change's start, the rollback after the verdict; the
    figures go to the report."""
    start = _time(judged["started_at"].replace("Z", "+00:00").split("+")[0])
    verdict = datetime.fromisoformat(judged["judged_at"])
    step = datetime.fromisoformat(attempt["started_at"])
    acted = datetime.fromisoformat(attempt["acted_at"])
    assert start <= verdict <= step <= acted
    times(
        case,
        verdict_after_start=(verdict - start).total_seconds(),
        rollback_done_after_verdict=(acted - verdict).total_seconds(),
        proven_after_verdict=(
            datetime.fromisoformat(attempt["finished_at"]) - verdict
        ).total_seconds(),
    )


def assert_reported_only(stack: Stack, seen: dict[str, Any]) -> None:
    issue = stack.wait_issue("change:app:bad-change", "needs-human", timeout=150)
    command = f"docker compose --project-name {stack.project} --file "
    assert command in issue["resolution"], issue["resolution"]
    assert (
        "up --detach --no-deps --force-recreate --no-build --pull never app"
        in (issue["resolution"])
    )
    assert "rollback: notify leaves it to a person" in issue["resolution"]
    assert issue["attempts"] == []
    assert record(stack, "app").get("rolled_back") is None
    assert image_of(stack, "app") == image_id(stack, seen["bad"])  # left as the person made it
    assert "rollback to snapshot" not in stack.log()
    judged = change(stack, "app")
    start = _time(judged["started_at"].split("+")[0].rstrip("Z"))
    verdict = datetime.fromisoformat(judged["judged_at"])
    times("notify", verdict_after_start=(verdict - start).total_seconds())


@pytest.mark.parametrize("mode", ["auto", "notify"])
def test_an_image_that_exits_1_at_start(scene, mode):  # type: ignore[no-untyped-def]
    stack, seen = bad_change_reverted_or_reported(scene, mode, BAD_SCRIPTS["exits-1"])
    if mode == "auto":
        assert_rolled_back(stack, seen, "exits 1 at start")
        assert "exited with code 1" in stack.issue("change:app:bad-change")["title"]
    else:
        assert_reported_only(stack, seen)


@pytest.mark.parametrize("mode", ["auto", "notify"])
def test_an_image_that_fails_its_healthcheck(scene, mode):  # type: ignore[no-untyped-def]
    stack, seen = bad_change_reverted_or_reported(scene, mode, BAD_SCRIPTS["fails-its-healthcheck"])
    if mode == "auto":
        assert_rolled_back(stack, seen, "fails its healthcheck")
        assert "turned unhealthy" in stack.issue("change:app:bad-change")["title"]
    else:
        assert_reported_only(stack, seen)


@pytest.mark.parametrize("mode", ["auto", "notify"])
def test_an_image_that_crash_loops_after_20_s(scene, mode):  # type: ignore[no-untyped-def]
    stack, seen = bad_change_reverted_or_reported(
        scene,
        mode,
        "touch /tmp/ready; sleep 20; echo leaving; exit 3",
        extra="    restart: unless-stopped\n",
    )
    if mode == "auto":
        assert_rolled_back(stack, seen, "crash-loops after 20 s")
        title = stack.issue("change:app:bad-change")["title"]
        assert "exited with code 3" in title or "Docker restarted it" in title, title
        judged = change(stack, "app")
        # ready first (inside its window), bad only when it died: never judged good
        assert judged["ready_since"] is not None
    else:
        assert_reported_only(stack, seen)


@pytest.mark.parametrize("mode", ["auto", "notify"])
def test_an_image_that_prints_a_fatal_error(scene, mode):  # type: ignore[no-untyped-def]
    stack, seen = bad_change_reverted_or_reported(
        scene, mode, BAD_SCRIPTS["prints-a-fatal-error"], rollback_extra=", severity: high"
    )
    if mode == "auto":
        assert_rolled_back(stack, seen, "prints a fatal error")
        title = stack.issue("change:app:bad-change")["title"]
        assert "it logged" in title and "(high)" in title, title
    else:
        assert_reported_only(stack, seen)


CHECKS_MODE = (
    'test "$MODE" = prod || { echo "unknown MODE $MODE" >&2; exit 2; }; '
    "touch /tmp/ready; exec sleep 86400"
)


@pytest.mark.parametrize("mode", ["auto", "notify"])
def test_a_config_change_with_a_wrong_environment_value(scene, mode):  # type: ignore[no-untyped-def]
    stack = scene(f"{{mode: {mode}}}", "")
    image = build(stack, "app", CHECKS_MODE)
    write(stack, service("app", image, extra="    environment: {MODE: prod}\n"))
    stack.up("app")
    controller(stack)
    snapshot = last_good(stack, "app", image)

    write(stack, service("app", image, extra="    environment: {MODE: prdo}\n"))
    person_up(stack, "app")
    if mode == "auto":
        seen = {"snapshot": snapshot, "good": image}
        assert_rolled_back(stack, seen, "a wrong environment value")
        data = stack.inspect("app")
        assert data is not None and "MODE=prod" in data["Config"]["Env"]
        # the image never changed: the config did, and the config is what came back
        assert (
            change(stack, "app")["before"]["image_id"] == change(stack, "app")["after"]["image_id"]
        )
    else:
        issue = stack.wait_issue("change:app:bad-change", "needs-human", timeout=150)
        assert "rollback: notify leaves it to a person" in issue["resolution"]
        data = stack.inspect("app")
        assert data is not None and "MODE=prdo" in data["Config"]["Env"]
        assert issue["attempts"] == []


@pytest.mark.parametrize("mode", ["auto", "notify"])
def test_an_image_that_does_not_exist_keeps_the_old_container_running(scene, mode):  # type: ignore[no-untyped-def]
    stack = scene(f"{{mode: {mode}}}", "", declared="  app: {recreate_outdated: true}\n")
    good = build(stack, "good", READY)
    write(stack, service("app", good))
    stack.up("app")
    controller(stack)
    last_good(stack, "app", good)
    before = stack.inspect("app")
    assert before is not None

    missing = f"cc-rb-{stack.project}:missing"
    write(stack, service("app", missing))
    tried = person_up(stack, "app", check=False)
    assert tried.returncode != 0  # Compose cannot pull it: nothing is changed
    if mode == "auto":
        issue = stack.wait_issue("change:app:bad-change", "resolved", timeout=150)
        assert issue["resolution"].startswith("held back on snapshot "), issue["resolution"]
        assert f"the change to {missing} never ran" in issue["resolution"]
        assert issue["attempts"] == []  # nothing to run: the good container kept running
        held = stack.wait_issue("change:app:rolled-back", "open", timeout=30)
        assert "held back" in held["title"]
    else:
        issue = stack.wait_issue("change:app:bad-change", "needs-human", timeout=150)
        assert "does not exist" in issue["title"]
        assert "rollback: notify leaves it to a person" in issue["resolution"]
    after = stack.inspect("app")
    assert after is not None and after["Id"] == before["Id"]
    assert after["State"]["StartedAt"] == before["State"]["StartedAt"]  # never stopped
    assert stack.healthy("app")
    assert "app: recreate" not in stack.log()  # its verdict decides, not the outdated drift


# --- good changes are never reverted -------------------------------------------------------


def good_change(stack: Stack, service_name: str = "app") -> dict[str, Any]:
    """Wait for the verdict on the newest change of ``service_name``: it must be good."""
    judged: dict[str, Any] = wait_for(
        lambda: (c := change(stack, service_name)) and c["verdict"] != "pending" and c,
        150,
        f"the verdict on {service_name}'s change",
    )
    assert judged["verdict"] == "good", judged
    assert stack.issue(f"change:{service_name}:bad-change") is None
    assert "rollback to snapshot" not in stack.log()
    start = _time(judged["started_at"].split("+")[0].rstrip("Z"))
    verdict = datetime.fromisoformat(judged["judged_at"])
    assert verdict >= start
    times(f"good: {service_name}", verdict_after_start=(verdict - start).total_seconds())
    return judged


def test_a_slow_starter_inside_its_start_period_is_good(scene):  # type: ignore[no-untyped-def]
    slow_check = HEALTHCHECK + "      start_period: 40s\n"
    stack = scene("auto", "")
    fast = build(stack, "v1", READY)
    slow = build(stack, "v2", "sleep 10; touch /tmp/ready; exec sleep 86400")
    write(stack, service("app", fast, healthcheck=slow_check))
    stack.up("app")
    controller(stack)
    last_good(stack, "app", fast)

    write(stack, service("app", slow, healthcheck=slow_check))
    person_up(stack, "app")
    judged = good_change(stack)
    ready = datetime.fromisoformat(judged["ready_since"])
    assert (ready - started(stack, "app")).total_seconds() >= 9  # it was slow: 10 s
    last_good(stack, "app", slow)  # what proved good is the new last good


def test_a_change_then_a_persons_restart_is_good(scene):  # type: ignore[no-untyped-def]
    stack = scene("auto", "")
    v1 = build(stack, "v1", READY)
    v2 = build(stack, "v2", "echo v2; " + READY)
    write(stack, service("app", v1))
    stack.up("app")
    controller(stack)
    last_good(stack, "app", v1)

    write(stack, service("app", v2))
    person_up(stack, "app")
    wait_for(lambda: change(stack, "app").get("ready_since"), 60, "the change to be ready")
    first_start = started(stack, "app")
    stack.docker("restart", "--time", "1", f"{stack.project}-app-1")  # unrelated, a person's
    assert started(stack, "app") > first_start
    good_change(stack)
    assert image_of(stack, "app") == image_id(stack, v2)


def test_a_change_of_a_service_without_a_healthcheck_that_runs_is_good(scene):  # type: ignore[no-untyped-def]
    stack = scene("auto", "")
    v1 = build(stack, "v1", "exec sleep 86400")
    v2 = build(stack, "v2", "echo v2; exec sleep 86400")
    write(stack, service("app", v1, healthcheck=""))
    stack.up("app")
    controller(stack)
    last_good(stack, "app", v1)

    write(stack, service("app", v2, healthcheck=""))
    person_up(stack, "app")
    good_change(stack)
    assert image_of(stack, "app") == image_id(stack, v2)
    last_good(stack, "app", v2)


# --- scope: stack --------------------------------------------------------------------------


def test_scope_stack_rolls_back_both_services_of_one_compose_up_dependencies_first(scene):  # type: ignore[no-untyped-def]
    stack = scene("{mode: auto, scope: stack}", "")
    db1 = build(stack, "db1", READY)
    db2 = build(stack, "db2", "echo db2; " + READY)
    app1 = build(stack, "app1", READY)
    bad = build(stack, "bad", "echo starting; exit 1")
    needs_db = "    depends_on: [db]\n"
    write(stack, service("db", db1), service("app", app1, extra=needs_db))
    stack.up()
    controller(stack)
    last_good(stack, "db", db1)
    last_good(stack, "app", app1)

    write(stack, service("db", db2), service("app", bad, extra=needs_db))
    person_up(stack)  # one operation changes both; only the app's change is bad

    app = stack.wait_issue("change:app:bad-change", "resolved", timeout=180)
    db = stack.wait_issue("change:db:bad-change", "resolved", timeout=60)
    assert app["resolution"].startswith("rolled back from ")
    assert db["resolution"].startswith("rolled back from ")
    assert "changed by the same operation as app" in db["resolution"]
    (db_step,) = db["attempts"]
    (app_step,) = app["attempts"]
    # dependencies first: the database's rollback was proven before the app's began
    assert db_step["finished_at"] <= app_step["started_at"], (db_step, app_step)
    assert change(stack, "app")["operation"] == change(stack, "db")["operation"]
    wait_for(lambda: stack.healthy("db") and stack.healthy("app"), 60, "both healthy")
    assert image_of(stack, "db") == image_id(stack, db1)
    assert image_of(stack, "app") == image_id(stack, app1)


# --- a controller killed in the middle of a rollback ---------------------------------------


class Creates:
    """The engine's ``create`` events of one service, streamed live from now on: the
    engine keeps only its last 256 events for ``docker events --since``, and a busy
    engine (healthchecks' exec events of other stacks) rolls them over in seconds."""

    def __init__(self, stack: Stack, service_name: str) -> None:
        self._proc = subprocess.Popen(
            [
                "docker",
                "events",
                "--filter",
                f"label=com.docker.compose.project={stack.project}",
                "--filter",
                f"label=com.docker.compose.service={service_name}",
                "--filter",
                "event=create",
                "--format",
                "{{.ID}}",
            ],
            stdout=subprocess.PIPE,
            text=True,
            env=stack.process_env,
        )
        self.ids: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            self.ids.append(line.strip())

    def stop(self) -> int:
        if self._proc.poll() is not None:
            return len(self.ids)
        self._proc.terminate()
        self._proc.wait(10)
        self._reader.join(10)
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        return len(self.ids)


def test_a_controller_sigkilled_in_the_middle_of_a_rollback_finishes_it_exactly_once(scene):  # type: ignore[no-untyped-def]
    stack = scene("auto", "")
    good = build(stack, "good", READY)
    # never ready, and deaf to SIGTERM (sleep as PID 1, no init): stopping it for the
    # rollback takes its whole stop grace period, and the controller dies meanwhile
    deaf = build(stack, "deaf", "exec sleep 86400")
    grace = "    stop_grace_period: 8s\n"
    write(stack, service("app", good, extra=grace))
    stack.up("app")
    first = stack.start_controller("--metrics-port", "0", "--interval-active", "1")
    snapshot = last_good(stack, "app", good)

    creates = Creates(stack, "app")
    try:
        write(stack, service("app", deaf, extra=grace, init=False))
        person_up(stack, "app")

        def rollback_under_way() -> bool:
            step = (stack.issues().get("remediation", {}).get("app") or {}).get("step") or {}
            return step.get("action") == "rollback" and step.get("finished_at") is None

        wait_for(rollback_under_way, 120, "the rollback step to be recorded, its command running")
        first.send_signal(signal.SIGKILL)  # Compose goes on without it
        first.wait(10)
        saved = stack.issues()["rollback"]["app"]
        assert saved["reverting"] == saved["change"]["id"]  # recorded before it ran

        controller(stack)  # a new controller, the same state directory
        issue = stack.wait_issue("change:app:bad-change", "resolved", timeout=150)
        assert issue["resolution"].startswith("rolled back from "), issue["resolution"]
        assert f"to snapshot {snapshot['number']}" in issue["resolution"]
        (attempt,) = issue["attempts"]  # exactly one rollback ...
        assert attempt["action"] == "rollback" and attempt["outcome"] == "success"
        # ... not begun again after the kill (carrying the cut one out to its end is not)
        assert not re.search(r"app: rollback to snapshot \d+ \(", stack.log()), stack.log()
        steps = stack.issues()["remediation"]["app"]["throttle"]["steps"]
        assert len(steps) == 1  # one step in the budget
        # the engine's own record: the person's recreate and the rollback's, nothing more
        wait_for(lambda: len(creates.ids) >= 2, 30, "the engine's create events")
        assert creates.stop() == 2
    finally:
        creates.stop()
    wait_for(lambda: stack.healthy("app"), 60, "app healthy on its last good image")
    assert image_of(stack, "app") == image_id(stack, good)
    assert stack.issues()["rollback"]["app"]["rolled_back"]["snapshot"] == snapshot["number"]


# --- the CI gate ---------------------------------------------------------------------------


def test_the_gate_ends_with_exit_5_naming_the_change_it_rolled_back(scene):  # type: ignore[no-untyped-def]
    stack = scene("auto", "")
    good = build(stack, "good", READY)
    bad = build(stack, "bad", "echo starting; exit 1")
    write(stack, service("app", good))
    stack.up("app")
    first = stack.run_controller("--once", "--timeout", "120")
    assert first.returncode == 0, first.stderr  # converged, and what ran is the last good
    assert snapshots(stack, "app")

    write(stack, service("app", bad))
    person_up(stack, "app")
    junit = stack.root / "gate.xml"
    summary = stack.root / "summary.md"
    gate = subprocess.run(
        stack.argv("--once", "--timeout", "150", "--junit", str(junit)),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=stack.root,
        check=False,
        env={**stack.process_env, "GITHUB_STEP_SUMMARY": str(summary)},
    )
    assert gate.returncode == 5, gate.stderr
    assert "ROLLED BACK (exit 5): every required service is ready, but not as declared: app " in (
        gate.stderr
    )
    assert "app rolled back from config " in gate.stderr
    row = next(line for line in gate.stderr.splitlines() if line.startswith("app "))
    assert "Ready" in row and "rolled back from config" in row, row  # never quietly "-"
    xml = junit.read_text()
    assert 'name="service app at its declared config"' in xml
    assert "rolled back from config" in xml and 'value="rolled_back"' in xml
    text = summary.read_text()
    assert "(rolled back, exit 5)" in text and "rolled back from config" in text
    assert image_of(stack, "app") == image_id(stack, good)
