"""Random desired-state documents, valid and broken, never raise anything but
``DesiredStateError``, one line per problem (issue 12's fault suite).

Only the public entry point is used (``load_desired`` with an injected compose-model
loader), so the test holds whatever reads the YAML inside. Documents are a full valid
declaration with random mutations (a value replaced by anything, a key dropped, a key
added), raw text, and raw bytes; the compose loader sometimes fails with a message of
several lines.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.desired import DesiredStateError, load_desired
from controller.model import DesiredState

COMPOSE = {
    "services": {
        "db": {"image": "pg", "healthcheck": {"test": ["CMD", "true"], "interval": "2s"}},
        "web": {"image": "web", "depends_on": {"db": {"condition": "service_healthy"}}},
        "job": {"image": "job", "deploy": {"replicas": 1}},
    }
}

VALID: dict[str, Any] = {
    "project": "demo-dev",
    "compose_files": ["compose.yaml"],
    "env_files": [],
    "profiles": [],
    "environment": {"DB_PORT": 18432, "DEBUG": True, "RATIO": 0.5, "NAME": "x"},
    "remediation": {
        "budget": 5,
        "budget_window_seconds": 3600,
        "backoff_initial_seconds": 10,
        "backoff_max_seconds": 300,
        "backoff_reset_seconds": 600,
        "log_quiet_seconds": 10,
        "log_active_seconds": 60,
        "operation_timeout_seconds": 30,
        "hook": {"argv": ["/bin/true", "--team", "x"], "timeout_seconds": 30},
        "runbooks": [
            {
                "name": "create-missing-database",
                "when": {"pattern": "pg-database-missing", "services": ["web"]},
                "capture_pattern": "[a-z_][a-z0-9_]{0,62}",
                "exec": {
                    "service": "db",
                    "argv": ["createdb", "-p", "${DB_PORT}", "{database}"],
                    "user": "postgres",
                    "env": {"A": "b"},
                    "timeout_seconds": 60,
                },
                "then_restart": False,
            },
            {
                "name": "restart-web",
                "when": {"pattern": "payment-declined"},
                "compose": {"service": "web", "action": "restart"},
            },
        ],
    },
    "detection": {
        "patterns": [
            {
                "id": "payment-declined",
                "regex": "payment [a-z]+ declined by (?P<provider>[a-z]+)",
                "category": "health",
                "severity": "high",
                "title": "Payment provider declines payments",
                "hint": "Check the provider.",
                "examples": ["ERROR payment visa declined by acme"],
            }
        ],
        "overrides": {"conn-reset": {"severity": "low"}},
        "ignore": {"web": ["conn-refused"]},
        "escalate_after": 10,
        "escalate_window_seconds": 60,
        "resolve_after_quiet_seconds": 300,
        "discovery": {"enabled": True, "min_occurrences": 3},
    },
    "services": {
        "db": {"healthy": True, "min_ready_seconds": 2},
        "web": {
            "replicas": 1,
            "depends_on": ["db"],
            "verify_timeout_seconds": 30,
            "recreate_outdated": False,
            "probes": [
                {
                    "http": {"url": "http://127.0.0.1:${DB_PORT}/health", "status": 200},
                    "period_seconds": 5,
                    "timeout_seconds": 1,
                    "failure_threshold": 3,
                    "success_threshold": 1,
                    "initial_delay_seconds": 0,
                },
                {"tcp": {"host": "127.0.0.1", "port": "${DB_PORT}"}},
                {"exec": {"argv": ["pg_isready"]}},
            ],
        },
        "job": {"state": "completed", "required": False, "enforce": True},
    },
}

_TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=24
)  # any character a YAML file can hold, newlines, NUL and control characters included
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    _TEXT,
    st.sampled_from(
        ["${DB_PORT}", "${MISSING}", "{database}", "[", "(?P<x>", "[[a]]", "*", "", " ", "\n"]
    ),
)
_ANYTHING = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_TEXT, inner, max_size=4)),
    max_leaves=12,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out += _paths(value, (*prefix, index))
    return out


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    doc = copy.deepcopy(VALID)
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        paths = [p for p in _paths(doc) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent: Any = doc
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "drop", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(_ANYTHING)
        elif action == "drop":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(_TEXT)] = draw(_ANYTHING)
    return doc


def _load(content: bytes, compose: Any) -> DesiredState | None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        (directory / "compose.yaml").write_text("services: {}\n")
        (directory / "dev.yaml").write_bytes(content)

        def loader(project: object) -> Any:
            if isinstance(compose, Exception):
                raise compose
            return compose

        try:
            return load_desired("dev", directory, loader)
        except DesiredStateError as exc:
            # one line per problem, each naming where it is
            lines = [str(problem) for problem in exc.problems]
            assert lines and str(exc).splitlines() == lines, str(exc)
            assert all(line.strip() and len(line.splitlines()) == 1 for line in lines)
            return None


_COMPOSE_MODELS = st.sampled_from(
    [
        COMPOSE,
        {"services": {}},
        {"services": {"web": None, "db": {"deploy": {"replicas": 3}}}},
        RuntimeError("service web: invalid interpolation\n  at line 3\n"),
        ValueError(""),
    ]
)


def test_the_valid_document_loads():
    state = _load(yaml.safe_dump(VALID).encode(), COMPOSE)
    assert state is not None and set(state.services) == {"db", "job", "web"}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(), _COMPOSE_MODELS)
def test_a_mutated_document_loads_or_is_one_line_naming_what_is_wrong(doc, compose):
    _load(yaml.safe_dump(doc, allow_unicode=True).encode(), compose)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_ANYTHING)
def test_any_yaml_value_as_the_whole_document_is_one_line(doc):
    _load(yaml.safe_dump(doc, allow_unicode=True).encode(), COMPOSE)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=200), _TEXT.map(str.encode)))
def test_any_bytes_as_the_file_are_one_line(content):
    _load(content, COMPOSE)


def _with(change: Any) -> bytes:
    doc = copy.deepcopy(VALID)
    change(doc)
    return yaml.safe_dump(doc, allow_unicode=True).encode()


@pytest.mark.parametrize(
    ("content", "compose"),
    [
        # a key holding a line break, in the file and in what compose says
        (_with(lambda d: d["services"].update({"we\nb": {}})), COMPOSE),
        (_with(lambda d: d["services"].update({"we\u2028b": {}})), COMPOSE),
        (_with(lambda d: None), RuntimeError("service web: invalid\nline 3: ${X}\n")),
        # regexes Python only warns about (a nested set, a set operation)
        (
            _with(lambda d: d["detection"]["patterns"][0].update(regex="[[a]]b", examples=[])),
            COMPOSE,
        ),
        (
            _with(lambda d: d["remediation"]["runbooks"][0].update(capture_pattern="[a-z&&[b]]")),
            COMPOSE,
        ),
    ],
    ids=["key-newline", "key-line-separator", "compose-lines", "regex-warns", "capture-warns"],
)
def test_the_shapes_that_broke_the_one_line_rule(content, compose):
    assert _load(content, compose) is None
