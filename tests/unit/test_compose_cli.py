"""What the controller asks of ``docker compose``, as argv: a rebuild builds before it
stops anything, a rollback runs the snapshot's file under the project's name, config
hashes come from the rendered model. A stand-in for the ``docker`` command records each
argv (this is our own command line, not the SDK)."""

from __future__ import annotations

import json
import sys

import pytest

from controller.model import ComposeProject
from controller.observe.compose_cli import ComposeCli
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
