"""The CI gate on a real engine: an exit code per cause, and evidence in every output."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from junitparser import Failure, JUnitXml

from tests.e2e.conftest import STACKS, Stack, wait_for

GATE = STACKS / "gate.yaml"


def declare(stack: Stack, services: str, remediation: str = "") -> None:
    text = stack.desired_file.read_text() + "services:\n" + services
    stack.desired_file.write_text(text + (f"remediation: {remediation}\n" if remediation else ""))


def junit_cases(path: Path) -> dict[str, object]:
    return {case.name: case for suite in JUnitXml.fromfile(str(path)) for case in suite}


def test_an_unreachable_engine_is_exit_3_never_converged(make_stack, tmp_path):
    stack = make_stack(GATE, docker_host=f"unix://{tmp_path}/no-engine.sock")
    declare(
        stack, "  web: {}\n  sick: {replicas: 0}\n  slow: {replicas: 0}\n  migrate: {replicas: 0}\n"
    )
    junit = stack.root / "junit.xml"

    done = stack.run_controller(
        "--once", "--timeout", "60", "--engine-timeout", "2", "--junit", str(junit)
    )

    assert done.returncode == 3, done.stderr
    assert "engine unreachable (exit 3)" in done.stderr
    doc = stack.issues()
    assert doc["converged"] is False and doc["services"] == []
    assert doc["engine"]["reachable"] is False
    assert "could not be reached" in stack.report()
    cases = junit_cases(junit)
    assert isinstance(cases["engine reachable"].result[0], Failure)  # type: ignore[attr-defined]
    assert isinstance(cases["service web ready"].result[0], Failure)  # type: ignore[attr-defined]


def test_a_required_service_that_never_becomes_healthy_is_exit_1(make_stack):
    stack = make_stack(GATE)
    declare(
        stack,
        "  web: {}\n  sick: {verify_timeout_seconds: 3, min_ready_seconds: 0}\n"
        "  slow: {replicas: 0}\n  migrate: {replicas: 0}\n",
        remediation="{budget: 2}",
    )
    junit = stack.root / "junit.xml"

    done = stack.run_controller("--once", "--timeout", "240", "--junit", str(junit))

    assert done.returncode == 1, done.stderr[-3000:]
    assert "NOT converged (exit 1)" in done.stderr and "needs a human: sick" in done.stderr
    assert stack.healthy("web")
    doc = stack.issues()
    assert doc["converged"] is False
    sick = [i for i in doc["issues"] if i["service"] == "sick" and i["state"] != "resolved"]
    assert sick and sick[0]["state"] == "needs-human"
    assert "budget of 2" in sick[0]["resolution"]
    assert "needs-human" in stack.report()
    cases = junit_cases(junit)
    assert cases["service web ready"].is_passed  # type: ignore[attr-defined]
    failure = cases["service sick ready"].result[0]  # type: ignore[attr-defined]
    assert isinstance(failure, Failure) and "budget of 2" in failure.text
    assert any(name.startswith("issue ") and "sick" in name for name in cases)


def test_a_converged_stack_is_exit_0_with_its_summary_appended(make_stack):
    stack = make_stack(GATE)
    declare(
        stack,
        "  web: {}\n  sick: {replicas: 0}\n  slow: {replicas: 0}\n  migrate: {state: completed}\n",
    )
    junit = stack.root / "junit.xml"
    summary = stack.root / "summary.md"
    summary.write_text("an earlier step's summary\n")
    stack.process_env["GITHUB_STEP_SUMMARY"] = str(summary)

    done = stack.run_controller("--once", "--timeout", "180", "--junit", str(junit))

    assert done.returncode == 0, done.stderr[-3000:]
    assert stack.healthy("web")
    assert stack.state("migrate") == ("exited", None)  # the job ran once, exit 0: done
    lines = done.stderr.splitlines()
    assert any(line.split()[:2] == ["web", "Ready"] for line in lines), done.stderr
    assert any(line.split()[:3] == ["SERVICE", "REQUIRED", "CONDITION"] for line in lines)
    assert f"report: {stack.state_dir / 'docker_issues_report_e2e.md'}" in done.stderr
    assert stack.issues()["converged"] is True
    cases = junit_cases(junit)
    assert {"service web ready", "service migrate ready"} <= set(cases)
    assert all(case.is_passed for case in cases.values())  # type: ignore[attr-defined]
    text = summary.read_text()
    assert text.startswith("an earlier step's summary\n## compose-controller gate passed")
    assert "Converged: yes" in text


def test_quiet_prints_no_progress_and_no_table(make_stack):
    stack = make_stack(GATE)
    declare(
        stack, "  web: {}\n  sick: {replicas: 0}\n  slow: {replicas: 0}\n  migrate: {replicas: 0}\n"
    )
    done = stack.run_controller("--once", "--quiet", "--timeout", "180")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr.strip() == ""


def test_a_deadline_while_a_service_is_still_starting_is_exit_4(make_stack):
    stack = make_stack(GATE)
    declare(
        stack, "  web: {replicas: 0}\n  sick: {replicas: 0}\n  slow: {}\n  migrate: {replicas: 0}\n"
    )
    stack.compose("up", "-d", "slow")

    done = stack.run_controller("--once", "--timeout", "8")

    assert done.returncode == 4, done.stderr[-3000:]
    assert "timed out (exit 4)" in done.stderr and "slow" in done.stderr
    assert stack.state("slow") == ("running", "starting")


def test_a_drift_is_left_alone_for_its_blip_time_then_fixed(make_stack):
    stack = make_stack(GATE)
    declare(
        stack,
        "  web: {min_ready_seconds: 0}\n  sick: {replicas: 0}\n  slow: {replicas: 0}\n  migrate: {replicas: 0}\n",
    )
    stack.up("web")
    stack.kill("web")

    done = stack.run_controller("--once", "--timeout", "120", "--blip-seconds", "4")

    assert done.returncode == 0, done.stderr[-3000:]
    issue = stack.issue("drift:web:exited")
    assert issue is not None and issue["state"] == "resolved"
    opened = datetime.fromisoformat(issue["opened_at"])
    first = datetime.fromisoformat(issue["attempts"][0]["started_at"])
    assert (first - opened).total_seconds() >= 4  # left to heal on its own first


def test_a_damaged_state_file_set_aside_is_said_in_the_progress_and_the_table(make_stack):
    stack = make_stack(GATE)
    declare(
        stack, "  web: {}\n  sick: {replicas: 0}\n  slow: {replicas: 0}\n  migrate: {replicas: 0}\n"
    )
    (stack.state_dir / "docker_issues_e2e.json").write_text('{"schema_version": 1, "issu')
    done = stack.run_controller("--once", "--timeout", "180")
    assert done.returncode == 0, done.stderr[-3000:]
    (aside,) = stack.state_dir.glob("docker_issues_e2e.json.unreadable-*")
    lines = done.stderr.splitlines()
    (progress,) = [line for line in lines if line.split()[:3] == ["(state)", "Set", "aside"]]
    assert f"kept as {aside.name}" in progress
    (under,) = [line for line in lines if line.startswith("state file set aside:")]
    assert "docker_issues_e2e.json was damaged" in under


def test_a_service_that_crashes_the_same_way_after_a_restart_fails_the_gate_fast(make_stack):
    # the stack was brought up before the gate (`docker compose up -d`), and crashed
    stack = make_stack(STACKS / "crashy.yaml")
    stack.up()
    wait_for(lambda: stack.state("crashy")[0] == "exited", 60, "crashy to crash")
    junit = stack.root / "junit.xml"

    done = stack.run_controller("--once", "--timeout", "240", "--junit", str(junit))

    assert done.returncode == 1, done.stderr[-3000:]
    crashy = next(i for i in stack.issues()["issues"] if i["service"] == "crashy")
    assert crashy["state"] == "needs-human"
    assert "crashed the same way 2 times: exit 1" in crashy["resolution"], crashy["resolution"]
    assert 1 <= len(crashy["attempts"]) <= 2  # not the whole budget of 5
    case = junit_cases(junit)["service crashy ready"]
    assert isinstance(case.result[0], Failure)  # type: ignore[attr-defined]
    assert (case.time or 0.0) > 0  # type: ignore[attr-defined]
