"""Compose's interpolation, exactly: its documented cases, then where values come from."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.desired import DesiredStateError, load_desired
from controller.desired.envfile import read_env_file
from controller.desired.interpolate import (
    InterpolationError,
    chain,
    substitute,
)

VALUES = {"FOO": "first", "BAR": "", "JSON": '{"json":2}'}
lookup = chain(VALUES)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        # Compose's interpolation reference
        ("${FOO}", "first"),
        ("$FOO", "first"),
        ("$FOO-bar", "first-bar"),  # a name ends at the first non-name character
        ("${UNSET:-default}", "default"),
        ("${BAR:-default}", "default"),  # :- also replaces an empty value
        ("${UNSET-default}", "default"),
        ("${BAR-default}", ""),  # - replaces only an unset one
        ("${FOO:?err}", "first"),
        ("${FOO?err}", "first"),
        ("${BAR?err}", ""),  # ? accepts an empty value
        ("${FOO:+replacement}", "replacement"),
        ("${BAR:+replacement}", ""),
        ("${UNSET:+replacement}", ""),
        ("${BAR+replacement}", "replacement"),
        ("${UNSET+replacement}", ""),
        ("$${FOO}", "${FOO}"),  # $$ is a literal $
        ("$$FOO", "$FOO"),
        # nesting, evaluated only where used
        ("${UNSET:-${FOO}}", "first"),
        ("${UNSET-$FOO}", "first"),
        ("${UNSET:-${UNSET2:-deep}}", "deep"),
        ("${UNSET-${FOO} ${FOO}}", "first first"),
        ("${BAR+$FOO ${FOO:+second}}", "first second"),
        ("${FOO:-${NEVER_ASKED}}", "first"),
        # operators inside defaults, braces inside defaults
        ("${BAR:-/non:-alphanumeric}", "/non:-alphanumeric"),
        ("${UNSET-myerror?msg}", "myerror?msg"),
        ('${UNSET:-{"json":1}}', '{"json":1}'),
        ('${JSON:-{"json":1}}', '{"json":2}'),
        # a $ that starts no reference is kept as written
        ("a $ string", "a $ string"),
        ("^REGEX$", "^REGEX$"),
        ("$}", "$}"),
        ("$", "$"),
        ("cost: 5$", "cost: 5$"),
        ("no variables at all", "no variables at all"),
        ("http://127.0.0.1:${PORT:-8080}/health", "http://127.0.0.1:8080/health"),
    ],
)
def test_compose_documented_cases(template, expected):
    assert substitute(template, lookup) == expected


@pytest.mark.parametrize(
    ("template", "words"),
    [
        (
            "${UNSET:?Mandatory Variable Unset}",
            "UNSET is missing a value: Mandatory Variable Unset",
        ),
        ("${BAR:?Mandatory Variable Empty}", "BAR is missing a value: Mandatory Variable Empty"),
        ("${UNSET?}", "UNSET is missing a value"),
        ("${UNSET:?Mandatory ${FOO}}", "missing a value: Mandatory first"),
        ("${UNSET}", "${UNSET} is not set"),  # Compose: "" and a warning; here an error
        ("$UNSET", "${UNSET} is not set"),
        ("${", "not closed"),
        ("${FOO", "not closed"),
        ("${}", "invalid interpolation"),
        ("${ }", "invalid interpolation"),
        ("${ foo}", "invalid interpolation"),
        ("${foo }", "invalid interpolation"),
        ("${foo!}", "invalid interpolation"),
    ],
)
def test_what_compose_refuses_is_an_error(template, words):
    with pytest.raises(InterpolationError) as caught:
        substitute(template, lookup)
    assert words in str(caught.value)
    assert "\n" not in str(caught.value)


def test_an_env_file_in_composes_dotenv_format(tmp_path):
    path = tmp_path / "app.env"
    path.write_text(
        "# a comment\n"
        "\n"
        "A=plain\n"
        "export B=exported\n"
        'C="a b # not a comment"\n'
        "D=value # a comment\n"
        "E='$literal ${NOT}'\n"
        "F=${A}-ref\n"
        'G="line\\nbreak"\n'
        "H=${FROM_ENV:-default}\n"
    )
    found = read_env_file(path, chain({"FROM_ENV": "process"}))
    assert found.errors == []
    assert found.values == {
        "A": "plain",
        "B": "exported",
        "C": "a b # not a comment",
        "D": "value",
        "E": "$literal ${NOT}",
        "F": "plain-ref",
        "G": "line\nbreak",
        "H": "process",
    }


def test_nesting_is_bounded_an_error_not_a_crash():
    assert substitute("${A:-" * 32 + "x" + "}" * 32, chain({})) == "x"
    with pytest.raises(InterpolationError, match="nested more than 32 deep"):
        substitute("${A:-" * 600 + "x" + "}" * 600, chain({}))


def test_env_file_quotes_comments_multi_line_values_and_dotted_keys(tmp_path):
    path = tmp_path / "app.env"
    path.write_bytes(
        "\ufeffFIRST=after a byte order mark\n"
        "A='quoted' # a comment after the quote\n"
        'B="double" # another\n'
        'PEM="-----BEGIN KEY-----\n'
        "abc\n"
        '-----END KEY-----"\n'
        "JSON='{\n"
        '  "a": 1\n'
        "}'\n"
        'ESC="say \\"hi\\""\n'
        "app.port=8080\n"
        "my-name=x\n"
        "TAB=a\t#only-a-blank-then-a-hash-starts-a-comment\n"
        "PORT=8080      # an aligned comment\n".encode()
    )
    found = read_env_file(path, chain({}))
    assert found.errors == []
    assert found.values == {
        "FIRST": "after a byte order mark",
        "A": "quoted",
        "B": "double",
        "PEM": "-----BEGIN KEY-----\nabc\n-----END KEY-----",
        "JSON": '{\n  "a": 1\n}',
        "ESC": 'say "hi"',
        "app.port": "8080",
        "my-name": "x",
        "TAB": "a\t#only-a-blank-then-a-hash-starts-a-comment",
        "PORT": "8080",
    }


def test_env_file_escapes_keys_and_lines_as_compose_reads_them(tmp_path):
    path = tmp_path / "app.env"
    path.write_text(
        'DOLLAR="\\$HOME stays"\n'
        'WIN="C:\\Users\\me"\n'
        'OCT="\\0101\\t|"\n'
        "SINGLE='it\\'s'\n"
        "export\tTABBED=b\n"
        "YAML: style\n"
        "2FA=on\n"
        "list[0]=x\n"
        'DIR="C:\\\\"\n'
        'PAIR="a" SECOND=b\n'
        "FORM=x\fy\n"
        'KEEP="trailing   \n'
        'blanks"\n'
        "EMPTY=\n"
    )
    found = read_env_file(path, chain({"HOME": "/root"}))
    assert found.errors == []
    assert found.values == {
        "DOLLAR": "$HOME stays",
        "WIN": "C:\\Users\\me",
        "OCT": "A\t|",
        "SINGLE": "it's",  # compose-go: \' is a quote, not the end of the value
        "DIR": "C:\\",  # an escaped backslash, then the closing quote
        "PAIR": "a",
        "SECOND": "b",  # what follows a closing quote is the next statement
        "TABBED": "b",
        "YAML": "style",
        "2FA": "on",
        "list[0]": "x",
        "FORM": "x\fy",
        "KEEP": "trailing   \nblanks",
        "EMPTY": "",
    }


def test_env_file_input_that_could_crash_is_a_line_of_error(tmp_path):
    path = tmp_path / "app.env"
    nested = "${X:-" * 600 + "v" + "}" * 600
    path.write_text(f'DEEP={nested}\nTWO="x\nFOO=bar" NEXT=y\nAFTER=1\n')
    found = read_env_file(path, chain({}))
    # FOO=bar inside the quoted value is not a statement; what follows its quote is one
    assert found.values == {"TWO": "x\nFOO=bar", "NEXT": "y", "AFTER": "1"}
    assert [e.split(":")[0] for e in found.errors] == ["line 1"]


def test_a_bad_env_line_is_reported_and_the_other_lines_still_read(tmp_path):
    path = tmp_path / "app.env"
    path.write_text(
        "A=1\n"
        "this is not an assignment\n"
        "B='x' not a statement!\n"
        "C=${MISSING}\n"
        "D=4\n"
        'E="never closed\n'
        "F=still read after the quote that never closed\n"
    )
    found = read_env_file(path, chain({}))
    assert found.values == {
        "A": "1",
        "B": "x",  # what follows its quote is a statement of its own, and a bad one
        "D": "4",
        "F": "still read after the quote that never closed",
    }
    assert [e.split(":")[0] for e in found.errors] == ["line 2", "line 3", "line 4", "line 6"]
    assert "never closed" in found.errors[-1]


def test_every_bad_env_line_is_a_problem_of_the_desired_state(tmp_path):
    (tmp_path / "app.env").write_text("B@D=x\nOK=1\nX='open\n")
    declare(tmp_path, PROBE, env_files="env_files: [app.env]\n")
    with pytest.raises(DesiredStateError) as caught:
        load(tmp_path, {})
    text = str(caught.value)
    assert "dev.yaml:3: env_files.0: app.env: line 1: not a KEY=value line" in text
    assert "dev.yaml:3: env_files.0: app.env: line 3: the single quote opened" in text


# --- where values come from, through the loader -------------------------------------------

COMPOSE = {"services": {"web": {"image": "x"}}}


def load(directory: Path, environ: dict[str, str]):  # type: ignore[no-untyped-def]
    seen = []

    def loader(project):  # type: ignore[no-untyped-def]
        seen.append(project)
        return COMPOSE

    return load_desired("dev", directory, loader, environ=environ), seen


def declare(tmp_path: Path, body: str, env_files: str = "") -> Path:
    (tmp_path / "compose.yaml").write_text("services: {}\n")
    (tmp_path / "dev.yaml").write_text(
        "project: p\ncompose_files: [compose.yaml]\n" + env_files + body
    )
    return tmp_path


PROBE = """services:
  web:
    probes:
      - http: {url: "http://127.0.0.1:${PORT:-8080}/health"}
      - tcp: {port: "${PORT:-8080}"}
