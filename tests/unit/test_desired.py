"""Loading desired_state/<env>.yaml: the merge over compose, and one-line errors."""

import re
from pathlib import Path

import pytest

from controller.desired import (
    DesiredStateError,
    default_verify_timeout,
    load_desired,
    parse_duration,
)
from controller.model import ServiceRunState

COMPOSE = {
    "services": {
        "db": {
            "image": "pg",
            "healthcheck": {
                "test": ["CMD", "true"],
                "interval": "2s",
                "timeout": "1s",
                "retries": 3,
                "start_period": "10s",
            },
        },
        "web": {
            "image": "web",
            "depends_on": {
                "db": {"condition": "service_healthy", "required": True},
                "cache": {"condition": "service_started", "required": False},
            },
            "deploy": {"replicas": 2},
        },
        "sidecar": {"image": "x", "network_mode": "service:web"},
        "cache": {"image": "redis", "healthcheck": {"disable": True}},
    }
}


def located(message: str, path: Path) -> tuple[int | None, str]:
    """(line, field) of a one-line problem ``FILE:LINE: field: problem`` about ``path``."""
    assert "\n" not in message, message
    assert message.startswith(str(path)), message
    rest = message[len(str(path)) :]
    found = re.match(r"^(?::(\d+))?: (?:([^ :]+): )?", rest)
    assert found, message
    return (int(found.group(1)) if found.group(1) else None), found.group(2) or ""


def write(tmp_path: Path, text: str, env: str = "dev") -> Path:
    (tmp_path / "compose.yaml").write_text("services: {}\n")
    (tmp_path / f"{env}.yaml").write_text(text)
    return tmp_path


def load(directory: Path, env: str = "dev", model=COMPOSE):  # type: ignore[no-untyped-def]
    seen = []

    def loader(project):  # type: ignore[no-untyped-def]
        seen.append(project)
        return model

    return load_desired(env, directory, loader), seen


GOOD = """
project: demo-dev
compose_files: [compose.yaml]
environment: {DB_PORT: 18432, DEBUG: true}
services:
  db: {healthy: true}
  web: {verify_timeout_seconds: 42}
  cache: {required: false}
"""


def test_a_valid_file_merges_over_the_compose_model(tmp_path):
    state, seen = load(write(tmp_path, GOOD))
    assert state.project == "demo-dev"
    assert seen[0].environment == {"DB_PORT": "18432", "DEBUG": "true"}
    assert seen[0].files == ((tmp_path / "compose.yaml").resolve(),)
    db, web = state.services["db"], state.services["web"]
    assert db.check_health and db.verify_timeout == 10 + (2 + 1) * 4 + 5
    assert web.replicas == 2  # from compose deploy.replicas
    assert web.depends_on == ("db",)  # the non-required cache dependency is not waited for
    assert web.verify_timeout == 42
    assert state.services["sidecar"].depends_on == ("web",)  # network_mode: service:web
    assert not state.services["cache"].required
    assert not state.services["cache"].check_health  # healthcheck disabled


def test_services_not_declared_get_defaults(tmp_path):
    state, _ = load(write(tmp_path, "project: p\ncompose_files: [compose.yaml]\n"))
    assert set(state.services) == {"db", "web", "sidecar", "cache"}
    assert state.services["db"].check_health  # health checked where compose has a healthcheck
    assert state.services["db"].state is ServiceRunState.RUNNING


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        (
            "project: p\ncompose_files: [compose.yaml]\nservices: {db: {replicas: two}}\n",
            "services.db.replicas",
            "integer",
        ),
        (
            "project: p\ncompose_files: [compose.yaml]\nservices: {db: {helthy: true}}\n",
            "services.db.helthy",
            "Extra inputs",
        ),
        (
            "project: p\ncompose_files: [compose.yaml]\nservices: {nope: {}}\n",
            "services.nope",
            "no such service",
        ),
        (
            "project: p\ncompose_files: [compose.yaml]\nservices: {cache: {healthy: true}}\n",
            "services.cache.healthy",
            "disables its healthcheck",
        ),
        (
            "project: p\ncompose_files: [compose.yaml]\nservices: {web: {depends_on: [x]}}\n",
            "services.web.depends_on.0",
            "no such service",
        ),
        ("project: Bad Name\ncompose_files: [compose.yaml]\n", "project", "pattern"),
        ("compose_files: [compose.yaml]\n", "project", "required"),
        ("project: p\ncompose_files: [missing.yaml]\n", "compose_files.0", "no such file"),
        (
            "project: p\ncompose_files: [compose.yaml]\nremediation: {budget: 0}\n",
            "remediation.budget",
            "greater than or equal to 1",
        ),
        ("project: p\ncompose_files: [compose.yaml\n", "", "invalid YAML"),
    ],
)
def test_a_bad_file_is_one_line_naming_the_file_and_field(tmp_path, text, field, words):
    with pytest.raises(DesiredStateError) as caught:
        load(write(tmp_path, text))
    message = str(caught.value)
    line, named = located(message, tmp_path / "dev.yaml")
    assert named == field
    assert line is not None and 1 <= line <= text.count("\n") + 1
    assert words in message


