"""Every number from a flag or a CONTROLLER_* variable has an upper bound said in --help,
every flag that takes a value refuses the empty string, and a bad value is one line and
exit 2 (issue 20: CONTROLLER_INTERVAL_ACTIVE=1e308 crashed the scheduler at start,
1e300 made every pass fail or a shutdown end in a traceback, CONTROLLER_METRICS_HOST=""
listened on every interface, CONTROLLER_STATE_DIR="" and CONTROLLER_ENV="" exited 0,
and `controller status` with a 300-character host printed a 55-line traceback)."""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from controller.cli import check_parser, main, parser
from controller.envflags import variable, with_environment
from controller.http import ListenRefused, listen_address
from controller.scheduling import PassScheduler
from controller.status import _parser as status_parser
from controller.status import status_command

CONTROLLER = str(Path(sys.executable).parent / "controller")
HUGE = ["1e300", "1e308", "inf", "nan", "-1", "1e-300", "", " ", "ten"]

# flag -> (largest accepted, smallest refused above it)
NUMBERS = {
    "--max-agents": ("64", "65"),
    "--interval-active": ("3600", "3600.5"),
    "--interval-quiet": ("86400", "86401"),
    "--timeout": ("86400", "86401"),
    "--engine-timeout": ("3600", "3601"),
    "--blip-seconds": ("3600", "3601"),
    "--metrics-port": ("65535", "65536"),
    "--shutdown-timeout": ("3600", "3601"),
}


def one_line_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize("value", HUGE)
@pytest.mark.parametrize("flag", sorted(NUMBERS))
def test_a_number_out_of_bounds_on_the_command_line_is_one_line_and_exit_2(flag, value, capsys):
    tiny_is_fine = ("--blip-seconds", "--timeout", "--engine-timeout", "--shutdown-timeout")
    if value == "1e-300" and flag in tiny_is_fine:
        pytest.skip("a tiny positive number is within these bounds")
    err = one_line_exit_2([f"{flag}={value}"], capsys)
    assert flag in err


@pytest.mark.parametrize("flag", sorted(NUMBERS))
def test_the_bound_itself_is_accepted_and_one_past_it_refused_by_the_variable(
    flag, monkeypatch, capsys
):
    largest, refused = NUMBERS[flag]
    args = with_environment(parser(), {variable(flag): largest}).parse_args([])
    assert float(getattr(args, flag.lstrip("-").replace("-", "_"))) == float(largest)
    monkeypatch.setenv(variable(flag), refused)
    err = one_line_exit_2(["--env", "dev"], capsys)
    assert variable(flag) in err and refused in err


def _valued(p: argparse.ArgumentParser) -> list[argparse.Action]:
    return [
        a
        for a in p._actions
        if a.option_strings
        and a.nargs is None
        and not isinstance(a, argparse._StoreTrueAction | argparse._HelpAction)
        and not isinstance(a, argparse._VersionAction)
    ]


PARSERS = {
    "controller": parser,
    "controller check": check_parser,
    "controller status": status_parser,
}


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_the_empty_string_is_refused_for_every_flag_that_takes_a_value(name, capsys):
    for action in _valued(PARSERS[name]()):
        flag = max(action.option_strings, key=len)
        for environ, argv in (({variable(flag): ""}, []), ({}, [f"{flag}="])):
            with pytest.raises(SystemExit) as caught:
                with_environment(PARSERS[name](), environ).parse_args(argv)
            assert caught.value.code == 2, (flag, environ, argv)
            err = capsys.readouterr().err
            assert len(err.splitlines()) == 1, (flag, err)
            assert "must not be empty" in err or "invalid choice: ''" in err, (flag, err)


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_help_says_the_bounds_of_every_number(name):
    for action in _valued(PARSERS[name]()):
        kind = getattr(action.type, "__name__", "")
        if kind in ("seconds", "integer"):
            assert " to " in (action.help or "") or "at most" in (action.help or ""), action


def test_the_largest_intervals_run_the_scheduler_without_overflow():
    passes: list[int] = []
    scheduler = PassScheduler(lambda: passes.append(1), 3600.0, 86400.0, lambda: False)
    scheduler.start()
    try:
        scheduler.adapt("issues open: web")
        scheduler.adapt(None)
        scheduler.request()
    finally:
        scheduler.stop()


def test_an_empty_state_dir_and_an_empty_env_are_errors(monkeypatch, capsys):
    monkeypatch.setenv("CONTROLLER_STATE_DIR", "")
    assert "CONTROLLER_STATE_DIR" in one_line_exit_2([], capsys)
    monkeypatch.delenv("CONTROLLER_STATE_DIR")
    monkeypatch.setenv("CONTROLLER_ENV", "")
    with pytest.raises(SystemExit) as caught:
        main(["check"])
    assert caught.value.code == 2
    assert "CONTROLLER_ENV: must not be empty" in capsys.readouterr().err


@pytest.mark.parametrize("env", ["../etc/passwd", "a/b", ".hidden", "x" * 65])
def test_an_env_name_that_is_a_path_is_refused(env, capsys):
    assert "--env" in one_line_exit_2(["--env", env], capsys)


# --- the metrics host -------------------------------------------------------------------


@pytest.mark.parametrize("host", ["", " ", "a" * 300, "bad_host!", "-x.example.com", "a..b"])
def test_a_metrics_host_that_is_empty_or_no_host_is_refused(host, capsys):
    one_line_exit_2(["--metrics-host", host], capsys)


def test_controller_status_with_a_300_character_host_is_one_line(capsys):
    with pytest.raises(SystemExit) as caught:
        status_command(["--metrics-host", "h" * 300], environ={})
    assert caught.value.code == 2
    assert len(capsys.readouterr().err.splitlines()) == 1


def test_controller_status_with_a_url_the_library_refuses_is_one_line(capsys):
    url = f"http://{'h' * 70}.example.com:9180/status"  # a DNS label over 63: idna refuses
    assert status_command(["--url", url], environ={}) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "not a usable address" in err, err


def test_loopback_names_and_explicit_addresses_are_where_it_listens():
    assert listen_address("127.0.0.1") == ("127.0.0.1", None)
    assert listen_address("localhost")[0] in ("127.0.0.1", "::1")
    assert listen_address("::1") == ("::1", None)
    assert listen_address("192.0.2.10") == ("192.0.2.10", None)  # written on purpose
    address, warning = listen_address("0.0.0.0")
    assert address == "0.0.0.0" and warning is not None and "every interface" in warning


def test_a_name_that_resolves_beyond_loopback_needs_the_address_itself(monkeypatch):
    def resolve(host, port, *args, **kw):  # type: ignore[no-untyped-def]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("192.0.2.10", 0))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    with pytest.raises(ListenRefused) as caught:
        listen_address("metrics.example.com")
    assert str(caught.value) == (
        "--metrics-host metrics.example.com: resolves to 192.0.2.10, beyond loopback; to "
        "listen there, give the address itself (--metrics-host 192.0.2.10)"
    )


def test_a_name_that_does_not_resolve_is_refused():
    with pytest.raises(ListenRefused, match="cannot resolve it"):
        listen_address("no-such-host.invalid")


def test_the_real_command_says_a_bad_variable_in_one_line_without_usage(tmp_path):
    done = subprocess.run(
        [CONTROLLER],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "CONTROLLER_INTERVAL_ACTIVE": "1e308"},
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "controller: error: CONTROLLER_INTERVAL_ACTIVE: must be from 0.1 to 3600 seconds, "
        "got '1e308' (see controller --help)"
    ]
