"""``controller check`` and the loader behind it: every problem at once, each with its line,
and input that would hang, crash or mislead a trusting loader refused in one line."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from controller.cli import EXIT_BAD_INPUT, EXIT_OK, main
from controller.desired import DesiredStateError, load_desired

COMPOSE = {"services": {"db": {"image": "pg"}, "web": {"image": "web"}}}


def loader(project):  # type: ignore[no-untyped-def]
    return COMPOSE


def load(directory: Path):  # type: ignore[no-untyped-def]
    return load_desired("dev", directory, loader, environ={})


NO_NETWORK = (
    "services:\n  db: {image: cc-busybox:1, network_mode: none}\n"
    "  web: {image: cc-busybox:1, network_mode: none}\n"
)


def write(tmp_path: Path, text: str, env: str = "dev", compose: str = NO_NETWORK) -> Path:
    (tmp_path / "compose.yaml").write_text(compose)
    path = tmp_path / f"{env}.yaml"
    path.write_text(text)
    return path


THREE_ERRORS = """project: demo
compose_files: [compose.yaml]
services:
  db:
    replicas: many
  web:
    helthy: true
remediation:
  budget: 0
"""


def test_check_reports_three_errors_of_one_file_with_their_lines(tmp_path, capsys):
    path = write(tmp_path, THREE_ERRORS)
    code = main(["check", "--desired-state-dir", str(tmp_path)])
    out = capsys.readouterr()
    assert code == EXIT_BAD_INPUT
    lines = out.out.strip().splitlines()
    assert [line.split(" ", 2)[:2] for line in lines] == [
        [f"{path}:5:", "services.db.replicas:"],
        [f"{path}:7:", "services.web.helthy:"],
        [f"{path}:9:", "remediation.budget:"],
    ]
    assert "3 problem(s)" in out.err


def test_check_of_a_good_environment_says_ok_and_exits_0(tmp_path, capsys):
    write(tmp_path, "project: demo\ncompose_files: [compose.yaml]\nservices: {db: {}}\n")
    assert main(["check", "--env", "dev", "--desired-state-dir", str(tmp_path)]) == EXIT_OK
    assert "dev.yaml: ok: project demo, 2 service(s)" in capsys.readouterr().out


def test_check_prints_how_each_service_is_reached_and_refuses_a_bad_address(tmp_path, capsys):
    path = write(
        tmp_path,
        "project: demo\ncompose_files: [compose.yaml]\n"
        'services: {db: {addresses: ["127.0.0.1:5432", db.internal]}}\n',
    )
    assert main(["check", "--env", "dev", "--desired-state-dir", str(tmp_path)]) == EXIT_OK
    out = capsys.readouterr().out
    # network_mode: none: no client resolves a service or container name
    assert "  db is reached at: 127.0.0.1:5432 (declared), db.internal (declared)\n" in out
    assert (
        "  web is reached at nothing a client's error could name "
        "(declare services.web.addresses if clients reach it)"
    ) in out
    path.write_text(path.read_text().replace("db.internal", "'db internal'"))
    assert main(["check", "--env", "dev", "--desired-state-dir", str(tmp_path)]) == EXIT_BAD_INPUT
    assert capsys.readouterr().out.strip() == (
        f"{path}:3: services.db.addresses.1: 'db internal' is not HOST, HOST:PORT or :PORT "
        "(a host name or IP address, a port from 1 to 65535)"
    )


def test_a_service_on_a_compose_network_is_reached_by_its_names_one_on_the_host_by_port(
    tmp_path, capsys
):
    compose = (
        "services:\n  db: {image: cc-busybox:1, ports: ['5432:5432']}\n"
        "  web: {image: cc-busybox:1, network_mode: host, expose: ['8080']}\n"
    )
    write(tmp_path, "project: demo\ncompose_files: [compose.yaml]\n", compose=compose)
    assert main(["check", "--env", "dev", "--desired-state-dir", str(tmp_path)]) == EXIT_OK
    out = capsys.readouterr().out
    assert "  db is reached at: db (service name), " in out
    assert "demo-db-N (compose container name)" in out
    web = next(line for line in out.splitlines() if line.startswith("  web "))
    assert web.startswith("  web is reached at: :8080") and "web (service name)" not in web


def test_check_of_an_unknown_env_lists_the_environments_that_exist(tmp_path, capsys):
    write(tmp_path, "project: a\ncompose_files: [compose.yaml]\n", env="dev")
    write(tmp_path, "project: b\ncompose_files: [compose.yaml]\n", env="test")
    code = main(["check", "--env", "prod", "--desired-state-dir", str(tmp_path)])
    assert code == EXIT_BAD_INPUT
    out = capsys.readouterr().out
    assert "no environment 'prod'" in out and "(has: dev, test)" in out


def test_an_unknown_env_names_the_ones_that_exist(tmp_path):
    write(tmp_path, "project: a\ncompose_files: [compose.yaml]\n", env="dev")
    write(tmp_path, "project: b\ncompose_files: [compose.yaml]\n", env="test")
    with pytest.raises(DesiredStateError, match=r"no environment 'prod' .*\(has: dev, test\)"):
        load_desired("prod", tmp_path, loader)


def test_semantic_problems_are_all_reported_too(tmp_path):
    write(
        tmp_path,
        "project: demo\ncompose_files: [compose.yaml]\nservices:\n"
        "  ghost: {}\n"
        "  web: {depends_on: [nope, db]}\n"
        "  db: {depends_on: [web]}\n",
    )
    with pytest.raises(DesiredStateError) as caught:
        load(tmp_path)
    found = [(p.line, p.field) for p in caught.value.problems]
    assert found == [
        (4, "services.ghost"),
        (5, "services.web.depends_on.0"),
        (6, "services.db.depends_on"),  # a cycle: db -> web -> db
    ]
    assert "db -> web -> db" in caught.value.problems[-1].message


# --- what a trusting loader gets wrong ----------------------------------------------------


def test_a_duplicate_key_is_an_error_at_its_second_line(tmp_path):
    write(tmp_path, "project: demo\ncompose_files: [compose.yaml]\nproject: other\n")
    with pytest.raises(DesiredStateError) as caught:
        load(tmp_path)
    (problem,) = caught.value.problems
    assert (problem.line, problem.field) == (3, "project")
    assert "duplicate key (first on line 1)" in problem.message


def test_deep_nesting_is_one_line_not_a_recursion_error(tmp_path):
    write(tmp_path, "project: demo\ncompose_files: [compose.yaml]\nx: " + "[" * 5000 + "]" * 5000)
    with pytest.raises(DesiredStateError) as caught:
        load(tmp_path)
    assert "nested deeper than" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_an_alias_bomb_is_refused(tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 7)]
    write(tmp_path, "\n".join(lines) + "\nproject: demo\n")
    with pytest.raises(DesiredStateError, match="alias bomb"):
        load(tmp_path)


@pytest.mark.skipif(sys.platform == "win32", reason="FIFOs are POSIX")
def test_a_fifo_in_place_of_the_file_is_refused_not_waited_on(tmp_path):
    (tmp_path / "compose.yaml").write_text("services: {}\n")
    os.mkfifo(tmp_path / "dev.yaml")
    with pytest.raises(DesiredStateError, match="not a regular file"):
        load(tmp_path)


def test_a_key_with_a_newline_stays_one_line(tmp_path):
    write(tmp_path, 'project: demo\ncompose_files: [compose.yaml]\n"bad\\nkey": 1\n')
    with pytest.raises(DesiredStateError) as caught:
        load(tmp_path)
    message = str(caught.value)
    assert "\n" not in message and "bad\\nkey" in message


def test_a_regex_python_warns_about_is_an_error_and_prints_no_warning(tmp_path, capfd):
    write(
        tmp_path,
        "project: demo\ncompose_files: [compose.yaml]\ndetection:\n  patterns:\n"
        "    - {id: nested, regex: '[[a]b', category: health, severity: low, title: Nested}\n",
    )
    with pytest.raises(DesiredStateError) as caught:
        load(tmp_path)
    assert "detection.patterns.0" in str(caught.value)
    assert capfd.readouterr().err == ""


def test_a_missing_env_file_is_named_under_env_files(tmp_path):
    write(tmp_path, "project: demo\ncompose_files: [compose.yaml]\nenv_files: [gone.env]\n")
    with pytest.raises(DesiredStateError) as caught:
        load(tmp_path)
    assert [(p.line, p.field) for p in caught.value.problems] == [(3, "env_files.0")]


def test_a_custom_pattern_cannot_silently_replace_a_library_one(tmp_path):
    write(
        tmp_path,
        "project: demo\ncompose_files: [compose.yaml]\ndetection:\n  patterns:\n"
        "    - {id: conn-refused, regex: 'nothing', category: health, severity: low,"
        " title: Mine}\n",
    )
    with pytest.raises(DesiredStateError, match="is in the library: change it under"):
        load(tmp_path)