def test_a_missing_file_says_so(tmp_path):
    with pytest.raises(DesiredStateError, match=r"staging\.yaml: no such file"):
        load(tmp_path, env="staging")


def test_an_env_name_cannot_walk_out_of_the_directory(tmp_path):
    with pytest.raises(DesiredStateError, match="not an environment name"):
        load(tmp_path, env="../etc/passwd")


def test_a_compose_failure_is_reported_against_compose_files(tmp_path):
    write(tmp_path, "project: p\ncompose_files: [compose.yaml]\n")

    def broken(project):  # type: ignore[no-untyped-def]
        raise RuntimeError("service web: invalid interpolation")

    with pytest.raises(
        DesiredStateError,
        match="compose_files: docker compose config failed: service web: invalid interpolation",
    ):
        load_desired("dev", tmp_path, broken)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("2s", 2.0),
        ("1m30s", 90.0),
        ("500ms", 0.5),
        ("1h", 3600.0),
        (5, 5.0),
        ("bogus", 7.0),
        (None, 7.0),
    ],
)
def test_compose_durations(text, seconds):
    assert parse_duration(text, default=7.0) == seconds


def test_verify_timeout_follows_the_healthcheck_within_bounds():
    assert default_verify_timeout({}) == 15.0
    assert default_verify_timeout({"interval": "1s", "timeout": "1s", "retries": 1}) == 15.0
    assert default_verify_timeout({"interval": "10m", "timeout": "1m"}) == 300.0


def test_detection_adds_overrides_and_ignores_patterns(tmp_path):
    text = (
        GOOD
        + """
detection:
  patterns:
    - id: payment-declined
      regex: 'payment [a-z]+ declined'
      category: health
      severity: high
      title: Payment declined
      examples: ['ERROR payment visa declined']
  overrides:
    conn-refused: {severity: low}
  ignore:
    web: [conn-refused, unclassified]
  escalate_after: 4
"""
    )
    state, _ = load(write(tmp_path, text))
    by_id = {p.id: p for p in state.detection.patterns}
    assert by_id["payment-declined"].title == "Payment declined"
    assert by_id["conn-refused"].severity == "low"
    assert state.detection.ignored("web", "conn-refused")
    assert not state.detection.ignored("db", "conn-refused")
    assert state.detection.escalate_after == 4


@pytest.mark.parametrize(
    ("detection", "field", "words"),
    [
        (
            "  patterns: [{id: mine, regex: 'bad(', category: health, severity: low, title: Mine}]\n",
            "detection.patterns.0",
            "pattern mine: regex: invalid",
        ),
        (
            "  patterns: [{id: mine, regex: 'ok', category: health, severity: low, title: Mine, colour: red}]\n",
            "detection.patterns.0",
            "pattern mine: colour: Extra inputs",
        ),
        ("  overrides: {nope: {severity: low}}\n", "detection.overrides.nope", "pattern nope"),
        (
            "  overrides: {conn-refused: {severity: huge}}\n",
            "detection.overrides.conn-refused.severity",
            "Input should be",
        ),
        ("  ignore: {ghost: [conn-refused]}\n", "detection.ignore.ghost", "no such service"),
        ("  ignore: {web: [nope]}\n", "detection.ignore.web.0", "no such pattern: nope"),
    ],
)
def test_a_bad_detection_section_names_the_field_and_pattern(tmp_path, detection, field, words):
    with pytest.raises(DesiredStateError) as caught:
        load(write(tmp_path, "project: p\ncompose_files: [compose.yaml]\ndetection:\n" + detection))
    message = str(caught.value)
    assert located(message, tmp_path / "dev.yaml") == (4, field)
    assert words in message


RUNBOOKS = (
    GOOD
    + """
remediation:
  budget: 4
  operation_timeout_seconds: 12
  hook: {argv: [/usr/local/bin/page-me, "${DB_PORT}"], timeout_seconds: 5}
  runbooks:
    - name: create-missing-database
      when: {pattern: pg-database-missing, services: [web]}
      exec:
        service: db
        argv: [createdb, -p, "${DB_PORT}", "{database}"]
        user: postgres
      then_restart: true
"""
)


