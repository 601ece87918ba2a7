"""Sampling what the project's running containers use, at a cadence and a cost budget.

Every ``interval`` seconds one round samples the running containers the newest pass saw
(``update``) that are due (``due``: the foresight says which, ``predict.cadence``: a
watched container every round, a quiet one every ``quiet_interval``) through the engine's
one-shot stats, and, when ``disk_due`` says so, the engine's disk usage of the project
(writable layers, volumes). The engine answers a stats call at its collector's next tick
(it ticks once a second), so a round asks for up to ``WORKERS`` containers at once: a
hundred containers take some 13 s of waiting and little work. What the round cost the
controller (its threads' CPU) goes with it, so the metrics say what each sample costs.
One thread, started and stopped with the controller.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from loguru import logger

from controller.model import (
    Clock,
    ContainerSnapshot,
    ContainerUsage,
    DiskUsage,
    ObservedState,
    PredictSettings,
)
from controller.observe.gateway import ContainerGone, EngineError, EngineGateway

WORKERS = 8  # stats calls in flight at once


@dataclass(frozen=True, slots=True)
class Sampled:
    container: ContainerSnapshot  # who (service, name, which run), as the pass saw it
    usage: ContainerUsage
    at: float  # epoch seconds the engine answered (a busy engine answers late in a round)


@dataclass(frozen=True, slots=True)
class Round:
    """One round of samples."""

    at: float  # epoch seconds it began
    samples: tuple[Sampled, ...]
    disk: DiskUsage | None  # None: not a disk round, or the engine refused it
    running: tuple[ContainerSnapshot, ...]  # as the pass saw them (sampled now or not)
    gone: int  # containers removed since the pass saw them
    failed: int  # samples the engine failed
    cpu_seconds: float  # CPU the round cost the controller's threads


class UsageSampler:
    def __init__(
        self,
        gateway: EngineGateway,
        project: str,
        settings: PredictSettings,
        on_round: Callable[[Round], None],
        due: Callable[[ContainerSnapshot, float], bool],
        disk_due: Callable[[float], bool],
        clock: Clock,
    ) -> None:
        self._gateway = gateway
        self._project = project
        self._settings = settings
        self._on_round = on_round
        self._due = due
        self._disk_due = disk_due
        self._clock = clock
        self._lock = threading.Lock()
        self._running: tuple[ContainerSnapshot, ...] = ()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="usage", daemon=True)
        self._pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="usage")

    def update(self, observed: ObservedState) -> None:
        """The containers to sample: every running one the newest pass saw."""
        with self._lock:
            self._running = tuple(
                c for c in observed.containers if c.status.running and not c.oneoff
            )

    def start(self) -> None:
        if self._settings.enabled:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5.0)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def run_once(self) -> Round:
        """One round: sample, hand it on, return it (the thread's body; tests call it)."""
        started = time.thread_time()
        at = self._clock()
        with self._lock:
            running = self._running
        results = list(self._pool.map(self._sample, [c for c in running if self._due(c, at)]))
        samples = tuple(s for s, _ in results if s is not None)
        gone = sum(1 for _, outcome in results if outcome == "gone")
        failed = sum(1 for _, outcome in results if outcome == "failed")
        cpu = sum(cost for _, cost in results if isinstance(cost, float))
        disk = None
        if self._disk_due(at):
            try:
                disk = self._gateway.disk_usage(self._project)
            except EngineError as exc:
                logger.debug("disk usage not sampled: {}", exc)
        cpu += time.thread_time() - started
        done = Round(at, samples, disk, running, gone, failed, cpu)
        self._on_round(done)
        return done

    def _sample(self, container: ContainerSnapshot) -> tuple[Sampled | None, str | float]:
        """One container: its sample and the CPU it cost, or None and what went wrong."""
        started = time.thread_time()
        try:
            usage = self._gateway.usage(container.id)
        except ContainerGone:
            return None, "gone"
        except EngineError as exc:
            logger.debug("{}: usage not sampled: {}", container.name, exc)
            return None, "failed"
        return Sampled(container, usage, self._clock()), time.thread_time() - started

    def _loop(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                self.run_once()
            except Exception:  # one bad round must not end the sampling
                logger.exception("sampling resources failed")
            left = self._settings.interval - (time.monotonic() - began)
            if self._stop.wait(max(0.0, left)):
                return


__all__: Sequence[str] = ["Round", "Sampled", "UsageSampler"]
