"""Reloading the desired state on a real engine while the controller runs (issue 23): a
good edit of the file is in force without a restart, a bad one is refused and reported
and the state in force keeps working, SIGHUP and POST /-/reload reload too, and a
service taken out of the compose file is no longer managed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.e2e.conftest import STACKS, free_ports, http_get, metric, wait_for

TRIO = STACKS / "trio.yaml"
SUCCESS = "compose_controller_config_last_reload_successful"


def write(path: Path, text: str) -> None:
    """Replace the file at once, as an editor saving it does: never read half-written."""
    new = path.with_suffix(".new")
    new.write_text(text)
    os.replace(new, path)


def config(base: str) -> dict[str, Any]:
    code, body = http_get(base + "/status")
    assert code == 200, body
    status: dict[str, Any] = json.loads(body)["config"]
    return status


def post_reload(base: str) -> tuple[int, str]:
    request = urllib.request.Request(base + "/-/reload", method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_the_desired_state_is_reloaded_while_it_runs_and_a_bad_edit_is_refused(make_stack):
    stack = make_stack(TRIO)
    declared = stack.desired_file.read_text()
    stack.up()
    (port,) = free_ports(1)
    proc = stack.start_controller(
        "--metrics-port", str(port), "--interval-active", "1", "--interval-quiet", "2"
    )
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: http_get(base + "/readyz")[0] == 200, 60, "the controller to be ready")
    wait_for(lambda: stack.issues()["converged"], 120, "the stack to converge")
    assert config(base)["last_reload_successful"] is True
    assert metric(base, SUCCESS, 'env="e2e"') == 1.0

    # a person stops alpha: it is theirs, unless the declaration says enforce: true
    stack.docker("stop", "--time", "1", stack.inspect("alpha")["Id"])
    stack.wait_issue("drift:alpha:exited", "needs-human")

    # (a) a good edit of the file: in force without a restart, alpha brought back
    write(stack.desired_file, declared + "services:\n  alpha: {enforce: true}\n")
    stack.wait_issue("drift:alpha:exited", "resolved")
    wait_for(lambda: stack.healthy("alpha"), 120, "alpha to be brought back")
    status = config(base)
    assert status["last_reload_successful"] is True
    assert status["last_reload_trigger"] == "a file changed"

    # (b) a bad edit: refused, reported, and the state in force keeps working
    write(stack.desired_file, declared + "services:\n  alpha: {enforce: maybe}\n")
    refused = wait_for(
        lambda: (c := config(base))["last_reload_successful"] is False and c,
        30,
        "the bad edit to be refused",
    )
    assert str(stack.desired_file) in refused["error"]
    assert "services.alpha.enforce" in refused["error"]
    assert metric(base, SUCCESS, 'env="e2e"') == 0.0
    assert "refused, the desired state in force kept" in stack.log()
    stack.kill("beta")  # a crash under the state in force: still fixed
    stack.wait_issue("drift:beta:exited", "resolved")
    wait_for(lambda: stack.healthy("beta"), 120, "beta to be fixed")

    # (c) SIGHUP and POST /-/reload reload as well (the file still bad: still refused)
    proc.send_signal(signal.SIGHUP)
    wait_for(lambda: config(base)["last_reload_trigger"] == "SIGHUP", 30, "the SIGHUP reload")
    assert config(base)["last_reload_successful"] is False
    code, text = post_reload(base)
    assert code == 500 and "services.alpha.enforce" in text
    assert config(base)["last_reload_trigger"] == "POST /-/reload"

    write(stack.desired_file, declared + "services:\n  alpha: {enforce: true}\n")
    wait_for(lambda: config(base)["last_reload_successful"], 30, "the fixed file to be loaded")
    assert post_reload(base) == (200, "reloaded: the desired state is in force\n")
    assert metric(base, SUCCESS, 'env="e2e"') == 1.0
    proc.send_signal(signal.SIGHUP)
    wait_for(
        lambda: (c := config(base))["last_reload_trigger"] == "SIGHUP" and c,
        30,
        "the second SIGHUP reload",
    )
    assert config(base)["last_reload_successful"] is True
    assert proc.poll() is None  # SIGHUP reloads; it never ends the controller


def test_a_service_taken_out_of_the_compose_file_is_no_longer_managed(make_stack, tmp_path):
    compose_file = tmp_path / "trio.yaml"
    shutil.copy(TRIO, compose_file)
    stack = make_stack(compose_file)
    stack.up()
    base = stack.serve("--interval-active", "1", "--interval-quiet", "2")
    wait_for(lambda: stack.issues()["converged"], 120, "the stack to converge")
    stack.docker("stop", "--time", "1", stack.inspect("gamma")["Id"])
    stack.wait_issue("drift:gamma:exited", "needs-human")

    text = compose_file.read_text()
    write(compose_file, text.replace("  gamma: *service\n", ""))  # a compose file it names

    issue = stack.wait_issue("drift:gamma:exited", "resolved")
    assert issue["resolution"] == "no longer declared (the desired state was reloaded)"
    wait_for(
        lambda: {s["name"] for s in stack.issues()["services"]} == {"alpha", "beta"},
        30,
        "gamma to leave the services",
    )
    assert config(base)["last_reload_trigger"] == "a file changed"
    stack.wait_issue("drift:gamma:orphan", "open")  # what still runs of it: reported only