"""


def test_a_default_in_a_probe_url_is_filled(tmp_path):
    state, _ = load(declare(tmp_path, PROBE), environ={})
    http, tcp = state.services["web"].probes
    assert http.url == "http://127.0.0.1:8080/health"
    assert tcp.port == 8080


def test_the_declared_environment_wins_over_the_process_and_env_files(tmp_path):
    (tmp_path / "ports.env").write_text("PORT=1111\nONLY_FILE=from-file\n")
    body = "environment: {PORT: 3333}\n" + PROBE
    state, seen = load(
        declare(tmp_path, body, "env_files: [ports.env]\n"), environ={"PORT": "2222"}
    )
    assert state.services["web"].probes[0].url == "http://127.0.0.1:3333/health"
    assert seen[0].environment == {"PORT": "3333"}


def test_the_process_environment_wins_over_env_files(tmp_path):
    (tmp_path / "ports.env").write_text("PORT=1111\n")
    state, _ = load(declare(tmp_path, PROBE, "env_files: [ports.env]\n"), environ={"PORT": "2222"})
    assert state.services["web"].probes[0].url == "http://127.0.0.1:2222/health"


def test_env_files_are_read_in_order_a_later_one_wins(tmp_path):
    (tmp_path / "a.env").write_text("PORT=1111\n")
    (tmp_path / "b.env").write_text("PORT=4444\n")
    state, _ = load(declare(tmp_path, PROBE, "env_files: [a.env, b.env]\n"), environ={})
    assert state.services["web"].probes[0].url == "http://127.0.0.1:4444/health"


def test_without_env_files_the_dot_env_beside_the_compose_file_is_read(tmp_path):
    (tmp_path / ".env").write_text("PORT=5555\n")
    state, _ = load(declare(tmp_path, PROBE), environ={})
    assert state.services["web"].probes[0].url == "http://127.0.0.1:5555/health"


def test_declared_environment_values_are_interpolated_for_compose(tmp_path):
    body = "environment: {URL: 'http://${HOST:-localhost}:${PORT}'}\n"
    _, seen = load(declare(tmp_path, body), environ={"PORT": "9"})
    assert seen[0].environment == {"URL": "http://localhost:9"}


def test_every_string_is_interpolated_and_a_dollar_dollar_stays_literal(tmp_path):
    body = """remediation:
  hook: {argv: [/bin/notify, "${CHANNEL:-ops}", "$$HOME"]}
"""
    state, _ = load(declare(tmp_path, body), environ={})
    assert state.remediation.hook is not None
    assert state.remediation.hook.argv == ("/bin/notify", "ops", "$HOME")


def test_an_unset_variable_is_an_error_naming_file_line_and_field(tmp_path):
    declare(tmp_path, PROBE.replace("${PORT:-8080}/health", "${NOPE}/health"))
    with pytest.raises(DesiredStateError) as caught:
        load(tmp_path, environ={})
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'dev.yaml'}:6: services.web.probes.0.http.url: ")
    assert "${NOPE} is not set" in message


def test_a_required_variable_says_its_own_message(tmp_path):
    declare(tmp_path, "environment: {TOKEN: '${SECRET:?set SECRET in CI}'}\n")
    with pytest.raises(DesiredStateError, match=r":3: environment\.TOKEN: .*set SECRET in CI"):
        load(tmp_path, environ={})