def test_runbooks_and_the_hook_are_loaded_with_variables_filled(tmp_path):
    state, _ = load(write(tmp_path, RUNBOOKS))
    (runbook,) = state.remediation.runbooks
    assert runbook.pattern == "pg-database-missing" and runbook.services == {"web"}
    assert runbook.step.argv == ("createdb", "-p", "18432", "{database}")
    assert runbook.step.user == "postgres" and runbook.then_restart
    assert state.remediation.hook is not None
    assert state.remediation.hook.argv == ("/usr/local/bin/page-me", "18432")
    assert state.remediation.budget == 4
    assert state.remediation.operation_timeout == 12.0


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (
            ("pg-database-missing", "nope-pattern"),
            "remediation.runbooks.0.when.pattern",
            "no such pattern: nope-pattern",
        ),
        (
            ("services: [web]", "services: [ghost]"),
            "remediation.runbooks.0.when.services.0",
            "no such service",
        ),
        (
            ("service: db", "service: ghost"),
            "remediation.runbooks.0.exec.service",
            "no such service: ghost",
        ),
        (
            ('"{database}"', '"{table}"'),
            "remediation.runbooks.0.exec.argv.3",
            "{table} is not a named capture",
        ),
        (
            (
                "      then_restart: true\n",
                "      then_restart: true\n      compose: {service: db, action: restart}\n",
            ),
            "remediation.runbooks.0",
            "exactly one of exec, compose, hook",
        ),
    ],
)
def test_a_bad_runbook_is_one_line_naming_it(tmp_path, change, field, words):
    text = RUNBOOKS.replace(*change)
    with pytest.raises(DesiredStateError) as caught:
        load(write(tmp_path, text))
    message = str(caught.value)
    line, named = located(message, tmp_path / "dev.yaml")
    assert named == field
    first = text[: text.index("runbooks:")].count("\n") + 1
    assert line is not None and first < line <= text.count("\n")
    assert words in message and "runbook create-missing-database" in message


def test_probes_are_declared_with_kubernetes_settings(tmp_path):
    text = GOOD.replace(
        "  db: {healthy: true}\n",
        """  db:
    healthy: true
    recreate_outdated: true
    probes:
      - tcp: {port: "${DB_PORT}"}
        period_seconds: 2
        failure_threshold: 2
      - http: {url: "http://127.0.0.1:${DB_PORT}/", status: 200, body: ok}
        initial_delay_seconds: 5
      - exec: {argv: [pg_isready, -q]}
""",
    )
    state, _ = load(write(tmp_path, text))
    db = state.services["db"]
    tcp, http, exe = db.probes
    assert (tcp.kind, tcp.port, tcp.period, tcp.failure_threshold) == ("tcp", 18432, 2, 2)
    assert (http.url, http.status, http.body, http.initial_delay) == (
        "http://127.0.0.1:18432/",
        200,
        "ok",
        5,
    )
    assert exe.argv == ("pg_isready", "-q")
    assert db.recreate_outdated


def test_a_probe_must_say_what_it_checks(tmp_path):
    text = GOOD.replace("  db: {healthy: true}\n", "  db:\n    probes: [{period_seconds: 2}]\n")
    with pytest.raises(DesiredStateError, match=r"services\.db\.probes\.0: declare exactly one"):
        load(write(tmp_path, text))


def model_with(**services: dict) -> dict:  # type: ignore[type-arg]
    return {"services": services}


def test_a_healthcheck_from_the_image_is_honoured_unless_compose_disables_it(tmp_path):
    model = model_with(
        app={"image": "has-a-healthcheck-in-its-image"},
        off={"image": "x", "healthcheck": {"disable": True}},
    )
    state, _ = load(write(tmp_path, "project: p\ncompose_files: [compose.yaml]\n"), model=model)
    assert state.services["app"].check_health is None  # as the container reports
    assert state.services["off"].check_health is False
    declared = "project: p\ncompose_files: [compose.yaml]\nservices: {app: {healthy: true}}\n"
    with pytest.raises(DesiredStateError, match=r"services\.app\.healthy: .*defines no health"):
        load(write(tmp_path, declared), model=model)  # could never be met if the image has none
    disabled = "project: p\ncompose_files: [compose.yaml]\nservices: {off: {healthy: true}}\n"
    with pytest.raises(DesiredStateError, match=r"services\.off\.healthy: the compose service"):
        load(write(tmp_path, disabled), model=model)


def test_stop_grace_period_and_zero_replicas_come_from_compose(tmp_path):
    model = model_with(
        slow={"image": "x", "stop_grace_period": "1m30s"},
        off={"image": "x", "deploy": {"replicas": 0}},
        plain={"image": "x"},
    )
    state, _ = load(write(tmp_path, "project: p\ncompose_files: [compose.yaml]\n"), model=model)
    assert state.services["slow"].stop_timeout == 90.0
    assert state.services["plain"].stop_timeout == 10.0  # Docker's default
    assert state.services["off"].replicas == 0  # disabled, not one
    assert state.services["plain"].replicas == 1


def test_a_dependency_cycle_and_an_empty_model_are_problems(tmp_path):
    cyclic = model_with(
        db={"image": "x", "depends_on": {"web": {"condition": "service_started"}}},
        web={"image": "x", "depends_on": {"db": {"condition": "service_started"}}},
        free={"image": "x"},
    )
    with pytest.raises(DesiredStateError, match=r"a dependency cycle: db -> web -> db"):
        load(write(tmp_path, "project: p\ncompose_files: [compose.yaml]\n"), model=cyclic)
    with pytest.raises(DesiredStateError, match="the compose model has no services"):
        load(write(tmp_path, "project: p\ncompose_files: [compose.yaml]\n"), model={})


def test_top_level_x_keys_are_allowed_as_in_compose(tmp_path):
    text = "project: p\ncompose_files: [compose.yaml]\nx-common: &c {required: false}\n"
    text += "services: {cache: *c}\n"
    state, _ = load(write(tmp_path, text))
    assert state.services["cache"].required is False
