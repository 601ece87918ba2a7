"""Zero-config: the compose project of a directory as the desired state, found as Compose
finds it, with x-controller and compose-controller.* labels, and where each setting wins."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from controller.cli import COMPOSE_FLAGS, parser
from controller.desired import (
    DesiredStateError,
    find_project,
    load_desired,
    load_zero_config,
    zero_config_applies,
)
from controller.envflags import with_environment
from controller.model import ComposeProject, DesiredState, RestartPolicy

COMPOSE_TEXT = """\
x-controller:
  remediation:
    budget: 7
services:
  alpha:
    image: cc-busybox:1
    restart: unless-stopped
    healthcheck:
      test: ["CMD", "true"]
    deploy:
      replicas: 2
    labels:
      compose-controller.min_ready_seconds: "5"
      compose-controller.enforce: "true"
      compose-controller.depends_on: "beta"
    x-controller:
      min_ready_seconds: 9
  beta:
    image: cc-busybox:1
    labels:
      compose-controller.required: "false"
"""


def model(**services: dict[str, Any]) -> dict[str, Any]:
    """A rendered compose model, as ``docker compose config`` (with extensions) gives it."""
    return {"name": "zc", "services": services}


MODEL = {
    "name": "zc",
    "x-controller": {"remediation": {"budget": 7}},
    "services": {
        "alpha": {
            "image": "cc-busybox:1",
            "restart": "unless-stopped",
            "healthcheck": {"test": ["CMD", "true"]},
            "deploy": {"replicas": 2},
            "labels": {
                "compose-controller.min_ready_seconds": "5",
                "compose-controller.enforce": "true",
                "compose-controller.depends_on": "beta",
            },
            "x-controller": {"min_ready_seconds": 9},
        },
        "beta": {"image": "cc-busybox:1", "labels": {"compose-controller.required": "false"}},
    },
}


class Loader:
    """Stands in for ``docker compose config``: the model, and the projects it was asked."""

    def __init__(self, compose_model: Mapping[str, Any]) -> None:
        self.model = compose_model
        self.asked: list[ComposeProject] = []

    def __call__(self, project: ComposeProject) -> Mapping[str, Any]:
        self.asked.append(project)
        return self.model


def zero(
    tmp_path: Path,
    compose_model: Mapping[str, Any] = MODEL,
    text: str = COMPOSE_TEXT,
    environ: Mapping[str, str] | None = None,
    **kw: Any,
) -> DesiredState:
    (tmp_path / "compose.yaml").write_text(text)
    home = tmp_path / "home"
    return load_zero_config(
        "dev", tmp_path, (), None, Loader(compose_model), environ or {}, home=home, **kw
    )


def one_line(exc: pytest.ExceptionInfo[DesiredStateError]) -> str:
    text = str(exc.value)
    assert "\n" not in text, text
    return text


# --- finding the project, as Compose does ---------------------------------------------------


def test_the_compose_file_of_the_directory_is_found_with_its_override(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("services: {}\n")
    (tmp_path / "compose.override.yaml").write_text("services: {}\n")
    found = find_project(tmp_path, (), None, {})
    assert found.files == (tmp_path / "compose.yaml", tmp_path / "compose.override.yaml")
    assert found.name == ""  # Compose decides: the files' name:, else the directory's
    assert found.workdir == tmp_path


def test_a_compose_file_of_a_parent_directory_is_found(tmp_path: Path) -> None:
    (tmp_path / "docker-compose.yml").write_text("services: {}\n")
    (tmp_path / "sub").mkdir()
    assert find_project(tmp_path / "sub", (), None, {}).files == (tmp_path / "docker-compose.yml",)


def test_file_flags_win_over_compose_file_which_wins_over_the_default(tmp_path: Path) -> None:
    for name in ("compose.yaml", "a.yaml", "b.yaml", "c.yaml"):
        (tmp_path / name).write_text("services: {}\n")
    environ = {"COMPOSE_FILE": "a.yaml;b.yaml", "COMPOSE_PATH_SEPARATOR": ";"}
    assert find_project(tmp_path, (), None, environ).files == (
        tmp_path / "a.yaml",
        tmp_path / "b.yaml",
    )
    flags = (Path("c.yaml"),)
    assert find_project(tmp_path, flags, None, environ).files == (tmp_path / "c.yaml",)


def test_compose_variables_come_from_the_dot_env_file_below_the_process_environment(
    tmp_path: Path,
) -> None:
    for name in ("compose.yaml", "a.yaml"):
        (tmp_path / name).write_text("services: {}\n")
    (tmp_path / ".env").write_text("COMPOSE_FILE=a.yaml\nCOMPOSE_PROJECT_NAME=fromdotenv\n")
    found = find_project(tmp_path, (), None, {})
    assert (found.files, found.name) == ((tmp_path / "a.yaml",), "fromdotenv")
    found = find_project(tmp_path, (), None, {"COMPOSE_PROJECT_NAME": "fromenv"})
    assert found.name == "fromenv"
    assert find_project(tmp_path, (), "fromflag", {"COMPOSE_PROJECT_NAME": "x"}).name == "fromflag"


def test_no_compose_file_is_one_line_naming_the_directory(tmp_path: Path) -> None:
    with pytest.raises(DesiredStateError) as exc:
        find_project(tmp_path, (), None, {})
    assert one_line(exc).startswith(f"{tmp_path}: no compose file")


def test_a_bad_project_name_names_the_variable(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("services: {}\n")
    with pytest.raises(DesiredStateError) as exc:
        find_project(tmp_path, (), None, {"COMPOSE_PROJECT_NAME": "Bad Name"})
    assert one_line(exc).startswith("COMPOSE_PROJECT_NAME: 'Bad Name' is not")


def test_a_missing_file_named_by_a_flag_says_so(tmp_path: Path) -> None:
    with pytest.raises(DesiredStateError) as exc:
        find_project(tmp_path, (Path("nope.yaml"),), None, {})
    assert one_line(exc) == f"--file: no such file: {tmp_path / 'nope.yaml'}"


def test_zero_config_applies_only_without_an_environment_and_an_explicit_directory(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "desired_state"
    assert zero_config_applies(directory, "dev", explicit_directory=False)
    assert not zero_config_applies(directory, "dev", explicit_directory=True)
    directory.mkdir()
    (directory / "prod.yaml").write_text("project: p\ncompose_files: [x.yaml]\n")
    assert not zero_config_applies(directory, "prdo", explicit_directory=False)  # a typo


def test_compose_flags_are_not_read_from_controller_variables() -> None:
    args = with_environment(parser(), {"CONTROLLER_FILE": "x.yaml"}, skip=COMPOSE_FLAGS)
    parsed = args.parse_args(["-f", "a.yaml", "--file", "b.yaml", "-p", "demo"])
    assert (parsed.compose_files, parsed.project_name) == ([Path("a.yaml"), Path("b.yaml")], "demo")
    assert args.parse_args([]).compose_files == []


# --- every service as Compose declares it, and where each setting wins -----------------------


def test_every_service_is_declared_as_compose_declares_it(tmp_path: Path) -> None:
    desired = zero(tmp_path)
    alpha, beta = desired.services["alpha"], desired.services["beta"]
    assert (alpha.replicas, alpha.restart, alpha.check_health) == (
        2,
        RestartPolicy("unless-stopped"),
        True,
    )
    assert (beta.replicas, beta.check_health, beta.min_ready) == (1, None, 2.0)  # defaults
    assert desired.project == "zc" and desired.source == tmp_path / "compose.yaml"
    assert desired.compose.files == (tmp_path / "compose.yaml",)


def test_compose_decides_the_name_unless_a_flag_or_variable_names_it(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text(COMPOSE_TEXT)
    loader = Loader(MODEL)
    desired = load_zero_config("dev", tmp_path, (), None, loader, {}, home=tmp_path)
    assert loader.asked[0].name == "" and desired.compose.name == "zc"
    named = load_zero_config("dev", tmp_path, (), "mine", loader, {}, home=tmp_path)
    assert loader.asked[-1].name == "mine" and named.project == "mine"


def test_x_controller_wins_over_labels_which_win_over_the_defaults(tmp_path: Path) -> None:
    desired = zero(tmp_path)
    alpha = desired.services["alpha"]
    assert alpha.min_ready == 9.0  # x-controller 9 over the label's 5
    assert alpha.enforce is True  # the label, over the default false
    assert alpha.depends_on == ("beta",)  # a label's comma-separated list
    assert desired.services["beta"].required is False
    assert desired.remediation.budget == 7  # the stack's x-controller


def test_the_desired_state_file_wins_over_x_controller_and_labels(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text(COMPOSE_TEXT)
    (tmp_path / "dev.yaml").write_text(
        "project: zc\ncompose_files: [compose.yaml]\n"
        "remediation: {budget: 3}\n"
        "services:\n  alpha:\n    min_ready_seconds: 1\n"
    )
    desired = load_desired("dev", tmp_path, Loader(MODEL), {})
    alpha = desired.services["alpha"]
    assert alpha.min_ready == 1.0  # the file over x-controller's 9
    assert alpha.enforce is True  # not in the file: the label still counts
    assert desired.remediation.budget == 3


def test_a_desired_state_file_alone_is_read_as_before(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("services: {}\n")
    (tmp_path / "dev.yaml").write_text("project: p\ncompose_files: [compose.yaml]\n")
    plain = model(web={"image": "x", "labels": {"com.example": "1"}})
    desired = load_desired("dev", tmp_path, Loader(plain), {})
    web = desired.services["web"]
    assert (web.enforce, web.min_ready, desired.remediation.budget) == (False, 2.0, 5)
    assert desired.notify.urls == ()


def test_flags_win_over_the_files_project_and_compose_files(tmp_path: Path) -> None:
    (tmp_path / "other.yaml").write_text("services: {}\n")
    (tmp_path / "dev.yaml").write_text("project: p\ncompose_files: [missing.yaml]\n")
    loader = Loader(model(web={"image": "x"}))
    desired = load_desired(
        "dev", tmp_path, loader, {}, files=(tmp_path / "other.yaml",), project_name="q"
    )
    assert desired.compose.files == (tmp_path / "other.yaml",) and desired.project == "q"


# --- validation: one line naming the file, the line and the field ---------------------------


def test_a_bad_x_controller_setting_names_file_line_and_field(tmp_path: Path) -> None:
    text = COMPOSE_TEXT.replace("min_ready_seconds: 9", "min_ready_seconds: soon")
    bad = {**MODEL, "services": {**MODEL["services"]}}
    bad["services"]["alpha"] = {
        **bad["services"]["alpha"],
        "x-controller": {"min_ready_seconds": "soon"},
    }
    with pytest.raises(DesiredStateError) as exc:
        zero(tmp_path, bad, text)
    line = text.splitlines().index("      min_ready_seconds: soon") + 1
    assert one_line(exc).startswith(
        f"{tmp_path / 'compose.yaml'}:{line}: services.alpha.x-controller.min_ready_seconds: "
        "Input should be a valid number"
    )


def test_a_bad_label_names_the_label(tmp_path: Path) -> None:
    text = COMPOSE_TEXT.replace('enforce: "true"', 'enforce: "maybe"')
    bad = {**MODEL, "services": {**MODEL["services"]}}
    labels = {**bad["services"]["alpha"]["labels"], "compose-controller.enforce": "maybe"}
    bad["services"]["alpha"] = {**bad["services"]["alpha"], "labels": labels}
    with pytest.raises(DesiredStateError) as exc:
        zero(tmp_path, bad, text)
    line = text.splitlines().index('      compose-controller.enforce: "maybe"') + 1
    assert one_line(exc).startswith(
        f"{tmp_path / 'compose.yaml'}:{line}: "
        "services.alpha.labels.compose-controller.enforce: Input should be a valid boolean"
    )


def test_an_unknown_label_field_is_an_error_not_ignored(tmp_path: Path) -> None:
    bad = model(web={"image": "x", "labels": {"compose-controller.enfroce": "true"}})
    with pytest.raises(DesiredStateError) as exc:
        zero(tmp_path, bad, "services:\n  web:\n    image: x\n")
    assert "services.web.labels.compose-controller.enfroce: Extra inputs are not permitted" in (
        one_line(exc)
    )


def test_a_service_setting_at_the_top_of_x_controller_is_refused(tmp_path: Path) -> None:
    bad = {**model(web={"image": "x"}), "x-controller": {"enforce": True}}
    with pytest.raises(DesiredStateError) as exc:
        zero(tmp_path, bad, "x-controller:\n  enforce: true\nservices:\n  web:\n    image: x\n")
    assert one_line(exc).startswith(f"{tmp_path / 'compose.yaml'}:2: x-controller.enforce: not a")


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    bad = model(
        web={
            "image": "x",
            "x-controller": {"replicas": -1},
            "labels": {"compose-controller.state": "up"},
        }
    )
    with pytest.raises(DesiredStateError) as exc:
        zero(tmp_path, bad, "services:\n  web:\n    image: x\n")
    fields = sorted(p.field for p in exc.value.problems)
    assert fields == [
        "services.web.labels.compose-controller.state",
        "services.web.x-controller.replicas",
    ]


def test_a_label_that_is_a_value_and_a_mapping_is_refused(tmp_path: Path) -> None:
    labels = {"compose-controller.rollback": "auto", "compose-controller.rollback.mode": "off"}
    with pytest.raises(DesiredStateError) as exc:
        zero(tmp_path, model(web={"image": "x", "labels": labels}), "services: {}\n")
    assert "services.web.labels.compose-controller.rollback.mode: other labels" in one_line(exc)


def test_a_nested_label_sets_a_nested_field(tmp_path: Path) -> None:
    labels = {"compose-controller.rollback.mode": "auto"}
    desired = zero(tmp_path, model(web={"image": "x", "labels": labels}), "services: {}\n")
    assert desired.services["web"].rollback.mode.value == "auto"


# --- notification URLs ----------------------------------------------------------------------


def test_the_variable_names_the_urls_and_wins_over_x_controller(tmp_path: Path) -> None:
    told = {**model(web={"image": "x"}), "x-controller": {"notify": {"urls": ["json://h/x"]}}}
    environ = {"CONTROLLER_NOTIFY_URLS": "json://127.0.0.1:1/a, ntfy://ntfy.example/t json://b/c"}
    desired = zero(tmp_path, told, "services: {}\n", environ)
    assert desired.notify.urls == ("json://127.0.0.1:1/a", "ntfy://ntfy.example/t", "json://b/c")
    assert zero(tmp_path, told, "services: {}\n").notify.urls == ("json://h/x",)


def test_a_comma_inside_a_url_is_kept(tmp_path: Path) -> None:
    url = "mailto://user:pw@example.com?to=a@example.com,b@example.com"
    environ = {"CONTROLLER_NOTIFY_URLS": f"{url},json://h/x"}
    desired = zero(tmp_path, model(web={"image": "x"}), "services: {}\n", environ)
    assert desired.notify.urls == (url, "json://h/x")


def test_a_bad_url_in_the_variable_names_the_variable_not_the_url(tmp_path: Path) -> None:
    environ = {"CONTROLLER_NOTIFY_URLS": "json://h/x nope://secret-token@h"}
    with pytest.raises(DesiredStateError) as exc:
        zero(tmp_path, model(web={"image": "x"}), "services: {}\n", environ)
    assert one_line(exc).startswith("CONTROLLER_NOTIFY_URLS: item 2: not a URL Apprise")
    assert "secret-token" not in one_line(exc)


def test_apprise_files_name_the_urls_when_nothing_else_does(tmp_path: Path) -> None:
    config = tmp_path / "home" / ".config" / "apprise.yml"
    config.parent.mkdir(parents=True)
    config.write_text("urls:\n  - json://127.0.0.1:9/hook\n")
    desired = zero(tmp_path, model(web={"image": "x"}), "services: {}\n")
    assert [u.split("?")[0] for u in desired.notify.urls] == ["json://127.0.0.1:9/hook"]
    told = {**model(web={"image": "x"}), "x-controller": {"notify": {"urls": ["json://h/x"]}}}
    assert zero(tmp_path, told, "services: {}\n").notify.urls == ("json://h/x",)


def test_apprise_config_path_names_the_files(tmp_path: Path) -> None:
    config = tmp_path / "mine.txt"
    config.write_text("json://127.0.0.1:9/text\n")
    environ = {"APPRISE_CONFIG_PATH": f"{tmp_path / 'absent.yml'};{config}"}
    desired = zero(tmp_path, model(web={"image": "x"}), "services: {}\n", environ)
    assert [u.split("?")[0] for u in desired.notify.urls] == ["json://127.0.0.1:9/text"]


def test_an_apprise_file_with_no_url_is_one_line_naming_it(tmp_path: Path) -> None:
    config = tmp_path / "empty.yml"
    config.write_text("urls: []\n")
    environ = {"APPRISE_CONFIG_PATH": str(config)}
    with pytest.raises(DesiredStateError) as exc:
        zero(tmp_path, model(web={"image": "x"}), "services: {}\n", environ)
    assert one_line(exc) == f"{config}: no URL Apprise can send to in this file"


def test_apprise_files_are_not_read_beside_a_desired_state_file(tmp_path: Path) -> None:
    config = tmp_path / "apprise.yml"
    config.write_text("urls:\n  - json://127.0.0.1:9/hook\n")
    (tmp_path / "compose.yaml").write_text("services: {}\n")
    (tmp_path / "dev.yaml").write_text("project: p\ncompose_files: [compose.yaml]\n")
    environ = {"APPRISE_CONFIG_PATH": str(config)}
    desired = load_desired("dev", tmp_path, Loader(model(web={"image": "x"})), environ)
    assert desired.notify.urls == ()
