"""Probes, config drift, orphans and restart counts (issue 5's drifts beyond "running")."""

import socket
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from controller.detect.restarts import restart_findings
from controller.drift import diff, ready_in, service_drifts
from controller.model import DriftKind, ObservedState, ProbeSpec, ProbeView
from controller.observe.compose_model import ConfigHashes
from controller.observe.probes import Prober, run_probe
from tests.fakes import FakeClock, FakeWorld, container, desired, spec


class _Health(BaseHTTPRequestHandler):
    answer = (200, b"ok")

    def do_GET(self) -> None:
        code, body = self.answer
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_server():  # type: ignore[no-untyped-def]
    server = HTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_http_probes_check_status_and_body(http_server):
    url = f"http://127.0.0.1:{http_server.server_address[1]}/health"
    world = FakeWorld()
    assert run_probe(ProbeSpec(kind="http", url=url, body="ok"), world, None) is None
    _Health.answer = (503, b"down")
    try:
        assert "answered 503" in run_probe(ProbeSpec(kind="http", url=url), world, None)
        _Health.answer = (200, b"degraded")
        assert "without 'ok'" in run_probe(ProbeSpec(kind="http", url=url, body="ok"), world, None)
        assert "answered 200" in run_probe(ProbeSpec(kind="http", url=url, status=204), world, None)
    finally:
        _Health.answer = (200, b"ok")


def test_tcp_probes_connect_or_say_why():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert run_probe(ProbeSpec(kind="tcp", port=port), FakeWorld(), None) is None
    assert "refused" in run_probe(ProbeSpec(kind="tcp", port=port), FakeWorld(), None).lower()


def test_exec_probes_run_in_the_container():
    world = FakeWorld()
    world.run("db")
    probe = ProbeSpec(kind="exec", argv=("pg_isready",))
    snap = world.list_containers("demo")[0]
    assert run_probe(probe, world, snap) is None
    world.exec_result = (2, b"no response\n")
    assert run_probe(probe, world, snap) == "pg_isready exited 2: no response"
    assert run_probe(probe, world, None) == "no running container to exec in"


def prober_with(world: FakeWorld, probe: ProbeSpec, clock: FakeClock):  # type: ignore[no-untyped-def]
    changes: list[str] = []
    prober = Prober(world, {"db": spec("db", probes=(probe,))}, changes.append, clock)
    prober.update(ObservedState("demo", 0.0, tuple(world.list_containers("demo"))))
    return prober, changes


def test_a_probe_fails_after_its_failure_threshold_and_recovers_after_successes():
    world = FakeWorld()
    world.run("db", started_at="2027-01-15T08:00:00Z")
    clock = FakeClock(1_800_000_100.0)
    probe = ProbeSpec(kind="exec", argv=("check",), failure_threshold=3, success_threshold=2)
    prober, changes = prober_with(world, probe, clock)
    prober.run_once("db", 0)
    prober.run_once("db", 0)
    assert prober.view()["db"] == ProbeView(True, "all probes pass")
    world.exec_result = (1, b"")
    prober.run_once("db", 0)
    prober.run_once("db", 0)
    assert prober.view()["db"].ok is True  # two failures: not yet
    prober.run_once("db", 0)
    assert prober.view()["db"] == ProbeView(False, "check exited 1")
    assert changes == ["db", "db"]  # unknown -> passing -> failing, each reported at once


def test_a_new_container_starts_its_probes_afresh_and_waits_the_initial_delay():
    world = FakeWorld()
    world.run("db", started_at="2027-01-15T08:00:00Z")
    clock = FakeClock(1_800_000_000.0 + 5)
    probe = ProbeSpec(kind="exec", argv=("check",), initial_delay=10, success_threshold=1)
    prober, _ = prober_with(world, probe, clock)
    prober.run_once("db", 0)
    assert world.actions == [] and prober.view()["db"].ok is None  # 5 s old: too early
    clock.advance(10)
    prober.run_once("db", 0)
    assert prober.view()["db"].ok is True
    world.set("db", started_at="2027-01-15T08:00:30Z")
    prober.update(ObservedState("demo", 0.0, tuple(world.list_containers("demo"))))
    prober.run_once("db", 0)
    assert prober.view()["db"].ok is None  # restarted 0 s ago: unknown again


def test_a_failing_probe_is_drift_and_an_unknown_one_is_not_ready():
    probe = ProbeSpec(kind="tcp", port=1)
    db = spec("db", probes=(probe,))
    running = [container("db")]
    (drift,) = service_drifts(db, running, ProbeView(False, "refused"))
    assert drift.kind is DriftKind.PROBE_FAILED and drift.detail == "refused"
    unknown = ObservedState("demo", 0.0, tuple(running), {"db": ProbeView(None)})
    assert not ready_in(db, unknown)
    passing = ObservedState("demo", 0.0, tuple(running), {"db": ProbeView(True)})
    assert ready_in(db, passing)


def test_a_container_with_an_old_config_hash_is_outdated_but_still_ready():
    web = spec("web")
    observed = ObservedState(
        "demo", 0.0, (container("web", config_hash="old"),), config_hashes={"web": "new"}
    )
    (drift,) = diff(desired(web), observed)
    assert drift.kind is DriftKind.OUTDATED and not drift.blocking
    assert ready_in(web, observed)  # it runs; it is just not the config on disk


