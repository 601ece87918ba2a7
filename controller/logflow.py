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

from controller.causes import while_starting
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

    def start(self) -> None:
        self._thread.start()

    def sync(self, observed: ObservedState) -> None:
        """Follow new containers, forget removed ones (called by every pass)."""
        gone = self.reader.sync(observed)
        if gone:
            with self._lock:
                self._record(self.detector.forget(gone))

    def settle(self, timeout: float) -> bool:
        """Wait (up to ``timeout``) until every line read so far went through detection,
        records still open included."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:  # a read being detected holds the lock
                if not self.detector.pending():
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
                due = self.detector.quiet_at(IDLE_FLUSH)
                wait = None if due is None else due - time.monotonic()
                if wait is None or wait > 0:
                    self._closer_asleep = wait is None
                    self._records_open.wait(wait)
                    continue
                try:
                    self._record(self.detector.flush(time.monotonic(), IDLE_FLUSH))
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
            findings = expected(self._desired(), self._store, findings)
        self._on_findings(self._store.record_findings(findings, self._settings))


def expected(desired: DesiredState, store: IssueStore, findings: list[Finding]) -> list[Finding]:
    """``findings`` with the services whose start explains each error a client logs while
    its peer starts (a pattern marked ``starting``: connection refused, not accepting
    connections yet; ``causes.while_starting``): the store opens those low. A critical
    one never (a severity raised by the user's override: what they asked to hear of)."""
    kinds = {p.id for p in desired.detection.patterns if p.starting}
    if not any(_expectable(f, kinds) for f in findings):
        return findings
    ready_since = store.without_drift(desired.services)
    return [
        replace(f, while_starting=tuple(starting))
        if _expectable(f, kinds)
        and (starting := while_starting(desired, f.service, f.category, f.named, ready_since, f.ts))
        else f
        for f in findings
    ]


def _expectable(finding: Finding, kinds: set[str]) -> bool:
    """An error a start may explain: its pattern is marked ``starting``, below critical."""
    return finding.pattern_id in kinds and finding.severity is not Severity.CRITICAL
