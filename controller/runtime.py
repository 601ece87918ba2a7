"""Wiring: the stages joined into a controller, scheduled, and shut down cleanly.

One reconcile pass: observe the project (containers, probes, config hashes), follow new
containers' logs, ``diff`` against the declaration, record drifts and Docker's restarts
in the issue store, link effects to their root causes, queue every service with an
actionable issue, write the JSON and Markdown outputs. ``scheduling.PassScheduler`` runs
it on the adaptive interval; engine events, probe changes and finished fixes request a
pass at once, new log findings one within 0.5 s. The CI gate (``gate.run_gate``) drives
the passes itself through ``open_once``, ``reconcile_pass`` and ``close_once``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loguru import logger
from prometheus_client import CollectorRegistry

from controller.desired import load_desired
from controller.detect.restarts import restart_findings
from controller.issues.document import (
    IssueFileError,
    build_document,
    converged,
    load_state,
    render_json,
)
from controller.issues.files import atomic_write
from controller.issues.report import render_markdown
from controller.issues.saver import DebouncedSaver
from controller.issues.store import IssueStore, SyncResult
from controller.logflow import LogPipeline
from controller.metrics import Metrics, StateCollector, StateView
from controller.model import (
    Clock,
    ContainerSnapshot,
    DesiredState,
    DriftKind,
    Issue,
    ObservedState,
    ServiceCondition,
    system_clock,
)
from controller.observe.compose_cli import ComposeCli
from controller.observe.compose_model import ConfigHashes, HashSource
from controller.observe.engine import DockerEngine
from controller.observe.events import EventWatcher
from controller.observe.gateway import EngineError, EngineGateway, EngineUnavailable
from controller.observe.informer import ContainerCache
from controller.observe.lines import parse_timestamp
from controller.observe.observer import Observer
from controller.observe.probes import Prober
from controller.reconcile import diff, root_causes, service_status
from controller.remediate.policy import RetryPolicy
from controller.remediate.remediator import Remediator
from controller.remediate.strategies import Actuator, ComposeActions
from controller.scheduling import PassScheduler

_EXITS = frozenset({DriftKind.EXITED, DriftKind.DEAD, DriftKind.RESTARTING})
_HEALTH = frozenset({DriftKind.UNHEALTHY, DriftKind.FAILING_HEALTHCHECK})


def fault_started(kind: str, containers: Sequence[ContainerSnapshot]) -> float | None:
    """When the fault behind a drift began, as the engine recorded it (epoch seconds)."""
    stamps: list[str] = []
    if kind in _EXITS:
        stamps = [c.finished_at for c in containers if c.status != "running" and c.finished_at]
    elif kind in _HEALTH:
        stamps = [c.failing_since for c in containers if c.failing_since]
    parsed = [t for t in (parse_timestamp(s.encode()) for s in stamps) if t is not None]
    if not parsed:
        return None
    # an exit: the latest one is this fault; a failing streak: the earliest start
    return (max(parsed) if kind in _EXITS else min(parsed)) / 1e9


@dataclass(frozen=True, slots=True)
class Settings:
    env: str
    desired_dir: Path = Path("desired_state")
    state_dir: Path = Path(".")
    max_agents: int = 3
    interval_active: float = 5.0
    interval_quiet: float = 50.0
    dry_run: bool = False
    once: bool = False
    once_timeout: float = 300.0
    shutdown_timeout: float = 30.0
    blip_seconds: float = 0.0  # a drift younger than this is left to heal on its own


def load(settings: Settings) -> DesiredState:
    """The declared state of ``settings.env`` (raises ``DesiredStateError``)."""
    return load_desired(
        settings.env, settings.desired_dir, lambda project: ComposeCli(project).config()
    )


class Controller:
    def __init__(
        self,
        settings: Settings,
        desired: DesiredState,
        *,
        gateway: EngineGateway | None = None,
        compose: ComposeActions | None = None,
        hashes: HashSource | None = None,
        registry: CollectorRegistry | None = None,
        clock: Clock = system_clock,
    ) -> None:
        self.settings = settings
        self.desired = desired
        self.registry = registry if registry is not None else CollectorRegistry()
        self._gateway = gateway if gateway is not None else DockerEngine()
        self._clock = clock
        self.metrics = Metrics(self.registry, desired.env)
        self.store = IssueStore(desired.env, clock, on_resolved=self.metrics.recovered)
        compose_cli = compose or ComposeCli(desired.compose)
        self.prober = Prober(self._gateway, desired.services, lambda service: self.request_pass())
        config_hashes = ConfigHashes(
            hashes if hashes is not None else ComposeCli(desired.compose),
            (*desired.compose.files, *desired.compose.env_files),
        )
        self.containers = ContainerCache(self._gateway, desired.project)  # fed by events
        self.observer = Observer(
            self._gateway,
            desired.project,
            clock,
            self.prober.view,
            config_hashes.current,
            cache=self.containers,
        )
        self._restart_counts: dict[str, int] = {}
        policy = RetryPolicy.of(desired.remediation, backoff_enabled=not settings.once)
        self.logs = LogPipeline(
            gateway=self._gateway,
            store=self.store,
            settings=desired.detection,
            metrics=self.metrics,
            on_findings=self._on_findings,
        )
        self.remediator = Remediator(
            desired=desired,
            store=self.store,
            observe=self.observer.observe,
            actuator=Actuator(
                self._gateway,
                compose_cli,
                desired.services,
                self.observer.observe,
                desired.remediation.hook,
            ),
            policy=policy,
            metrics=self.metrics,
            max_agents=settings.max_agents,
            dry_run=settings.dry_run,
            clock=clock,
            on_change=self._on_remediation_change,
            retry_after=self.request_pass_in,
            settle_logs=self.logs.settle_containers,
        )
        self.metrics.declare(desired.services, desired.detection.patterns)
        self.events = EventWatcher(
            self._gateway,
            desired.project,
            self._on_event,
            self._on_event_stream,
            on_container=self.containers.event,
        )
        self.registry.register(
            StateCollector(
                desired.env,
                StateView(
                    issues=self.store.issues,
                    services=self.store.services,
                    queue_depth=lambda: self.remediator.queue.depth,
                    workers_busy=lambda: self.remediator.busy,
                    workers_max=settings.max_agents,
                    histories=self.store.histories,
                    clock=clock,
                ),
            )
        )
        self.json_path = settings.state_dir / f"docker_issues_{desired.env}.json"
        self.report_path = settings.state_dir / f"docker_issues_report_{desired.env}.md"
        self.scheduler = PassScheduler(
            self._scheduled_pass, settings.interval_active, settings.interval_quiet
        )
        self._pass_lock = threading.Lock()
        self._save_lock = threading.Lock()
        self._saved_changes: tuple[int, str, bool] | None = None
        self._saver = DebouncedSaver(self.save)  # log findings: at most every 0.5 s
        self._engine_ok: bool | None = None
        self._engine_error = "not observed yet"
        self.passes_completed = 0
        # when the newest completed pass began: the evidence a verdict rests on
        self._observed_at: float | None = None  # epoch seconds (the clock)
        self._observed_mono: float | None = None  # monotonic, against action times

    # --- state on disk ------------------------------------------------------------------

    def restore(self) -> None:
        """Take back what an earlier run saved: issues (history, attempts, backoff) and
        log cursors (so no line is read twice)."""
        try:
            saved = load_state(self.json_path)
        except IssueFileError as exc:
            aside = self.json_path.with_name(
                f"{self.json_path.name}.unreadable-{int(self._clock())}"
            )
            self.json_path.replace(aside)
            logger.warning("{}; kept it as {} and started afresh", exc, aside.name)
            return
        self.store.restore(saved.issues)
        self.store.restore_histories(saved.remediation)
        self.logs.reader.restore(saved.log_cursors)
        if saved.issues:
            logger.info("restored {} issue(s) from {}", len(saved.issues), self.json_path)

    def document(self, issues: list[Issue] | None = None) -> dict[str, Any]:
        """The issues document, from ``issues`` (a snapshot of the store) when given."""
        issues = self.store.issues() if issues is None else issues
        return build_document(
            env=self.desired.env,
            project=self.desired.project,
            issues=issues,
            services=self.store.services(),
            generated_at=self._clock(),
            dry_run=self.settings.dry_run,
            is_converged=self.converged(issues),
            observed_at=self._observed_at,
            engine=self._engine_error,
            log_cursors=self.logs.reader.cursors(),
            remediation=self.store.histories(),
        )

    def save(self, force: bool = False) -> None:
        with self._save_lock:
            # the engine's reachability and the verdict are in the files too, though not
            # in the store (a fix ending changes the verdict, not the issues)
            counter = self.store.changes  # before the snapshot: a later change saves again
            issues = self.store.issues()  # one snapshot for the check and both files
            changes = (counter, self._engine_error, self.converged(issues))
            if changes == self._saved_changes and not force:
                return
            doc = self.document(issues)
            atomic_write(self.json_path, render_json(doc))
            atomic_write(self.report_path, render_markdown(doc))
            self._saved_changes = changes

    # --- one pass -----------------------------------------------------------------------

    def reconcile_pass(self, submit: bool = True) -> bool:
        """Observe, diff, record, queue fixes (unless not ``submit``), save.

        False when the engine did not answer (nothing is recorded or fixed then).
        """
        with self._pass_lock:
            started = time.monotonic()
            observed_at = self._clock()
            try:
                observed = self.observer.observe()
            except EngineUnavailable as exc:
                self._engine_state(False, str(exc))
                self.save()  # the files say the engine is gone (written once per change)
                self.metrics.pass_done("engine_unavailable", time.monotonic() - started)
                return False
            except EngineError as exc:
                logger.error("pass failed: {}", exc)
                self.metrics.pass_done("error", time.monotonic() - started)
                return False
            self._engine_state(True)
            self.logs.sync(observed)
            self.prober.update(observed)
            self._count_restarts(observed)
            drifts = diff(self.desired, observed)
            statuses = [
                service_status(spec, observed) for name, spec in self.desired.services.items()
            ]
            synced = self.store.sync_drifts(drifts, statuses, self.remediator.queue.processing)
            self._log_sync(synced)
            self._time_detection(synced, observed)
            links = root_causes(self.desired, self.store.active())
            for issue in (linked := self.store.link_causes(links)):
                logger.info(
                    "{}: {} is caused by an upstream issue ({}); fixing that first",
                    issue.service,
                    issue.title,
                    ", ".join(issue.caused_by),
                )
            self.remediator.observe_pass(statuses)
            quiet = self.desired.detection.resolve_after_quiet
            for issue in (expired := self.store.expire_log_issues(quiet)):
                logger.info(
                    "{}: log error stopped: {} issue {}", issue.service, issue.title, issue.id
                )
            if submit:
                for service, issues in self.store.actionable().items():
                    if service not in self.desired.services:  # orphans are only reported
                        continue
                    wait = self._blip_left(issues)
                    if wait > 0:  # let it heal on its own first
                        self.request_pass_in(wait)
                        continue
                    self.remediator.submit(service)
            self._observed_at, self._observed_mono = observed_at, started
            saved = self._saved_changes
            if (
                synced.opened
                or synced.reopened
                or synced.recovered
                or linked
                or expired
                or saved is None
                or saved[1:] != (self._engine_error, self.converged())
            ):
                self._saver.now()  # an issue came, went or was linked; the engine or verdict
            else:
                self._saver.request()  # only counts and notes: within 0.5 s
            self.passes_completed += 1
            self.metrics.pass_done("ok", time.monotonic() - started)
            self.scheduler.adapt(self.needs_attention())
            return True

    def _count_restarts(self, observed: ObservedState) -> None:
        findings, self._restart_counts = restart_findings(
            self._restart_counts, observed, self._clock()
        )
        if findings:
            for finding in findings:
                self.metrics.finding(finding.pattern_id, finding.category)
                self.metrics.restarted(finding.service)
            self._on_findings(self.store.record_findings(findings, self.desired.detection))

    def _time_detection(self, synced: SyncResult, observed: ObservedState) -> None:
        """Time to detect, for drifts whose start the engine recorded (an exit, the first
        failing healthcheck of the current streak)."""
        now = self._clock()
        for issue in (*synced.opened, *synced.reopened):
            started = fault_started(issue.kind, observed.of(issue.service))
            if started is not None:
                self.metrics.detected(issue.service, now - started)

    def _blip_left(self, issues: Sequence[Issue]) -> float:
        """Seconds until the youngest of these drifts is no longer a blip (0: act now)."""
        if self.settings.blip_seconds <= 0 or any(i.source != "drift" for i in issues):
            return 0.0
        now = self._clock()
        ages = [now - i.opened_at.timestamp() for i in issues]
        return max(0.0, self.settings.blip_seconds - min(ages))

    def blips_pending(self) -> bool:
        """Some drift is still within ``blip_seconds`` of appearing (left to heal)."""
        return any(
            self._blip_left(issues) > 0
            for service, issues in self.store.actionable().items()
            if service in self.desired.services
        )

    def _engine_state(self, ok: bool, why: str = "") -> None:
        self._engine_error = "" if ok else why
        self.metrics.engine_reachable(ok)
        if ok != self._engine_ok:
            if ok:
                logger.info("engine reachable; observing project {}", self.desired.project)
            else:
                logger.error("engine unreachable, nothing observed or changed: {}", why)
        self._engine_ok = ok

    def _log_sync(self, result: SyncResult) -> None:
        for issue in result.opened:
            logger.warning(
                "{}: drift: {} [{} {}] issue {}",
                issue.service,
                issue.title,
                issue.severity,
                issue.kind,
                issue.id,
            )
        for issue in result.reopened:
            logger.warning(
                "{}: drift again: {} (occurrence {}) issue {}",
                issue.service,
                issue.title,
                issue.occurrences,
                issue.id,
            )
        for issue in result.recovered:
            logger.info(
                "{}: recovered on its own: {} issue {}", issue.service, issue.title, issue.id
            )

    def _on_findings(self, result: SyncResult) -> None:
        now = self._clock()
        for issue in (*result.opened, *result.reopened):  # from the line to the store
            self.metrics.detected(issue.service, now - issue.last_seen.timestamp())
        for issue in result.opened:
            logger.warning(
                "{}: log: {} [{} {}] issue {}: {}",
                issue.service,
                issue.title,
                issue.severity,
                issue.category,
                issue.id,
                issue.detail,
            )
        for issue in result.reopened:
            logger.warning("{}: log error again: {} issue {}", issue.service, issue.title, issue.id)
        for issue in result.escalated:
            logger.warning(
                "{}: {} repeats: severity {} -> {} issue {}",
                issue.service,
                issue.title,
                issue.escalated_from,
                issue.severity,
                issue.id,
            )
        self._saver.request()  # a flood of findings is saved at most every 0.5 s
        if result.opened or result.reopened or result.escalated:
            self.scheduler.request_soon()

    def _on_event(self, service: str, action: str, at: float | None) -> None:
        logger.debug("event: {} {}", service or "?", action)
        self.remediator.on_event(service, action, at)
        self.request_pass()

    def _on_event_stream(self, up: bool) -> None:
        # down: a pass finds out whether the engine is gone (and /readyz says so);
        # up again: a full resync, events may have been missed meanwhile
        if not up:
            logger.warning("event stream lost; checking the engine")
        self.containers.watching(up)  # without events the cache inspects everything
        self.request_pass()

    def needs_attention(self) -> bool:
        """Anything wrong or not yet settled: the fast interval applies."""
        return bool(self.store.active()) or any(
            s.condition is not ServiceCondition.READY for s in self.store.services()
        )

    def converged(self, issues: list[Issue] | None = None) -> bool:
        """Converged, with evidence: the engine answered the newest pass, that pass began
        after the controller's last action and saw every declared service, no fix is
        running or queued, every required service is ready and no blocking issue is open.
        """
        if not self._engine_ok or self._observed_mono is None:
            return False
        if self.remediator.busy or self.remediator.queue.depth:
            return False
        if self.remediator.last_action_at >= self._observed_mono:
            return False  # something changed since the newest observation
        statuses = self.store.services()
        if {s.name for s in statuses} != set(self.desired.services):
            return False
        return converged(self.store.issues() if issues is None else issues, statuses)

    @property
    def engine_error(self) -> str:
        """Why the engine is not answering ("" when it answered the newest pass)."""
        return self._engine_error

    def ready(self) -> bool:
        """For /readyz: the engine answered and at least one pass completed."""
        return bool(self._engine_ok) and self.passes_completed > 0

    # --- scheduling ---------------------------------------------------------------------

    def _on_remediation_change(self, finished: bool) -> None:
        self.save()
        if finished:
            self.request_pass()

    def request_pass(self) -> None:
        """Run a pass as soon as possible (coalesced with any pass already running)."""
        self.scheduler.request()

    def request_pass_in(self, seconds: float) -> None:
        """Run a pass after ``seconds`` (a held service settles, a backoff ends)."""
        self.scheduler.request_in(seconds)

    def _scheduled_pass(self) -> None:
        try:
            self.reconcile_pass()
        except Exception:
            logger.exception("reconcile pass failed unexpectedly")
            self.metrics.pass_done("error", 0.0)

    # --- life cycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Start the workers, the log pipeline, the event watcher and the scheduler; the
        first pass runs at once."""
        self.restore()
        self._saver.start()
        self.remediator.start()
        self.logs.start()
        self.prober.start()
        self.scheduler.start()
        self.events.start()

    def stop(self) -> None:
        """Stop polling, let running fixes finish (up to the shutdown timeout), save."""
        self.events.stop()
        self.prober.stop()
        self.scheduler.stop()
        with self._pass_lock:  # let a running pass end before the workers go
            pass
        cut_short = self.remediator.stop(self.settings.shutdown_timeout)
        if cut_short:
            logger.warning("shutdown cut short the fix of: {}", ", ".join(cut_short))
        self.logs.stop()
        self._saver.stop()
        self.save(force=True)
        self._gateway.close()

    def open_once(self) -> None:
        """For the CI gate (``gate.run_gate``): restore and start the workers, the log
        pipeline and the probes, but no scheduler and no event watcher: the gate drives
        the passes itself."""
        self.restore()
        self._saver.start()
        self.remediator.start()
        self.logs.start()
        self.prober.start()

    def close_once(self) -> None:
        """End of the CI gate: let running fixes finish (up to the shutdown timeout),
        record what the services logged, save, and let go of the engine."""
        if self.remediator.stop(self.settings.shutdown_timeout):
            self.reconcile_pass(submit=False)  # report what the cut-short fixes left
        self.logs.settle(2.0)  # what the services logged so far belongs in the report
        self.logs.stop()
        self.prober.stop()
        self._saver.stop()
        self.save(force=True)
        self._gateway.close()
