"""The one writer of every service's remediation record (``model.ServiceRecord``).

Everything about fixing a service lives in its record: the throttle (backoff, budget),
the ladder, the step being proven, the crash pattern, Docker's loop, the runbooks run,
what the controller intends, what people and the controller's own commands are doing,
and which container runs were ever ready. The passes, the event watcher and the workers
all change it, each through a method here, under one lock; the rules that say how live
in pure modules (``throttle``, ``crashes``, ``activity``, ``verify``), which return new
values this module keeps. Readers get copies (``get``, ``snapshot``) or ask a question
under the lock (``read``). Saved with the issues and read back at start.

A class of many methods on purpose: each is one named change of a record, so that a
``grep`` for a field finds its writers here and nowhere else.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar

from controller.model import (
    Action,
    Clock,
    ContainerSnapshot,
    Intent,
    RunbookRun,
    ServiceRecord,
    StepRecord,
    to_datetime,
)
from controller.remediate import activity as people
from controller.remediate.crashes import outlive, same_way, with_crash
from controller.remediate.throttle import Permit, ThrottleRules
from controller.remediate.verify import instance

T = TypeVar("T")
KEEP_READY_RUNS = 16  # per service: runs a pass saw ready, newest kept
KEEP_LEFT_BY_US = 32


class Records:
    def __init__(self, rules: Callable[[], ThrottleRules], clock: Clock) -> None:
        self._rules = rules  # from the desired state in force (a reload may change them)
        self._clock = clock
        self._lock = threading.Lock()
        self._runbooks_running: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
        self._records: dict[str, ServiceRecord] = {}
        self.changes = 0  # moves whenever a record changed (the runtime saves then)

    @property
    def rules(self) -> ThrottleRules:
        """The throttle's rules as the desired state in force says."""
        return self._rules()

    # --- reading ------------------------------------------------------------------------

    def read(self, service: str, question: Callable[[ServiceRecord], T]) -> T:
        """``question`` answered on the service's record under the lock; it must not
        change it (use a method of this class to change a record)."""
        with self._lock:
            return question(self._records.get(service) or ServiceRecord())

    def get(self, service: str) -> ServiceRecord:
        return self.read(service, lambda r: r.model_copy(deep=True))

    def snapshot(self) -> dict[str, ServiceRecord]:
        with self._lock:
            return {k: v.model_copy(deep=True) for k, v in sorted(self._records.items())}

    def step(self, service: str) -> StepRecord | None:
        """The step taken on ``service`` and not yet proven or failed."""
        return self.read(service, lambda r: r.step.model_copy() if r.step else None)

    def at_work(self) -> list[str]:
        """Services with a step under way: its command running (or maybe still at work,
        after a restart of the controller), or its proof pending."""
        now = self._clock()
        with self._lock:
            return sorted(
                name
                for name, r in self._records.items()
                if r.step is not None or people.command_left(r.activity, now) > 0
            )

    def restore(self, records: Mapping[str, ServiceRecord]) -> None:
        """What an earlier run saved. A command it was running when it died runs in no
        process now: its span ends where it began (``assume_command`` says how long the
        engine may still be carrying it out)."""
        with self._lock:
            for service, saved in records.items():
                record = saved.model_copy(deep=True)
                activity = record.activity
                if activity.command_started is not None and activity.command_ended is None:
                    activity.command_ended = activity.command_started
                self._records[service] = record
            self.changes += 1

    def forget(self, service: str) -> bool:
        """A service no longer declared: its record goes (declared again, it starts
        afresh); kept while a command of the controller runs on it. True when gone."""
        with self._lock:
            record = self._records.get(service)
            if record is not None and people.command_running(record.activity):
                return False
            if self._records.pop(service, None) is not None:
                self.changes += 1
            return True

    def _change(self, service: str, change: Callable[[ServiceRecord], T]) -> T:
        with self._lock:
            record = self._records.setdefault(service, ServiceRecord())
            before = record.model_dump()
            result = change(record)
            if record.model_dump() != before:  # most calls only confirm: no rewrite of files
                self.changes += 1
            return result

    def _replace(
        self, service: str, update: Callable[[ServiceRecord], tuple[T, dict[str, Any]]]
    ) -> T:
        """A change of whole parts of the record (``update`` returns the result and the
        new parts, computed without changing the record): cheaper than ``_change`` for
        what every pass asks of every service, most times changing nothing."""
        with self._lock:
            record = self._records.setdefault(service, ServiceRecord())
            result, parts = update(record)
            changed = {k: v for k, v in parts.items() if getattr(record, k) != v}
            for name, value in changed.items():
                setattr(record, name, value)
            if changed:
                self.changes += 1
            return result

    # --- the throttle and the step ------------------------------------------------------

    def permit(self, service: str, fault: str) -> Permit:
        """May a step for ``fault`` be taken on ``service`` now?"""

        def ask(record: ServiceRecord) -> Permit:
            permit, record.throttle = self.rules.permit(record.throttle, self._clock(), fault)
            return permit

        return self._change(service, ask)

    def budget_left(self, service: str) -> int:
        return self.read(service, lambda r: self.rules.budget_left(r.throttle, self._clock()))

    def step_started(self, service: str, step: StepRecord, fault: str) -> None:
        """A step for ``fault`` begins: it counts (budget, backoff) from now, even if the
        controller dies while it runs; its proof is pending."""

        def start(record: ServiceRecord) -> None:
            record.throttle, new_fault = self.rules.step_taken(
                record.throttle, self._clock(), fault
            )
            if new_fault:
                record.ladder.tried = []
            record.step = step
            record.intent = Intent()
            record.activity.scaled_down = False  # what it scales now is the controller's

        self._change(service, start)

    def step_progress(self, service: str, step: StepRecord) -> None:
        """The step's command returned, or its proof moved on: what it is proven against."""
        self._change(service, lambda r: setattr(r, "step", step))

    def step_ended(self, service: str, *, fixed: bool) -> None:
        """The step is proven (``fixed``) or failed: the next step waits the backoff; what
        fixed a fault is tried first next time, a failed rung is not tried again in this
        incident (it resets once every rung was tried)."""

        def end(record: ServiceRecord) -> None:
            step, record.step = record.step, None
            record.throttle = self.rules.step_ended(record.throttle, self._clock())
            record.intent = Intent()
            if step is None:
                return
            if fixed:
                record.ladder.tried = []
                for fp in step.addresses:
                    record.ladder.learned[fp] = step.action
            elif step.label not in record.ladder.tried:
                record.ladder.tried.append(step.label)

        self._change(service, end)

    def new_ladder(self, service: str) -> None:
        """Every rung was tried: the ladder starts over (after the backoff)."""
        self._change(service, lambda r: r.ladder.tried.clear())

    def learned(self, service: str) -> dict[str, Action]:
        return self.read(service, lambda r: dict(r.ladder.learned))

    # --- what the passes see ------------------------------------------------------------

    def observe(
        self,
        service: str,
        ready: bool,
        containers: Sequence[ContainerSnapshot],
        *,
        stable_after: float,
        restart_policy: bool,
    ) -> None:
        """A pass saw the service ready (or not), in ``containers``: ready for its hold
        (``stable_after`` and its crash pattern outlived) ends an incident (its rungs and
        Docker's restarts counted afresh next time); ready for the backoff reset resets
        the backoff and forgets the crash pattern. Runs seen ready are remembered."""
        now = self._clock()

        def seen(record: ServiceRecord) -> tuple[None, dict[str, Any]]:
            parts: dict[str, Any] = {}
            runs = [instance(c) for c in containers if c.status.running] if ready else []
            if any(run not in record.ready_runs for run in runs):
                at = to_datetime(now)
                fresh = {**record.ready_runs, **{r: at for r in runs if r not in record.ready_runs}}
                newest = sorted(fresh.items(), key=lambda kv: kv[1])[-KEEP_READY_RUNS:]
                parts["ready_runs"] = dict(newest)
            hold = max(stable_after, self._outlive(record, restart_policy))
            parts["throttle"], stable = self.rules.seen(record.throttle, ready, now)
            if stable:
                parts["crashes"] = record.crashes.model_copy(update={"longest": 0.0, "count": 0})
            since = parts["throttle"].ready_since
            if since is not None and now - since.timestamp() >= hold:
                parts["ladder"] = record.ladder.model_copy(update={"tried": []})
                parts["docker_loop_from"] = None
            return None, parts

        self._replace(service, seen)

    def never_ready(self, container: ContainerSnapshot) -> bool:
        """This run of the container was never seen ready by a pass."""
        return self.read(container.service, lambda r: instance(container) not in r.ready_runs)

    def crashed(
        self,
        service: str,
        runs: Sequence[tuple[str, float]],
        exits: Mapping[str, int] | None = None,
    ) -> None:
        """Runs of the service (``id@StartedAt``, seconds each lasted; ``exits``: their
        exit codes where known) that crashed: its crash pattern, which a fix must outlive
        (``hold``)."""

        def count(record: ServiceRecord) -> None:
            for run, lived in runs:
                record.crashes = with_crash(
                    record.crashes, run, lived, self.rules.backoff_reset, (exits or {}).get(run)
                )

        if runs:
            self._change(service, count)

    def hold(self, service: str, stable_after: float, restart_policy: bool) -> float:
        """Seconds the service must stay ready for its incident to be over: ``stable_after``
        and long enough to outlive its crash pattern (rounded up to a tenth: it is said to
        people, "ready for 41.4 s", never "41.3379 s")."""
        outlive = self.read(service, lambda r: self._outlive(r, restart_policy))
        return max(stable_after, math.ceil(outlive * 10) / 10)

    def same_way(self, service: str) -> str:
        """Why the service's newest crashes were one failure repeating ("" if not)."""
        return self.read(service, lambda r: same_way(r.crashes))

    def _outlive(self, record: ServiceRecord, restart_policy: bool) -> float:
        return outlive(record.crashes, restart_policy, self.rules.backoff_reset)

    def docker_loop_base(self, service: str, restarts: int) -> int:
        """Docker's restart count when its current loop of the service began (``restarts``
        now, if no loop was counted or the count went back: a new container)."""

        def base(record: ServiceRecord) -> int:
            if record.docker_loop_from is None or record.docker_loop_from > restarts:
                record.docker_loop_from = restarts
            return record.docker_loop_from

        return self._change(service, base)

    # --- runbooks -----------------------------------------------------------------------

    def runbook_ran(self, service: str, runbook: str, captures: Mapping[str, str]) -> None:
        """``runbook`` ran for the cause its ``captures`` name (a step of ``service``)."""
        run = RunbookRun(runbook=runbook, captures=dict(captures), at=to_datetime(self._clock()))

        def ran(record: ServiceRecord) -> None:
            others = [
                r for r in record.runbooks if (r.runbook, r.captures) != (runbook, run.captures)
            ]
            record.runbooks = [*others, run]

        self._change(service, ran)

    def claim_runbook(self, runbook: str, captures: Mapping[str, str]) -> bool:
        """Run ``runbook`` for this cause now, unless another step runs it (two services
        that log one missing database, reconciled at once, create it once)."""
        key = (runbook, tuple(sorted(captures.items())))
        with self._lock:
            if key in self._runbooks_running:
                return False
            self._runbooks_running.add(key)
            return True

    def release_runbook(self, runbook: str, captures: Mapping[str, str]) -> None:
        with self._lock:
            self._runbooks_running.discard((runbook, tuple(sorted(captures.items()))))

    def runbook_last_ran(self, runbook: str, captures: Mapping[str, str]) -> datetime | None:
        """When ``runbook`` last ran for this cause, for any service (a cause two services
        log, the missing database, is removed once)."""
        wanted = dict(captures)
        with self._lock:
            times = [
                run.at
                for record in self._records.values()
                for run in record.runbooks
                if run.runbook == runbook and run.captures == wanted
            ]
        return max(times, default=None)

    # --- intent -------------------------------------------------------------------------

    def intend(
        self,
        service: str,
        fingerprints: Iterable[str],
        text: str,
        *,
        waiting_for: Sequence[str] = (),
        backing_off: bool = False,
    ) -> bool:
        """Say what the controller will do next for these issues. True when that is news
        (so a caller logs a decision once, not every pass)."""
        intent = Intent(
            text=text,
            fingerprints=sorted(fingerprints),
            waiting_for=list(waiting_for),
            backing_off=backing_off,
        )

        def say(record: ServiceRecord) -> bool:
            said = record.intent.model_copy(update={"said_at": None})
            if said == intent:
                return False
            record.intent = intent.model_copy(update={"said_at": to_datetime(self._clock())})
            return True

        return self._change(service, say)

    def nothing_to_do(self, service: str) -> None:
        """No issue of the service wants work: it intends nothing."""
        self._change(service, lambda r: setattr(r, "intent", Intent()))

    # --- people and the controller's own commands ---------------------------------------

    @contextmanager
    def commanding(self, service: str) -> Iterator[None]:
        """The controller's command runs on ``service`` inside this block: what the engine
        does meanwhile (and stamps inside it) is the controller's, not a person's."""
        start = self._clock()

        def begin(record: ServiceRecord) -> None:
            record.activity.command_started, record.activity.command_ended = start, None

        self._change(service, begin)
        try:
            yield
        finally:
            ended = self._clock()
            self._change(service, lambda r: setattr(r.activity, "command_ended", ended))

    def assume_command(self, service: str, start: float, end: float) -> None:
        """A command of an earlier run of the controller may still be at work (it was
        killed while the command ran, and the engine carries on): events stamped from
        ``start`` to ``end`` are the controller's."""

        def assume(record: ServiceRecord) -> None:
            record.activity.command_started, record.activity.command_ended = start, end

        self._change(service, assume)

    def command_seen_over(self, service: str) -> None:
        """The command an earlier run left unfinished is seen done: its assumed window
        ends now."""
        now = self._clock()

        def over(record: ServiceRecord) -> None:
            ended = record.activity.command_ended
            if ended is not None:
                record.activity.command_ended = min(ended, now)

        self._change(service, over)

    def command_left(self, service: str) -> float:
        return self.read(service, lambda r: people.command_left(r.activity, self._clock()))

    def command_running(self, service: str) -> bool:
        return self.read(service, lambda r: people.command_running(r.activity))

    def event(self, service: str, action: str, at: float | None, signal: int | None) -> bool:
        """An engine event about ``service`` (stamped ``at``); True when it came from the
        controller's own command."""

        def seen(record: ServiceRecord) -> bool:
            record.activity, ours = people.after_event(
                record.activity, action, at, signal, self._clock()
            )
            return ours

        return self._change(service, seen)

    def operation(self, service: str, containers: Sequence[ContainerSnapshot]) -> str:
        """Why a person's operation holds ``service`` now ("" when none does)."""

        def look(record: ServiceRecord) -> tuple[str, dict[str, Any]]:
            activity, why = people.after_look(record.activity, containers, self._clock())
            return why, {"activity": activity}

        return self._replace(service, look)

    def event_after(self, service: str, read_at: float) -> bool:
        """An engine event about ``service`` was read after ``read_at`` (epoch s)."""
        return self.read(service, lambda r: people.event_after(r.activity, read_at))

    def restart_left(self, service: str) -> float:
        """Seconds a person's stop of ``service`` may still be the first half of a restart."""
        return self.read(service, lambda r: people.restart_left(r.activity, self._clock()))

    def abandoned(self, service: str, timeout: float) -> float:
        """Seconds the person's operation has been seen past ``timeout`` (<= 0: not yet)."""
        return self.read(service, lambda r: people.abandoned(r.activity, self._clock(), timeout))

    def stop_began(self, service: str) -> float | None:
        """Epoch s a person's stop of ``service`` began, while it is stopped by them."""
        return self.read(service, lambda r: people.stop_began(r.activity))

    def stopped_by_person(self, service: str) -> str:
        """``"stop"`` or ``"pause"`` when a person did that last, else ""."""
        return self.read(service, lambda r: r.activity.stopped)

    def left_by_us(self, service: str, containers: Iterable[ContainerSnapshot]) -> None:
        """What the controller's own command left half-done is not a person's operation."""
        ours = people.left_half_done(containers)

        def keep(record: ServiceRecord) -> None:
            known = [c for c in record.activity.left_by_us if c not in ours]
            record.activity.left_by_us = [*known, *ours][-KEEP_LEFT_BY_US:]

        if ours:
            self._change(service, keep)

    def scaled(self, service: str, below: bool) -> bool:
        """A pass saw the swarm service scaled below its declared replicas (``below``) or
        not. True when a person scaled it back up: it was below when the controller last
        looked, and no step of the controller's is under way (it never scales below the
        declaration, and what it scales up is its own)."""

        def seen(record: ServiceRecord) -> tuple[bool, dict[str, Any]]:
            was, now = record.activity.scaled_down, below
            ours = record.step is not None or people.command_running(record.activity)
            if ours:
                now = False  # the controller's own work
            if was == now:  # every pass asks; most change nothing (no copy, no save)
                return False, {}
            activity = record.activity.model_copy(update={"scaled_down": now})
            return was and not ours, {"activity": activity}

        return self._replace(service, seen)

    def person_acted(self, service: str) -> StepRecord | None:
        """A person started or recreated the service: a fresh start, a fresh budget; the
        step being proven, the rungs tried and the crash pattern are theirs now. The step
        it was proving, if one (its issues are no longer the controller's to prove)."""

        def fresh(record: ServiceRecord) -> StepRecord | None:
            dropped = record.step
            record.throttle = self.rules.person_acted(record.throttle)
            record.ladder.tried = []
            record.step = None
            record.docker_loop_from = None
            record.crashes = record.crashes.model_copy(update={"longest": 0.0, "count": 0})
            record.intent = Intent()
            return dropped

        return self._change(service, fresh)
