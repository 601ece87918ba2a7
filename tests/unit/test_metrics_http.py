"""Metric names and zero-initialised labels; the HTTP endpoints over real loopback HTTP."""

import json
import urllib.error
import urllib.request

from prometheus_client import CollectorRegistry

from controller.http import StatusServer
from controller.issues.store import IssueStore
from controller.metrics import Metrics, StateCollector, StateView
from controller.model import Category, Drift, DriftKind, ServiceCondition, ServiceStatus, Severity
from tests.fakes import FakeClock


def registry_with_state() -> tuple[CollectorRegistry, IssueStore]:
    registry = CollectorRegistry()
    Metrics(registry, "dev")
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
        StateCollector("dev", StateView(store.issues, store.services, lambda: 2, lambda: 1, 3))
    )
    return registry, store


def test_counters_exist_at_zero_before_anything_happened():
    registry, _ = registry_with_state()
    assert (
        registry.get_sample_value(
            "compose_controller_remediation_actions_total",
            {"env": "dev", "action": "recreate", "outcome": "failure"},
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
