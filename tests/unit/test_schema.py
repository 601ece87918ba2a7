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


def _properties(node: object, where: str = "#") -> list[tuple[str, dict]]:
    """Every property of every object in the schema, wherever it is ($defs, anyOf, items)."""
    found: list[tuple[str, dict]] = []
    if isinstance(node, dict):
        for name, prop in (node.get("properties") or {}).items():
            found.append((f"{where}/properties/{name}", prop))
        for key, value in node.items():
            found.extend(_properties(value, f"{where}/{key}"))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found.extend(_properties(value, f"{where}/{i}"))
    return found


def test_every_property_of_the_schema_has_a_description_for_editors():
    properties = _properties(json_schema())
    assert len(properties) > 100  # the walk reached the $defs
    undescribed = [
        where for where, prop in properties if not str(prop.get("description", "")).strip()
    ]
    assert undescribed == []


def test_the_shipped_schema_shows_the_descriptions():
    shipped = json.loads(SHIPPED.read_text())
    budget = shipped["$defs"]["RemediationDeclaration"]["properties"]["budget"]
    assert "Fix steps per service" in budget["description"]
