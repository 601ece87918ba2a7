"""The generated references in docs/ are what scripts/gen_docs.py makes from the code now:
the desired-state reference from the JSON Schema, the CLI reference from --help."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_desired_state_and_cli_references_are_up_to_date():
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_docs.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr + "run: scripts/gen-docs"


def test_the_desired_state_reference_names_every_field_of_the_schema():
    from controller.desired.schema import json_schema

    schema = json_schema()
    text = (ROOT / "docs" / "desired-state-reference.md").read_text()
    for obj in [schema, *schema["$defs"].values()]:
        for name in obj.get("properties", {}):
            assert f"| `{name}` |" in text
    for name in schema["$defs"]:
        assert f"\n## {name}\n" in text