def test_containers_of_services_no_longer_declared_are_orphans():
    observed = ObservedState("demo", 0.0, (container("web"), container("old")))
    drifts = diff(desired(spec("web")), observed)
    assert [(d.service, d.kind, d.blocking) for d in drifts] == [("old", DriftKind.ORPHAN, False)]


def test_restart_count_increases_become_one_finding_per_restart():
    first = ObservedState("demo", 0.0, (container("web", restart_count=4),))
    findings, counts = restart_findings({}, first, 100.0)
    assert findings == []  # history before the controller looked
    later = ObservedState("demo", 0.0, (container("web", restart_count=6, exit_code=1),))
    findings, counts = restart_findings(counts, later, 105.0)
    assert len(findings) == 2
    assert findings[0].fingerprint == "engine:web:docker-restart"
    assert "restart count 4 -> 6" in findings[0].line and findings[0].source == "engine"
    assert counts == {"web-1-id": 6}
    assert "on node" not in findings[0].line
    on_swarm = ObservedState("demo", 0.0, (container("web", restart_count=7, node="n2"),))
    (moved,), _ = restart_findings(counts, on_swarm, 110.0)
    assert moved.line.endswith("; on node n2")  # a swarm task's node, as every issue says
    assert moved.title == "Restarted by Swarm's restart policy"
    assert findings[0].title == "Restarted by Docker's restart policy"


class _Hashes:
    def __init__(self) -> None:
        self.calls = 0

    def config(self, timeout: float = 60.0) -> dict[str, Any]:
        self.calls += 1
        return {"services": {"web": {"image": f"web:{self.calls}"}}}

    def hashes_of(self, document: Mapping[str, Any], timeout: float = 60.0) -> dict[str, str]:
        return {"web": "h" + str(document["services"]["web"]["image"]).split(":")[1]}


def test_config_hashes_are_recomputed_only_when_a_file_changes(tmp_path: Path):
    compose = tmp_path / "compose.yaml"
    compose.write_text("services: {}\n")
    source = _Hashes()
    hashes = ConfigHashes(source, [compose])
    assert hashes.current() == {"web": "h1"}
    assert hashes.current() == {"web": "h1"} and source.calls == 1
    compose.write_text("services: {web: {}}\n")
    assert hashes.current() == {"web": "h2"}
    assert hashes.image_of("web") == "web:2" and source.calls == 2
    assert hashes.image_of("db") == "" and not hashes.builds("web")


class _Shared:
    """Compose's hashing as far as these tests need it: a service's hash is its config."""

    def __init__(self) -> None:
        self.documents: list[dict[str, Any]] = []

    def config(self, timeout: float = 60.0) -> dict[str, Any]:
        return {
            "services": {
                "edge": {"network_mode": "host"},
                "agent": {"network_mode": "service:edge", "pid": "service:edge"},
                "copier": {"volumes_from": ["edge:ro"]},
            }
        }

    def hashes_of(self, document: Mapping[str, Any], timeout: float = 60.0) -> dict[str, str]:
        self.documents.append(dict(document))
        return {name: repr(sorted(spec.items())) for name, spec in document["services"].items()}


def test_a_service_sharing_a_namespace_is_hashed_with_the_container_it_shares(tmp_path: Path):
    compose = tmp_path / "compose.yaml"
    compose.write_text("services: {}\n")
    source = _Shared()
    hashes = ConfigHashes(source, [compose])
    edge = container("edge")
    seen = hashes.for_containers([edge, container("agent")])
    # as `up` labels it: the reference resolved to the container that runs now
    assert seen["agent"] == repr(
        sorted({"network_mode": f"container:{edge.id}", "pid": f"container:{edge.id}"}.items())
    )
    assert seen["edge"] == hashes.current()["edge"]
    # volumes_from a service: Compose hashes a bare id no file can say; unknown, not outdated
    assert "copier" not in seen and "copier" not in hashes.current()
    runs = len(source.documents)
    assert hashes.for_containers([edge]) == seen and len(source.documents) == runs
    # the shared container replaced: the hash follows it; none running: no hash at all
    other = container("edge", id="e2")
    assert f"container:{other.id}" in hashes.for_containers([other])["agent"]
    assert "agent" not in hashes.for_containers([])
    # the file's own hash (what a rollback compares) never depends on the containers
    assert "service:edge" in hashes.current()["agent"]


class _SlowHashes(_Hashes):
    """Its hashes wait until a test lets them go."""

    def __init__(self) -> None:
        super().__init__()
        self.hashing = threading.Event()
        self.release = threading.Event()

    def hashes_of(self, document: Mapping[str, Any], timeout: float = 60.0) -> dict[str, str]:
        self.hashing.set()
        self.release.wait(10)
        return super().hashes_of(document, timeout)


def test_the_declared_image_is_read_while_the_hashes_are_still_being_computed(tmp_path: Path):
    compose = tmp_path / "compose.yaml"
    compose.write_text("services: {}\n")
    source = _SlowHashes()
    hashes = ConfigHashes(source, [compose])
    hashes.warm()
    assert source.hashing.wait(10)  # the model was read; its hashes are under way

    images: list[str] = []
    read = threading.Thread(target=lambda: images.append(hashes.image_of("web")))
    read.start()
    read.join(5)  # a start need not wait for the hashes: it ends while they are held
    assert images == ["web:1"], "the image waited for the hashes"

    source.release.set()
    assert hashes.current() == {"web": "h1"} and source.calls == 1
