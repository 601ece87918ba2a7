"""The running controller: one pass, the verdict with its evidence, the life cycle.

A pass: observe the project (containers, probes, config hashes), follow new containers'
logs, ``diff`` against the declaration, record drifts and Docker's restarts in the issue
store, link effects to their root causes, tell each service's record what was seen, see
and judge changes and keep last-good snapshots (``remediate.changes``), queue every
service with an actionable issue (or a step to prove), write the JSON and Markdown
outputs. ``scheduling.PassScheduler`` runs it on the adaptive interval; engine
events, probe changes and finished steps request a pass at once, new log findings one
within 0.5 s. Files are saved at once when an issue comes, goes or is linked, or the
verdict or the engine's reachability moves; counts and notes at most every 0.5 s. The CI
gate (``gate.run_gate``) drives the passes itself through ``open_once``, ``run_pass`` and
``close_once``. Its parts are built and connected by ``runtime.assembly``, the
composition root; docs/architecture.md draws the loop.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any

from loguru import logger

from controller.causes import root_causes
from controller.detect.redact import redact
from controller.detect.restarts import restart_findings
from controller.drift import diff, service_status
from controller.issues.document import ready_and_unblocked
from controller.issues.store import SyncResult
from controller.logfields import context, of_engine, of_issue
from controller.model import (
    Clock,
    DesiredState,
    Issue,
    ObservedState,
    RollbackRecord,
    ServiceCondition,
    ServiceRecord,
    ServiceStatus,
)
from controller.observe.gateway import EngineError, EngineIdentity, EngineUnavailable
from controller.remediate.blame import explained_crashes
from controller.remediate.crashes import policy_crash_runs
from controller.remediate.lastgood import rolled_back_text
from controller.remediate.reconciler import blip_left, stable_after
from controller.runtime.declared import Declared
from controller.runtime.journal import log_drifts, log_findings, time_detection
from controller.runtime.parts import Parts
from controller.runtime.savetrouble import SaveTrouble
from controller.runtime.settings import Settings
from controller.runtime.statefiles import Evidence, SaveFailed

# how long after a restart the engine may still be carrying out a command an earlier run
# of the controller started (a `docker restart` waits up to its 10 s stop timeout)
UNFINISHED_COMMAND_GRACE = 15.0
RETIRED = "no longer declared (the desired state was reloaded)"


class Controller:
    """Holds its parts (``Parts``) and the little a pass leaves for the next: the restart
    counts and starts last seen, whether the engine answered, when the newest pass began.

    Larger than most classes here on purpose: a pass, the verdict it feeds and the life
    cycle that starts and stops the passes read the same parts under one pass lock; the
    parts themselves are built elsewhere (``assembly``), and every rule a pass applies
    lives in a module of its own (``drift``, ``causes``, ``issues``, ``remediate``)."""

    def __init__(self, settings: Settings, declared: Declared, parts: Parts, clock: Clock) -> None:
        self.settings = settings
        self._declared = declared
        self.parts = parts
        self.store = parts.store
        self.metrics = parts.metrics
        self.registry = parts.registry
        self._records = parts.records
        self._remediation = parts.remediation
        self._clock = clock
        self._retiring: set[str] = set()  # taken out of the declaration by a reload
        self._restart_counts: dict[str, int] = {}
        self._starts: dict[str, str] = {}  # each container's start as the last pass saw it
        self._pass_lock = threading.Lock()
        self._engine_ok: bool | None = None
        self._engine_error = "not observed yet"
        self._engine_answered = float("-inf")  # monotonic: when the engine last answered
        self.engine: EngineIdentity | None = None  # which engine, once it answered
        self.passes_completed = 0
        # when the newest completed pass began: the evidence a verdict rests on
        self._observed_at: float | None = None  # epoch seconds (the clock)
        self._observed_mono: float | None = None  # monotonic, against action times
        self.json_path, self.report_path = parts.files.json_path, parts.files.report_path
        self._saved_verdict: tuple[str, bool] | None = None
        self._save_trouble = SaveTrouble()

    @property
    def desired(self) -> DesiredState:
        """The desired state in force (``use`` swaps it)."""
        return self._declared.current()

    def use(self, desired: DesiredState) -> list[str]:
        """Put ``desired`` in force (a reload), between two passes: a pass never sees two
        declarations, and a step already running finishes as it began (the records, the
        issues and the queue carry over). Returns the services it no longer declares: they
        are no longer managed; their issues are resolved and their records dropped by the
        next pass (after the controller's command on one ends). A service declared anew
        is looked at afresh: what waited for a human is the controller's again (declared
        ``enforce: true`` now, a person's stop is undone), and decided under the new
        declaration (a budget still spent hands it back)."""
        with self._pass_lock:
            old = self._declared.swap(desired)
            removed = set(old.services) - set(desired.services)
            self._retiring = (self._retiring | removed) - set(desired.services)
            self.metrics.declare(desired.services, desired.detection.patterns)
            for name, spec in desired.services.items():
                if old.services.get(name, spec) != spec and self.store.release(name):
                    logger.info("{}: declared anew; the controller may fix it again", name)
        self.request_pass()
        return sorted(removed)

    # --- state on disk ------------------------------------------------------------------

    def restore(self) -> None:
        """Take back what an earlier run saved (``StateFiles``); a command it was running
        when it died may still be at work in the engine: its events are the controller's."""
        saved = self.parts.files.load()
        self.store.restore(saved.issues)
        self._records.restore(saved.remediation)
        self._remediation.lastgood.restore(saved.rollback)
        now = self._clock()
        for service, record in saved.remediation.items():
            step = record.step
            spec = self.desired.services.get(service)
            if step is not None and step.finished_at is None and spec is not None:
                # killed while it ran: the engine finishes a restart within the stop grace
                # period and a start; until then what shows is that command at work
                started = min(step.started_at.timestamp(), now)  # a clock set back since
                window = max(UNFINISHED_COMMAND_GRACE, spec.stop_timeout + 5.0)
                self._records.assume_command(service, started, started + window)
        self.parts.logs.reader.restore(saved.log_cursors)
        self.parts.foresight.load()  # the rings of samples, the precursors learned
        if saved.issues:
            logger.info("restored {} issue(s) from {}", len(saved.issues), self.json_path)

    def document(self) -> dict[str, Any]:
        return self.parts.files.document()

    def records(self) -> dict[str, ServiceRecord]:
        """Every service's remediation record (copies)."""
        return self._records.snapshot()

    def save(self, force: bool = False) -> None:
        """Write the state files if anything changed (``force``: anyway); a write that fails
        is one line and retried (``SaveTrouble``), never an error for the caller."""
        try:
            issues = self.parts.files.save(force)
        except SaveFailed as exc:
            said = self._save_trouble.failed(exc, self._clock())
            logger.log("WARNING" if said.loud else "DEBUG", "{}", said.line)
            self.parts.saver.retry_in(said.retry_in)
            return
        if (note := self._save_trouble.succeeded(self._clock())) is not None:
            logger.info("{}", note)
        if issues is not None:
            self.parts.notifier.observe(issues)  # transitions -> its own thread

    def evidence(self, issues: list[Issue] | None = None) -> Evidence:
        converged = self.converged(issues)
        waiting = () if converged else tuple(self.waiting_on())
        return Evidence(converged, self._observed_at, self._engine_error, waiting)

    def waiting_on(self) -> list[str]:
        """What keeps the verdict from "converged" though no issue says so: a step at work,
        a change under watch, a service not yet ready for its hold (words that change
        only when the reason does: the files are written again on news only)."""
        reasons = [f"{s}: a fix step is at work" for s in sorted(self.in_flight())]
        reasons += [f"{s}: its new change is under watch" for s in sorted(self.verdicts_pending())]
        reasons += [
            f"{s}: must stay ready for {self.hold(s):g} s" for s in sorted(self.unsettled())
        ]
        return reasons

    # --- one pass -----------------------------------------------------------------------

    def run_pass(self, submit: bool = True) -> bool:
        """Observe, diff, record, queue fixes (unless not ``submit``), save.

        False when the engine did not answer (nothing is recorded or fixed then).
        """
        with self._pass_lock:
            started = time.monotonic()
            observed_at = self._clock()
            try:
                observed = self.parts.observer.observe()
            except EngineUnavailable as exc:
                self._engine_state(False, str(exc))
                self.save()  # the files say the engine is gone (written once per change)
                self.metrics.pass_done("engine_unavailable", time.monotonic() - started)
                return False
            except EngineError as exc:
                of_engine(self._engine_address).error("pass failed: {}", exc)
                self.metrics.pass_done("error", time.monotonic() - started)
                return False
            self._engine_state(True)
            self.parts.prober.update(observed)
            self.parts.sampler.update(observed)
            self._count_restarts(observed)
            news = self._retire()
            news = self._record(observed) or news
            # logs followed once what runs is recorded: a line read meets readiness known
            # (an error while a dependency starts is judged by it, ``logflow.expected``)
            self.parts.logs.sync(observed)
            if submit:
                for service in self._proving():
                    self._remediation.pool.submit(service)  # a proof the queue lost
                for service in self.store.actionable():
                    if service in self.desired.services:  # orphans are only reported
                        self._remediation.pool.submit(service)
            self._observed_at, self._observed_mono = observed_at, started
            verdict = (self._engine_error, self.converged())
            if news or verdict != self._saved_verdict:
                self._saved_verdict = verdict
                self.parts.saver.now()  # an issue came, went or was linked; the verdict
            else:
                self.parts.saver.request()  # only counts and notes: within 0.5 s
            self.passes_completed += 1
            self.parts.foresight.maybe_save()
            self.metrics.pass_done("ok", time.monotonic() - started)
            self.parts.scheduler.adapt(self.attention())
            if unsettled := self.unsettled():  # the verdict turns when the first hold ends
                self.parts.scheduler.request_in(min(unsettled.values()), key="hold")
            # a person's stop that no start followed (not a restart) is recorded then
            restarts = [self._records.restart_left(s) for s in self.desired.services]
            if restarts := [left for left in restarts if left > 0]:
                self.parts.scheduler.request_in(min(restarts), key="restart")
            if (due := self._remediation.changes.next_look()) is not None:
                self.parts.scheduler.request_in(due, key="change")  # a verdict may turn
            return True

    def _record(self, observed: ObservedState) -> bool:
        """One observation into the store and the records; True when an issue came, went
        or was linked."""
        drifts = self._remediation.changes.declared_as(diff(self.desired, observed))
        drifts = self._remediation.signals.dated(drifts)
        statuses = [service_status(spec, observed) for spec in self.desired.services.values()]
        holds = {name: self.hold(name) for name in self.desired.services}
        frozen = self._remediation.signals.frozen(observed)
        synced = self.store.sync_drifts(drifts, statuses, frozen, holds)
        log_drifts(synced)
        time_detection(self.metrics, synced, observed, self._clock())
        freed = self.store.resolve_with_causes() + self.store.resolve_started()
        freed += self.store.resolve_departed()
        for issue in freed:
            of_issue(issue).info(
                "{}: {}: {} issue {}", issue.service, issue.resolution, issue.title, issue.id
            )
        active = self.store.active()
        crashes = explained_crashes(active, observed, self._records.never_ready)
        for issue in (linked := self.store.link_causes(root_causes(self.desired, active, crashes))):
            of_issue(issue).info(
                "{}: {} is caused by an upstream issue ({}); fixing that first",
                issue.service,
                issue.title,
                "; ".join(f"{i}: {why}" for i, why in issue.cause_evidence.items()),
            )
        self._remediation.signals.pass_seen(statuses, observed)
        ready_for = {status.name: secs for status, secs in self.store.services_ready_for()}
        changed = self._remediation.changes.pass_seen(observed, frozen, ready_for)
        changed = self._remediation.nodes.pass_seen(observed) or changed
        # crashes, OOM kills, unhealthy turns, changes judged bad
        self.parts.learning.incidents(synced, (), self._remediation.changes.judged_bad())
        self.parts.learning.settle()
        quiet = self.desired.detection.resolve_after_quiet
        for issue in (expired := self.store.expire_log_issues(quiet)):
            of_issue(issue).info(
                "{}: log error stopped: {} issue {}", issue.service, issue.title, issue.id
            )
        return bool(
            synced.opened
            or synced.reopened
            or synced.recovered
            or linked
            or freed
            or expired
            or changed
        )

    def _count_restarts(self, observed: ObservedState) -> None:
        findings, counts = restart_findings(self._restart_counts, observed, self._clock())
        for service, runs in policy_crash_runs(self._restart_counts, self._starts, observed):
            self._records.crashed(service, runs)  # a crash pattern to outlive
        self._restart_counts = counts
        self._starts = {c.id: c.started_at for c in observed.containers}
        if findings:
            self.parts.learning.incidents(SyncResult(), findings)  # Docker restarted them
            for finding in findings:
                self.metrics.finding(finding.pattern_id, finding.category)
                self.metrics.restarted(finding.service)
            self.on_findings(self.store.record_findings(findings, self.desired.detection))

    def _proving(self) -> list[str]:
        """Steps being proven whose worker is not busy with them (a restart lost the key)."""
        return [
            s
            for s in self._records.at_work()
            if not self._records.command_running(s) and s in self.desired.services
        ]

    def _retire(self) -> bool:
        """Services a reload took out of the declaration: their active issues resolved,
        their records dropped, once no command of the controller runs on them. True when
        an issue went."""
        news = False
        for service in sorted(self._retiring):
            if not self._records.forget(service):
                continue  # its step's command still runs: it finishes first
            self._retiring.discard(service)
            for issue in self.store.retire(service, RETIRED):
                logger.info("{}: {} issue {} resolved: {}", service, issue.title, issue.id, RETIRED)
                news = True
        return news

    def _engine_state(self, ok: bool, why: str = "") -> None:
        why = redact(why)  # the engine's words, and an address that may carry a password
        self._engine_error = "" if ok else why
        self.metrics.engine_reachable(ok)
        if ok:
            self._engine_answered = time.monotonic()
        if ok != self._engine_ok:
            if ok:
                self._engine_back()
            else:
                of_engine(self._engine_address).error(
                    "engine unreachable, nothing observed or changed: {}", why
                )
        self._engine_ok = ok

    @property
    def _engine_address(self) -> str | None:
        """Where the engine answered last (the ``engine`` field of a log line about it)."""
        return redact(self.engine.host) if self.engine is not None else None

    def _engine_back(self) -> None:
        """Say the engine answers and which one it is (at start and after every outage),
        and warn when another engine answers at the same address than before."""
        try:
            engine, trouble = self.parts.gateway.identity(), ""
        except EngineError as exc:
            engine, trouble = None, redact(str(exc))
        log = of_engine(redact(engine.host) if engine is not None else self._engine_address)
        log.info("engine reachable; observing project {}", self.desired.project)
        if engine is None:
            log.warning("engine: could not say which one ({})", trouble)
            return
        log.info("managing the engine at {}", redact(str(engine)))
        if self.engine is not None and self.engine.id != engine.id:
            log.warning(
                "another engine answers than before: id {} was {}", engine.id, self.engine.id
            )
        self.engine = engine

    # --- what the other parts tell it ---------------------------------------------------

    def on_findings(self, result: SyncResult) -> None:
        log_findings(self.metrics, result, self._clock())
        self.parts.saver.request()  # a flood of findings is saved at most every 0.5 s
        if result.opened or result.reopened or result.escalated:
            self.parts.scheduler.request_soon()

    def on_event(
        self, service: str, action: str, at: float | None, signal: int | None = None
    ) -> None:
        with context(service or None, event=action, engine=self._engine_address):
            logger.debug("event: {} {}", service or "?", action)
            self._remediation.signals.event(service, action, at, signal)
        self.request_pass()

    def on_event_stream(self, up: bool) -> None:
        # down: a pass finds out whether the engine is gone (and /readyz says so);
        # up again: a full resync, events may have been missed meanwhile
        if not up:
            of_engine(self._engine_address).warning("event stream lost; checking the engine")
        self.parts.cache.watching(up)  # without events the cache inspects everything
        self.request_pass()

    def request_pass(self) -> None:
        """Run a pass as soon as possible (coalesced with any pass already running)."""
        self.parts.scheduler.request()

    def scheduled_pass(self) -> None:
        try:
            self.run_pass()
        except Exception:
            logger.exception("pass failed unexpectedly")
            self.metrics.pass_done("error", 0.0)

    # --- the verdict --------------------------------------------------------------------

    def attention(self) -> str | None:
        """What is wrong or not yet settled, in a few words (the fast interval applies,
        and its log line says why), or None. A node drained on a swarm opens no issue:
        its moved tasks are services not ready, then settling for their hold."""
        if active := self.store.active():
            return f"issues open: {_names(i.service for i in active)}"
        if waiting := [
            s.name for s in self.store.services() if s.condition is not ServiceCondition.READY
        ]:
            return f"not ready: {_names(waiting)}"
        if unsettled := self.unsettled():
            return f"settling (ready, not yet for its hold): {_names(unsettled)}"
        if pending := self.verdicts_pending():
            return f"a change under watch: {_names(pending)}"
        return None

    def unsettled(self) -> dict[str, float]:
        """Required services that are ready but not yet for their hold (``min_ready``; at
        least 10 s under a restart policy; long enough to outlive a crash pattern), with
        the seconds left: one that comes up and crashes again moments later, or
        crash-loops under Docker's restart policy, must not count as converged in the gap
        between two crashes."""
        return self._unsettled(self.store.services_ready_for())

    def _unsettled(self, snapshot: list[tuple[ServiceStatus, float]]) -> dict[str, float]:
        left: dict[str, float] = {}
        for status, ready_for in snapshot:
            if not status.required or status.condition is not ServiceCondition.READY:
                continue
            remaining = self.hold(status.name) - ready_for
            if remaining > 0:
                left[status.name] = remaining
        return left

    def hold(self, service: str) -> float:
        """Seconds ``service`` must stay ready before it counts (see ``unsettled``)."""
        spec = self.desired.services.get(service)
        if spec is None:
            return 0.0
        return self._records.hold(service, stable_after(spec), spec.restart.restarts)

    def converged(self, issues: list[Issue] | None = None) -> bool:
        """Converged, with evidence: the engine answered the newest pass, that pass began
        after the controller's last action and saw every declared service, no fix is
        running or queued, every required service is ready and has stayed ready for its
        hold, and no blocking issue is open.
        """
        if not self._engine_ok or self._observed_mono is None:
            return False
        if self.in_flight():
            return False  # a step is running or not yet proven
        if self.verdicts_pending():
            return False  # a change is under watch: good or bad is not known yet
        if self._remediation.runner.last_action_at >= self._observed_mono:
            return False  # something changed since the newest observation
        snapshot = self.store.services_ready_for()  # one read for both checks
        statuses = [status for status, _ in snapshot]
        if {s.name for s in statuses} != set(self.desired.services):
            return False
        if self._unsettled(snapshot):
            return False  # up, but not yet for long enough to trust
        return ready_and_unblocked(self.store.active() if issues is None else issues, statuses)

    def verdicts_pending(self) -> list[str]:
        """Required services with a change still under watch (no verdict yet)."""
        return self._remediation.changes.pending()

    def rolled_back(self) -> dict[str, RollbackRecord]:
        """Services that run a last-good snapshot, not their declared config, with their
        rollback records."""
        return {
            name: record
            for name, record in self._remediation.lastgood.snapshot().items()
            if record.rolled_back is not None and name in self.desired.services
        }

    def not_as_declared(self) -> dict[str, str]:
        """Services that run something else than their declaration on purpose, each with
        what and why in words: a last-good snapshot (``rolled_back``), or on a swarm the
        previous spec Swarm rolled back to."""
        found = {
            name: rolled_back_text(record.rolled_back)
            for name, record in self.rolled_back().items()
            if record.rolled_back is not None
        }
        return dict(sorted({**self._remediation.changes.swarm_rolled_back(), **found}.items()))

    def in_flight(self) -> list[str]:
        """Services with a step under way: its command running, or its proof pending."""
        return self._records.at_work()

    @property
    def steps_taken(self) -> int:
        return self._remediation.runner.steps_taken

    @property
    def workers_busy(self) -> int:
        return self._remediation.pool.busy

    def work_queued(self) -> bool:
        """A reconcile is waiting for a worker now."""
        return self._remediation.pool.queue.depth > 0

    def work_due_later(self) -> bool:
        """A reconcile is due later (a blip left to heal, Docker's loop watched)."""
        return bool(self._remediation.pool.queue.delayed)

    def blips_pending(self) -> bool:
        """Some drift is still within ``blip_seconds`` of appearing (left to heal)."""
        return any(
            blip_left(issues, self.settings.blip_seconds, self._clock()) > 0
            for service, issues in self.store.actionable().items()
            if service in self.desired.services
        )

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

    # --- life cycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Start the workers, the log pipeline, the event watcher, the scheduler and the
        reload's watch; the first pass runs at once."""
        self.restore()
        self.parts.saver.start()
        self._remediation.pool.start()
        self.parts.logs.start()
        self.parts.prober.start()
        self.parts.scheduler.start()
        self.parts.events.start()
        self.parts.sampler.start()
        self.parts.reloader.start()

    def stop(self) -> None:
        """Stop polling, let running fixes finish (up to the shutdown timeout), save."""
        self.parts.reloader.stop()  # a reload under way ends first
        self.parts.sampler.stop()
        self.parts.events.stop()
        self.parts.prober.stop()
        self.parts.scheduler.stop()
        with self._pass_lock:  # let a running pass end before the workers go
            pass
        cut_short = self._remediation.pool.stop(self.settings.shutdown_timeout)
        if cut_short:
            logger.warning("shutdown cut short the fix of: {}", ", ".join(cut_short))
        self.parts.logs.stop()
        self.parts.saver.stop()
        self._final_save()
        self.parts.foresight.save()
        self.parts.notifier.close(self.settings.shutdown_timeout)
        self.parts.gateway.close()

    def _final_save(self) -> None:
        """The last save; what it could not write is said (the process still ends well)."""
        self.save(force=True)
        files = f"{self.parts.files.json_path} and {self.parts.files.report_path.name}"
        if (unwritten := self._save_trouble.unwritten(files)) is not None:
            logger.error("{}", unwritten)

    @property
    def saves_pending(self) -> int:
        """Saves that failed since the last one that worked (0: the files are current)."""
        return self._save_trouble.pending

    def open_once(self) -> None:
        """For the CI gate (``gate.run_gate``): restore and start the workers, the log
        pipeline, the probes and the event watcher, but no scheduler: the gate drives the
        passes itself. Events only queue a service's reconcile sooner (a death ends its
        step's proof at once, not at the proof's next look) and keep the container cache
        current, as they do for the controller that keeps running."""
        self.restore()
        self.parts.saver.start()
        self._remediation.pool.start()
        self.parts.logs.start()
        self.parts.prober.start()
        self.parts.events.start()

    def close_once(self) -> None:
        """End of the CI gate: let running fixes finish (up to the shutdown timeout),
        record what the services logged, save, and let go of the engine."""
        self.parts.events.stop()
        if self._remediation.pool.stop(self.settings.shutdown_timeout):
            self.run_pass(submit=False)  # report what the cut-short fixes left
        self.parts.logs.settle(2.0)  # what the services logged so far belongs in the report
        self.parts.logs.stop()
        self.parts.prober.stop()
        self.parts.saver.stop()
        self._final_save()
        self.parts.notifier.close(self.settings.shutdown_timeout)
        self.parts.gateway.close()


def _names(services: Iterable[str]) -> str:
    """Services named once each, in order, for a log line."""
    return ", ".join(sorted(set(services)))
