"""Every duration, count and size of a desired state is finite and bounded (issue 12, item 2).

``1e300`` or ``.inf`` used to pass validation and raise OverflowError at run time (every
pass failing, or every fix, while /readyz said 200); ``replicas: 1000000000000`` was
accepted. Each family of fields is tried with such values through the public loader, and
the largest accepted values are run through the time arithmetic that overflowed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from controller.desired import DesiredStateError, load_desired
from controller.desired.schema import DAY, MAX_REPLICAS, WEEK
from controller.issues.store import IssueStore
from controller.model import Category, DetectionSettings, Finding, Severity, Throttle
from controller.remediate.throttle import ThrottleRules
from tests.fakes import FakeClock

COMPOSE = {"services": {"web": {"image": "web"}}}
HUGE = ["1e300", ".inf", "-.inf", ".nan", "1.0e+400"]


def load(tmp_path: Path, body: str):  # type: ignore[no-untyped-def]
    (tmp_path / "compose.yaml").write_text("services: {}\n")
    (tmp_path / "dev.yaml").write_text(f"project: p\ncompose_files: [compose.yaml]\n{body}")
    return load_desired("dev", tmp_path, lambda project: COMPOSE)


def refused(tmp_path: Path, body: str, field: str) -> str:
    with pytest.raises(DesiredStateError) as caught:
        load(tmp_path, body)
    message = str(caught.value)
    assert "\n" not in message and f": {field}:" in message, message
    return message


REMEDIATION_DURATIONS = [
    "budget_window_seconds",
    "backoff_initial_seconds",
    "backoff_max_seconds",
    "backoff_reset_seconds",
    "log_quiet_seconds",
    "log_active_seconds",
    "operation_timeout_seconds",
]
DETECTION_DURATIONS = ["escalate_window_seconds", "resolve_after_quiet_seconds"]


@pytest.mark.parametrize("value", HUGE)
@pytest.mark.parametrize("key", REMEDIATION_DURATIONS)
def test_remediation_durations_are_finite_and_bounded(tmp_path, key, value):
    refused(tmp_path, f"remediation: {{{key}: {value}}}\n", f"remediation.{key}")


@pytest.mark.parametrize("value", HUGE)
@pytest.mark.parametrize("key", DETECTION_DURATIONS)
def test_detection_durations_are_finite_and_bounded(tmp_path, key, value):
    refused(tmp_path, f"detection: {{{key}: {value}}}\n", f"detection.{key}")


@pytest.mark.parametrize("value", HUGE)
@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            "services: {{web: {{verify_timeout_seconds: {}}}}}\n",
            "services.web.verify_timeout_seconds",
        ),
        ("services: {{web: {{min_ready_seconds: {}}}}}\n", "services.web.min_ready_seconds"),
        (
            "services: {{web: {{probes: [{{tcp: {{port: 1}}, period_seconds: {}}}]}}}}\n",
            "services.web.probes.0.period_seconds",
        ),
        (
            "remediation: {{hook: {{argv: [x], timeout_seconds: {}}}}}\n",
            "remediation.hook.timeout_seconds",
        ),
    ],
)
def test_service_probe_and_step_durations_are_finite_and_bounded(tmp_path, body, field, value):
    refused(tmp_path, body.format(value), field)


@pytest.mark.parametrize("value", ["1000000000000", str(MAX_REPLICAS + 1), "-1", ".inf"])
def test_replicas_are_bounded(tmp_path, value):
    refused(tmp_path, f"services: {{web: {{replicas: {value}}}}}\n", "services.web.replicas")


def test_a_replica_count_from_compose_is_bounded_too(tmp_path):
    (tmp_path / "compose.yaml").write_text("services: {}\n")
    (tmp_path / "dev.yaml").write_text("project: p\ncompose_files: [compose.yaml]\n")
    huge = {"services": {"web": {"image": "web", "deploy": {"replicas": 10**12}}}}
    with pytest.raises(DesiredStateError, match=r"services\.web\.replicas: compose deploy"):
        load_desired("dev", tmp_path, lambda project: huge)


def test_probes_per_service_are_bounded(tmp_path):
    many = ", ".join(["{tcp: {port: 1}}"] * 21)  # a thread each
    refused(tmp_path, f"services: {{web: {{probes: [{many}]}}}}\n", "services.web.probes")


def test_the_largest_accepted_values_run_without_overflow(tmp_path):
    state = load(
        tmp_path,
        f"services: {{web: {{replicas: {MAX_REPLICAS}}}}}\n"
        f"remediation: {{budget: 1000, budget_window_seconds: {WEEK}, "
        f"backoff_initial_seconds: 3600, backoff_max_seconds: {DAY}, "
        f"backoff_reset_seconds: {WEEK}, log_active_seconds: {DAY}}}\n"
        f"detection: {{escalate_window_seconds: {DAY}, resolve_after_quiet_seconds: {WEEK}}}\n",
    )
    assert state.services["web"].replicas == MAX_REPLICAS
    rules = ThrottleRules.of(state.remediation)
    throttle = Throttle()
    now = datetime(2026, 12, 2, tzinfo=UTC).timestamp()
    for _ in range(2000):  # every step of a week-long window, backoff doubling to its cap
        throttle, _ = rules.step_taken(throttle, now, "f")
        throttle = rules.step_ended(throttle, now)
        permit, throttle = rules.permit(throttle, now, "f")
        assert permit.exhausted or permit.wait_until is not None
    rules.seen(throttle, ready=True, now=now)
    store = IssueStore("dev", FakeClock(now))
    finding = Finding(
        service="web",
        container="c",
        ts=now,
        kind="log",
        pattern_id="p",
        category=Category.HEALTH,
        severity=Severity.LOW,
        title="t",
        fingerprint="log:web:p:x",
        evidence="e",
    )
    settings = DetectionSettings(escalate_window=state.detection.escalate_window)
    for _ in range(20):
        store.record_findings([finding], settings)
    assert store.expire_log_issues(state.detection.resolve_after_quiet) == []


def _numbers(node: object, where: str = "") -> list[tuple[str, dict[str, object]]]:
    found: list[tuple[str, dict[str, object]]] = []
    if isinstance(node, dict):
        if node.get("type") in ("number", "integer"):
            found.append((where, node))
        for key, value in node.items():
            found += _numbers(value, f"{where}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _numbers(value, f"{where}[{i}]")
    return found


def test_every_number_of_the_schema_has_an_upper_bound():
    from controller.desired.schema import json_schema

    numbers = _numbers(json_schema())
    assert len(numbers) > 25  # the walk finds them
    unbounded = [w for w, n in numbers if "maximum" not in n and "exclusiveMaximum" not in n]
    assert unbounded == []


@pytest.mark.parametrize("value", ["0", "65536", "1e300"])
def test_a_tcp_probe_port_is_a_port(tmp_path, value):
    with pytest.raises(DesiredStateError, match=r"services\.web\.probes\.0\.tcp\.port"):
        load(tmp_path, f"services: {{web: {{probes: [{{tcp: {{port: {value}}}}}]}}}}\n")


@pytest.mark.parametrize("value", ["1.0e+300", ".inf", ".nan", "100000000000000000000"])
def test_a_number_in_the_environment_is_finite_and_bounded(tmp_path, value):
    with pytest.raises(DesiredStateError, match=r"environment\.X"):
        load(tmp_path, f"environment: {{X: {value}}}\n")


def test_a_stop_grace_period_from_compose_is_bounded(tmp_path):
    (tmp_path / "compose.yaml").write_text("services: {}\n")
    (tmp_path / "dev.yaml").write_text("project: p\ncompose_files: [compose.yaml]\n")
    huge = {"services": {"web": {"image": "web", "stop_grace_period": "100000h"}}}
    with pytest.raises(DesiredStateError, match=r"services\.web\.stop_grace_period: compose"):
        load_desired("dev", tmp_path, lambda project: huge)
