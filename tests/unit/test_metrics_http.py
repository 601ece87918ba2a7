"""Metric names and zero-initialised labels; the HTTP endpoints over real loopback HTTP."""

import json
import urllib.error
import urllib.request

from prometheus_client import CollectorRegistry

from controller.http import StatusServer
from controller.issues.store import IssueStore
from controller.metrics import Metrics, StateCollector
from controller.model import (
    Category,
    Drift,
    DriftKind,
    ServiceCondition,
    ServiceRecord,
    ServiceStatus,
    Severity,
    Throttle,
)
from tests.fakes import FakeClock, store_view


def registry_with_state() -> tuple[CollectorRegistry, IssueStore]:
    registry = CollectorRegistry()
    Metrics(registry, "dev").declare(["web"], [])
    store = IssueStore("dev", FakeClock())
    store.sync_drifts(
        [Drift("web", DriftKind.EXITED, Severity.HIGH, Category.HEALTH, "web exited")],
        [
            ServiceStatus(
                name="web",
                condition=ServiceCondition.DEGRADED,
                required=True,
                replicas=1,
                containers=1,
                running=0,
                healthy=None,
                restarts=0,
            )
        ],
    )
    registry.register(
        StateCollector(
            "dev",
            store_view(store, queue_depth=2, busy=1),
        )
    )
    return registry, store


def test_counters_exist_at_zero_before_anything_happened():
    registry, _ = registry_with_state()
    assert (
        registry.get_sample_value(
            "compose_controller_remediation_actions_total",
            {"env": "dev", "service": "web", "action": "recreate", "outcome": "failure"},
        )
        == 0
    )
    assert (
        registry.get_sample_value(
            "compose_controller_reconcile_passes_total", {"env": "dev", "result": "ok"}
        )
        == 0
    )


def test_issue_state_is_read_from_the_store_at_scrape_time():
    registry, store = registry_with_state()
    labels = {
        "env": "dev",
        "service": "web",
        "severity": "high",
        "category": "health",
        "state": "open",
    }
    assert registry.get_sample_value("compose_controller_issues", labels) == 1
    assert (
        registry.get_sample_value(
            "compose_controller_issues_by_state", {"env": "dev", "state": "needs-human"}
        )
        == 0
    )
    assert (
        registry.get_sample_value(
            "compose_controller_service_ready", {"env": "dev", "service": "web"}
        )
        == 0
    )
    assert registry.get_sample_value("compose_controller_workqueue_depth", {"env": "dev"}) == 2
    assert registry.get_sample_value("compose_controller_workers_max", {"env": "dev"}) == 3
    store.sync_drifts([], [])
    assert registry.get_sample_value("compose_controller_issues", labels) is None


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_the_endpoints_answer_on_loopback():
    registry, _ = registry_with_state()
    ready = [False]
    server = StatusServer("127.0.0.1", 0, registry, lambda: ready[0], lambda: {"env": "dev"})
    server.start()
    try:
        host, port = server.address
        base = f"http://{host}:{port}"
        code, body = get(base + "/metrics")
        assert code == 200 and "compose_controller_reconcile_duration_seconds_bucket" in body
        assert get(base + "/healthz") == (200, "ok\n")
        assert get(base + "/readyz")[0] == 503
        ready[0] = True
        assert get(base + "/readyz")[0] == 200
        assert json.loads(get(base + "/status")[1]) == {"env": "dev"}
        assert get(base + "/nope")[0] == 404
    finally:
        server.stop()


