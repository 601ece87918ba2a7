"""The desired state's JSON Schema: generated from the models, shipped, and used by editors."""

from __future__ import annotations

import json
from pathlib import Path

from controller.cli import main
from controller.desired.schema import DesiredStateFile, json_schema

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "desired_state" / "schema.json"
LINE = "# yaml-language-server: $schema=./schema.json"


def test_the_shipped_schema_is_what_the_models_generate():
    assert json.loads(SHIPPED.read_text()) == json_schema(), (
        "desired_state/schema.json is stale: run `controller schema > desired_state/schema.json`"
    )


def test_controller_schema_prints_it(capsys):
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == json_schema()


def test_every_shipped_environment_points_editors_at_the_schema():
    files = sorted((ROOT / "desired_state").glob("*.yaml"))
    assert files
    for path in files:
        assert path.read_text().splitlines()[0] == LINE, path


def test_the_schema_describes_every_top_level_field_and_custom_patterns():
    schema = json_schema()
    assert set(schema["properties"]) == set(DesiredStateFile.model_fields)
    assert schema["additionalProperties"] is False
    patterns = schema["$defs"]["DetectionDeclaration"]["properties"]["patterns"]
    assert patterns["items"] == {"$ref": "#/$defs/PatternSpec"}
    assert "regex" in schema["$defs"]["PatternSpec"]["properties"]
