"""The console script ends the process with ``os._exit`` once ``main`` returned: what it
printed must all be out, and its exit code must be ``main``'s."""

from __future__ import annotations

import json
import subprocess
import sys


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
