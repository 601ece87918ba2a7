"""The controller: the stages wired together, one reconcile pass, the verdict, start/stop.

One reconcile pass: observe the project (containers, probes, config hashes), follow new
containers' logs, ``diff`` against the declaration, record drifts and Docker's restarts
in the issue store, link effects to their root causes, queue every service with an
actionable issue (or a step to prove), write the JSON and Markdown outputs.
``scheduling.PassScheduler`` runs it on the adaptive interval; engine events, probe
changes and finished steps request a pass at once, new log findings one within 0.5 s.
Files are saved at once when an issue comes, goes or is linked, or the verdict or the
engine's reachability moves; counts and notes are saved at most every 0.5 s. The CI gate
(``gate.run_gate``) drives the passes itself through ``open_once``, ``reconcile_pass``
and ``close_once``. docs/architecture.md draws the loop.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from loguru import logger
from prometheus_client import CollectorRegistry

from controller.detect.redact import redact
from controller.detect.restarts import restart_findings
from controller.issues.document import converged
from controller.issues.saver import DebouncedSaver
from controller.issues.store import IssueStore, SyncResult
from controller.logflow import LogPipeline
from controller.metrics import Metrics, StateCollector, StateView
from controller.model import (
    Clock,
    DesiredState,
    Issue,
    ObservedState,
    ServiceCondition,
    ServiceStatus,
    system_clock,
)
from controller.notify import Notifier
from controller.observe.compose_cli import ComposeCli
from controller.observe.compose_model import ConfigHashes, HashSource
from controller.observe.engine import DockerEngine
from controller.observe.events import EventWatcher
from controller.observe.gateway import (
    EngineError,
    EngineGateway,
    EngineIdentity,
    EngineUnavailable,
)
from controller.observe.informer import ContainerCache
from controller.observe.observer import Observer
from controller.observe.probes import Prober
from controller.reconcile import diff, root_causes, service_status
from controller.remediate.policy import RetryPolicy
from controller.remediate.reconciler import blip_left, stable_after
from controller.remediate.remediator import Remediator
from controller.remediate.strategies import Actuator, ComposeActions
from controller.runtime.journal import log_drifts, log_findings, time_detection
from controller.runtime.savetrouble import SaveTrouble
from controller.runtime.settings import Settings
from controller.runtime.statefiles import SaveFailed, StateFiles, Verdict
from controller.scheduling import PassScheduler

# how long after a restart the engine may still be carrying out a command an earlier run
# of the controller started (a `docker restart` waits up to its 10 s stop timeout)
UNFINISHED_COMMAND_GRACE = 15.0


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
        self.containers = ContainerCache(self._gateway, desired.project, wall=clock)  # events
        self.observer = Observer(
            self._gateway,
            desired.project,
            clock,
            self.prober.view,
            config_hashes.current,
            cache=self.containers,
        )
        self._restart_counts: dict[str, int] = {}
        self._holds = {name: stable_after(spec) for name, spec in desired.services.items()}
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
            blip=settings.blip_seconds,
            clock=clock,
            on_change=self._on_remediation_change,
            save_now=lambda: self.save(force=True),
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
                    histories=self.remediator.limiter.snapshot,
                    clock=clock,
                ),
            )
        )
        self.notifier = Notifier(
            desired.notify,
            desired.env,
            self.metrics.notified,
            self.metrics.notification_took,
            clock,
        )
        self.scheduler = PassScheduler(
            self._scheduled_pass, settings.interval_active, settings.interval_quiet
        )
        self._pass_lock = threading.Lock()
        self._engine_ok: bool | None = None
        self._engine_error = "not observed yet"
        self._engine_answered = float("-inf")  # monotonic: when the engine last answered
        self.engine: EngineIdentity | None = None  # which engine, once it answered
        self.passes_completed = 0
        # when the newest completed pass began: the evidence a verdict rests on
        self._observed_at: float | None = None  # epoch seconds (the clock)
        self._observed_mono: float | None = None  # monotonic, against action times
        self.files = StateFiles(
            state_dir=settings.state_dir,
            env=desired.env,
            project=desired.project,
            dry_run=settings.dry_run,
            store=self.store,
            limiter=self.remediator.limiter,
            cursors=self.logs.reader.cursors,
            verdict=self._verdict,
            clock=clock,
        )
        self.json_path, self.report_path = self.files.json_path, self.files.report_path
        self._save_trouble = SaveTrouble()
        self._saver = DebouncedSaver(self.save)  # counts and notes: at most every 0.5 s
        self._saved_verdict: tuple[str, bool] | None = None

    # --- state on disk ------------------------------------------------------------------

    def restore(self) -> None:
        """Take back what an earlier run saved (``StateFiles``); a command it was running
        when it died may still be at work in the engine: its events are the controller's."""
        saved = self.files.load()
        self.store.restore(saved.issues)
        self.remediator.limiter.restore(saved.remediation)
        now = self._clock()
        for service, history in saved.remediation.items():
            step = history.verifying
            spec = self.desired.services.get(service)
            if step is not None and step.finished_at is None and spec is not None:
                # killed while it ran: the engine finishes a restart within the stop grace
                # period and a start; until then what shows is that command at work
                started = min(step.started_at.timestamp(), now)  # a clock set back since
                window = max(UNFINISHED_COMMAND_GRACE, spec.stop_timeout + 5.0)
                self.remediator.activity.assume_acting(service, started, started + window)
        self.logs.reader.restore(saved.log_cursors)
        if saved.issues:
            logger.info("restored {} issue(s) from {}", len(saved.issues), self.files.json_path)

    def document(self) -> dict[str, Any]:
        return self.files.document()

    def save(self, force: bool = False) -> None:
        """Write the state files if anything changed (``force``: anyway); a write that fails
        is one line and retried (``SaveTrouble``), never an error for the caller."""
        try:
            issues = self.files.save(force)
        except SaveFailed as exc:
            said = self._save_trouble.failed(exc, self._clock())
            logger.log("WARNING" if said.loud else "DEBUG", "{}", said.line)
            self._saver.retry_in(said.retry_in)
            return
        if (note := self._save_trouble.succeeded(self._clock())) is not None:
            logger.info("{}", note)
        if issues is not None:
            self.notifier.observe(issues)  # transitions -> its own thread

    def _verdict(self, issues: list[Issue] | None = None) -> Verdict:
        return Verdict(self.converged(issues), self._observed_at, self._engine_error)

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
            synced = self.store.sync_drifts(drifts, statuses, self._frozen(observed), self._holds)
            log_drifts(synced)
            time_detection(self.metrics, synced, observed, self._clock())
            links = root_causes(self.desired, self.store.active())
            for issue in (linked := self.store.link_causes(links)):
                logger.info(
                    "{}: {} is caused by an upstream issue ({}); fixing that first",
                    issue.service,
                    issue.title,
                    ", ".join(issue.caused_by),
                )
            self.remediator.observe_pass(statuses, observed)
            quiet = self.desired.detection.resolve_after_quiet
            for issue in (expired := self.store.expire_log_issues(quiet)):
                logger.info(
                    "{}: log error stopped: {} issue {}", issue.service, issue.title, issue.id
                )
            if submit:
                for service in self._proving():
                    self.remediator.submit(service)  # a proof the queue lost (a restart)
                for service, _issues in self.store.actionable().items():
                    if service not in self.desired.services:  # orphans are only reported
                        continue
                    self.remediator.submit(service)
            self._observed_at, self._observed_mono = observed_at, started
            verdict = (self._engine_error, self.converged())
            news = synced.opened or synced.reopened or synced.recovered or linked or expired
            if news or verdict != self._saved_verdict:
                self._saved_verdict = verdict
                self._saver.now()  # an issue came, went or was linked; the engine or verdict
            else:
                self._saver.request()  # only counts and notes: within 0.5 s
            self.passes_completed += 1
            self.metrics.pass_done("ok", time.monotonic() - started)
            self.scheduler.adapt(self.needs_attention())
            if unsettled := self.unsettled():  # the verdict turns when the first hold ends
                self.scheduler.request_in(min(unsettled.values()), key="hold")
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

    def _frozen(self, observed: ObservedState) -> set[str]:
        """Services a pass must not record for now: a command of the controller runs on
        them, or a person's operation is in progress (what shows is that work)."""
        activity = self.remediator.activity
        return {
            name
            for name in self.desired.services
            if activity.is_acting(name) or activity.operation(name, observed.of(name))
        }

    def _proving(self) -> list[str]:
        return [
            name
            for name in self.remediator.in_flight()
            if not self.remediator.activity.command_running(name)  # its worker proves it
        ]

    def blips_pending(self) -> bool:
        """Some drift is still within ``blip_seconds`` of appearing (left to heal)."""
        return any(
            blip_left(issues, self.settings.blip_seconds, self._clock()) > 0
            for service, issues in self.store.actionable().items()
            if service in self.desired.services
        )

    def _engine_state(self, ok: bool, why: str = "") -> None:
        why = redact(why)  # the engine's words, and an address that may carry a password
        self._engine_error = "" if ok else why
        self.metrics.engine_reachable(ok)
        if ok:
            self._engine_answered = time.monotonic()
        if ok != self._engine_ok:
            if ok:
                logger.info("engine reachable; observing project {}", self.desired.project)
                self._say_which_engine()
            else:
                logger.error("engine unreachable, nothing observed or changed: {}", why)
        self._engine_ok = ok

    def _say_which_engine(self) -> None:
        """Log which engine the controller manages (at start and after every outage), and
        warn when another engine answers at the same address than before."""
        try:
            engine = self._gateway.identity()
        except EngineError as exc:
            logger.warning("engine: could not say which one ({})", redact(str(exc)))
            return
        logger.info("managing the engine at {}", redact(str(engine)))
        if self.engine is not None and self.engine.id != engine.id:
            logger.warning(
                "another engine answers than before: id {} was {}", engine.id, self.engine.id
            )
        self.engine = engine

    def _on_findings(self, result: SyncResult) -> None:
        log_findings(self.metrics, result, self._clock())
        self._saver.request()  # a flood of findings is saved at most every 0.5 s
        if result.opened or result.reopened or result.escalated:
            self.scheduler.request_soon()

    def _on_event(
        self, service: str, action: str, at: float | None, signal: int | None = None
    ) -> None:
        logger.debug("event: {} {}", service or "?", action)
        self.remediator.on_event(service, action, at, signal)
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
        return (
            bool(self.store.active())
            or any(s.condition is not ServiceCondition.READY for s in self.store.services())
            or bool(self.unsettled())
        )

    def unsettled(self) -> dict[str, float]:
        """Required services that are ready but not yet for their hold (``min_ready``; at
        least 10 s under a restart policy), with the seconds left: one that comes up and
        crashes again moments later, or crash-loops under Docker's restart policy, must not
        count as converged in the gap between two crashes."""
        return self._unsettled(self.store.services_ready_for())

    def _unsettled(self, snapshot: list[tuple[ServiceStatus, float]]) -> dict[str, float]:
        left: dict[str, float] = {}
        for status, ready_for in snapshot:
            if not status.required or status.condition is not ServiceCondition.READY:
                continue
            remaining = self._holds.get(status.name, 0.0) - ready_for
            if remaining > 0:
                left[status.name] = remaining
        return left

    def hold(self, service: str) -> float:
        """Seconds ``service`` must stay ready before it counts (see ``unsettled``)."""
        return self._holds.get(service, 0.0)

    def converged(self, issues: list[Issue] | None = None) -> bool:
        """Converged, with evidence: the engine answered the newest pass, that pass began
        after the controller's last action and saw every declared service, no fix is
        running or queued, every required service is ready and has stayed ready for its
        hold, and no blocking issue is open.
        """
        if not self._engine_ok or self._observed_mono is None:
            return False
        if self.remediator.in_flight():
            return False  # a step is running or not yet proven
        if self.remediator.last_action_at >= self._observed_mono:
            return False  # something changed since the newest observation
        snapshot = self.store.services_ready_for()  # one read for both checks
        statuses = [status for status, _ in snapshot]
        if {s.name for s in statuses} != set(self.desired.services):
            return False
        if self._unsettled(snapshot):
            return False  # up, but not yet for long enough to trust
        return converged(self.store.active() if issues is None else issues, statuses)

    @property
    def engine_error(self) -> str:
        """Why the engine is not answering ("" when it answered the newest pass)."""
        return self._engine_error

    def ready(self) -> bool:
        """For /readyz (and the image's healthcheck): a pass completed, the engine answered
        the newest one, and that was recently (``stale_after``): a hung engine or a pass
        that never ends is not ready either."""
        fresh = time.monotonic() - self._engine_answered <= self.stale_after
        return bool(self._engine_ok) and self.passes_completed > 0 and fresh

    @property
    def stale_after(self) -> float:
        """Seconds without an answer from the engine after which /readyz says not ready:
        two quiet intervals and 30 s (130 s by default); a pass runs at least once per
        quiet interval."""
        return 2 * self.settings.interval_quiet + 30.0

    # --- scheduling ---------------------------------------------------------------------

    def _on_remediation_change(self, finished: bool) -> None:
        self.save()
        if finished:
            self.request_pass()

    def request_pass(self) -> None:
        """Run a pass as soon as possible (coalesced with any pass already running)."""
        self.scheduler.request()

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
        self._final_save()
        self.notifier.close(self.settings.shutdown_timeout)
        self._gateway.close()

    def _final_save(self) -> None:
        """The last save; what it could not write is said (the process still ends well)."""
        self.save(force=True)
        files = f"{self.files.json_path} and {self.files.report_path.name}"
        if (unwritten := self._save_trouble.unwritten(files)) is not None:
            logger.error("{}", unwritten)

    @property
    def saves_pending(self) -> int:
        """Saves that failed since the last one that worked (0: the files are current)."""
        return self._save_trouble.pending

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
        self._final_save()
        self.notifier.close(self.settings.shutdown_timeout)
        self._gateway.close()
