"""The log side of the loop, wired: followed lines -> detector -> issue store.

Each container's reader thread hands a whole read of its log (a ``LogBlock``) to the
detector itself, under one lock, and the findings go to the issue store at once: a new
error reaches the store without waiting for a pass. Every record that matched or looked
like an error goes to ``on_sightings`` too (the precursor learner). (A queue and a
detector thread of their own cost a hand-over per read, and the thread woke 20 times a
second when all was quiet.)
One more thread closes records whose container went quiet (a traceback's last line is
known only when no line follows it); it sleeps until the first such moment, or for good
when no record is open.

A server's "the peer went away" (a pattern marked ``client_gone``) is often read before
any pass saw its client die: the socket closes as the process dies, and the engine's
record of the death comes a moment later. Such a finding, of a service that has clients
and that nothing explains yet, waits (``PARK_WAIT`` at most) for a pass that observed
the engine after the line (``LEAVE_LAG`` later), then is judged again: opened low when a
client left near it, at its pattern's severity otherwise. An error waits, never a flood:
one finding per record, for a few seconds.

Memory stays bounded whatever the lines: a line is at most ``MAX_LINE_BYTES`` (16 KiB,
the rest cut), a read at most 64 KiB per followed container, and an open record at most
``HEAD_LINES + TAIL_LINES`` lines per container. A reader waits while another detects, so
a flood slows the reading, never grows a backlog in memory.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from loguru import logger

from controller.causes import clients_left, departures, downstream, while_starting
from controller.detect.detector import Detector
from controller.issues.store import IssueStore, SyncResult
from controller.metrics import Metrics
from controller.model import (
    ContainerSnapshot,
    DesiredState,
    DetectionSettings,
    Finding,
    LogBlock,
    ObservedState,
    Severity,
    Sighting,
)
from controller.observe.gateway import EngineGateway
from controller.observe.logs import LogReader

IDLE_FLUSH = 0.1  # seconds without a line before an open record is closed
PARK_WAIT = 3.0  # seconds a server's "the peer went away" waits for a pass's evidence
LEAVE_LAG = 0.5  # seconds after the line an observation must begin to show the death


class LogPipeline:
    def __init__(
        self,
        *,
        gateway: EngineGateway,
        store: IssueStore,
        settings: DetectionSettings,
        metrics: Metrics,
        on_findings: Callable[[SyncResult], None],
        on_sightings: Callable[[Sequence[Sighting]], None],
        cursors: Mapping[str, int] | None = None,
        desired: Callable[[], DesiredState] | None = None,
    ) -> None:
        self._store = store
        self._desired = desired
        self._settings = settings
        self._metrics = metrics
        self._on_findings = on_findings
        self._on_sightings = on_sightings
        self.reader = LogReader(
            gateway, self._detect, cursors, on_lines=metrics.log_lines_read, on_end=self._ended
        )
        # the patterns compile on a thread while the controller starts (the first read
        # waits for them): a CI gate's first step need not wait a compile
        compiler = ThreadPoolExecutor(1, thread_name_prefix="patterns")
        self.detector = Detector(settings, compiler)
        compiler.shutdown(wait=False)  # the compile runs to its end, then its thread goes
        self._lock = threading.Lock()  # the detector, and recording what it found
        self._records_open = threading.Condition(self._lock)
        self._stopping = False
        self._closer_asleep = False  # no record was open: the closer waits to be woken
        self._thread = threading.Thread(target=self._close_quiet, name="records", daemon=True)
        self._left: dict[str, list[float]] = {}  # the newest pass's ends and starts by service
        self._seen_at = 0.0  # epoch s the newest pass began its reads
        self._parked: list[tuple[float, Finding]] = []  # (monotonic deadline, finding)

    def start(self) -> None:
        self._thread.start()

    def sync(self, observed: ObservedState) -> None:
        """Follow new containers, forget removed ones (called by every pass)."""
        gone = self.reader.sync(observed)
        with self._lock:
            self._left, self._seen_at = departures(observed), observed.read_at
            if gone:
                self._record(self.detector.forget(gone))
            self._release(time.monotonic())

    def settle(self, timeout: float) -> bool:
        """Wait (up to ``timeout``) until every line read so far went through detection,
        records still open included."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:  # a read being detected holds the lock
                if not self.detector.pending() and not self._parked:
                    return True
            time.sleep(0.05)
        return False

    def settle_containers(self, containers: Sequence[ContainerSnapshot], timeout: float) -> bool:
        """Wait until the logs of these (stopped) containers were read to their end and went
        through detection, so the findings about why they stopped are in the store."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.reader.read_to_end(containers):
                return self.settle(max(0.0, deadline - time.monotonic()))
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        self.reader.stop()
        with self._lock:
            self._stopping = True
            self._records_open.notify()
        self._thread.join(5.0)
        with self._lock:
            self._record(self.detector.forget(self.detector.containers()))
            self._release(None)

    def _detect(self, block: LogBlock) -> None:
        """A reader's block, detected in the reader's thread."""
        with self._lock:
            try:
                now = time.monotonic()
                findings = self.detector.feed_block(block, now)
                findings += self.detector.flush(now, IDLE_FLUSH)
                self._record(findings)
            except Exception:  # one bad read must not stop detection
                logger.exception(
                    "log detection failed on {} lines of {}", block.count, block.container
                )
            if self._closer_asleep and self.detector.pending():
                self._closer_asleep = False
                self._records_open.notify()

    def _ended(self, container: str) -> None:
        """A run read to its end: its open record is closed now (a crash's last lines are
        judged at once, not after the idle flush)."""
        with self._lock:
            self._record(self.detector.close(container))

    def _close_quiet(self) -> None:
        """Close records whose container printed nothing for ``IDLE_FLUSH`` seconds."""
        with self._lock:
            while not self._stopping:
                dues = [self.detector.quiet_at(IDLE_FLUSH), *(d for d, _ in self._parked[:1])]
                due = min((d for d in dues if d is not None), default=None)
                wait = None if due is None else due - time.monotonic()
                if wait is None or wait > 0:
                    self._closer_asleep = wait is None
                    self._records_open.wait(wait)
                    continue
                try:
                    self._record(self.detector.flush(time.monotonic(), IDLE_FLUSH))
                    self._release(time.monotonic())
                except Exception:
                    logger.exception("log detection failed closing quiet records")

    def _record(self, findings: list[Finding]) -> None:
        sightings = self.detector.take_sightings()
        if sightings:  # every error-like record, for what comes before incidents
            self._on_sightings(sightings)
        if not findings:
            return
        for finding in findings:
            self._metrics.finding(finding.pattern_id, finding.category)
        if self._desired is not None:
            desired = self._desired()
            findings = expected(desired, self._store, findings, self._left)
            findings = self._park(desired, findings)
        if findings:
            self._on_findings(self._store.record_findings(findings, self._settings))

    def _park(self, desired: DesiredState, findings: list[Finding]) -> list[Finding]:
        """``findings`` less those that wait for a pass's evidence of a client leaving."""
        kept: list[Finding] = []
        for finding in findings:
            if awaits(desired, finding):
                self._parked.append((time.monotonic() + PARK_WAIT, finding))
            else:
                kept.append(finding)
        if len(kept) < len(findings):
            self._closer_asleep = False
            self._records_open.notify()  # it wakes again at the deadline
        return kept

    def _release(self, now: float | None) -> None:
        """Record the waiting findings that a pass's evidence judges now: a client left
        near the line, or the pass observed the engine after the line; those whose wait
        is over (``now`` past their deadline; None: every one) are judged on what is
        known. Called with the lock held."""
        if not self._parked or self._desired is None:
            return
        desired = self._desired()
        judged = expected(desired, self._store, [f for _, f in self._parked], self._left)
        ready: list[Finding] = []
        waiting: list[tuple[float, Finding]] = []
        for (deadline, _), finding in zip(self._parked, judged, strict=True):
            if (
                now is None
                or now >= deadline
                or finding.clients_left
                or finding.ts + LEAVE_LAG <= self._seen_at
            ):
                ready.append(finding)
            else:
                waiting.append((deadline, finding))
        self._parked = waiting
        if ready:
            self._on_findings(self._store.record_findings(ready, self._settings))


