"""The fault suite on a real engine (issue 12): secrets, state directory, engine outages,
a healthcheck the engine stopped running.

- Secrets a container prints in every shape, through every path (its log, its
  healthcheck's output, an exec probe's output, a runbook's output, compose's stderr, the
  engine's errors), appear in no output: the JSON file, the Markdown report, /status,
  /metrics, the controller's own log.
- A state directory the controller cannot write stops it at start: one line, exit 2.
- ENGINE_TRIALS stops and starts of a private dockerd under a running controller: no
  action during the outage, /readyz 503 while it lasts, converged after, and a crash
  that happened while the engine was down is fixed once it is back.
- Docker 20.10 stops the healthchecks of the containers it restored (moby/moby#41871):
  a failing streak frozen that way becomes a non-blocking healthcheck-stalled issue.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import STACKS, Stack, free_ports, http_get, metric, wait_for

LEAKY = STACKS / "leaky.yaml"
TRIO_YAML = STACKS / "trio.yaml"
ENGINE_TRIALS = 5  # stops and starts of the private engine (each about 15 s)


def write_in(stack: Stack, service: str, path: str, text: str) -> None:
    """Put ``text`` in a file of the container: through stdin, never a command line."""
    stack.compose(
        "exec", "-T", service, "sh", "-c", f"cat > {path}.new && mv {path}.new {path}", stdin=text
    )


def leak_secrets() -> dict[str, str]:
    """Secrets of this run, named by the shape they are printed in."""
    return {name: f"Lk{uuid.uuid4().hex[:12]}" for name in (
        "db_password", "pgpassword", "secret_token", "aws", "url_at", "url_slash", "quoted",
        "json", "bearer", "cookie", "api_key", "health", "probe", "runbook", "compose",
    )}  # fmt: skip


def shapes(s: dict[str, str]) -> list[str]:
    return [
        f"DB_PASSWORD={s['db_password']}",
        f"PGPASSWORD={s['pgpassword']} psql -h db",
        f"SECRET_TOKEN={s['secret_token']}",
        f"aws_secret_access_key={s['aws']}/K7MDENG",
        f"postgres://app:p@ss/{s['url_at']}@db/app",
        f"redis://default:Pa/ss{s['url_slash']}@cache:6379",
        f'password="correct horse {s["quoted"]} staple"',
        json.dumps({"user": "app", "password": s["json"]}),
        f"Cookie: session={s['cookie']}; theme=dark",
        f"X-Api-Key: {s['api_key']}",
        f"Authorization: Bearer {s['bearer']}",
    ]


LEAK_DECLARATION = """detection:
  patterns:
    - id: leaktest
      regex: 'ERROR leaktest: '
      category: health
      severity: high
      title: The leak test printed its secrets
remediation:
  runbooks:
    - name: print-and-fail
      when: {{pattern: leaktest, services: [leaky]}}
      exec:
        service: leaky
        argv: [sh, -c, "cat /tmp/rb; exit 1"]
services:
  leaky:
    probes:
      - exec: {{argv: [sh, -c, "cat /tmp/probe 2>/dev/null; test -f /tmp/ok"]}}
        period_seconds: 1
        failure_threshold: 1
