"""Reloading the desired state while the controller runs (issue 23), on the fakes of our
gateway and Compose: a good state is in force for the next pass, a bad one is refused
whole and reported, a running step is never cut, a service no longer declared is no
longer managed."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import replace
from pathlib import Path
from wsgiref.util import setup_testing_defaults

from prometheus_client import CollectorRegistry

from controller.desired import DesiredStateError
from controller.http import application
from controller.metrics import Metrics
from controller.model import DesiredState, DetectionSettings, ProbeKind, ProbeSpec, system_clock
from controller.remediate.results import Done
from controller.runtime import Controller, Settings, assemble
from controller.runtime.controller import RETIRED
from controller.runtime.reload import Reloader, fingerprint, watched_files
from tests.fakes import FakeClock, FakeWorld, desired, spec

SUCCESS = "compose_controller_config_last_reload_successful"
SUCCESS_AT = "compose_controller_config_last_reload_success_timestamp_seconds"


def wait_for(predicate, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)
    return value


class Source:
    """What the desired-state file says now: a state, or the error loading it raises."""

    def __init__(self, state: DesiredState) -> None:
        self.now: DesiredState | DesiredStateError = state

    def __call__(self) -> DesiredState:
        if isinstance(self.now, DesiredStateError):
            raise self.now
        return self.now


def controller_of(
    tmp_path: Path, world: FakeWorld, state: DesiredState, source: Source
) -> tuple[Controller, CollectorRegistry]:
    registry = CollectorRegistry()
    controller = assemble(
        Settings(env="dev", state_dir=tmp_path, once=True, shutdown_timeout=5.0),
        state,
        gateway=world,
        compose=world,
        hashes=world,
        registry=registry,
        reload_from=source,
        clock=system_clock,
    )
    return controller, registry


def gauge(registry: CollectorRegistry, name: str) -> float | None:
    return registry.get_sample_value(name, {"env": "dev"})


# --- a good reload ---------------------------------------------------------------------


def test_a_good_reload_is_in_force_for_the_next_pass(tmp_path):
    world = FakeWorld()
    world.run("web")
    before = desired(spec("web", min_ready=0.0))
    source = Source(before)
    controller, registry = controller_of(tmp_path, world, before, source)
    controller.run_pass(submit=False)
    assert controller.store.active() == []

    source.now = desired(spec("web", min_ready=0.0), spec("db", min_ready=0.0))
    status = controller.parts.reloader.reload("SIGHUP")
    controller.run_pass(submit=False)

    assert status.successful and status.trigger == "SIGHUP" and status.error == ""
    assert set(controller.desired.services) == {"web", "db"}
    assert [i.fingerprint for i in controller.store.active()] == ["drift:db:missing"]
    assert gauge(registry, SUCCESS) == 1.0
    assert gauge(registry, SUCCESS_AT) == status.loaded_at


def test_a_changed_setting_of_a_service_decides_the_next_reconcile(tmp_path):
    world = FakeWorld()
    world.run("web", replicas=1)
    before = desired(spec("web", min_ready=0.0))
    source = Source(before)
    controller, _ = controller_of(tmp_path, world, before, source)
    controller.run_pass(submit=False)
    assert controller.store.active() == []

    source.now = desired(spec("web", min_ready=0.0, replicas=2))
    controller.parts.reloader.reload("POST /-/reload")
    controller.run_pass(submit=False)

    assert [i.fingerprint for i in controller.store.active()] == ["drift:web:replicas"]
    assert controller.hold("web") == 0.0


def test_a_reload_of_the_same_state_changes_nothing_and_succeeds(tmp_path):
    world = FakeWorld()
    state = desired(spec("web"))
    controller, _ = controller_of(tmp_path, world, state, Source(desired(spec("web"))))
    status = controller.parts.reloader.reload("a file changed")
    assert status.successful
    assert controller.desired is state  # equal: nothing swapped


def test_a_service_declared_anew_is_the_controllers_again(tmp_path):
    world = FakeWorld()
    world.run("web", status="paused")  # left to a person unless enforce: true
    before = desired(spec("web", min_ready=0.0))
    source = Source(before)
    controller, _ = controller_of(tmp_path, world, before, source)
    controller.open_once()
    try:
        controller.run_pass()
        wait_for(
            lambda: controller.store.get("drift:web:paused").state == "needs-human",
            10,
            "the paused service to be left to a person",
        )
        assert world.actions == []

        source.now = desired(spec("web", min_ready=0.0, enforce=True))
        assert controller.parts.reloader.reload("SIGHUP").successful
        controller.run_pass()
        wait_for(lambda: ("unpause", "demo-web-1") in world.actions, 10, "web to be unpaused")
    finally:
        controller.close_once()


# --- a bad reload ----------------------------------------------------------------------


def test_a_bad_file_is_refused_whole_reported_and_the_state_in_force_kept(tmp_path):
    world = FakeWorld()
    before = desired(spec("web"))
    source = Source(before)
    controller, registry = controller_of(tmp_path, world, before, source)
    loaded_at = gauge(registry, SUCCESS_AT)
    source.now = DesiredStateError(
        "desired_state/dev.yaml", "services.web.replicas", "must be at least 0", line=7
    )

    status = controller.parts.reloader.reload("SIGHUP")

    assert not status.successful
    assert status.error == "desired_state/dev.yaml:7: services.web.replicas: must be at least 0"
    assert controller.desired is before
    assert gauge(registry, SUCCESS) == 0.0
    assert gauge(registry, SUCCESS_AT) == loaded_at  # when the state in force was loaded
    doc = status.document()
    assert doc["last_reload_successful"] is False and doc["error"] == status.error
    assert doc["last_reload_trigger"] == "SIGHUP" and doc["last_reload_at"] is not None

    source.now = desired(spec("web"), spec("db"))  # fixed: the next reload works
    assert controller.parts.reloader.reload("SIGHUP").successful
    assert gauge(registry, SUCCESS) == 1.0


def test_what_only_a_restart_applies_is_refused_and_named(tmp_path):
    world = FakeWorld()
    probe = ProbeSpec(kind=ProbeKind.TCP, port=5432)
    before = desired(spec("web"), spec("db", probes=(probe,)))
    source = Source(before)
    controller, _ = controller_of(tmp_path, world, before, source)
    source.now = replace(
        desired(spec("web", replicas=2), spec("db")),
        detection=DetectionSettings(resolve_after_quiet=1.0),
    )

    status = controller.parts.reloader.reload("SIGHUP")

    assert not status.successful
    assert "detection: changed: only a restart applies it" in status.error
    assert "services.db.probes: changed" in status.error
    assert controller.desired is before  # not even the replicas: refused whole


# --- services no longer declared, and a step under way ---------------------------------


class SlowWorld(FakeWorld):
    """A restart that waits until the test lets it finish."""

    def __init__(self) -> None:
        super().__init__()
        self.restarting = threading.Event()
        self.finish = threading.Event()

    def restart(self, container_id: str, timeout: float) -> None:
        self.restarting.set()
        assert self.finish.wait(10), "the test never let the restart finish"
        super().restart(container_id, timeout)


def test_a_running_step_is_never_cut_and_a_service_no_longer_declared_is_let_go(tmp_path):
    world = SlowWorld()
    world.run("web", status="exited", exit_code=137)
    world.run("db")
    before = desired(spec("web", min_ready=0.0), spec("db", min_ready=0.0))
    source = Source(before)
    controller, _ = controller_of(tmp_path, world, before, source)
    controller.open_once()
    try:
        controller.run_pass()
        wait_for(world.restarting.is_set, 10, "the restart of web to begin")

        source.now = desired(spec("db", min_ready=0.0))
        status = controller.parts.reloader.reload("POST /-/reload")  # does not wait for it
        assert status.successful and list(controller.desired.services) == ["db"]
        controller.run_pass()  # the command still runs: its issue is left to it
        assert controller.store.get("drift:web:exited").active

        world.finish.set()
        wait_for(lambda: ("restart", "demo-web-1") in world.actions, 10, "the restart to end")
        wait_for(lambda: controller.workers_busy == 0, 10, "the worker to be done")
        controller.run_pass()
    finally:
        world.finish.set()
        controller.close_once()

    issue = controller.store.get("drift:web:exited")
    assert not issue.active and issue.resolution == RETIRED
    assert "web" not in controller.records()
    assert controller.parts.remediation.reconciler.reconcile("web") == Done("no longer declared")
    assert [s.name for s in controller.store.services()] == ["db"]


# --- the files watched -----------------------------------------------------------------


def test_an_edit_of_the_same_size_within_the_same_mtime_is_seen(tmp_path):
    file = tmp_path / "dev.yaml"
    file.write_text("services: {web: {}}\n")
    before = fingerprint([file])
    stat = file.stat()
    file.write_text("services: {db:  {}}\n")
    os.utime(file, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert fingerprint([file]) != before
    assert fingerprint([tmp_path / "gone.yaml"]) == ((str(tmp_path / "gone.yaml"), -1, -1, ""),)


def test_the_files_watched_are_the_desired_state_and_the_compose_and_env_files_it_names():
    state = desired(spec("web"))
    compose = replace(state.compose, env_files=(Path("prod.env"),))
    assert watched_files(replace(state, compose=compose)) == (
        Path("desired_state/dev.yaml"),
        Path("compose.yaml"),
        Path("prod.env"),
    )


def test_the_watch_reloads_on_an_edit_and_on_a_request(tmp_path):
    file = tmp_path / "dev.yaml"
    file.write_text("a\n")
    state = replace(desired(spec("web")), source=file)
    loads: list[str] = []
    loaded = threading.Event()

    def load() -> DesiredState:
        loads.append(file.read_text())
        loaded.set()
        return state

    reloader = Reloader(
        load=load,
        current=lambda: state,
        use=lambda new: [],
        metrics=Metrics(CollectorRegistry(), "dev"),
        clock=FakeClock(),
        watch_seconds=0.05,
    )
    reloader.start()
    try:
        file.write_text("b\n")
        assert loaded.wait(10), "an edit was not seen"
        loaded.clear()
        reloader.request("SIGHUP")
        assert loaded.wait(10), "a request was not answered"
        wait_for(lambda: reloader.status.trigger == "SIGHUP", 10, "the SIGHUP reload's status")
    finally:
        reloader.stop()
    assert loads[0] == "b\n"


# --- POST /-/reload --------------------------------------------------------------------


def call(app, method: str, path: str) -> tuple[str, dict[str, str], bytes]:  # type: ignore[no-untyped-def]
    environ: dict[str, object] = {"REQUEST_METHOD": method, "PATH_INFO": path}
    setup_testing_defaults(environ)
    caught: list[tuple[str, list[tuple[str, str]]]] = []
    body = b"".join(
        app(environ, lambda status, headers, exc=None: caught.append((status, headers)))
    )
    return caught[0][0], dict(caught[0][1]), body


def test_post_reload_answers_200_or_500_with_the_reason():
    answers = iter([(True, "reloaded"), (False, "reload refused: dev.yaml: x: bad")])
    app = application(CollectorRegistry(), lambda: True, dict, lambda: next(answers))

    assert call(app, "POST", "/-/reload")[::2] == ("200 OK", b"reloaded\n")
    assert call(app, "POST", "/-/reload")[::2] == (
        "500 Internal Server Error",
        b"reload refused: dev.yaml: x: bad\n",
    )
    status, headers, _ = call(app, "GET", "/-/reload")
    assert status.startswith("405") and headers["Allow"] == "POST"
    assert call(app, "POST", "/status")[0].startswith("405")


def test_without_a_reload_there_is_no_reload_path():
    app = application(CollectorRegistry(), lambda: True, dict)
    assert call(app, "GET", "/-/reload")[0].startswith("404")