def expected(
    desired: DesiredState,
    store: IssueStore,
    findings: list[Finding],
    left: Mapping[str, Sequence[float]] | None = None,
) -> list[Finding]:
    """``findings`` with what explains each expected error: the services whose start
    explains an error a client logs while its peer starts (a pattern marked ``starting``:
    connection refused, not accepting connections yet; ``causes.while_starting``), the
    clients whose leaving explains a server's "the peer went away" (a pattern marked
    ``client_gone``; ``causes.clients_left``, from ``left``: each service's ends and
    starts of runs). The store opens those low. A critical one never (a severity raised
    by the user's override: what they asked to hear of)."""
    patterns = desired.detection.patterns
    starting = {p.id for p in patterns if p.starting}
    gone = {p.id for p in patterns if p.client_gone}
    if not any(_expectable(f, starting | gone) for f in findings):
        return findings
    ready_since = store.without_drift(desired.services)
    judged: list[Finding] = []
    for f in findings:
        if _expectable(f, starting) and (
            deps := while_starting(desired, f.service, f.category, f.named, ready_since, f.ts)
        ):
            f = replace(f, while_starting=tuple(deps))
        if _expectable(f, gone) and (
            clients := clients_left(desired, f.service, f.category, left or {}, f.ts)
        ):
            # a client that left explains a server's "the peer went away" better than
            # the server's own start
            own = f.while_starting == (f.service,)
            f = replace(f, clients_left=clients, while_starting=() if own else f.while_starting)
        judged.append(f)
    return judged


def awaits(desired: DesiredState, finding: Finding) -> bool:
    """Whether a finding waits for a pass's evidence before it is recorded: a server's
    "the peer went away" that nothing but its own start explains yet, of a service that
    has clients."""
    gone = {p.id for p in desired.detection.patterns if p.client_gone}
    return (
        _expectable(finding, gone)
        and not finding.clients_left
        and finding.while_starting in ((), (finding.service,))  # a client may explain it
        and bool(downstream(desired, finding.service))
    )


def _expectable(finding: Finding, kinds: set[str]) -> bool:
    """An error a start or a client leaving may explain: its pattern is marked so, below
    critical."""
    return finding.pattern_id in kinds and finding.severity is not Severity.CRITICAL
