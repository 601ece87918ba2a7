"""The CI gate on a fake of our gateway: never green without evidence, an exit code per cause."""

from __future__ import annotations

import contextlib
import io
import re
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from junitparser import Failure, JUnitXml, Skipped
from prometheus_client import CollectorRegistry

from controller.gate.junit import junit_report
from controller.gate.progress import Progress, final_table
from controller.gate.run import GateResult, Verdict, run_gate
from controller.gate.summary import append_step_summary
from controller.model import RemediationSettings, ServiceCondition, ServiceStatus, system_clock
from controller.runtime import Controller, Settings, assemble
from tests.fakes import FakeClock, FakeWorld, ServiceRunState, desired, spec


def gate(tmp_path: Path, world: FakeWorld, *specs, clock=None, **settings) -> Controller:  # type: ignore[no-untyped-def]
    options = {"once": True, "shutdown_timeout": 5.0, **settings}
    return assemble(
        Settings(env="dev", state_dir=tmp_path, **options),  # type: ignore[arg-type]
        desired(*specs, remediation=RemediationSettings(log_quiet=0.0)),
        gateway=world,
        compose=world,
        hashes=world,
        registry=CollectorRegistry(),
        clock=clock if clock is not None else system_clock,
    )


def no_sleep(seconds: float) -> None:
    pass


def test_an_unreachable_engine_is_exit_3_and_never_converged(tmp_path):
    world = FakeWorld()
    world.reachable = False
    controller = gate(tmp_path, world, spec("web", min_ready=0.0))

    result = run_gate(controller, timeout=30, engine_timeout=0.2, sleep=no_sleep)

    assert result.verdict is Verdict.ENGINE_UNREACHABLE
    assert "unreachable" in result.reason
    doc = controller.document()
    assert doc["converged"] is False and doc["services"] == []
    assert doc["engine"]["reachable"] is False and doc["observed_at"] is None
    assert world.actions == []


def test_before_any_pass_nothing_is_converged(tmp_path):
    world = FakeWorld()
    world.run("web")
    controller = gate(tmp_path, world, spec("web"))
    assert controller.converged() is False  # no services observed: no evidence
    assert controller.document()["converged"] is False


def test_a_running_stack_converges_with_evidence(tmp_path):
    world = FakeWorld()
    world.run("web")
    world.run("db")
    controller = gate(tmp_path, world, spec("web", min_ready=0.0), spec("db", min_ready=0.0))

    result = run_gate(controller, timeout=30, engine_timeout=5, sleep=no_sleep)

    assert result.verdict is Verdict.CONVERGED
    assert controller.document()["converged"] is True
    assert controller.document()["observed_at"] is not None


def test_a_crashed_service_is_fixed_then_converged(tmp_path):
    world = FakeWorld()
    world.run("web", status="exited", exit_code=137)
    controller = gate(tmp_path, world, spec("web", min_ready=0.0))

    result = run_gate(controller, timeout=60, engine_timeout=5, sleep=no_sleep)

    assert result.verdict is Verdict.CONVERGED
    assert ("restart", "demo-web-1") in world.actions
    assert set(result.ready_at) == {"web"}  # when it counted ready, for its JUnit case


def test_a_service_never_ready_has_no_ready_time(tmp_path):
    world = FakeWorld()
    world.run("web", status="exited", exit_code=1)
    world.crashing.add("web")
    controller = gate(tmp_path, world, spec("web", min_ready=0.0))
    result = run_gate(controller, timeout=60, engine_timeout=5, sleep=no_sleep)
    assert result.verdict is Verdict.NOT_CONVERGED and result.ready_at == {}


def test_a_service_that_needs_a_human_is_exit_1_with_the_reason(tmp_path):
    world = FakeWorld()
    world.run("web", status="paused")  # only a person (or enforce: true) unpauses it
    world.run("db")
    controller = gate(tmp_path, world, spec("web"), spec("db", min_ready=0.0))

    result = run_gate(controller, timeout=60, engine_timeout=5, sleep=no_sleep)

    assert result.verdict is Verdict.NOT_CONVERGED
    assert "web" in result.reason
    assert world.actions == []


