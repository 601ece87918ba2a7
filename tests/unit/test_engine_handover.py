"""Which engine the controller manages: logged at start and after an outage (another
engine at the same address is a warning), /readyz only while the engine answered
recently, `controller status --ready` for the image's healthcheck, and deploy/compose.yaml's
hand-over of the host's DOCKER_HOST checked against the socket it mounted (issue 20)."""

from __future__ import annotations

import io

import pytest
from loguru import logger
from prometheus_client import CollectorRegistry

from controller.cli import configure_logging
from controller.handover import disagreement
from controller.http import StatusServer
from controller.model import system_clock
from controller.runtime import Controller, Settings, assemble
from controller.status import status_command
from tests.fakes import FakeWorld, desired, spec


def controller(world: FakeWorld, **settings: object) -> Controller:
    return assemble(
        Settings(env="dev", **settings),  # type: ignore[arg-type]
        desired(spec("web")),
        gateway=world,
        compose=world,
        hashes=world,
        registry=CollectorRegistry(),
        clock=system_clock,
    )


def test_the_engine_managed_is_logged_when_it_answers_and_another_one_is_a_warning(
    tmp_path, capsys
):
    world = FakeWorld()
    world.run("web")
    ctl = controller(world, state_dir=tmp_path)
    configure_logging("INFO")
    try:
        assert ctl.run_pass(submit=False)
        world.reachable = False
        assert not ctl.run_pass(submit=False)
        world.reachable = True
        world.engine_id = "OTHER:ENGINE"
        assert ctl.run_pass(submit=False)
    finally:
        logger.remove()
    log = capsys.readouterr().err
    said = [line for line in log.splitlines() if "managing the engine at" in line]
    assert len(said) == 2, log
    assert (
        "managing the engine at unix:///fake.sock (engine id FAKE:ENGINE:ID, name fake, "
        "Docker 20.10.24, API 1.41)"
    ) in said[0]
    assert "another engine answers than before: id OTHER:ENGINE was FAKE:ENGINE:ID" in log
    assert ctl.engine is not None and ctl.engine.id == "OTHER:ENGINE"


def test_ready_only_while_the_engine_answered_recently(tmp_path):
    world = FakeWorld()
    world.run("web")
    ctl = controller(world, state_dir=tmp_path, interval_quiet=50.0)
    assert not ctl.ready()  # no pass yet
    assert ctl.run_pass(submit=False)
    assert ctl.ready()
    assert ctl.stale_after == 130.0
    ctl._engine_answered -= ctl.stale_after + 1  # a pass hung on the engine since
    assert not ctl.ready()
    assert ctl.run_pass(submit=False)
    assert ctl.ready()
    world.reachable = False
    assert not ctl.run_pass(submit=False)
    assert not ctl.ready()


@pytest.mark.parametrize(("ready", "code"), [(True, 0), (False, 1)])
def test_status_ready_asks_readyz_for_a_healthcheck(ready, code):
    server = StatusServer("127.0.0.1", 0, CollectorRegistry(), lambda: ready, lambda: {})
    server.start()
    try:
        out = io.StringIO()
        port = str(server.address[1])
        assert status_command(["--ready", "--metrics-port", port], out=out, environ={}) == code
    finally:
        server.stop()


def test_status_ready_with_nothing_listening_is_not_ready(capsys):
    import socket

    with socket.socket() as probe:  # a port nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert status_command(["--ready", "--metrics-port", str(port)], environ={}) == 1
    assert "no controller answers" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("host", "mounted", "refused"),
    [
        ("", "/var/run/docker.sock", False),  # no DOCKER_HOST: the socket mounted
        ("unix:///var/run/docker.sock", "/var/run/docker.sock", False),
        ("unix:///run/user/1000/docker.sock", "/run/user/1000//docker.sock", False),
        ("unix:///run/user/1000/docker.sock", "/var/run/docker.sock", True),
        ("tcp://engine.example:2376", "/var/run/docker.sock", True),
        ("unix:///x.sock", "", False),  # not run by the deploy file
    ],
)
def test_the_hosts_docker_host_must_name_the_socket_mounted(host, mounted, refused):
    problem = disagreement({"HOST_DOCKER_HOST": host, "HOST_DOCKER_SOCKET": mounted})
    assert (problem is not None) == refused
    if problem is not None:
        assert "\n" not in problem and mounted in problem


def test_the_command_refuses_to_start_on_a_disagreement(monkeypatch, capsys):
    from controller.cli import main

    monkeypatch.setenv("HOST_DOCKER_HOST", "unix:///run/user/1000/docker.sock")
    monkeypatch.setenv("HOST_DOCKER_SOCKET", "/var/run/docker.sock")
    assert main(["--env", "dev"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line == (
        "controller: error: DOCKER_HOST on the host is unix:///run/user/1000/docker.sock but "
        "the socket mounted is /var/run/docker.sock (DOCKER_SOCKET): set "
        "DOCKER_SOCKET=/run/user/1000/docker.sock, or unset DOCKER_HOST to manage the engine "
        "at /var/run/docker.sock"
    )
