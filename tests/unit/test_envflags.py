"""Every flag also reads CONTROLLER_<FLAG>; a flag on the command line wins; a bad value
is refused like a bad flag (exit 2), naming the variable."""

import argparse
import json
from pathlib import Path

import pytest

from controller.cli import check_parser, configure_logging, parser
from controller.envflags import variable, with_environment


def parse(environ: dict[str, str], *argv: str) -> argparse.Namespace:
    return with_environment(parser(), environ).parse_args(list(argv))


def test_a_flag_is_named_by_its_variable():
    assert variable("--max-agents") == "CONTROLLER_MAX_AGENTS"
    assert variable("--env") == "CONTROLLER_ENV"


def test_environment_values_become_the_defaults_converted_by_the_flags_types():
    args = parse(
        {
            "CONTROLLER_ENV": "prod",
            "CONTROLLER_MAX_AGENTS": "7",
            "CONTROLLER_STATE_DIR": "/var/lib/cc",
            "CONTROLLER_INTERVAL_ACTIVE": "2.5",
            "CONTROLLER_DRY_RUN": "true",
            "CONTROLLER_LOG_FORMAT": "json",
        }
    )
    assert (args.env, args.max_agents, args.interval_active) == ("prod", 7, 2.5)
    assert args.state_dir == Path("/var/lib/cc")
    assert args.dry_run is True
    assert args.log_format == "json"


def test_a_flag_on_the_command_line_wins_over_the_environment():
    args = parse({"CONTROLLER_MAX_AGENTS": "7", "CONTROLLER_ENV": "prod"}, "--max-agents", "2")
    assert args.max_agents == 2
    assert args.env == "prod"


def test_a_false_boolean_variable_leaves_the_switch_off():
    assert parse({"CONTROLLER_ONCE": "0"}).once is False
    assert parse({}).once is False


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CONTROLLER_MAX_AGENTS", "0"),
        ("CONTROLLER_MAX_AGENTS", "many"),
        ("CONTROLLER_LOG_LEVEL", "LOUD"),
        ("CONTROLLER_ONCE", "perhaps"),
        ("CONTROLLER_METRICS_PORT", "70000"),
    ],
)
def test_a_bad_value_exits_2_naming_the_variable(name, value, capsys):
    with pytest.raises(SystemExit) as caught:
        parse({name: value})
    assert caught.value.code == 2
    assert name in capsys.readouterr().err


def test_the_help_names_each_variable():
    text = " ".join(with_environment(parser(), {}).format_help().split())
    assert "[env CONTROLLER_MAX_AGENTS]" in text
    assert "[env CONTROLLER_METRICS_PORT]" in text


def test_subcommands_read_the_environment_too():
    args = with_environment(check_parser(), {"CONTROLLER_ENV": "test"}).parse_args([])
    assert args.env == "test"


def test_json_log_format_writes_one_json_object_per_line(capsys):
    from loguru import logger

    configure_logging("INFO", json_lines=True)
    try:
        logger.info("backend: drift: {}", "exited")
        line = capsys.readouterr().err.strip().splitlines()[-1]
    finally:
        configure_logging("INFO")
    record = json.loads(line)
    assert record["record"]["message"] == "backend: drift: exited"
    assert record["record"]["level"]["name"] == "INFO"