def request(url: str, method: str = "GET", **headers: str) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=5) as reply:
            return reply.status, dict(reply.headers), reply.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def test_metrics_are_served_by_prometheus_clients_exposition_with_head_gzip_and_openmetrics():
    import gzip

    registry, _ = registry_with_state()
    server = StatusServer("127.0.0.1", 0, registry, lambda: True, lambda: {"env": "dev"})
    server.start()
    try:
        host, port = server.address
        url = f"http://{host}:{port}/metrics"
        code, headers, _ = request(url)
        assert code == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")

        code, headers, body = request(url, "HEAD")
        assert code == 200 and body == b""
        assert int(headers["Content-Length"]) > 1000
        assert headers["Content-Type"].startswith("text/plain")

        code, headers, zipped = request(url, **{"Accept-Encoding": "gzip"})
        assert code == 200 and headers["Content-Encoding"] == "gzip"
        assert b"compose_controller_workqueue_depth" in gzip.decompress(zipped)

        code, headers, om = request(
            url, Accept="application/openmetrics-text; version=1.0.0,text/plain;q=0.5"
        )
        assert code == 200 and headers["Content-Type"].startswith("application/openmetrics-text")
        assert om.rstrip().endswith(b"# EOF")

        status_head = request(f"http://{host}:{port}/status", "HEAD")
        assert status_head[0] == 200 and status_head[2] == b""
        assert request(f"http://{host}:{port}/healthz", "POST")[0] == 405
    finally:
        server.stop()


def test_service_gauges_say_ready_running_healthy_needs_human_and_backoff():
    from datetime import timedelta

    from controller.model import to_datetime

    clock = FakeClock()
    registry = CollectorRegistry()
    store = IssueStore("dev", clock)
    store.sync_drifts(
        [Drift("web", DriftKind.EXITED, Severity.CRITICAL, Category.HEALTH, "web exited")],
        [
            ServiceStatus(
                name="web",
                condition=ServiceCondition.DEGRADED,
                required=True,
                replicas=2,
                containers=2,
                running=1,
                healthy=1,
                restarts=3,
            )
        ],
    )
    store.escalate(["drift:web:exited"], "a person stopped it")
    backing_off = ServiceRecord(
        throttle=Throttle(next_step_at=to_datetime(clock()) + timedelta(seconds=30))
    )
    registry.register(
        StateCollector(
            "dev",
            store_view(store, records=lambda: {"web": backing_off}, clock=clock),
        )
    )
    labels = {"env": "dev", "service": "web"}
    assert registry.get_sample_value("compose_controller_service_running_containers", labels) == 1
    assert registry.get_sample_value("compose_controller_service_healthy_containers", labels) == 1
    assert registry.get_sample_value("compose_controller_service_needs_human", labels) == 1
    assert registry.get_sample_value("compose_controller_service_backoff", labels) == 1
    assert (
        registry.get_sample_value(
            "compose_controller_issues_by_severity", {"env": "dev", "severity": "critical"}
        )
        == 1
    )
    clock.advance(31)
    assert registry.get_sample_value("compose_controller_service_backoff", labels) == 0


def test_time_to_recover_is_observed_when_an_issue_resolves():
    registry = CollectorRegistry()
    metrics = Metrics(registry, "dev")
    metrics.declare(["web"], [])
    clock = FakeClock()
    store = IssueStore("dev", clock, on_resolved=metrics.recovered)
    store.sync_drifts([Drift("web", DriftKind.EXITED, Severity.HIGH, Category.HEALTH, "x")], [])
    clock.advance(7)
    store.sync_drifts([], [])
    labels = {"env": "dev", "service": "web"}
    assert registry.get_sample_value("compose_controller_recovery_seconds_count", labels) == 1
    assert registry.get_sample_value("compose_controller_recovery_seconds_sum", labels) == 7


def test_the_start_of_a_fault_comes_from_the_engine_record():
    from controller.runtime import fault_started
    from tests.fakes import container

    exited = [container("web", status="exited", finished_at="2027-01-15T08:00:00.5Z")]
    assert fault_started("exited", exited) == 1_800_000_000.5
    sick = [
        container("web", failing_since="2027-01-15T08:00:01Z"),
        container("web", 2, failing_since="2027-01-15T08:00:03Z"),
    ]
    assert fault_started("unhealthy", sick) == 1_800_000_001.0
    assert fault_started("missing", exited) is None