"""


def test_secrets_a_container_prints_appear_in_no_output(make_stack):
    secrets = leak_secrets()
    stack = make_stack(LEAKY, environment={"NEEDS_USER": f"DB_PASSWORD={secrets['compose']}"})
    stack.desired_file.write_text(stack.desired_file.read_text() + LEAK_DECLARATION.format())
    stack.up("leaky")  # needs is missing: the controller's `up` fails on its user
    base = stack.serve("--interval-active", "1", "--interval-quiet", "2")
    write_in(stack, "leaky", "/tmp/hc", f"PGPASSWORD={secrets['health']} checking\n")
    write_in(stack, "leaky", "/tmp/probe", f"probe: X-Api-Key: {secrets['probe']}\n")
    write_in(stack, "leaky", "/tmp/rb", f"createdb: DB_PASSWORD={secrets['runbook']} refused\n")
    lines = shapes(secrets)
    record = "ERROR leaktest: connection settings\n" + "".join(f"  {s}\n" for s in lines)
    loose = "".join(f"ERROR leaktest: {s}\n" for s in lines)
    vault = "".join(f"CRITICAL vault: {s}\n" for s in lines * 3)  # unknown: discovery
    stack.say("leaky", loose + vault + record)  # the record last: it is the newest sample
    stack.compose("exec", "-T", "leaky", "rm", "/tmp/ok")  # healthcheck and probe now fail

    def attempted(fingerprint_start: str, action: str) -> bool:
        return any(
            a["action"] == action and a["outcome"]
            for i in stack.issues()["issues"]
            if i["fingerprint"].startswith(fingerprint_start)
            for a in i["attempts"]
        )

    wait_for(lambda: attempted("log:leaky:leaktest", "runbook"), 90, "the runbook to fail")
    wait_for(lambda: attempted("drift:needs:", "start"), 90, "compose up of needs to fail")
    # then its created container is restarted through the engine, which refuses it too
    wait_for(lambda: attempted("drift:needs:exited", "restart"), 90, "the engine's restart")
    wait_for(lambda: stack.issue("drift:leaky:probe-failed"), 90, "the probe to fail")
    wait_for(lambda: stack.issue("drift:leaky:unhealthy"), 90, "the healthcheck to fail")
    wait_for(
        lambda: any(i["kind"] == "unclassified" for i in stack.issues()["issues"]),
        60,
        "an unclassified template of the vault lines",
    )

    def newest_sample() -> str:
        issue = next(
            (i for i in stack.issues()["issues"] if i["fingerprint"].startswith("log:leaky:leak")),
            None,
        )
        return issue["samples"][-1] if issue else ""

    wait_for(lambda: newest_sample().startswith("ERROR leaktest: connection settings"), 30,
             "the record of every shape to be the newest sample")  # fmt: skip
    outputs = {
        "json": (stack.state_dir / "docker_issues_e2e.json").read_text(),
        "report": stack.report(),
        "/status": http_get(base + "/status")[1],
        "/metrics": http_get(base + "/metrics")[1],
        "controller log": stack.log(),
    }
    leaks = [
        f"{secret} ({shape}) in the {where}"
        for shape, secret in secrets.items()
        for where, text in outputs.items()
        if secret in text
    ]
    assert leaks == []
    # and the masked text did reach the outputs: the test is not vacuous
    doc = json.loads(outputs["json"])
    texts = json.dumps(doc["issues"])
    for masked in ("DB_PASSWORD=***", "PGPASSWORD=***", "postgres://app:***@db/app",
                   "redis://default:***@cache:6379", "X-Api-Key: ***", "Bearer ***"):  # fmt: skip
        assert masked in texts, masked
    record_seen = "ERROR leaktest: connection settings\n  DB_PASSWORD=***\n  PGPASSWORD=***"
    assert any(record_seen in sample for i in doc["issues"] for sample in i["samples"])
    needs = stack.issue("drift:needs:missing") or {}
    assert any("unable to find user DB_PASSWORD=***" in a["detail"] for a in needs["attempts"])
    assert "unable to find user DB_PASSWORD=***" in outputs["controller log"]
    restarted = stack.issue("drift:needs:exited") or {}
    assert any("DB_PASSWORD=***" in a["detail"] for a in restarted["attempts"]), restarted


def test_a_compose_error_at_load_is_one_line_and_masked(make_stack, tmp_path):
    secret = f"Lk{uuid.uuid4().hex[:12]}"
    compose = tmp_path / "compose.yaml"
    compose.write_text(
        "services:\n  x:\n    image: cc-busybox:1\n    network_mode: none\n"
        f"    command: ['echo', '${{NOPE:?DB_PASSWORD={secret} is needed}}']\n"
    )
    stack = make_stack(compose, environment={})
    done = stack.run_controller("--once", timeout=120)
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert secret not in line and "DB_PASSWORD=***" in line


# --- the state directory --------------------------------------------------------------


@pytest.fixture
def tmpfs_state(make_stack) -> Iterator[tuple[Stack, Path]]:
    """A trio stack whose state directory is a tmpfs of its own, to remount read-only."""
    stack = make_stack(TRIO_YAML)
    mount = stack.state_dir
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield stack, mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def refused_at_start(stack: Stack, state: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(state)], check=True)
    try:
        done = stack.run_controller("--metrics-port", "0", timeout=60)  # long-running mode
    except subprocess.TimeoutExpired:
        pytest.fail("the controller kept running on a read-only state directory")
    assert done.returncode == 2, done.stderr[-2000:]
    (line,) = done.stderr.strip().splitlines()
    assert line == (f"controller: error: --state-dir {state}: not writable: Read-only file system")


def test_a_read_only_state_dir_with_a_damaged_file_stops_the_start_in_one_line(tmpfs_state):
    stack, state = tmpfs_state
    (state / "docker_issues_e2e.json").write_text('{"schema_version": 1, "issues": [{"id"')
    refused_at_start(stack, state)


def test_a_read_only_state_dir_with_a_good_file_stops_the_start_in_one_line(tmpfs_state):
    stack, state = tmpfs_state
    stack.up()
    assert stack.run_controller("--once", timeout=120).returncode == 0
    assert json.loads((state / "docker_issues_e2e.json").read_text())["converged"] is True
    refused_at_start(stack, state)


def fill(directory: Path) -> Path:
    """Fill the file system of ``directory`` to its last byte."""
    filler = directory / "filler"
    with open(filler, "wb", buffering=0) as handle:
        for size in (65536, 4096, 1):
            try:
                while True:
                    handle.write(b"\0" * size)
            except OSError:
                pass
    return filler


def test_a_full_disk_is_one_warning_line_and_sigterm_still_exits_0(tmpfs_state):
    """The state directory fills up under a running controller: it goes on fixing, says
    so in one WARNING line (no traceback), and SIGTERM ends it with exit 0 and one line
    saying what could not be written."""
    stack, state = tmpfs_state
    stack.up()
    (port,) = free_ports(1)
    proc = stack.start_controller(
        "--metrics-port", str(port), "--interval-active", "1", "--interval-quiet", "2"
    )
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: http_get(base + "/readyz")[0] == 200, 60, "the controller to be ready")
    wait_for(lambda: stack.issues()["converged"], 60, "the stack to count as converged")
    fill(state)
    stack.crash("alpha")
    wait_for(lambda: "could not save" in stack.log(), 60, "the failed save to be said")
    wait_for(
        lambda: stack.healthy("alpha") and stack.state("alpha")[0] == "running",
        120,
        "alpha to be fixed all the same",
    )
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(90) == 0, stack.log()[-3000:]
    log = stack.log()
    assert "Traceback" not in log, log[-3000:]
    said = [line for line in log.splitlines() if "could not save" in line]
    assert said and all("No space left on device (ENOSPC)" in line for line in said)
    assert all("save(s) pending since" in line for line in said)
    assert len([line for line in said if " WARNING " in line]) <= 2  # not one per save
    (last,) = [line for line in log.splitlines() if "shutdown: could not write" in line]
    assert f"{state / 'docker_issues_e2e.json'} and docker_issues_report_e2e.md" in last


# --- the engine goes away and comes back ------------------------------------------------


def attempts(stack: Stack) -> list[dict[str, Any]]:
    return [a for i in stack.issues()["issues"] for a in i["attempts"]]


def started(attempt: dict[str, Any]) -> float:
    return datetime.fromisoformat(attempt["started_at"].replace("Z", "+00:00")).timestamp()


def unavailable_passes(base: str) -> float:
    labels = 'env="e2e",result="engine_unavailable"'
    return metric(base, "compose_controller_reconcile_passes_total", labels) or 0.0


def test_engine_outages_leave_the_controller_idle_not_ready_then_converged(
    make_stack, private_engine
):
    stack = make_stack(TRIO_YAML, docker_host=private_engine.host)
    stack.up()
    base = stack.serve("--interval-active", "1", "--interval-quiet", "2")
    wait_for(lambda: stack.issues()["converged"], 60, "the stack to converge")
    outcomes = []
    for trial in range(ENGINE_TRIALS):
        # every other outage, a service crashes while the engine is away
        victim = ("alpha", "beta", "gamma")[trial % 3] if trial % 2 else None
        pid = (stack.inspect(victim) or {})["State"]["Pid"] if victim else 0
        before = len(attempts(stack))
        down_at = time.time()
        private_engine.stop()
        if victim:
            os.kill(pid, signal.SIGKILL)
        wait_for(lambda: http_get(base + "/readyz")[0] == 503, 30, "/readyz to say not ready")
        assert http_get(base + "/healthz")[0] == 200  # the process lives on
        seen_down = unavailable_passes(base)
        wait_for(
            lambda seen=seen_down: unavailable_passes(base) >= seen + 2,
            30,
            "two more passes to find the engine gone",
        )
        assert http_get(base + "/readyz")[0] == 503
        assert len(attempts(stack)) == before, f"trial {trial}: an action during the outage"
        back_at = time.time()
        private_engine.start()
        wait_for(lambda: http_get(base + "/readyz")[0] == 200, 60, "/readyz to be ready again")
        if victim:  # the crash is seen and fixed once the engine is back, not before
            issue = stack.wait_issue(f"drift:{victim}:exited", "resolved", timeout=90)
            fixes = [a for a in issue["attempts"] if started(a) >= down_at]
            assert fixes and all(started(a) >= back_at for a in fixes), fixes
        wait_for(lambda: stack.issues()["converged"], 90, "the stack to converge again")
        during = [a for a in attempts(stack) if down_at <= started(a) < back_at]
        assert during == [], f"trial {trial}: actions during the outage: {during}"
        outcomes.append(victim or "outage only")
    print(f"engine outage trials: {len(outcomes)} of {ENGINE_TRIALS} passed: {outcomes}")
    assert stack.log().count("engine unreachable") >= ENGINE_TRIALS


# --- a healthcheck the engine stopped running ---------------------------------------------


def test_a_failing_streak_frozen_by_an_engine_restart_becomes_a_stalled_healthcheck(
    make_stack, private_engine
):
    # the engine's verdict would take 60 failed checks: the streak is what there is
    stack = make_stack(TRIO_YAML, {"HEALTH_RETRIES": "60"}, docker_host=private_engine.host)
    stack.up()
    stack.serve("--interval-active", "1", "--interval-quiet", "2")
    wait_for(lambda: stack.issues()["converged"], 60, "the stack to converge")
    stack.compose("exec", "-T", "beta", "rm", "/tmp/healthy")
    failing = stack.wait_issue("drift:beta:unhealthy", "open", timeout=30)
    assert failing["kind"] == "failing-healthcheck" and failing["blocking"] is True
    assert stack.issues()["converged"] is False
    private_engine.stop()
    private_engine.start()  # live-restore: beta keeps running, its healthcheck does not
    stalled = wait_for(
        lambda: (
            (i := stack.issue("drift:beta:unhealthy")) and i["kind"] == "healthcheck-stalled" and i
        ),
        120,
        "the frozen streak to time out into healthcheck-stalled (30 s at least)",
    )
    assert stalled["blocking"] is False
    assert "healthcheck stopped running since" in stalled["detail"]
    assert "docker restart" in stalled["detail"]
    wait_for(lambda: stack.issues()["converged"], 30, "the stack to count as converged")
    assert stalled["attempts"] == []  # the controller restarted nothing for it
    # the person does what the issue says: the healthcheck runs again and passes
    beta = (stack.inspect("beta") or {})["Id"]
    stack.docker("restart", "--time", "1", beta)
    stack.wait_issue("drift:beta:unhealthy", "resolved", timeout=60)