def test_an_unready_optional_service_does_not_fail_the_gate(tmp_path):
    world = FakeWorld()
    world.run("web")
    world.run("extra", status="paused")
    controller = gate(tmp_path, world, spec("web", min_ready=0.0), spec("extra", required=False))
    assert run_gate(controller, timeout=30, engine_timeout=5, sleep=no_sleep).verdict is (
        Verdict.CONVERGED
    )


def test_a_deadline_while_a_service_is_still_starting_is_exit_4(tmp_path):
    world = FakeWorld()
    world.healthchecked.add("web")
    world.run("web", health="starting")  # never becomes healthy, never fails either
    controller = gate(tmp_path, world, spec("web", check_health=True))

    result = run_gate(controller, timeout=1.0, engine_timeout=5, sleep=no_sleep)

    assert result.verdict is Verdict.TIMED_OUT
    assert "web" in result.reason and "progressing" in result.reason


def test_a_blip_that_heals_on_its_own_is_left_alone(tmp_path):
    world = FakeWorld()
    world.run("web", status="exited", exit_code=1)
    controller = gate(tmp_path, world, spec("web", min_ready=0.0), blip_seconds=30.0)
    healed = []

    def sleep(seconds: float) -> None:  # Docker's restart policy brings it back meanwhile
        if not healed:
            healed.append(True)
            world.set("web", status="running", exit_code=0)

    result = run_gate(controller, timeout=60, engine_timeout=5, sleep=sleep)

    assert result.verdict is Verdict.CONVERGED
    assert world.actions == []  # not acted on within its blip time
    (issue,) = controller.store.issues()
    assert issue.resolution == "recovered without a fix from the controller"


def test_without_blip_time_the_same_crash_is_fixed_at_once(tmp_path):
    world = FakeWorld()
    world.run("web", status="exited", exit_code=1)
    controller = gate(tmp_path, world, spec("web", min_ready=0.0))
    assert run_gate(controller, timeout=60, engine_timeout=5, sleep=no_sleep).verdict is (
        Verdict.CONVERGED
    )
    assert ("restart", "demo-web-1") in world.actions


def test_a_completed_job_that_exited_0_is_done(tmp_path):
    world = FakeWorld()
    world.run("migrate", status="exited", exit_code=0)
    world.run("web")
    controller = gate(
        tmp_path,
        world,
        spec("migrate", state=ServiceRunState.COMPLETED, min_ready=0.0),
        spec("web", min_ready=0.0),
    )
    assert run_gate(controller, timeout=30, engine_timeout=5, sleep=no_sleep).verdict is (
        Verdict.CONVERGED
    )
    assert world.actions == []


