"""Every metric the controller exports, in one registry (the contract is docs/metrics.md).

Counters and histograms are recorded by the stages as things happen; state that lives in
the issue store is exported by ``StateCollector`` at scrape time, so it is never stale and
never updated from everywhere. Labels are bounded: env, service, action, outcome, result,
severity, category, state; never log text or container ids.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from controller import __version__
from controller.detect.restarts import RESTART_PATTERN
from controller.model import (
    Action,
    Category,
    Issue,
    IssueState,
    Outcome,
    PatternDef,
    ServiceCondition,
    ServiceStatus,
)

PREFIX = "compose_controller"
PASS_RESULTS = ("ok", "engine_unavailable", "error")
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
REMEDIATION_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)


class Metrics:
    """The metric objects of one controller (one env), registered in ``registry``."""

    def __init__(self, registry: CollectorRegistry, env: str) -> None:
        self.env = env
        self.registry = registry
        self.build_info = Gauge(
            f"{PREFIX}_build_info",
            "Always 1; the labels say which build runs.",
            ["version"],
            registry=registry,
        )
        self.build_info.labels(__version__).set(1)
        self.reconcile_passes = Counter(
            f"{PREFIX}_reconcile_passes_total",
            "Reconcile passes, by result.",
            ["env", "result"],
            registry=registry,
        )
        self.reconcile_duration = Histogram(
            f"{PREFIX}_reconcile_duration_seconds",
            "Time one reconcile pass took (observe, diff, record, enqueue).",
            ["env"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.remediation_actions = Counter(
            f"{PREFIX}_remediation_actions_total",
            "Remediation steps taken, by action and outcome.",
            ["env", "action", "outcome"],
            registry=registry,
        )
        self.remediation_duration = Histogram(
            f"{PREFIX}_remediation_duration_seconds",
            "Time one remediation step took, action and verification together.",
            ["env", "action"],
            buckets=REMEDIATION_BUCKETS,
            registry=registry,
        )
        self.log_lines = Counter(
            f"{PREFIX}_log_lines_total",
            "Log lines read, each once, by service.",
            ["env", "service"],
            registry=registry,
        )
        self.findings = Counter(
            f"{PREFIX}_findings_total",
            "Log records that matched a pattern (or an unclassified template).",
            ["env", "pattern", "category"],
            registry=registry,
        )
        self.engine_up = Gauge(
            f"{PREFIX}_engine_up",
            "1 when the Docker engine answered the last call, else 0.",
            ["env"],
            registry=registry,
        )
        # every label combination exists from the first scrape, so rate() and absent() work
        for result in PASS_RESULTS:
            self.reconcile_passes.labels(env, result)
        self.reconcile_duration.labels(env)
        for action in Action:
            self.remediation_duration.labels(env, action)
            for outcome in Outcome:
                self.remediation_actions.labels(env, action, outcome)
        self.engine_up.labels(env).set(0)

    def declare(self, services: Iterable[str], patterns: Iterable[PatternDef]) -> None:
        """Create the per-service and per-pattern series at zero."""
        for service in services:
            self.log_lines.labels(self.env, service)
        for pattern in patterns:
            self.findings.labels(self.env, pattern.id, pattern.category)
        self.findings.labels(self.env, "unclassified", Category.HEALTH)
        self.findings.labels(self.env, RESTART_PATTERN, Category.HEALTH)

    def log_line(self, service: str) -> None:
        self.log_lines.labels(self.env, service).inc()

    def finding(self, pattern_id: str, category: Category) -> None:
        self.findings.labels(self.env, pattern_id, category).inc()

    def pass_done(self, result: str, seconds: float) -> None:
        self.reconcile_passes.labels(self.env, result).inc()
        if result == "ok":
            self.reconcile_duration.labels(self.env).observe(seconds)

    def engine_reachable(self, up: bool) -> None:
        self.engine_up.labels(self.env).set(1 if up else 0)

    def remediation_done(self, action: Action, outcome: Outcome, seconds: float) -> None:
        self.remediation_actions.labels(self.env, action, outcome).inc()
        self.remediation_duration.labels(self.env, action).observe(seconds)


@dataclass(frozen=True, slots=True)
class StateView:
    """What the collector reads at scrape time (the issue store and the work queue)."""

    issues: Callable[[], list[Issue]]
    services: Callable[[], list[ServiceStatus]]
    queue_depth: Callable[[], int]
    workers_busy: Callable[[], int]
    workers_max: int


class StateCollector(Collector):
    def __init__(self, env: str, view: StateView) -> None:
        self._env = env
        self._view = view

    def collect(self) -> Iterator[Metric]:
        env = self._env
        issues = GaugeMetricFamily(
            f"{PREFIX}_issues",
            "Issues not yet resolved, by service, severity, category and state.",
            labels=["env", "service", "severity", "category", "state"],
        )
        counts: dict[tuple[str, str, str, str], int] = {}
        by_state: dict[IssueState, int] = {s: 0 for s in IssueState if s is not IssueState.RESOLVED}
        for issue in self._view.issues():
            if issue.active:
                key = (issue.service, str(issue.severity), str(issue.category), str(issue.state))
                counts[key] = counts.get(key, 0) + 1
                by_state[issue.state] += 1
        for (service, severity, category, state), n in sorted(counts.items()):
            issues.add_metric([env, service, severity, category, state], n)
        yield issues
        totals = GaugeMetricFamily(
            f"{PREFIX}_issues_by_state",
            "Issues not yet resolved, by state only.",
            labels=["env", "state"],
        )
        for state, n in by_state.items():
            totals.add_metric([env, str(state)], n)
        yield totals
        up = GaugeMetricFamily(
            f"{PREFIX}_service_ready",
            "1 when the service is as declared and its health settled, else 0.",
            labels=["env", "service"],
        )
        for status in self._view.services():
            up.add_metric(
                [env, status.name], 1 if status.condition is ServiceCondition.READY else 0
            )
        yield up
        yield _single(
            f"{PREFIX}_workqueue_depth",
            "Services waiting for a remediation worker.",
            env,
            self._view.queue_depth(),
        )
        yield _single(
            f"{PREFIX}_workers_busy",
            "Remediation workers fixing a service now.",
            env,
            self._view.workers_busy(),
        )
        yield _single(
            f"{PREFIX}_workers_max",
            "Remediation workers at most (--max-agents).",
            env,
            self._view.workers_max,
        )


def _single(name: str, documentation: str, env: str, value: float) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=["env"])
    family.add_metric([env], value)
    return family
