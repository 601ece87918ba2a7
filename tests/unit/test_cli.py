"""The command line: flags, and bad input as one line with exit code 2."""

from pathlib import Path

import pytest

from controller.cli import EXIT_BAD_INPUT, main


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
