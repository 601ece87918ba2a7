"""The command line: flags, and bad input as one line with exit code 2."""

from pathlib import Path

import pytest
from loguru import logger

from controller.cli import EXIT_BAD_INPUT, configure_logging, main


def test_a_malformed_desired_state_exits_2_with_one_line_naming_the_field(tmp_path: Path, capsys):
    (tmp_path / "dev.yaml").write_text(
        "project: demo\ncompose_files: [compose.yaml]\nservices:\n  web:\n    replicas: many\n"
    )
    code = main(["--env", "dev", "--desired-state-dir", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == EXIT_BAD_INPUT
    assert len(err.splitlines()) == 1
    assert f"{tmp_path / 'dev.yaml'}:5: services.web.replicas:" in err


def test_an_unknown_env_exits_2_naming_the_missing_file(tmp_path: Path, capsys):
    assert main(["--env", "prod", "--desired-state-dir", str(tmp_path)]) == EXIT_BAD_INPUT
    assert "prod.yaml: no such file" in capsys.readouterr().err


def test_a_junit_path_that_cannot_be_written_is_one_line_and_exit_2_before_any_work(
    tmp_path: Path, capsys
):
    (tmp_path / "a-directory").mkdir()
    (tmp_path / "a-file").write_text("")
    for junit, words in (
        (tmp_path / "a-directory", "is a directory"),
        (tmp_path / "a-file" / "gate.xml", "cannot write there"),
    ):
        code = main(["--env", "nope", "--once", "--junit", str(junit)])
        err = capsys.readouterr().err.strip()
        assert code == EXIT_BAD_INPUT
        assert len(err.splitlines()) == 1
        assert err.startswith(f"controller: error: --junit {junit}: ")
        assert words in err and "Traceback" not in err


def test_a_step_summary_that_cannot_be_appended_to_is_exit_2(tmp_path: Path, capsys, monkeypatch):
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path))  # a directory
    assert main(["--env", "nope", "--once"]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"controller: error: $GITHUB_STEP_SUMMARY {tmp_path}: cannot append")
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize(
    "flags",
    [
        ["--max-agents", "0"],
        ["--interval-active", "-1"],
        ["--metrics-port", "70000"],
        ["--log-level", "LOUD"],
    ],
)
def test_bad_flags_exit_2(flags, capsys):
    with pytest.raises(SystemExit) as caught:
        main(flags)
    assert caught.value.code == 2
    assert "error" in capsys.readouterr().err


def test_the_controllers_own_log_is_redacted_tracebacks_included(capsys):
    configure_logging("INFO")
    try:
        logger.warning("web: restart failed: compose up exited 1: DB_PASSWORD=LeakOne1 rejected")
        try:
            line = "Error 111 connecting to redis://default:Pa/ssLeak4@cache:6379"
            raise RuntimeError(line)
        except RuntimeError:
            logger.exception("reconcile pass failed unexpectedly")
    finally:
        logger.remove()
    err = capsys.readouterr().err
    assert "LeakOne1" not in err and "ssLeak4" not in err
    assert "DB_PASSWORD=***" in err and "redis://default:***@cache:6379" in err
    assert "Traceback" in err  # the traceback is there, masked