def started(epoch: float) -> str:
    """A container's StartedAt, as the engine writes it."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_a_service_counts_only_once_it_stayed_ready_for_its_hold(tmp_path):
    clock = FakeClock()
    world = FakeWorld()
    world.run("web", started_at=started(clock()))  # it started this very moment
    controller = gate(tmp_path, world, spec("web", min_ready=5.0), clock=clock)
    assert controller.run_pass()
    assert controller.converged() is False  # up this very moment: no evidence it stays up
    assert controller.unsettled() == {"web": 5.0}
    doc = controller.document()  # says why, though no issue does
    assert doc["converged"] is False and doc["waiting_on"] == ["web: must stay ready for 5 s"]
    clock.advance(4.0)
    assert controller.run_pass() and controller.converged() is False
    clock.advance(1.0)
    assert controller.run_pass() and controller.converged() is True
    assert controller.document()["converged"] is True
    assert controller.document()["waiting_on"] == []


def test_a_stack_up_for_hours_is_settled_at_the_first_pass(tmp_path):
    clock = FakeClock()
    world = FakeWorld()
    world.run("web", started_at=started(clock() - 3 * 3600))
    controller = gate(tmp_path, world, spec("web", restart="always", min_ready=5.0), clock=clock)
    assert controller.run_pass()
    assert controller.unsettled() == {} and controller.converged() is True


def test_a_container_started_again_between_passes_starts_the_hold_again(tmp_path):
    clock = FakeClock()
    world = FakeWorld()
    world.run("web", started_at=started(clock() - 3600))
    controller = gate(tmp_path, world, spec("web", min_ready=5.0), clock=clock)
    assert controller.run_pass() and controller.converged() is True
    clock.advance(10.0)
    # `docker restart` by someone, between two passes: the same restart count, a new run
    world.set("web", started_at=started(clock() - 1.0))
    assert controller.run_pass() and controller.converged() is False
    assert controller.unsettled() == {"web": 4.0}  # counted from the new start
    clock.advance(4.0)
    assert controller.run_pass() and controller.converged() is True


def test_startup_time_is_never_counted_as_ready_time(tmp_path):
    """Up 15 s, healthy when the gate first looks (`compose up --wait` ran before it): its
    healthcheck may have taken all 15 s, so none of them is evidence it stays up."""
    clock = FakeClock()
    world = FakeWorld()
    world.healthchecked.add("web")
    world.run("web", started_at=started(clock() - 15))
    web = spec("web", check_health=True, verify_timeout=30.0, restart="always")
    controller = gate(tmp_path, world, web, clock=clock)
    assert controller.run_pass() and controller.unsettled() == {"web": 10.0}


def test_an_engine_clock_behind_does_not_make_a_restart_look_old(tmp_path):
    clock = FakeClock()
    world = FakeWorld()
    world.run("web", started_at=started(clock() - 3600))
    controller = gate(tmp_path, world, spec("web", restart="always"), clock=clock)
    assert controller.run_pass() and controller.converged() is True
    clock.advance(2.0)
    # crashed and restarted by Docker between two passes; the engine's clock is 60 s behind
    world.set("web", restart_count=1, started_at=started(clock() - 61))
    assert controller.run_pass() and controller.converged() is False
    assert controller.unsettled() == {"web": 8.0}  # counted from the pass before, not earlier


def test_a_service_seen_not_ready_counts_from_the_pass_that_saw_it(tmp_path):
    clock = FakeClock()
    world = FakeWorld()
    world.healthchecked.add("web")
    world.run("web", health="starting", started_at=started(clock() - 3600))
    controller = gate(tmp_path, world, spec("web", check_health=True, min_ready=5.0), clock=clock)
    assert controller.run_pass() and controller.converged() is False
    clock.advance(2.0)
    world.set("web", health="healthy")  # healthy only now: its hour-old start is no evidence
    assert controller.run_pass() and controller.converged() is False
    assert controller.unsettled() == {"web": 3.0}  # since the pass that saw it starting


def killed_mid_restart(controller: Controller, world: FakeWorld) -> None:
    """``controller`` records a restart of web and dies (SIGKILL) as the command starts."""
    assert controller.run_pass()

    def killed(container_id, timeout):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt  # nothing after the step's record runs

    world.restart = killed  # type: ignore[method-assign]
    with contextlib.suppress(KeyboardInterrupt):
        controller.parts.remediation.reconciler.reconcile("web")
    del world.restart


def test_a_gate_run_again_after_one_killed_mid_restart_proves_that_restart(tmp_path):
    """A CI retry right after a gate was killed during `docker restart web`: the restart
    the engine finished is proven (nothing repeated) and the gate converges, not spins."""
    world = FakeWorld()
    world.run("web", status="exited", exit_code=1)
    first = gate(tmp_path, world, spec("web", min_ready=0.0, stop_timeout=30.0))
    killed_mid_restart(first, world)
    # the engine finished that restart: web runs, started after the step began
    world.set("web", status="running", exit_code=0, started_at=started(time.time() + 0.5))
    time.sleep(0.6)
    second = gate(tmp_path, world, spec("web", min_ready=0.0, stop_timeout=30.0))

    result = run_gate(second, timeout=20, engine_timeout=5, sleep=no_sleep)

    assert result.verdict is Verdict.CONVERGED, result.reason
    assert world.actions == []  # the restart was not repeated
    (issue,) = second.store.issues()
    assert issue.resolution == "fixed by restart"


def test_a_step_stamped_in_the_future_freezes_its_service_no_longer_than_its_window(tmp_path):
    """The clock was set back (a VM snapshot restored) after a run killed mid-step."""
    world = FakeWorld()
    world.run("web", status="exited", exit_code=1)
    ahead = FakeClock(time.time() + 3600)
    first = gate(tmp_path, world, spec("web", stop_timeout=30.0), clock=ahead)
    killed_mid_restart(first, world)
    second = gate(tmp_path, world, spec("web", stop_timeout=30.0))
    second.restore()
    assert 30.0 < second.parts.records.command_left("web") <= 35.0
    # the killed command's own stop, stamped now, is the controller's, not a person's
    assert second.parts.records.event("web", "kill", time.time(), 15) is True


def test_a_dry_run_of_a_freshly_started_healthy_stack_waits_for_the_hold(tmp_path):
    world = FakeWorld()
    world.run("web", started_at=started(time.time()))
    controller = gate(tmp_path, world, spec("web", min_ready=0.5), dry_run=True)
    assert run_gate(controller, timeout=30, engine_timeout=5).verdict is Verdict.CONVERGED
    assert world.actions == []


def test_a_gate_ended_by_a_hold_names_the_service_and_fails_its_junit_case(tmp_path):
    world = FakeWorld()
    world.run("web", started_at=started(time.time()))
    controller = gate(tmp_path, world, spec("web", min_ready=60.0))

    result = run_gate(controller, timeout=1.0, engine_timeout=5)

    assert result.verdict is Verdict.TIMED_OUT
    assert re.search(r"must stay ready: web ready for \d+ of 60 s", result.reason), result.reason
    path = tmp_path / "junit.xml"
    path.write_text(junit_report(controller.document(), {"web": True}, result))
    (case,) = [c for suite in JUnitXml.fromfile(str(path)) for c in suite]
    (failure,) = case.result
    assert isinstance(failure, Failure) and "not yet for long enough" in failure.message


def test_a_crash_loop_under_a_restart_policy_is_never_green(tmp_path):
    """Docker restarts it each time: every pass may find it running, never for long."""
    world = FakeWorld()
    world.run("web", started_at=started(time.time()))
    controller = gate(tmp_path, world, spec("web", restart="always", min_ready=0.0))
    restarts = iter(range(1, 10_000))

    def sleep(seconds: float) -> None:  # each restart: a new start, the count up
        world.set("web", restart_count=next(restarts), started_at=started(time.time()))

    result = run_gate(controller, timeout=3.0, engine_timeout=5, sleep=sleep)

    assert result.verdict is not Verdict.CONVERGED
    assert controller.document()["converged"] is False


def test_progress_says_a_ready_service_must_still_stay_up():
    out = io.StringIO()
    progress = Progress(out, ["web"])
    progress.update([status("web", ServiceCondition.READY)], [], {}, "", {"web": 10.0})
    progress.update([status("web", ServiceCondition.READY)], [], {}, "", {"web": 10.0})
    progress.update([status("web", ServiceCondition.READY)], [], {}, "")
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert "must stay ready 10 s" in lines[0] and lines[1].split() == ["web", "Ready"]


# --- what a person and a CI system read ---------------------------------------------------


def status(name: str, condition: ServiceCondition) -> ServiceStatus:
    return ServiceStatus(
        name=name,
        condition=condition,
        required=True,
        replicas=1,
        containers=1,
        running=1,
        healthy=None,
        restarts=0,
    )


def test_progress_prints_a_line_per_state_change_only():
    out = io.StringIO()
    progress = Progress(out, ["db", "backend"])
    progress.update([status("db", ServiceCondition.PROGRESSING)], [], {}, "")
    progress.update([status("db", ServiceCondition.PROGRESSING)], [], {}, "")
    progress.update([status("db", ServiceCondition.READY)], [], {}, "")
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].split()[:2] == ["db", "Progressing"]
    assert lines[1].split() == ["db", "Ready"]


def test_quiet_progress_prints_nothing():
    out = io.StringIO()
    Progress(out, ["db"], enabled=False).update([status("db", ServiceCondition.READY)], [], {}, "")
    assert out.getvalue() == ""


def test_the_final_table_lists_services_never_observed():
    rows = final_table({"db": True, "web": False}, [status("db", ServiceCondition.READY)], [], {})
    assert rows[0].split() == ["SERVICE", "REQUIRED", "CONDITION", "CONTAINERS", "LEFT"]
    assert rows[1].split()[:3] == ["db", "yes", "Ready"]
    assert "never observed" in rows[2] and rows[2].split()[:3] == ["web", "no", "unknown"]


def test_the_final_table_says_what_is_left_of_a_hold():
    rows = final_table(
        {"db": True, "web": True},
        [status("db", ServiceCondition.READY), status("web", ServiceCondition.READY)],
        [],
        {},
        {"web": 7.6},
    )
    assert rows[1].endswith(" -") and rows[2].endswith("must stay ready 8 s more")


def test_the_junit_file_has_a_case_per_service_and_per_blocking_issue(tmp_path):
    world = FakeWorld()
    world.run("web", status="paused")
    world.run("db")
    world.run("extra", status="paused")
    controller = gate(
        tmp_path, world, spec("web"), spec("db", min_ready=0.0), spec("extra", required=False)
    )
    result = run_gate(controller, timeout=30, engine_timeout=5, sleep=no_sleep)
    declared = {"web": True, "db": True, "extra": False}

    path = tmp_path / "junit.xml"
    path.write_text(junit_report(controller.document(), declared, result))

    cases = {case.name: case for suite in JUnitXml.fromfile(str(path)) for case in suite}
    assert set(cases) >= {"service web ready", "service db ready", "service extra ready"}
    assert cases["service db ready"].is_passed
    assert isinstance(cases["service web ready"].result[0], Failure)
    assert isinstance(cases["service extra ready"].result[0], Skipped)
    issue_cases = [c for name, c in cases.items() if name.startswith("issue ")]
    assert len(issue_cases) == 1  # web's paused drift; extra's is not blocking
    text = issue_cases[0].result[0].text
    assert "web is paused" in text and "a person does on purpose" in text


def test_the_step_summary_is_appended_after_what_others_wrote(tmp_path):
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    result = GateResult(Verdict.NOT_CONVERGED, "needs a human: web")
    append_step_summary(summary, "dev", result, "# Docker issues report: dev\n\nbody\n")
    text = summary.read_text()
    assert text.startswith("earlier step\n## compose-controller gate failed: `dev`")
    assert "exit 1" in text and "needs a human: web" in text
    assert "### Docker issues report: dev" in text


@pytest.mark.parametrize(
    ("verdict", "code"),
    [
        (Verdict.CONVERGED, 0),
        (Verdict.NOT_CONVERGED, 1),
        (Verdict.BAD_INPUT, 2),
        (Verdict.ENGINE_UNREACHABLE, 3),
        (Verdict.TIMED_OUT, 4),
        (Verdict.ROLLED_BACK, 5),
    ],
)
def test_each_verdict_has_its_documented_exit_code(verdict, code):
    assert int(verdict) == code


def test_a_damaged_state_file_set_aside_is_said_in_the_progress_and_under_the_table(tmp_path):
    (tmp_path / "docker_issues_dev.json").write_text('{"schema_version": 1, "issu')
    world = FakeWorld()
    world.run("web")
    controller = gate(tmp_path, world, spec("web", min_ready=0.0))
    out = io.StringIO()
    progress = Progress(out, ["web"])
    result = run_gate(
        controller,
        timeout=30,
        engine_timeout=5,
        sleep=no_sleep,
        on_progress=lambda: progress.update(
            controller.store.services(),
            controller.store.issues(),
            controller.records(),
            controller.engine_error,
            set_aside=controller.parts.files.set_aside,
        ),
    )
    assert result.verdict is Verdict.CONVERGED
    (aside,) = tmp_path.glob("docker_issues_dev.json.unreadable-*")
    said = [line for line in out.getvalue().splitlines() if "Set aside" in line]
    assert len(said) == 1, out.getvalue()  # once, not on every update
    assert "(state)" in said[0] and f"kept as {aside.name}" in said[0]
    assert "docker_issues_dev.json was damaged (cannot read issues" in said[0]
    rows = final_table(
        {"web": True},
        controller.store.services(),
        controller.store.issues(),
        controller.records(),
        set_aside=controller.parts.files.set_aside,
    )
    assert rows[-1].startswith("state file set aside: docker_issues_dev.json was damaged")
    assert "started without its issues, backoff and budget" in rows[-1]


def test_without_a_damaged_file_nothing_is_said_of_one(tmp_path):
    world = FakeWorld()
    world.run("web")
    controller = gate(tmp_path, world, spec("web", min_ready=0.0))
    run_gate(controller, timeout=30, engine_timeout=5, sleep=no_sleep)
    assert controller.parts.files.set_aside is None
    rows = final_table(
        {"web": True}, controller.store.services(), controller.store.issues(), controller.records()
    )
    assert not any("set aside" in row for row in rows)


def test_the_junit_times_are_real_from_the_gate_start_to_each_end(tmp_path):
    start = 1_800_000_000.0

    def at(seconds: float) -> str:
        return datetime.fromtimestamp(start + seconds, UTC).isoformat().replace("+00:00", "Z")

    def issue(service: str, opened: float, resolved: float | None) -> dict[str, object]:
        return {
            "id": f"id-{service}", "service": service, "title": f"{service} exited",
            "severity": "high", "kind": "exited", "state": "open" if resolved is None else "resolved",
            "blocking": True, "first_seen": at(opened), "opened_at": at(opened),
            "resolved_at": None if resolved is None else at(resolved), "attempts": [],
        }  # fmt: skip

    doc = {
        "env": "dev",
        "services": [
            {"name": "web", "condition": "Ready"},
            {"name": "db", "condition": "Ready"},
            {"name": "api", "condition": "Degraded"},
            {"name": "cache", "condition": "Ready"},
            {"name": "queue", "condition": "Progressing"},
        ],
        "issues": [issue("web", 1.0, 4.5), issue("api", 2.0, None)],
    }
    ready = {"web": start + 6, "db": start - 3600.0, "cache": start + 2.5}
    result = GateResult(
        Verdict.NOT_CONVERGED, "not ready: api", started=start, ended=start + 12, ready_at=ready
    )
    path = tmp_path / "junit.xml"
    declared = dict.fromkeys(("web", "db", "api", "cache", "queue"), True)
    path.write_text(junit_report(doc, declared, result))
    suite = next(iter(JUnitXml.fromfile(str(path))))
    times = {case.name: case.time or 0.0 for case in suite}  # 0 s: junit-xml leaves it out
    assert times["service web ready"] == pytest.approx(3.5)  # opened 1 s in, fixed at 4.5
    assert times["service db ready"] == 0.0  # ready before the gate began
    assert times["service cache ready"] == pytest.approx(2.5)  # the gate started it: ready then
    assert times["service queue ready"] == pytest.approx(12.0)  # never ready: the whole gate
    assert times["service api ready"] == pytest.approx(10.0)  # open until the verdict
    assert suite.time == pytest.approx(sum(times.values()))
    assert suite.timestamp.startswith(datetime.fromtimestamp(start, UTC).isoformat()[:19])


def test_a_crash_that_ends_a_steps_proof_is_acted_on_in_the_next_round_without_a_pause(
    tmp_path,
):
    """Started from nothing, it crashes: its new fault (exited, not missing) is the next
    round's at once; once it is handed to a human nothing is left to wait for and the
    gate ends, never pausing between rounds."""
    world = FakeWorld()
    world.crashing.add("web")
    world.model["services"]["web"] = {}  # declared, never started: the gate starts it
    controller = gate(tmp_path, world, spec("web", min_ready=0.0))
    pauses: list[float] = []

    result = run_gate(controller, timeout=60, engine_timeout=5, sleep=pauses.append)

    assert result.verdict is Verdict.NOT_CONVERGED
    assert "needs a human: web" in result.reason, result.reason
    actions = [a for a, _ in world.actions]
    assert actions[:2] == ["up", "restart"], world.actions
    assert pauses == []


def test_a_service_failing_its_checks_before_the_engines_verdict_is_still_progressing(tmp_path):
    """A check that failed once on a busy CI machine (a healthy backend, its streak 1):
    the engine's verdict is to come (unhealthy, or the next check passes), so the gate
    waits for it to its deadline; it never ended NOT converged at the first look."""
    world = FakeWorld()
    world.healthchecked.add("web")
    world.run("web", failing_streak=1, last_check_at=time.time(), health_interval=3600.0)
    controller = gate(tmp_path, world, spec("web", check_health=True))

    result = run_gate(controller, timeout=1.0, engine_timeout=5, sleep=no_sleep)

    assert result.verdict is Verdict.TIMED_OUT, result.reason
    assert "web" in result.reason and "progressing" in result.reason
    # what it waited for, in words: not only "not ready yet"
    assert "web failing its healthcheck (1 check(s) failed in a row" in result.reason
