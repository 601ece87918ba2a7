"""Every metric the controller exports, in one registry (the contract is docs/metrics.md).

Counters and histograms are recorded by the stages as things happen; state that lives in
the issue store and the work queue is exported by ``StateCollector`` at scrape time, so it
is never stale and never updated from everywhere. Labels are bounded: env, service,
action, outcome, result, event, severity, category, state, pattern, resource, version; never
log text or container ids. Every label combination of a declared service exists from the first
scrape (at zero), so ``rate()`` and ``absent()`` work at once.
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
    ChangeVerdict,
    Issue,
    IssueState,
    NotifyEvent,
    Outcome,
    PatternDef,
    ResourceTrend,
    RollbackRecord,
    ServiceCondition,
    ServiceRecord,
    ServiceStatus,
    Severity,
    to_datetime,
)

PREFIX = "compose_controller"
PASS_RESULTS = ("ok", "engine_unavailable", "error")
NOTIFY_RESULTS = ("sent", "failed", "dropped")
ROLLBACK_OUTCOMES = ("rolled_back", "held", "failed")
SAMPLE_RESULTS = ("ok", "gone", "failed")
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
REMEDIATION_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)
DETECTION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)
RECOVERY_BUCKETS = (1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0)


class Metrics:
    """The metric objects of one controller (one env), registered in ``registry``: one
    attribute per metric family, as docs/metrics.md lists them (hence their number)."""

    def __init__(self, registry: CollectorRegistry, env: str) -> None:
        self.env = env
        self.registry = registry

        def counter(name: str, doc: str, labels: list[str]) -> Counter:
            return Counter(f"{PREFIX}_{name}", doc, labels, registry=registry)

        def histogram(
            name: str, doc: str, labels: list[str], buckets: tuple[float, ...]
        ) -> Histogram:
            return Histogram(f"{PREFIX}_{name}", doc, labels, buckets=buckets, registry=registry)

        self.build_info = Gauge(
            f"{PREFIX}_build_info",
            "Always 1; the labels say which build runs.",
            ["version"],
            registry=registry,
        )
        self.build_info.labels(__version__).set(1)
        self.reconcile_passes = counter(
            "reconcile_passes_total", "Reconcile passes, by result.", ["env", "result"]
        )
        self.reconcile_duration = histogram(
            "reconcile_duration_seconds",
            "Time one reconcile pass took (observe, diff, record, enqueue).",
            ["env"],
            DURATION_BUCKETS,
        )
        self.remediation_actions = counter(
            "remediation_actions_total",
            "Remediation steps taken, by action and outcome.",
            ["env", "service", "action", "outcome"],
        )
        self.remediation_duration = histogram(
            "remediation_duration_seconds",
            "Time one remediation step took, action and verification together.",
            ["env", "service", "action"],
            REMEDIATION_BUCKETS,
        )
        self.detection = histogram(
            "detection_seconds",
            "Time from a fault (a container's exit, a failing healthcheck streak, an error "
            "line) to its issue being recorded.",
            ["env", "service"],
            DETECTION_BUCKETS,
        )
        self.recovery = histogram(
            "recovery_seconds",
            "Time from an issue being recorded to the fault being gone (fixed, recovered, "
            "or for a log error: its last sighting).",
            ["env", "service"],
            RECOVERY_BUCKETS,
        )
        self.log_lines = counter(
            "log_lines_total", "Log lines read, each once, by service.", ["env", "service"]
        )
        self.findings = counter(
            "findings_total",
            "Log records that matched a pattern (or an unclassified template).",
            ["env", "pattern", "category"],
        )
        self.restarts = counter(
            "container_restarts_total",
            "Restarts of the service's containers by Docker's restart policy, as observed.",
            ["env", "service"],
        )
        self.notifications = counter(
            "notifications_total",
            "Issue transitions for people, by event and what became of them: sent, failed "
            "(an endpoint refused, timed out or was unreachable) or dropped (too many waiting).",
            ["env", "event", "result"],
        )
        self.notification_duration = histogram(
            "notification_seconds",
            "Time one notification took to deliver to all its endpoints.",
            ["env"],
            (*DURATION_BUCKETS, 30.0, 60.0),
        )
        self.changes = counter(
            "changes_total",
            "Changes of a service (a new config hash or image) judged, by verdict: good "
            "(ready through its window) or bad.",
            ["env", "service", "verdict"],
        )
        self.rollbacks = counter(
            "rollbacks_total",
            "Bad changes rolled back, by outcome: rolled_back (a rollback step proven), "
            "held (the change never ran: its image does not exist), failed.",
            ["env", "service", "outcome"],
        )
        self.usage_samples = counter(
            "usage_samples_total",
            "Resource samples of running containers (the engine's one-shot stats), by result: "
            "ok, gone (removed meanwhile) or failed.",
            ["env", "result"],
        )
        self.sampling_cpu = counter(
            "usage_sampling_cpu_seconds_total",
            "CPU the controller's threads spent sampling resources (stats and disk usage).",
            ["env"],
        )
        self.engine_up = Gauge(
            f"{PREFIX}_engine_up",
            "1 when the Docker engine answered the last pass, else 0.",
            ["env"],
            registry=registry,
        )
        self.config_reload_ok = Gauge(
            f"{PREFIX}_config_last_reload_successful",
            "1 when the newest reload of the desired state worked (or none was asked), "
            "0 when it was refused and the state before kept.",
            ["env"],
            registry=registry,
        )
        self.config_reload_at = Gauge(
            f"{PREFIX}_config_last_reload_success_timestamp_seconds",
            "When the desired state in force was loaded (epoch seconds): at start, then at "
            "each reload that worked.",
            ["env"],
            registry=registry,
        )
        for result in PASS_RESULTS:
            self.reconcile_passes.labels(env, result)
        self.reconcile_duration.labels(env)
        self.engine_up.labels(env).set(0)
        for event in NotifyEvent:
            for outcome in NOTIFY_RESULTS:
                self.notifications.labels(env, event, outcome)
        self.notification_duration.labels(env)
        for result in SAMPLE_RESULTS:
            self.usage_samples.labels(env, result)
        self.sampling_cpu.labels(env)

    def declare(self, services: Iterable[str], patterns: Iterable[PatternDef]) -> None:
        """Create every per-service and per-pattern series at zero."""
        for service in services:
            self.log_lines.labels(self.env, service)
            self.restarts.labels(self.env, service)
            self.detection.labels(self.env, service)
            self.recovery.labels(self.env, service)
            for verdict in (ChangeVerdict.GOOD, ChangeVerdict.BAD):
                self.changes.labels(self.env, service, verdict)
            for outcome in ROLLBACK_OUTCOMES:
                self.rollbacks.labels(self.env, service, outcome)
            for action in Action:
                self.remediation_duration.labels(self.env, service, action)
                for outcome in Outcome:
                    self.remediation_actions.labels(self.env, service, action, outcome)
        for pattern in patterns:
            self.findings.labels(self.env, pattern.id, pattern.category)
        self.findings.labels(self.env, "unclassified", Category.HEALTH)
        self.findings.labels(self.env, RESTART_PATTERN, Category.HEALTH)

    def log_lines_read(self, service: str, count: int) -> None:
        self.log_lines.labels(self.env, service).inc(count)

    def finding(self, pattern_id: str, category: Category) -> None:
        self.findings.labels(self.env, pattern_id, category).inc()

    def restarted(self, service: str, times: int = 1) -> None:
        self.restarts.labels(self.env, service).inc(times)

    def sampled(self, ok: int, gone: int, failed: int, cpu_seconds: float) -> None:
        """One round of resource samples and what it cost."""
        for result, count in zip(SAMPLE_RESULTS, (ok, gone, failed), strict=True):
            if count:
                self.usage_samples.labels(self.env, result).inc(count)
        self.sampling_cpu.labels(self.env).inc(max(0.0, cpu_seconds))

    def pass_done(self, result: str, seconds: float) -> None:
        self.reconcile_passes.labels(self.env, result).inc()
        if result == "ok":
            self.reconcile_duration.labels(self.env).observe(seconds)

    def config_loaded(self, ok: bool, at: float) -> None:
        """A load of the desired state (at start or a reload) worked, or was refused."""
        self.config_reload_ok.labels(self.env).set(1 if ok else 0)
        if ok:
            self.config_reload_at.labels(self.env).set(at)

    def engine_reachable(self, up: bool) -> None:
        self.engine_up.labels(self.env).set(1 if up else 0)

    def remediation_done(
        self, service: str, action: Action, outcome: Outcome, seconds: float
    ) -> None:
        self.remediation_actions.labels(self.env, service, action, outcome).inc()
        self.remediation_duration.labels(self.env, service, action).observe(seconds)

    def change_judged(self, service: str, verdict: ChangeVerdict) -> None:
        self.changes.labels(self.env, service, verdict).inc()

    def rollback_done(self, service: str, outcome: str) -> None:
        """``outcome``: one of ``ROLLBACK_OUTCOMES``."""
        self.rollbacks.labels(self.env, service, outcome).inc()

    def notified(self, event: str, result: str) -> None:
        self.notifications.labels(self.env, event, result).inc()

    def notification_took(self, seconds: float) -> None:
        self.notification_duration.labels(self.env).observe(seconds)

    def detected(self, service: str, seconds: float) -> None:
        self.detection.labels(self.env, service).observe(max(0.0, seconds))

    def recovered(self, issue: Issue) -> None:
        """Observe how long a resolved issue's fault lasted."""
        end = issue.last_seen if issue.source != "drift" else issue.resolved_at
        if end is not None:
            seconds = (end - issue.opened_at).total_seconds()
            self.recovery.labels(self.env, issue.service).observe(max(0.0, seconds))


