"""``rollback`` in the desired state: per service and for the stack, the mode alone or a
mapping, merged into every service's ``RollbackPolicy``; every mistake one line naming
the file, its line and the field (what ``controller check`` prints)."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.desired import DesiredStateError, load_desired
from controller.desired.schema import json_schema
from controller.model import RollbackMode, RollbackScope, Severity

COMPOSE = {"services": {"web": {"image": "web"}, "db": {"image": "db"}}}


def load(tmp_path: Path, body: str):  # type: ignore[no-untyped-def]
    (tmp_path / "compose.yaml").write_text("services: {}\n")
    (tmp_path / "dev.yaml").write_text(f"project: p\ncompose_files: [compose.yaml]\n{body}")
    return load_desired("dev", tmp_path, lambda project: COMPOSE)


def refused(tmp_path: Path, body: str) -> str:
    with pytest.raises(DesiredStateError) as caught:
        load(tmp_path, body)
    message = str(caught.value)
    assert "\n" not in message, message
    return message


def test_the_defaults_notify_with_the_hold_at_least_30_s_and_three_snapshots(tmp_path):
    state = load(tmp_path, "")
    policy = state.services["web"].rollback
    assert policy.mode is RollbackMode.NOTIFY
    assert policy.window is None and policy.window_for(2.0) == 30.0
    assert policy.deadline == 300.0 and policy.severity is Severity.CRITICAL
    assert state.rollback.scope is RollbackScope.SERVICE and state.rollback.keep == 3


def test_the_stack_sets_the_defaults_and_a_service_its_own(tmp_path):
    state = load(
        tmp_path,
        "rollback: {mode: auto, scope: stack, keep: 5, window_seconds: 45, severity: high}\n"
        "services:\n"
        "  db: {rollback: off}\n"
        "  web: {rollback: {window_seconds: 60, deadline_seconds: 120}}\n",
    )
    assert state.rollback.scope is RollbackScope.STACK and state.rollback.keep == 5
    web, db = state.services["web"].rollback, state.services["db"].rollback
    assert web.mode is RollbackMode.AUTO and web.window == 60.0 and web.deadline == 120.0
    assert web.severity is Severity.HIGH
    assert db.mode is RollbackMode.OFF and db.window == 45.0


def test_the_mode_alone_is_a_shorthand_for_the_stack_too(tmp_path):
    state = load(tmp_path, "rollback: auto\n")
    assert state.services["web"].rollback.mode is RollbackMode.AUTO


def test_off_is_off_though_yaml_reads_a_bare_off_as_false(tmp_path):
    state = load(tmp_path, "rollback: off\nservices:\n  web: {rollback: {mode: off}}\n")
    assert state.services["web"].rollback.mode is RollbackMode.OFF
    assert state.services["db"].rollback.mode is RollbackMode.OFF


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ("rollback: sometimes\n", "dev.yaml:3: rollback.mode: Input should be 'off', 'notify'"),
        ("rollback: {keep: 0}\n", "dev.yaml:3: rollback.keep: Input should be greater than"),
        ("rollback: {scope: cluster}\n", "dev.yaml:3: rollback.scope: Input should be 'service'"),
        (
            "services:\n  web:\n    rollback: {window_seconds: -1}\n",
            "dev.yaml:5: services.web.rollback.window_seconds: Input should be greater than 0",
        ),
        (
            "services:\n  web:\n    rollback: {deadline_seconds: .inf}\n",
            "dev.yaml:5: services.web.rollback.deadline_seconds:",
        ),
        (
            "services:\n  web:\n    rollback: {severity: fatal}\n",
            "dev.yaml:5: services.web.rollback.severity: Input should be 'low'",
        ),
        (
            "services:\n  web:\n    rollback: {mode: auto, scope: stack}\n",
            "dev.yaml:5: services.web.rollback.scope: Extra inputs are not permitted",
        ),
    ],
)
def test_every_mistake_is_one_line_naming_the_file_line_and_field(tmp_path, body, where):
    assert where in refused(tmp_path, body)


def test_the_json_schema_describes_every_key_and_takes_the_mode_alone():
    schema = json_schema()
    stack = schema["properties"]["rollback"]
    assert stack["anyOf"][0]["enum"] == ["off", "notify", "auto"]
    definitions = schema["$defs"]
    for name in ("RollbackDeclaration", "ServiceRollbackDeclaration"):
        for key, prop in definitions[name]["properties"].items():
            assert prop.get("description"), f"{name}.{key} has no description"
    service = definitions["ServiceDeclaration"]["properties"]["rollback"]
    assert {"enum": ["off", "notify", "auto"], "type": "string"} in service["anyOf"]
