"""The log side of the loop, wired: followed lines -> detector -> issue store.

One thread takes lines off a bounded queue (the readers block when it is full), feeds the
detector in batches, closes records whose container went quiet, and hands findings to the
issue store at once: a new error reaches the store without waiting for a pass.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence

from loguru import logger

from controller.detect.detector import Detector
from controller.issues.store import IssueStore, SyncResult
from controller.metrics import Metrics
from controller.model import DetectionSettings, Finding, LogLine, ObservedState
from controller.observe.gateway import EngineGateway
from controller.observe.logs import LogReader

QUEUE_LINES = 20_000
BATCH_LINES = 5_000
IDLE_FLUSH = 0.1  # seconds without a line before an open record is closed
WAKE = 0.05  # how often the detector looks for records to close when no line comes


class LogPipeline:
    def __init__(
        self,
        *,
        gateway: EngineGateway,
        store: IssueStore,
        settings: DetectionSettings,
        metrics: Metrics,
        cursors: Mapping[str, int] | None = None,
        on_findings: Callable[[SyncResult], None] = lambda result: None,
    ) -> None:
        self._store = store
        self._settings = settings
        self._metrics = metrics
        self._on_findings = on_findings
        self._queue: queue.Queue[LogLine] = queue.Queue(maxsize=QUEUE_LINES)
        self.reader = LogReader(gateway, self._queue.put, cursors, on_line=metrics.log_line)
        self.detector = Detector(settings)
        self._detector_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="detector", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def sync(self, observed: ObservedState) -> None:
        """Follow new containers, forget removed ones (called by every pass)."""
        gone = self.reader.sync(observed)
        if gone:
            with self._detector_lock:
                self._record(self.detector.forget(gone))

    def settle(self, timeout: float) -> bool:
        """Wait (up to ``timeout``) until every line read so far went through detection."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._detector_lock:  # lines taken off the queue count until recorded
                done = self._queue.unfinished_tasks == 0 and not self.detector.pending()
            if done:
                return True
            time.sleep(0.05)
        return False

    def settle_containers(self, container_ids: Sequence[str], timeout: float) -> bool:
        """Wait until the logs of these (stopped) containers were read to their end and went
        through detection, so the findings about why they stopped are in the store."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not (self.reader.following() & set(container_ids)):
                return self.settle(max(0.0, deadline - time.monotonic()))
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        self.reader.stop()
        self._stop.set()
        self._thread.join(5.0)
        with self._detector_lock:
            self._record(self.detector.forget(self.detector.containers()))

    def _run(self) -> None:
        while not self._stop.is_set():
            batch: list[LogLine] = []
            try:
                batch.append(self._queue.get(timeout=WAKE))
                while len(batch) < BATCH_LINES:
                    batch.append(self._queue.get_nowait())
            except queue.Empty:
                pass
            try:
                now = time.monotonic()
                with self._detector_lock:
                    findings = self.detector.feed(batch, now)
                    findings += self.detector.flush(now, IDLE_FLUSH)
                    self._record(findings)
            except Exception:  # one bad batch must not stop detection
                logger.exception("log detection failed on a batch of {} lines", len(batch))
            for _ in batch:
                self._queue.task_done()

    def _record(self, findings: list[Finding]) -> None:
        if not findings:
            return
        for finding in findings:
            self._metrics.finding(finding.pattern_id, finding.category)
        self._on_findings(self._store.record_findings(findings, self._settings))