@dataclass(frozen=True, slots=True)
class StateView:
    """What the collector reads at scrape time (the issue store, the records, the queue)."""

    issues: Callable[[], list[Issue]]
    services: Callable[[], list[ServiceStatus]]
    queue_depth: Callable[[], int]
    workers_busy: Callable[[], int]
    workers_max: int
    records: Callable[[], dict[str, ServiceRecord]]
    rollback: Callable[[], dict[str, RollbackRecord]]
    clock: Callable[[], float]
    trends: Callable[[], list[ResourceTrend]]  # each service's resources, newest round
    learned: Callable[[], dict[str, int]]  # learned precursors by service


def _family(name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{PREFIX}_{name}", doc, labels=labels)


class StateCollector(Collector):
    def __init__(self, env: str, view: StateView) -> None:
        self._env = env
        self._view = view

    def collect(self) -> Iterator[Metric]:
        env, view = self._env, self._view
        issues = view.issues()
        yield from self._issues(issues)
        services = view.services()
        yield from self._services(services, issues)
        for name, doc, value in (
            ("workqueue_depth", "Services waiting for a remediation worker.", view.queue_depth()),
            ("workers_busy", "Remediation workers fixing a service now.", view.workers_busy()),
            ("workers_max", "Remediation workers at most (--max-agents).", view.workers_max),
        ):
            family = _family(name, doc, ["env"])
            family.add_metric([env], value)
            yield family
        yield from self._resources(view.trends())
        learned = _family(
            "precursors_learned",
            "Log templates learned to come before the service's incidents.",
            ["env", "service"],
        )
        counts = view.learned()
        for status in services:
            learned.add_metric([env, status.name], counts.get(status.name, 0))
        yield learned

    def _resources(self, trends: list[ResourceTrend]) -> Iterator[Metric]:
        env = self._env
        ratio = _family(
            "resource_usage_ratio",
            "A resource's newest sample over its limit (memory, pids, writable-layer, "
            "volume/NAME; the worst container of the service).",
            ["env", "service", "resource"],
        )
        left = _family(
            "resource_exhaustion_seconds",
            "Projected seconds until the resource reaches its limit at its trend (robust "
            "fit on the upper envelope); +Inf while it is not rising toward it.",
            ["env", "service", "resource"],
        )
        for trend in trends:
            if not trend.limit:
                continue
            labels = [env, trend.service, trend.resource]
            ratio.add_metric(labels, trend.usage / trend.limit)
            seconds = trend.seconds_left
            left.add_metric(labels, seconds if seconds is not None else float("inf"))
        yield from (ratio, left)

    def _issues(self, issues: list[Issue]) -> Iterator[Metric]:
        env = self._env
        family = _family(
            "issues",
            "Issues not yet resolved, by service, severity, category and state.",
            ["env", "service", "severity", "category", "state"],
        )
        counts: dict[tuple[str, str, str, str], int] = {}
        by_state: dict[IssueState, int] = {s: 0 for s in IssueState if s is not IssueState.RESOLVED}
        by_severity: dict[Severity, int] = dict.fromkeys(Severity, 0)
        for issue in issues:
            if issue.active:
                key = (issue.service, str(issue.severity), str(issue.category), str(issue.state))
                counts[key] = counts.get(key, 0) + 1
                by_state[issue.state] += 1
                by_severity[issue.severity] += 1
        for (service, severity, category, state), n in sorted(counts.items()):
            family.add_metric([env, service, severity, category, state], n)
        yield family
        totals = _family(
            "issues_by_state", "Issues not yet resolved, by state only.", ["env", "state"]
        )
        for state, n in by_state.items():
            totals.add_metric([env, str(state)], n)
        yield totals
        severities = _family(
            "issues_by_severity", "Issues not yet resolved, by severity only.", ["env", "severity"]
        )
        for severity, n in by_severity.items():
            severities.add_metric([env, str(severity)], n)
        yield severities

    def _services(self, services: list[ServiceStatus], issues: list[Issue]) -> Iterator[Metric]:
        env = self._env
        now = to_datetime(self._view.clock())
        records = self._view.records()
        needs_human = {i.service for i in issues if i.state is IssueState.NEEDS_HUMAN}
        ready = _family(
            "service_ready",
            "1 when the service is as declared and its health settled, else 0.",
            ["env", "service"],
        )
        running = _family(
            "service_running_containers", "The service's running containers.", ["env", "service"]
        )
        healthy = _family(
            "service_healthy_containers",
            "The service's healthy containers (health-checked services only).",
            ["env", "service"],
        )
        human = _family(
            "service_needs_human",
            "1 when an issue of the service waits for a person, else 0.",
            ["env", "service"],
        )
        backoff = _family(
            "service_backoff",
            "1 while the service's next fix waits out its backoff, else 0.",
            ["env", "service"],
        )
        rollback = self._view.rollback()
        reverted = _family(
            "service_rolled_back",
            "1 while the service runs a last-good snapshot (a bad change rolled back or "
            "held back), not its declared config, else 0.",
            ["env", "service"],
        )
        nodes = _family(
            "service_node",
            "1 for each swarm node the service's tasks run on (--engine swarm; none on one "
            "engine).",
            ["env", "service", "node"],
        )
        for status in services:
            labels = [env, status.name]
            for node in status.nodes:
                nodes.add_metric([env, status.name, node], 1)
            ready.add_metric(labels, 1 if status.condition is ServiceCondition.READY else 0)
            running.add_metric(labels, status.running)
            if status.healthy is not None:
                healthy.add_metric(labels, status.healthy)
            record = records.get(status.name)
            human.add_metric(
                labels,
                1
                if status.name in needs_human
                or (record is not None and record.throttle.exhausted_at)
                else 0,
            )
            waiting = (
                record is not None
                and record.throttle.next_step_at is not None
                and (record.throttle.next_step_at > now)
            )
            backoff.add_metric(labels, 1 if waiting else 0)
            state = rollback.get(status.name)
            reverted.add_metric(labels, 1 if state is not None and state.rolled_back else 0)
        yield from (ready, running, healthy, human, backoff, reverted, nodes)
