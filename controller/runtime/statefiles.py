"""The controller's state on disk: ``docker_issues_<env>.json`` and its Markdown report.

``save`` writes both, atomically, when anything a reader sees changed (the issues, a
service's remediation or rollback record, a round of resource samples, the engine's
reachability, the verdict); ``force`` writes anyway (before a step runs, at shutdown).
``load`` takes back what an earlier run saved: the issues with their history and
attempts, each service's remediation record (backoff, budget, a step being proven, the
runbooks run ...), its rollback record (last-good snapshots, the newest change and its
verdict, a rollback in force) and the log cursors, so a restarted controller neither
repeats a step nor reads a line twice. An unreadable
file is kept aside, named, and the run starts afresh (``set_aside`` says so, for the
gate's progress and table). A write that fails (a full disk, a file system turned
read-only) raises ``SaveFailed`` naming the file; nothing is marked saved, so the next
save writes everything again.
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loguru import logger

from controller.issues.document import (
    IssueFileError,
    SavedState,
    build_document,
    load_state,
    render_json,
)
from controller.issues.files import atomic_write
from controller.issues.report import render_markdown
from controller.issues.store import IssueStore
from controller.model import Clock, Issue, ResourceTrend
from controller.remediate.lastgood import LastGood
from controller.remediate.records import Records


class SaveFailed(Exception):
    """Writing a state file failed; the message is one line: the path and the OS's word."""

    def __init__(self, path: Path, error: OSError) -> None:
        self.path = path
        self.errno = error.errno
        self.reason = error.strerror or str(error)
        name = errno.errorcode.get(error.errno or 0, "")
        self.code = name
        super().__init__(f"{path}: {self.reason}" + (f" ({name})" if name else ""))


@dataclass(frozen=True, slots=True)
class SetAside:
    """A damaged issues file kept aside at start: where it went, and why."""

    path: Path
    why: str


@dataclass(frozen=True, slots=True)
class Outlook:
    """What the document says of what is coming (``foresight``): each service's resources
    as last sampled, the precursors learned, and a counter that moves with each round."""

    trends: Callable[[], list[ResourceTrend]]
    learned: Callable[[], dict[str, Any]]
    rounds: Callable[[], int]


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the document says beyond the issues: the evidence a verdict rests on."""

    converged: bool
    observed_at: float | None  # when the newest completed pass began
    engine: str  # why the engine does not answer ("" when it does)
    # what the verdict waits on though nothing is wrong ("web: a fix step is being proven")
    waiting_on: tuple[str, ...] = ()


class StateFiles:
    def __init__(
        self,
        *,
        state_dir: Path,
        env: str,
        project: str,
        dry_run: bool,
        store: IssueStore,
        records: Records,
        lastgood: LastGood,
        cursors: Callable[[], dict[str, int]],
        evidence: Callable[[list[Issue]], Evidence],
        outlook: Outlook,
        clock: Clock,
    ) -> None:
        self.json_path = state_dir / f"docker_issues_{env}.json"
        self.report_path = state_dir / f"docker_issues_report_{env}.md"
        self._env, self._project, self._dry_run = env, project, dry_run
        self._store, self._records, self._lastgood = store, records, lastgood
        self._cursors, self._evidence, self._clock = cursors, evidence, clock
        self._outlook = outlook
        self._lock = threading.Lock()
        self._saved: tuple[int, int, int, int, bool, str, tuple[str, ...]] | None = None
        self.set_aside: SetAside | None = None

    def load(self) -> SavedState:
        """What an earlier run saved (empty when there is no file or it is unreadable)."""
        try:
            return load_state(self.json_path)
        except IssueFileError as exc:
            aside = self.json_path.with_name(
                f"{self.json_path.name}.unreadable-{int(self._clock())}"
            )
            self.json_path.replace(aside)
            logger.warning("{}; kept it as {} and started afresh", exc, aside.name)
            self.set_aside = SetAside(aside, str(exc).removeprefix(f"{self.json_path}: "))
            return SavedState()

    def document(self, issues: list[Issue] | None = None) -> dict[str, Any]:
        """The document, from ``issues`` (one snapshot of the store) when given."""
        issues = self._store.issues() if issues is None else issues
        evidence = self._evidence(issues)
        return build_document(
            env=self._env,
            project=self._project,
            issues=issues,
            services=self._store.services(),
            generated_at=self._clock(),
            dry_run=self._dry_run,
            is_converged=evidence.converged,
            observed_at=evidence.observed_at,
            engine=evidence.engine,
            waiting_on=evidence.waiting_on,
            log_cursors=self._cursors(),
            remediation=self._records.snapshot(),
            rollback=self._lastgood.snapshot(),
            trends=self._outlook.trends(),
            learned=self._outlook.learned(),
        )

    def save(self, force: bool = False) -> list[Issue] | None:
        """Write both files if anything a reader sees changed (or ``force``), from one
        snapshot of the issues; that snapshot when written, else None."""
        with self._lock:
            counter = self._store.changes  # before the snapshot: a later change saves again
            issues = self._store.issues()
            evidence = self._evidence(issues)  # when it was observed alone is no news
            changes = (
                counter,
                self._records.changes,
                self._lastgood.changes,
                self._outlook.rounds(),
                evidence.converged,
                evidence.engine,
                evidence.waiting_on,
            )
            if changes == self._saved and not force:
                return None
            doc = self.document(issues)
            for path, text in (
                (self.json_path, render_json(doc)),
                (self.report_path, render_markdown(doc)),
            ):
                try:
                    atomic_write(path, text)
                except OSError as exc:
                    raise SaveFailed(path, exc) from None
            self._saved = changes
            return issues
