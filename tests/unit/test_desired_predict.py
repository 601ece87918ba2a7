"""The desired state's forecast and learning settings: loaded, checked, one line per
problem naming the file and field."""

from __future__ import annotations

import pytest

from controller.desired import DesiredStateError
from controller.desired.predict import parse_size
from controller.model import LearnMode, PreemptAction, QuietWindow
from tests.unit.test_desired import load, located, write

MODEL = {
    "services": {
        "db": {"image": "pg", "volumes": [{"type": "volume", "source": "pgdata", "target": "/d"}]},
        "web": {"image": "web", "volumes": [{"type": "bind", "source": "/x", "target": "/x"}]},
    }
}
HEAD = "project: p\ncompose_files: [compose.yaml]\n"


def test_the_settings_are_loaded_with_their_defaults(tmp_path):
    text = HEAD + (
        "predict: {sample_seconds: 10, min_history_seconds: 60}\n"
        "detection: {learn: {mode: warn, lookback_seconds: 120}}\n"
        "services:\n"
        "  db:\n"
        "    predict:\n"
        "      warning_seconds: 7200\n"
        "      before_exhaustion: restart\n"
        '      quiet_window: "23:30-01:00"\n'
        "      limits: {volume/pgdata: 10GiB, writable-layer: 512m}\n"
    )
    state, _ = load(write(tmp_path, text), model=MODEL)
    assert (state.predict.interval, state.predict.min_history, state.predict.window) == (
        10.0,
        60.0,
        1800.0,
    )
    assert state.detection.learn.mode is LearnMode.WARN and state.detection.learn.lookback == 120
    db = state.services["db"]
    assert db.volumes == ("pgdata",)
    assert db.predict.warning == 7200 and db.predict.critical == 900
    assert db.predict.act is PreemptAction.RESTART
    assert db.predict.window == QuietWindow(23 * 60 + 30, 60)
    assert db.predict.limits == {"volume/pgdata": 10 << 30, "writable-layer": 512 << 20}
    web = state.services["web"]
    assert web.volumes == () and web.predict.act is PreemptAction.NONE


@pytest.mark.parametrize(
    ("service", "field", "words"),
    [
        (
            "db: {predict: {limits: {volume/logs: 1GiB}}}",
            "services.db.predict.limits.volume/logs",
            "not a resource of db (has: volume/pgdata, writable-layer)",
        ),
        (
            "db: {predict: {limits: {writable-layer: lots}}}",
            "services.db.predict.limits.writable-layer",
            "not a size: 'lots'",
        ),
        (
            "db: {predict: {warning_seconds: 900, critical_seconds: 1800}}",
            "services.db.predict.critical_seconds",
            "critical must come within warning",
        ),
        (
            'db: {predict: {quiet_window: "25:00-03:00"}}',
            "services.db.predict.quiet_window",
            "not a window of the day",
        ),
        (
            "db: {predict: {before_exhaustion: recreate}}",
            "services.db.predict.before_exhaustion",
            "'none' or 'restart'",
        ),
    ],
)
def test_a_bad_forecast_setting_is_one_line_naming_the_file_and_field(
    tmp_path, service, field, words
):
    text = HEAD + f"services:\n  {service}\n"
    with pytest.raises(DesiredStateError) as caught:
        load(write(tmp_path, text), model=MODEL)
    message = str(caught.value)
    line, named = located(message, tmp_path / "dev.yaml")
    assert (named, line) == (field, 4)
    assert words in message


def test_a_bad_learning_setting_names_its_field(tmp_path):
    text = HEAD + "detection: {learn: {mode: always}}\n"
    with pytest.raises(DesiredStateError) as caught:
        load(write(tmp_path, text), model=MODEL)
    _, named = located(str(caught.value), tmp_path / "dev.yaml")
    assert named == "detection.learn.mode"


def test_a_runbook_may_answer_a_forecast_by_its_predicted_pattern(tmp_path):
    text = HEAD + (
        "remediation:\n  runbooks:\n"
        "    - name: flush\n      when: {pattern: predicted-memory, services: [web]}\n"
        "      exec: {service: web, argv: [flush]}\n"
    )
    state, _ = load(write(tmp_path, text), model=MODEL)
    (runbook,) = state.remediation.runbooks
    assert runbook.applies_to("web", "predicted-memory")


@pytest.mark.parametrize(
    ("text", "size"),
    [("256MiB", 256 << 20), ("1.5GiB", 3 << 29), ("512m", 512 << 20), (4096, 4096)],
)
def test_sizes_read_as_compose_reads_them(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["lots", "3Mi", "0", -1, "1e3MiB"])
def test_what_is_not_a_size(text):
    assert parse_size(text) is None
