"""The one writer of every service's rollback record (``model.RollbackRecord``).

What a service runs, its last-good snapshots, the newest change and its verdict, the
changes rolled back once, and whether it runs a snapshot instead of its declared config,
all live in that record, beside (not inside) its remediation record: the passes write it
(``changes.ChangeWatch``: changes, verdicts, snapshots), the reconciler marks a rollback
begun (before its step runs) and the prover marks it done. Each change is a method here,
under one lock; the rules that decide live in pure modules (``verdict``, ``plan``).
Readers get copies. Saved with the issues under ``rollback`` and read back at start.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TypeVar

from controller.model import (
    Change,
    ChangeVerdict,
    Clock,
    ContainerSnapshot,
    FindingKind,
    Identity,
    RollbackRecord,
    RolledBack,
    Snapshot,
    to_datetime,
)

T = TypeVar("T")
KEEP_REVERTED = 32  # per service: bad identities rolled back once, newest kept


def bad_change(service: str) -> str:
    """The fingerprint of a service's bad-change issue."""
    return f"change:{service}:{FindingKind.BAD_CHANGE}"


def rolled_back(service: str) -> str:
    """The fingerprint of a service's rolled-back issue."""
    return f"change:{service}:{FindingKind.ROLLED_BACK}"


def identity_of(containers: Sequence[ContainerSnapshot]) -> Identity | None:
    """What every replica runs; None when there is none, they differ, or it is unknown."""
    found = {(c.config_hash or "", c.image_id) for c in containers}
    if len(found) != 1:
        return None
    ((config_hash, image_id),) = found
    if not config_hash or not image_id:
        return None
    return Identity(config_hash=config_hash, image_id=image_id)


def target(record: RollbackRecord, change: Change) -> Snapshot | None:
    """The last good snapshot to roll ``change`` back to: the one of what ran before it,
    else the newest of anything else."""
    for snapshot in reversed(record.snapshots):
        if snapshot.identity == change.before:
            return snapshot
    for snapshot in reversed(record.snapshots):
        if snapshot.identity != change.after:
            return snapshot
    return None


def rolled_back_text(rolled: RolledBack) -> str:
    """What every output says of a rollback in force: "rolled back from X to snapshot N
    because Z", or that the change was held back."""
    if rolled.held:
        return (
            f"held back on snapshot {rolled.snapshot}: the change never ran because "
            f"{rolled.because}"
        )
    return f"rolled back from {rolled.bad} to snapshot {rolled.snapshot} because {rolled.because}"


class LastGood:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._records: dict[str, RollbackRecord] = {}
        self.changes = 0  # moves whenever a record changed (the runtime saves then)

    # --- reading ------------------------------------------------------------------------

    def read(self, service: str, question: Callable[[RollbackRecord], T]) -> T:
        """``question`` answered on the service's record under the lock (not changing it)."""
        with self._lock:
            return question(self._records.get(service) or RollbackRecord())

    def get(self, service: str) -> RollbackRecord:
        return self.read(service, lambda r: r.model_copy(deep=True))

    def snapshot(self) -> dict[str, RollbackRecord]:
        with self._lock:
            return {k: v.model_copy(deep=True) for k, v in sorted(self._records.items())}

    def restore(self, records: Mapping[str, RollbackRecord]) -> None:
        """What an earlier run saved."""
        with self._lock:
            for service, saved in records.items():
                self._records[service] = saved.model_copy(deep=True)
            self.changes += 1

    def _change(self, service: str, change: Callable[[RollbackRecord], T]) -> T:
        with self._lock:
            record = self._records.setdefault(service, RollbackRecord())
            before = record.model_dump()
            result = change(record)
            if record.model_dump() != before:
                self.changes += 1
            return result

    # --- what runs, and its changes -----------------------------------------------------

    def runs(self, service: str, identity: Identity) -> None:
        """The service runs ``identity``, and that is no change (a first sight, or what a
        rollback of the controller's own brought)."""
        self._change(service, lambda r: setattr(r, "running", identity))

    def changed(self, service: str, change: Change) -> None:
        """A new change of the service, under watch from now; a rollback it was in is over
        (a person changed it again: this change gets its own verdict)."""

        def new(record: RollbackRecord) -> None:
            record.running = change.after if not change.missing_image else record.running
            record.change = change
            record.rolled_back = None
            record.reverting = ""

        self._change(service, new)

    def forget_change(self, service: str, change_id: str) -> None:
        """A change that never ran (its declared image turned up, or the files changed
        again before its verdict) is no longer watched."""

        def drop(record: RollbackRecord) -> None:
            if record.change is not None and record.change.id == change_id:
                record.change = None

        self._change(service, drop)

    def ready(self, service: str, change_id: str, since: datetime | None) -> None:
        """Every replica of the change ready since ``since`` (None: not ready now)."""

        def mark(record: RollbackRecord) -> None:
            if record.change is not None and record.change.id == change_id:
                record.change.ready_since = since

        self._change(service, mark)

    def judged(self, service: str, change_id: str, verdict: ChangeVerdict, reason: str) -> bool:
        """The change's verdict; True when that is news."""

        def judge(record: RollbackRecord) -> bool:
            change = record.change
            if change is None or change.id != change_id or change.verdict is verdict:
                return False
            change.verdict, change.reason = verdict, reason
            change.judged_at = to_datetime(self._clock())
            return True

        return self._change(service, judge)

    # --- snapshots ----------------------------------------------------------------------

    def number(self, service: str) -> int:
        """The number of the service's next snapshot (counted up, never reused)."""

        def give(record: RollbackRecord) -> int:
            record.numbered += 1
            return record.numbered

        return self._change(service, give)

    def kept(self, service: str, snapshot: Snapshot, keep: int) -> list[Snapshot]:
        """A new last-good snapshot; at most ``keep`` stay (the newest). The ones let go."""

        def add(record: RollbackRecord) -> list[Snapshot]:
            others = [s for s in record.snapshots if s.identity != snapshot.identity]
            dropped = [s for s in record.snapshots if s.identity == snapshot.identity]
            kept = [*others, snapshot]
            dropped += kept[:-keep]
            record.snapshots = kept[-keep:]
            return dropped

        return self._change(service, add)

    # --- rollbacks ----------------------------------------------------------------------

    def reverting(self, service: str, change_id: str) -> None:
        """A rollback of the change begins (recorded and saved before its command runs):
        the bad identity is never rolled back again."""

        def begin(record: RollbackRecord) -> None:
            record.reverting = change_id
            change = record.change
            if change is not None and change.id == change_id:
                bad = str(change.after)
                record.reverted = [*[r for r in record.reverted if r != bad], bad][-KEEP_REVERTED:]

        self._change(service, begin)

    def rolled_back(self, service: str, rolled: RolledBack) -> None:
        """The service runs the snapshot now, not its declared config."""

        def done(record: RollbackRecord) -> None:
            record.reverting = ""
            record.rolled_back = rolled
            record.running = rolled.runs

        self._change(service, done)

    def revert_failed(self, service: str) -> None:
        """The rollback step failed: no rollback is under way (the change stays bad)."""
        self._change(service, lambda r: setattr(r, "reverting", ""))

    def declared_again(self, service: str) -> None:
        """The compose files no longer ask for the bad change: the rollback is over (the
        service is outdated against the new files, or a person's up brings a new change)."""
        self._change(service, lambda r: setattr(r, "rolled_back", None))
