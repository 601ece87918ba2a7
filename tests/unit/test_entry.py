"""The console script ends the process with ``os._exit`` once ``main`` returned: what it
printed must all be out, and its exit code must be ``main``'s."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    code = f"import sys; sys.argv = ['controller', *{list(argv)!r}]; from controller.cli import entry; entry()"
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


def test_what_main_printed_is_all_out_and_its_exit_code_is_the_processs(tmp_path):  # type: ignore[no-untyped-def]
    schema = run("schema")
    assert schema.returncode == 0, schema.stderr
    assert json.loads(schema.stdout)["title"]  # the whole document, flushed
    missing = tmp_path / "nowhere"
    bad = run("check", "--desired-state-dir", str(missing))
    assert bad.returncode == 2
    assert bad.stderr.strip().endswith("no environment files (*.yaml)"), bad.stderr


def console_script(*argv: str, stdout: int) -> subprocess.Popen[bytes]:
    """The installed ``controller`` script as a person runs it, its stdout a pipe."""
    script = Path(sys.executable).parent / "controller"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "controller.cli"]
    return subprocess.Popen([*command, *argv], stdout=stdout, stderr=subprocess.PIPE)


def status_file(tmp_path: Path, services: int) -> Path:
    """A status document whose table is ``services`` rows long."""
    row = {"condition": "Ready", "required": True, "replicas": 1, "containers": 1}
    doc = {
        "schema_version": 1,
        "env": "dev",
        "project": "demo-dev",
        "generated_at": "2026-11-28T04:44:59+00:00",
        "observed_at": "2026-11-28T04:44:57+00:00",
        "engine": {"reachable": True, "detail": ""},
        "converged": True,
        "summary": {"active": 0},
        "services": [{"name": f"service-{n:05d}", **row} for n in range(services)],
        "issues": [],
        "remediation": {},
    }
    path = tmp_path / "docker_issues_dev.json"
    path.write_text(json.dumps(doc))
    return path


def test_a_reader_that_closes_after_one_line_ends_status_quietly(tmp_path: Path) -> None:
    """``controller status | head -1``: the table is larger than a pipe holds, so the
    write after the reader left must fail; it ends the command with 141, no traceback."""
    path = status_file(tmp_path, services=4000)
    with console_script("status", "--file", str(path), stdout=subprocess.PIPE) as status:
        assert status.stdout is not None
        first = status.stdout.readline()
        status.stdout.close()  # head -1
        stderr = status.communicate(timeout=60)[1].decode()
        code = status.returncode
    assert first.startswith(b"demo-dev (env dev)"), first
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr
    assert stderr == ""
    assert code == 141


def test_a_reader_gone_before_the_first_write_ends_it_quietly(tmp_path: Path) -> None:
    path = status_file(tmp_path, services=3)
    read, write = os.pipe()
    os.close(read)  # the reader left before a byte was written
    try:
        status = console_script("status", "--file", str(path), stdout=write)
    finally:
        os.close(write)
    with status:
        assert status.communicate(timeout=60)[1] == b""
    assert status.returncode == 141


def test_a_broken_pipe_that_is_not_the_output_keeps_its_traceback() -> None:
    """A socket's BrokenPipeError (the engine's) is an error, not a reader gone."""
    code = (
        "import sys; import controller.cli as cli\n"
        "def main(): raise BrokenPipeError(32, 'the engine went away')\n"
        "cli.main = main; cli.entry()"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert "the engine went away" in done.stderr
    assert done.returncode == 1
