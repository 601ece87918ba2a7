"""What every pass does about changes: sees them, judges them, keeps what was good.

For each service whose rollback is not ``off`` (one-shot jobs have none), a pass:

1. Reads what the service runs (``Identity``: the config hash Compose labelled its
   containers with, and their image), once every replica runs the same. A first sight is
   no change; a new identity is, unless it is what the controller's own rollback brings.
   A change records who made it (the controller when its own command created the
   containers, else a person) and its operation: changes of the same hand seen within
   ``OPERATION_SECONDS`` of each other are one operation (``scope: stack`` reverts them
   together). A service a person or a command of the controller is busy with is not read.
2. Judges a change under watch (``verdict``): bad at once when something goes wrong,
   good after the window. A bad one opens the service's ``bad-change`` issue, which the
   reconciler acts on (``auto``: a rollback step; ``notify``: a person, told the command);
   with ``scope: stack`` every change of its operation is bad with it.
3. Notices a declared image that does not exist (the compose files ask for it, nothing
   runs it): a change that never ran, bad once its window has passed.
4. Keeps the ``rolled-back`` issue while the service runs a snapshot and the compose files
   still ask for the bad change; when they change, the rollback is over.
5. Takes a last-good snapshot (``keeper``) of what has stayed ready for its hold and was
   never judged bad: at the first sight, and when a change proves good.

The record it writes is the service's ``RollbackRecord`` (through ``lastgood``, its only
writer); issues go to the store; the rules are ``verdict``'s.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from controller.drift import service_ready
from controller.issues.store import IssueStore
from controller.logfields import of_service
from controller.metrics import Metrics
from controller.model import (
    Change,
    ChangeVerdict,
    Clock,
    ContainerSnapshot,
    DesiredState,
    Drift,
    DriftKind,
    FindingKind,
    Identity,
    ObservedState,
    RollbackMode,
    RollbackRecord,
    RollbackScope,
    RolledBack,
    ServiceRunState,
    ServiceSpec,
    Severity,
    StackView,
    SwarmPause,
    at_utc,
    engine_time,
    to_datetime,
)
from controller.observe.gateway import EngineError
from controller.remediate.keeper import Keeper, SnapshotError
from controller.remediate.lastgood import (
    LastGood,
    bad_change,
    identity_of,
    rolled_back,
    rolled_back_text,
    target,
)
from controller.remediate.reconciler import stable_after
from controller.remediate.records import Records
from controller.remediate.revert import DeclaredModel, Reverter
from controller.remediate.swarmchanges import (
    PAUSED,
    ROLLED_BACK,
    paused_text,
    swarm_rolled_back,
    swarm_rolled_back_text,
)
from controller.remediate.swarmops import Operations
from controller.remediate.swarmverdict import SwarmVerdicts, judged_pause
from controller.remediate.verdict import Judgement, judge, judge_missing, telling

OPERATION_SECONDS = 60.0  # changes by the same hand this close together: one operation
SNAPSHOT_RETRY_SECONDS = 30.0  # a snapshot that could not be taken is tried again after


class ChangeWatch:
    def __init__(
        self,
        *,
        desired: Callable[[], DesiredState],
        lastgood: LastGood,
        records: Records,
        store: IssueStore,
        keeper: Keeper,
        reverter: Reverter,
        declared: DeclaredModel,
        metrics: Metrics,
        clock: Clock,
        dry_run: bool,
        swarm: Operations | None = None,
        verdicts: SwarmVerdicts | None = None,
        rolled: Callable[[str], SwarmPause | None] | None = None,
    ) -> None:
        self._in_force = desired
        self._swarm = swarm  # on a swarm: the updates Swarm paused, and their operations
        self._verdicts = verdicts  # ... the controller's verdict on those Swarm completed
        self._rolled = rolled  # ... and the rollback Swarm completed of one, if any
        # service -> the start of the rollback Swarm completed, and what it was (read once)
        self._swarm_rolled: dict[str, tuple[str, SwarmPause]] = {}
        self._lastgood = lastgood
        self._records = records
        self._store = store
        self._keeper = keeper
        self._reverter = reverter
        self._declared = declared
        self._metrics = metrics
        self._clock = clock
        self._dry_run = dry_run
        self._retry_at: dict[str, float] = {}  # service -> when a snapshot may be tried again
        self._said: dict[str, str] = {}  # service -> why its last snapshot failed (said once)
        self._next: float | None = None  # seconds until a pending verdict may turn
        self._bad: list[tuple[str, float]] = []  # changes judged bad since last taken

    @property
    def _desired(self) -> DesiredState:
        """The desired state in force (a reload swaps it between passes)."""
        return self._in_force()

    def watched(self, spec: ServiceSpec) -> bool:
        return spec.rollback.mode is not RollbackMode.OFF and spec.state is ServiceRunState.RUNNING

    def pending(self) -> list[str]:
        """Required services with a change under watch: no verdict yet."""
        return [
            name
            for name, spec in self._desired.services.items()
            if spec.required and self.watched(spec) and self._pending(name)
        ]

    def _pending(self, service: str) -> bool:
        if self._verdicts is not None:
            return self._verdicts.pending(service)
        return self._lastgood.read(
            service, lambda r: r.change is not None and r.change.verdict is ChangeVerdict.PENDING
        )

    def pass_seen(
        self, observed: ObservedState, frozen: set[str], ready_for: Mapping[str, float]
    ) -> bool:
        """One pass: every watched service not ``frozen``; ``ready_for``: seconds each has
        been ready. True when an issue came or went."""
        news = False
        now = to_datetime(self._clock())
        self._next = None
        for name, spec in self._desired.services.items():
            if name in frozen or not self.watched(spec):
                continue
            try:
                news |= self._service(spec, observed, ready_for.get(name, 0.0), now)
            except EngineError as exc:
                of_service(name).warning("{}: changes not read this pass: {}", name, exc)
        if self._desired.rollback.scope is RollbackScope.STACK:
            news |= self._operations_swept()
        return news

    def _operations_swept(self) -> bool:
        """``scope: stack``: a change of an operation seen in the same pass as the change
        of it judged bad, or later (a pass goes by name, not by time), is bad with it."""
        news = False
        for name in self._desired.services:
            change = self._lastgood.read(name, lambda r: r.change)
            if change is not None and change.verdict is ChangeVerdict.BAD:
                news |= self._whole_operation(name, change, change.reason)
        return news

    def declared_as(self, drifts: list[Drift]) -> list[Drift]:
        """The drifts, but a rolled-back service's config is not "outdated": it runs its
        last-good snapshot on purpose (or is being rolled back to it), and its
        rolled-back issue says so."""
        return [
            d
            for d in drifts
            if d.kind is not DriftKind.OUTDATED
            or self._lastgood.read(d.service, lambda r: r.rolled_back is None and not r.reverting)
        ]

    def judged_bad(self) -> list[tuple[str, float]]:
        """The changes of running services judged bad since the last call: (service, when),
        incidents for the precursor learner (what a rollback reverts). A change that never
        ran (its image does not exist) is none: no run of it printed anything."""
        taken, self._bad = self._bad, []
        return taken

    def next_look(self) -> float | None:
        """Seconds until the earliest verdict still pending may turn (its window or
        deadline ends), as the last pass saw it; None when none is pending."""
        return self._next

    # --- one service --------------------------------------------------------------------

    def _service(
        self, spec: ServiceSpec, observed: ObservedState, ready_for: float, now: datetime
    ) -> bool:
        service = spec.name
        containers = observed.of(service)
        if self._swarm is not None:
            news = self._swarm_service(spec, observed, now)
            return self._swarm_rolled_back(spec, containers, observed.stack) or news
        identity = identity_of(containers)
        news = self._files_moved(service)
        record = self._lastgood.get(service)
        if identity is not None and identity != record.running:
            if record.running is None or self._ours(record, identity):
                self._lastgood.runs(service, identity)
            elif self._reverted_by_hand(record, identity):
                news |= self._by_hand(service, record, identity)
            else:
                news |= self._new_change(spec, record, identity, containers, now)
            record = self._lastgood.get(service)
        change = record.change
        if change is not None and change.verdict is ChangeVerdict.PENDING:
            news |= self._judge(spec, record, change, containers, observed, now)
        elif identity is not None and record.rolled_back is None:
            news |= self._missing_image(spec, record, identity, now)
        record = self._lastgood.get(service)
        news |= self._rolled_back_issue(service, record)
        if identity is not None and self._snapshot_due(spec, record, identity, ready_for):
            self._take_snapshot(spec, containers)
        return news

    def _ours(self, record: RollbackRecord, identity: Identity) -> bool:
        """``identity`` is what a rollback of the controller's own brings (under way, or
        done: the service runs that snapshot)."""
        if record.rolled_back is not None and record.rolled_back.runs == identity:
            return True
        if record.reverting and record.change is not None:
            snapshot = target(record, record.change)
            return snapshot is not None and snapshot.reverts_to == identity
        return False

    def _reverted_by_hand(self, record: RollbackRecord, identity: Identity) -> bool:
        """A person ran the command a bad change's issue told them: the service runs the
        snapshot that command brings."""
        change = record.change
        if change is None or change.verdict is not ChangeVerdict.BAD or record.reverting:
            return False
        snapshot = target(record, change)
        return snapshot is not None and snapshot.reverts_to == identity

    def _by_hand(self, service: str, record: RollbackRecord, identity: Identity) -> bool:
        change = record.change
        assert change is not None
        snapshot = target(record, change)
        assert snapshot is not None
        rolled = RolledBack(
            change=change.id,
            bad=change.after,
            snapshot=snapshot.number,
            runs=identity,
            because=change.reason,
            declared_hash=self._declared.hashes().get(service, ""),
            at=to_datetime(self._clock()),
        )
        self._lastgood.rolled_back(service, rolled)
        self._metrics.rollback_done(service, "rolled_back")
        text = f"{rolled_back_text(rolled)} (by a person, with the command it was told)"
        of_service(service).warning("{}: {}", service, text)
        return self._store.settle(bad_change(service), text)

    def _files_moved(self, service: str) -> bool:
        """The compose files no longer ask for the change that was rolled back: the
        rollback is over (the service is outdated against them until someone applies
        them, and that is a change with its own verdict)."""
        rolled = self._lastgood.read(service, lambda r: r.rolled_back)
        if rolled is None or not rolled.declared_hash:
            return False
        declared = self._declared.hashes().get(service, "")
        if not declared or declared == rolled.declared_hash:
            return False
        self._lastgood.declared_again(service)
        of_service(service).info("{}: its compose files changed since it was rolled back", service)
        return self._store.settle(
            rolled_back(service),
            "the compose files changed since the rollback: applying them is a new change, "
            "with its own verdict",
        )

    def _new_change(
        self,
        spec: ServiceSpec,
        record: RollbackRecord,
        identity: Identity,
        containers: Sequence[ContainerSnapshot],
        now: datetime,
    ) -> bool:
        service = spec.name
        before = record.running or Identity()
        by = self._who(service, containers)
        starts = [t for c in containers if (t := engine_time(c.started_at)) is not None]
        change = Change(
            id=_change_id(service, before, identity, now),
            before=before,
            after=identity,
            by=by,
            operation=self._operation(service, by, now),
            seen_at=now,
            started_at=min(starts, default=None),
            restarts={c.id: c.restart_count for c in containers},
        )
        news = False
        if record.change is not None and record.change.verdict is ChangeVerdict.BAD:
            news |= self._store.settle(
                bad_change(service), f"{by} changed it again ({identity}) before it was reverted"
            )
        if record.rolled_back is not None:
            news |= self._store.settle(
                rolled_back(service),
                f"{by} changed it again ({identity}): that change gets its own verdict",
            )
        self._lastgood.changed(service, change)
        of_service(service).info(
            "{}: changed by {} from {} to {}: under watch for {:g} s",
            service,
            by,
            before,
            identity,
            spec.rollback.window_for(self._hold(spec)),
        )
        return news

    def _who(self, service: str, containers: Sequence[ContainerSnapshot]) -> str:
        """The controller, when its own command created the containers; else a person."""
        span = self._records.read(
            service, lambda r: (r.activity.command_started, r.activity.command_ended)
        )
        start, end = span
        created = [t.timestamp() for c in containers if (t := engine_time(c.created_at))]
        if (
            start is not None
            and created
            and all(start - 1.0 <= t <= (end or t) + 1.0 for t in created)
        ):
            return "the controller"
        return "a person"

    def _operation(self, service: str, by: str, now: datetime) -> str:
        """The operation a change of ``service`` now belongs to: another service's change
        by the same hand seen within ``OPERATION_SECONDS``, else a new one."""
        for name in self._desired.services:
            if name == service:
                continue
            other = self._lastgood.read(name, lambda r: r.change)
            if (
                other is not None
                and other.by == by
                and abs((now - other.seen_at).total_seconds()) <= OPERATION_SECONDS
            ):
                return other.operation
        return f"{service}@{now.isoformat()}"

    # --- the verdict --------------------------------------------------------------------

    def _judge(
        self,
        spec: ServiceSpec,
        record: RollbackRecord,
        change: Change,
        containers: Sequence[ContainerSnapshot],
        observed: ObservedState,
        now: datetime,
    ) -> bool:
        service = spec.name
        hold = self._hold(spec)
        if change.missing_image:
            declared = self._declared.hashes().get(service, "")
            if declared != change.after.config_hash or self._declared.image_exists(
                change.missing_image
            ):
                self._lastgood.forget_change(service, change.id)
                return False
            judgement = judge_missing(change, spec, now, hold=hold)
        else:
            if identity_of(containers) != change.after:
                return False  # replicas differ (being rolled out): judged once they agree
            since = change.started_at or change.seen_at
            judgement = judge(
                change,
                spec,
                containers,
                observed.probes.get(service),
                telling(self._store.of_service(service), spec, since),
                now,
                hold=hold,
                stopped_by_person=bool(self._records.stopped_by_person(service)),
            )
            pending = judgement.verdict is ChangeVerdict.PENDING
            if pending and judgement.ready_since != change.ready_since:
                self._lastgood.ready(service, change.id, judgement.ready_since)
        return self._verdict(spec, record, change, judgement)

    def _verdict(
        self, spec: ServiceSpec, record: RollbackRecord, change: Change, judgement: Judgement
    ) -> bool:
        service = spec.name
        if judgement.verdict is ChangeVerdict.PENDING:
            recheck = max(0.05, judgement.recheck)
            self._next = recheck if self._next is None else min(self._next, recheck)
            return False
        if not self._lastgood.judged(service, change.id, judgement.verdict, judgement.reason):
            return False
        self._metrics.change_judged(service, judgement.verdict)
        if judgement.verdict is ChangeVerdict.GOOD:
            of_service(service).info(
                "{}: the change to {} is good: {}", service, change.after, judgement.reason
            )
            return False
        of_service(service).warning(
            "{}: the change to {} is bad: {}", service, change.after, judgement.reason
        )
        self._incident(service, change)
        news = self._open_bad(spec, self._lastgood.get(service))
        if self._desired.rollback.scope is RollbackScope.STACK:
            news |= self._whole_operation(service, change, judgement.reason)
        return news

    def _whole_operation(self, service: str, change: Change, reason: str) -> bool:
        """``scope: stack``: every other change of the operation is bad with this one."""
        news = False
        for name, spec in self._desired.services.items():
            if name == service or not self.watched(spec):
                continue
            other = self._lastgood.read(name, lambda r: r.change)
            if (
                other is None
                or other.operation != change.operation
                or other.verdict is ChangeVerdict.BAD
            ):
                continue
            why = f"changed by the same operation as {service}, whose change was bad: {reason}"
            if self._lastgood.judged(name, other.id, ChangeVerdict.BAD, why):
                of_service(name).warning(
                    "{}: the change to {} is bad with it: {}", name, other.after, why
                )
                self._metrics.change_judged(name, ChangeVerdict.BAD)
                self._incident(name, other)
                news |= self._open_bad(spec, self._lastgood.get(name))
        return news

    def _incident(self, service: str, change: Change) -> None:
        if not change.missing_image:
            self._bad.append((service, self._clock()))

    def _open_bad(self, spec: ServiceSpec, record: RollbackRecord) -> bool:
        """The service's bad-change issue: what was bad, and what reverts it."""
        change = record.change
        assert change is not None
        service = spec.name
        snapshot = target(record, change)
        if change.missing_image:
            what = f"the compose files ask for {change.missing_image}, which does not exist"
        else:
            what = (
                f"{change.by} changed it at {at_utc(change.seen_at)} from {change.before} "
                f"to {change.after}"
            )
        if snapshot is None:
            back = "there is no last-good snapshot to roll back to"
        else:
            back = (
                f"last good: snapshot {snapshot.number} ({snapshot.identity}, image "
                f"{snapshot.image or '?'}, taken {at_utc(snapshot.taken_at)}); it is rolled "
                f"back with `{self._reverter.command(snapshot, service)}`"
            )
        return self._raise_bad(spec, change.reason, f"{what}; {change.reason}; {back}")

    def _raise_bad(self, spec: ServiceSpec, reason: str, detail: str) -> bool:
        """The service's bad-change issue: the one issue of a bad change, on one host
        and on a swarm."""
        return self._store.raise_change(
            bad_change(spec.name),
            spec.name,
            FindingKind.BAD_CHANGE,
            severity=Severity.HIGH if spec.required else Severity.LOW,
            blocking=spec.required,
            title=f"a change made {spec.name} worse: {reason}",
            detail=detail,
        )

    # --- on a swarm: the update Swarm paused ---------------------------------------------

    def _swarm_service(self, spec: ServiceSpec, observed: ObservedState, now: datetime) -> bool:
        """A swarm's change is bad when Swarm judged it so (it paused the update: tasks of
        the new spec failed) or, once Swarm completed it, the controller did
        (``swarmverdict``); with ``scope: stack``, the update of every service the same
        operation changed is bad with it. Its issue lasts while the update stays paused
        (the others': while they run the update kept as bad)."""
        assert self._swarm is not None
        service = spec.name
        containers = observed.of(service)
        paused = any(c.update in PAUSED for c in containers)
        if not paused and self._swarm.swept(service) is None:
            self._swarm_verdict(spec, observed, now)
        elif paused and self._verdicts is not None:
            self._verdicts.drop(service)  # Swarm's own verdict on the next update
        kept = self._swarm.swept(service)
        if kept is not None and self._verdicts is not None:
            self._verdicts.swept(service, now)
        pause = self._swarm.paused(service) if paused or kept else None
        if pause is not None and pause.forced:  # a restart Swarm paused, not a change
            return self._store.settle(
                bad_change(service), "the update Swarm paused is a forced one: not a change"
            )
        if pause is None:
            if paused:
                return False
            state = next((c.update for c in containers if c.update), "")
            said = f" ({state})" if state else ""
            if kept is not None and kept.because:
                judged = "judged bad" if kept.judged else "Swarm paused"
                why = f"it no longer runs the update of the operation {judged}"
            elif kept is not None:
                why = "it no longer runs the update the controller judged bad"
            else:
                why = "Swarm's update of it is no longer paused"
            return self._store.settle(bad_change(service), f"{why}{said}")
        if (
            self._desired.rollback.scope is RollbackScope.STACK
            and (pause.state == "paused" or pause.judged)
            and not pause.because
        ):
            watched = {n: s for n, s in self._desired.services.items() if self.watched(s)}
            for name in self._swarm.sweep(service, pause, watched, OPERATION_SECONDS):
                of_service(name).warning(
                    "{}: bad with {}: the same operation updated both (rollback scope: stack)",
                    name,
                    service,
                )
            pause = self._swarm.paused(service) or pause
        reason, detail = paused_text(pause)
        news = self._raise_bad(spec, reason, detail)
        if news:
            of_service(service).warning("{}: {}", service, reason)
            self._metrics.change_judged(service, ChangeVerdict.BAD)
            self._bad.append((service, self._clock()))
        return news

    def _swarm_verdict(self, spec: ServiceSpec, observed: ObservedState, now: datetime) -> None:
        """The controller's verdict on the update Swarm completed of the service, if one
        is under watch: a bad one is kept with the paused ones (``Operations.judged``)."""
        assert self._swarm is not None and self._verdicts is not None
        service = spec.name
        found = self._verdicts.look(
            spec,
            observed.of(service),
            observed.probes.get(service),
            lambda since: telling(self._store.of_service(service), spec, since),
            now,
            hold=self._hold(spec),
            stopped_by_person=bool(self._records.stopped_by_person(service)),
        )
        if found is None:
            return
        update, judgement = found
        if judgement.verdict is ChangeVerdict.PENDING:
            recheck = max(0.05, judgement.recheck)
            self._next = recheck if self._next is None else min(self._next, recheck)
        elif judgement.verdict is ChangeVerdict.GOOD:
            self._metrics.change_judged(service, judgement.verdict)
            of_service(service).info(
                "{}: Swarm's update to {} is good: {}", service, update.image, judgement.reason
            )
        else:
            of_service(service).warning(
                "{}: Swarm completed its update to {}, and it went bad: {}",
                service,
                update.image,
                judgement.reason,
            )
            pause = judged_pause(update, judgement.reason, reset=self._verdicts.reset(service))
            self._swarm.judged(service, pause, update.started)

    def swarm_rolled_back(self) -> dict[str, str]:
        """Declared services Swarm rolled back, as the last pass saw them: what each runs
        and why, in words."""
        services = self._desired.services
        return {
            name: swarm_rolled_back(rolled)
            for name, (_, rolled) in sorted(self._swarm_rolled.items())
            if name in services
        }

    def _swarm_rolled_back(
        self, spec: ServiceSpec, containers: Sequence[ContainerSnapshot], stack: StackView | None
    ) -> bool:
        """A service Swarm rolled back runs its previous spec while the stack file asks for
        the change: its rolled-back issue (as on one host), until Swarm updates it again
        (a new deploy resets its update status)."""
        service = spec.name
        began = next((c.update_started for c in containers if c.update == ROLLED_BACK), None)
        rolled = self._rolled_since(service, began)
        if rolled is None:
            if not containers:
                return False  # nothing seen of it this pass: no news either way
            now = next((c.update for c in containers if c.update), "")
            said = f" (its update is {now})" if now else ""
            return self._store.settle(
                rolled_back(service),
                f"Swarm updated it again{said}: the rollback is over, a new deploy is in force",
            )
        deploy = stack.deploy if stack is not None else "docker stack deploy -c FILE STACK"
        title, detail = swarm_rolled_back_text(rolled, deploy)
        news = self._store.raise_change(
            rolled_back(service),
            service,
            FindingKind.ROLLED_BACK,
            severity=Severity.MEDIUM,
            blocking=False,
            title=title,
            detail=detail,
        )
        if news:
            of_service(service).warning("{}: {}", service, title)
        return news

    def _rolled_since(self, service: str, began: str | None) -> SwarmPause | None:
        """The rollback Swarm completed of the service that began at ``began`` (None: no
        task says one did), read from the manager once per rollback."""
        if began is None or self._rolled is None:
            self._swarm_rolled.pop(service, None)
            return None
        known = self._swarm_rolled.get(service)
        if known is not None and known[0] == began:
            return known[1]
        rolled = self._rolled(service)
        if rolled is None:
            self._swarm_rolled.pop(service, None)
        else:
            self._swarm_rolled[service] = (began, rolled)
        return rolled

    # --- a declared image that does not exist ---------------------------------------------

    def _missing_image(
        self, spec: ServiceSpec, record: RollbackRecord, identity: Identity, now: datetime
    ) -> bool:
        """The compose files ask for an image that does not exist (and cannot be built):
        a change that never ran, watched until its window has passed."""
        service = spec.name
        declared = self._declared.hashes().get(service, "")
        news = self._missing_no_more(service, record, declared)
        if not declared or declared == identity.config_hash or self._declared.builds(service):
            return news
        image = self._declared.image_of(service)
        if not image or self._declared.image_exists(image):
            return news
        if record.change is not None and record.change.after.config_hash == declared:
            return news  # judged already
        change = Change(
            id=_change_id(service, identity, Identity(config_hash=declared), now),
            before=identity,
            after=Identity(config_hash=declared),
            by="the compose files",
            operation=self._operation(service, "the compose files", now),
            seen_at=now,
            missing_image=image,
        )
        self._lastgood.changed(service, change)
        of_service(service).info(
            "{}: its compose files ask for {}, which does not exist here", service, image
        )
        return news

    def _missing_no_more(self, service: str, record: RollbackRecord, declared: str) -> bool:
        """A change judged bad because its image did not exist is over once the compose
        files ask for something else or the image is there (pulled, built): its issue
        resolves, and what runs then is judged as any change."""
        change = record.change
        if change is None or not change.missing_image or change.verdict is not ChangeVerdict.BAD:
            return False
        if declared == change.after.config_hash and not self._declared.image_exists(
            change.missing_image
        ):
            return False
        self._lastgood.forget_change(service, change.id)
        why = (
            f"{change.missing_image} exists now"
            if declared == change.after.config_hash
            else f"the compose files no longer ask for {change.missing_image}"
        )
        return self._store.settle(bad_change(service), why)

    # --- the rolled-back issue, snapshots ---------------------------------------------------

    def _rolled_back_issue(self, service: str, record: RollbackRecord) -> bool:
        rolled = record.rolled_back
        if rolled is None:
            return False
        return self._store.raise_change(
            rolled_back(service),
            service,
            FindingKind.ROLLED_BACK,
            severity=Severity.MEDIUM,
            blocking=False,
            title=f"{rolled_back_text(rolled)}: not at its declared config",
            detail=(
                f"{service} runs its last-good snapshot {rolled.snapshot} ({rolled.runs}); "
                "the compose files still ask for the change that was bad, and it stays on "
                "the snapshot until they change (applying them then is a new change, with "
                "its own verdict)"
            ),
        )

    def _snapshot_due(
        self, spec: ServiceSpec, record: RollbackRecord, identity: Identity, ready_for: float
    ) -> bool:
        if self._dry_run or record.rolled_back is not None or record.reverting:
            return False
        change = record.change
        if (
            change is not None
            and change.after == identity
            and change.verdict is not ChangeVerdict.GOOD
        ):
            return False  # under watch, or bad
        if record.snapshots and record.snapshots[-1].identity == identity:
            return False
        if self._retry_at.get(spec.name, 0.0) > self._clock():
            return False
        return ready_for >= self._hold(spec)

    def _take_snapshot(self, spec: ServiceSpec, containers: Sequence[ContainerSnapshot]) -> None:
        service = spec.name
        if not service_ready(spec, containers):
            return
        try:
            snapshot = self._keeper.capture(service, self._lastgood.number(service), containers)
        except (SnapshotError, EngineError) as exc:
            self._retry_at[service] = self._clock() + SNAPSHOT_RETRY_SECONDS
            if self._said.get(service) != str(exc):
                self._said[service] = str(exc)
                of_service(service).warning("{}: no last-good snapshot taken: {}", service, exc)
            return
        self._said.pop(service, None)
        dropped = self._lastgood.kept(service, snapshot, self._desired.rollback.keep)
        self._keeper.release(dropped)
        of_service(service).info(
            "{}: last-good snapshot {} kept ({}, tag {})",
            service,
            snapshot.number,
            snapshot.identity,
            snapshot.tag,
        )

    def _hold(self, spec: ServiceSpec) -> float:
        return self._records.hold(spec.name, stable_after(spec), spec.restart.restarts)


def _change_id(service: str, before: Identity, after: Identity, at: datetime) -> str:
    text = f"{service}|{before}|{after}|{at.isoformat()}"
    return hashlib.sha256(text.encode()).hexdigest()[:12]
