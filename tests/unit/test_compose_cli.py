"""What the controller asks of ``docker compose``, as argv: a rebuild builds before it
stops anything, a rollback runs the snapshot's file under the project's name, config
hashes come from the rendered model. A stand-in for the ``docker`` command records each
argv (this is our own command line, not the SDK)."""

from __future__ import annotations

import json
import sys

import pytest

from controller.model import ComposeProject
from controller.observe.compose_cli import ComposeCli, compose_command
from controller.observe.gateway import ComposeError

FAKE = """
import json, os, sys
with open(os.environ["CALLS"], "a") as calls:
    calls.write(json.dumps(sys.argv[1:]) + "\\n")
args = sys.argv[1:]
if "build" in args and os.environ.get("BUILD_FAILS"):
    print("failed to solve: exit code 1", file=sys.stderr)
    sys.exit(1)
if "--format" in args:
    print(json.dumps({"name": "shop", "services": {"web": {"image": "web:1"}}}))
elif "--hash" in args:
    print("web " + ("f" if "-" in args else "s") * 64)
"""


@pytest.fixture
def compose(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    script = tmp_path / "docker.py"
    script.write_text(FAKE)
    calls = tmp_path / "calls"
    monkeypatch.setenv("CALLS", str(calls))
    project = ComposeProject(
        name="shop",
        files=(tmp_path / "compose.yaml",),
        workdir=tmp_path,
        env_files=(tmp_path / "prod.env",),
    )
    cli = ComposeCli(project, command=(sys.executable, str(script)))

    def argvs() -> list[list[str]]:
        return [json.loads(line) for line in calls.read_text().splitlines()]

    return cli, argvs


def test_a_rebuild_builds_first_and_recreates_only_then(compose):  # type: ignore[no-untyped-def]
    cli, argvs = compose
    cli.up("web", force_recreate=True, build=True, replicas=1)
    build, up = argvs()
    assert build[-3:] == ["build", "--quiet", "web"]
    assert "--no-build" in up and "--force-recreate" in up and "--build" not in up


def test_a_failed_build_stops_nothing(compose, monkeypatch):  # type: ignore[no-untyped-def]
    cli, argvs = compose
    monkeypatch.setenv("BUILD_FAILS", "1")
    with pytest.raises(ComposeError, match="failed to solve"):
        cli.up("web", force_recreate=True, build=True, replicas=1)
    assert [argv for argv in argvs() if "up" in argv] == []  # no recreate after it


def test_a_rollback_runs_the_snapshots_file_under_the_projects_name(compose, tmp_path):  # type: ignore[no-untyped-def]
    cli, argvs = compose
    snapshot = tmp_path / "lastgood" / "web" / "2" / "compose.json"
    cli.revert(snapshot, "web")
    (argv,) = argvs()
    assert argv == [
        "--project-name",
        "shop",
        "--file",
        str(snapshot),
        "up",
        "--detach",
        "--no-deps",
        "--force-recreate",
        "--no-build",
        "--pull",
        "never",
        "web",
    ]  # no --env-file: the snapshot is rendered already
    assert cli.revert_args(snapshot, "web")[2:] == argv


def test_config_hashes_are_those_of_the_rendered_model(compose):  # type: ignore[no-untyped-def]
    cli, argvs = compose
    model, hashes = cli.rendered()
    assert model["services"]["web"]["image"] == "web:1"
    assert hashes == {"web": "f" * 64}  # hashed from stdin: the rendered document
    render, hashed = argvs()
    assert render[-3:] == ["config", "--format", "json"] and "--env-file" in render
    assert hashed[:4] == ["--project-name", "shop", "--file", "-"] and "--env-file" not in hashed


def renders(argvs) -> int:  # type: ignore[no-untyped-def]
    return sum(argv[-3:] == ["config", "--format", "json"] for argv in argvs())


def test_the_loads_rendering_is_handed_once_to_the_next_reader_of_unchanged_files(
    compose, tmp_path
):  # type: ignore[no-untyped-def]
    """A start renders the model for the desired state (``declared``) and then for the
    config hashes (``config``): Compose runs once for both while the files are as they
    were; a second reader, or a reader after an edit, runs it again."""
    cli, argvs = compose
    compose_file = tmp_path / "compose.yaml"
    compose_file.write_text("services: {web: {image: web:1}}\n")
    cli.declared()
    assert renders(argvs) == 1
    again = ComposeCli(cli.project, command=cli._command)  # assembly's own instance
    assert again.config()["services"]["web"]["image"] == "web:1"
    assert renders(argvs) == 1  # handed over
    again.config()
    assert renders(argvs) == 2  # taken once
    cli.declared()  # a reload always renders anew
    assert renders(argvs) == 3
    compose_file.write_text("services: {web: {image: web:2}}  # edited\n")
    again.config()
    assert renders(argvs) == 4  # the file changed since: not handed over


def on_path(*names: str):  # type: ignore[no-untyped-def]
    return lambda name: f"/usr/bin/{name}" if name in names else None


@pytest.mark.parametrize(
    ("found", "expected"),
    [
        (("docker", "docker-compose"), ("docker", "compose")),  # the docker CLI wins
        (("docker-compose",), ("docker-compose",)),  # the image: Compose alone
        ((), ("docker", "compose")),  # neither: the error names docker
    ],
)
def test_compose_is_run_as_the_path_offers_it(found, expected):  # type: ignore[no-untyped-def]
    assert compose_command({}, on_path(*found)) == expected


def test_the_variable_names_the_compose_command(tmp_path):  # type: ignore[no-untyped-def]
    environ = {"CONTROLLER_COMPOSE_COMMAND": "/opt/bin/docker-compose --ansi never"}
    found = on_path("docker", "docker-compose")
    assert compose_command(environ, found) == ("/opt/bin/docker-compose", "--ansi", "never")
    assert compose_command({"CONTROLLER_COMPOSE_COMMAND": " "}, found) == ("docker", "compose")


def test_the_standalone_binary_gets_the_same_argv_after_its_name(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """The image's case, for real: no ``docker`` on the PATH, a ``docker-compose`` there."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    fake = bin_dir / "docker-compose"
    fake.write_text(f"#!{sys.executable}\n{FAKE}")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("CALLS", str(calls))
    monkeypatch.delenv("CONTROLLER_COMPOSE_COMMAND", raising=False)
    cli = ComposeCli(ComposeProject(name="shop", files=(tmp_path / "c.yaml",), workdir=tmp_path))
    assert cli.config()["name"] == "shop"
    (argv,) = [json.loads(line) for line in calls.read_text().splitlines()]
    assert argv == [
        "--project-name",
        "shop",
        "--file",
        str(tmp_path / "c.yaml"),
        "config",
        "--format",
        "json",
    ]
