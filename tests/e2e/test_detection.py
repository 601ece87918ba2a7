"""Detection without waiting for a poll: events, probes, config drift, engine restarts."""

from __future__ import annotations

import shutil

from controller.remediate.crashes import ONE_OFF_HOLD
from tests.e2e.conftest import STACKS, free_ports, http_get, wait_for

TRIO = STACKS / "trio.yaml"
SLOW = ("--interval-active", "60", "--interval-quiet", "60")  # the resync is a minute away


def test_a_crashed_service_is_detected_and_fixed_without_waiting_for_the_resync(make_stack):
    stack = make_stack(TRIO)
    stack.up()
    stack.serve(*SLOW)
    wait_for(lambda: stack.issues()["converged"], 60, "the first pass")
    stack.crash("gamma")
    issue = wait_for(
        lambda: stack.issue("drift:gamma:exited"),
        15,
        "the crash to be recorded (the next resync is 60 s away)",
    )
    assert issue["title"] == "gamma exited with code 137"
    stack.wait_issue("drift:gamma:exited", "resolved", timeout=30)
    assert stack.healthy("gamma")


def test_a_healthcheck_that_begins_to_fail_is_reported_before_the_engines_verdict(make_stack):
    # the engine's verdict is a minute away
    stack = make_stack(TRIO, environment={"HEALTH_RETRIES": "60"})
    stack.up()
    stack.serve(*SLOW)
    wait_for(lambda: stack.issues()["converged"], 60, "the first pass")
    stack.compose("exec", "-T", "beta", "rm", "/tmp/healthy")
    issue = wait_for(
        lambda: stack.issue("drift:beta:unhealthy"),
        15,
        "the first failed check to be recorded (the resync and the verdict are 60 s away)",
    )
    assert stack.state("beta") == ("running", "healthy")  # the engine has not judged yet
    assert (issue["kind"], issue["severity"]) == ("failing-healthcheck", "medium")
    assert issue["title"] == "beta is failing its healthcheck" and issue["attempts"] == []


def test_an_http_probe_failure_is_detected_and_fixed(make_stack):
    (port,) = free_ports(1)
    probe = (
        "  web:\n    probes:\n"
        f"      - http: {{url: 'http://127.0.0.1:{port}/health', body: ok}}\n"
        "        period_seconds: 0.5\n        failure_threshold: 2\n"
    )
    stack = make_stack(STACKS / "web.yaml", environment={"WEB_PORT": str(port)}, services=probe)
    stack.up()
    stack.serve(*SLOW)
    wait_for(lambda: stack.issues()["converged"], 60, "the probe to pass")
    stack.compose("exec", "-T", "web", "rm", "/tmp/www/health")
    issue = stack.wait_issue("drift:web:probe-failed", "resolved", timeout=60)
    assert "answered 404" in issue["detail"]
    assert issue["resolution"] == "fixed by restart"
    assert http_get(f"http://127.0.0.1:{port}/health") == (200, "ok\n")


def test_a_compose_file_edit_shows_as_config_drift(make_stack, tmp_path):
    compose = tmp_path / "compose.yaml"
    shutil.copy(TRIO, compose)
    stack = make_stack(compose)
    stack.up()
    stack.serve("--interval-active", "1", "--interval-quiet", "1")
    wait_for(lambda: stack.issues()["converged"], 60, "the stack to converge")
    edited = compose.read_text().replace(
        "  gamma: *service", "  gamma:\n    <<: *service\n    environment: {FEATURE_FLAG: 'on'}"
    )
    assert edited != compose.read_text()
    compose.write_text(edited)
    issue = wait_for(
        lambda: (
            (i := stack.issue("drift:gamma:outdated")) and i["plan"].startswith("reported") and i
        ),
        30,
        "gamma's outdated config to be reported",
    )
    assert issue["state"] == "open"  # a report, not a page: gamma runs well
    assert issue["blocking"] is False and issue["category"] == "config"
    assert "docker compose up -d gamma" in issue["plan"]
    assert stack.issues()["converged"] is True  # outdated is reported, not failing
    assert stack.issue("drift:alpha:outdated") is None  # only gamma's config changed


def test_restarting_the_engine_leaves_the_controller_running_reconnected_and_idle(
    make_stack, private_engine
):
    stack = make_stack(TRIO, docker_host=private_engine.host)
    stack.up()
    base = stack.serve("--interval-active", "1", "--interval-quiet", "2")
    wait_for(lambda: stack.issues()["converged"], 60, "the stack to converge")

    private_engine.stop()
    wait_for(lambda: http_get(base + "/readyz")[0] == 503, 30, "/readyz to say not ready")
    assert http_get(base + "/healthz")[0] == 200  # the process lives on
    private_engine.start()
    wait_for(lambda: http_get(base + "/readyz")[0] == 200, 60, "/readyz to be ready again")

    doc = stack.issues()
    assert [a for i in doc["issues"] for a in i["attempts"]] == []  # nothing done on stale data
    # Docker 20.10 may not resume the healthchecks of containers it restored with
    # --live-restore (moby#41871): a check the restart cut off then stays a failing streak
    # until the controller calls it stalled (non-blocking); either way it converges
    doc = wait_for(lambda: (d := stack.issues())["converged"] and d, 90, "convergence")
    assert [a for i in doc["issues"] for a in i["attempts"]] == []
    assert doc["converged"] is True, (
        doc["services"],
        [
            (i["fingerprint"], i["state"], i["plan"])
            for i in doc["issues"]
            if i["state"] != "resolved"
        ],
        doc["engine"],
        doc["observed_at"],
    )
    stack.crash("beta")  # and the event stream is back: a crash is seen and fixed
    wait_for(
        lambda: (i := stack.issue("drift:beta:exited")) and i["attempts"],
        60,
        "beta's crash to be fixed",
    )
    # proven once beta outlived the crash: as long again as it had run, half that more,
    # at most a minute (a busy machine that took long to converge makes that minute)
    stack.wait_issue("drift:beta:exited", "resolved", timeout=ONE_OFF_HOLD + 60)
    assert "engine unreachable" in stack.log() and "engine reachable" in stack.log()
