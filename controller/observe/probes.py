"""Probes a declaration adds to services: http, tcp and exec, with Kubernetes' settings.

One thread per probe runs it every ``period`` seconds, after ``initial_delay`` seconds from
the container's start. A probe passes after ``success_threshold`` successes in a row and
fails after ``failure_threshold`` failures in a row; until then it is not known. A new
container (another id or start time) starts the probe afresh. A change from passing to
failing (or back) calls ``on_change`` at once, so a failing probe is a pass away from
being an issue, not a poll away.
"""

from __future__ import annotations

import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from controller.model import (
    ContainerSnapshot,
    ObservedState,
    ProbeKind,
    ProbeSpec,
    ProbeView,
    ServiceSpec,
    engine_ns,
)
from controller.observe.gateway import EngineError, EngineGateway
from controller.observe.lines import clean

BODY_BYTES = 64 * 1024


@dataclass
class _State:
    ok: bool | None = None
    successes: int = 0
    failures: int = 0
    detail: str = "not run yet"
    container: tuple[str, str] = ("", "")  # (id, started_at) the results are about


def run_probe(
    probe: ProbeSpec, gateway: EngineGateway, container: ContainerSnapshot | None
) -> str | None:
    """Run one probe once; None when it passes, else why it failed (one line)."""
    try:
        if probe.kind == ProbeKind.HTTP:
            request = urllib.request.Request(
                probe.url, headers={"User-Agent": "compose-controller"}
            )
            try:
                with urllib.request.urlopen(request, timeout=probe.timeout) as reply:
                    status, body = reply.status, reply.read(BODY_BYTES)
            except urllib.error.HTTPError as err:
                status, body = err.code, err.read(BODY_BYTES)
            wanted = probe.status
            if (wanted is not None and status != wanted) or (wanted is None and status >= 400):
                return f"GET {probe.url} answered {status}"
            if probe.body and probe.body.encode() not in body:
                return f"GET {probe.url} answered {status} without {probe.body!r}"
            return None
        if probe.kind == ProbeKind.TCP:
            with socket.create_connection((probe.host, probe.port), timeout=probe.timeout):
                return None
        if probe.kind == ProbeKind.EXEC:
            if container is None:
                return "no running container to exec in"
            code, output = gateway.exec(container.id, probe.argv, timeout=probe.timeout)
            if code != 0:
                last = clean(output.strip().splitlines()[-1][:200]) if output.strip() else ""
                return f"{probe.argv[0]} exited {code}" + (f": {last}" if last else "")
            return None
    except (OSError, EngineError) as exc:
        return f"{probe.name}: {exc}"
    return f"unknown probe kind {probe.kind}"


class Prober:
    def __init__(
        self,
        gateway: EngineGateway,
        services: Mapping[str, ServiceSpec],
        on_change: Callable[[str], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._gateway = gateway
        self._services = {name: spec for name, spec in services.items() if spec.probes}
        self._on_change = on_change
        self._clock = clock
        self._lock = threading.Lock()
        self._states = {
            (name, i): _State()
            for name, spec in self._services.items()
            for i in range(len(spec.probes))
        }
        self._containers: dict[str, ContainerSnapshot | None] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def update(self, observed: ObservedState) -> None:
        """The containers the probes are about (called by every pass)."""
        with self._lock:
            for name in self._services:
                running = [c for c in observed.of(name) if c.status.running]
                self._containers[name] = running[0] if running else None

    def view(self) -> dict[str, ProbeView]:
        """Per service: failing if any probe fails, passing if all pass, else unknown."""
        with self._lock:
            out: dict[str, ProbeView] = {}
            for name, spec in self._services.items():
                states = [self._states[(name, i)] for i in range(len(spec.probes))]
                failing = [s for s in states if s.ok is False]
                if failing:
                    out[name] = ProbeView(False, failing[0].detail)
                elif all(s.ok for s in states):
                    out[name] = ProbeView(True, "all probes pass")
                else:
                    out[name] = ProbeView(None, "probes not settled yet")
            return out

    def start(self) -> None:
        for name, index in self._states:
            thread = threading.Thread(
                target=self._loop, args=(name, index), name=f"probe-{name}-{index}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(2.0)

    def run_once(self, name: str, index: int) -> None:
        """One round of one probe (the thread's body; tests call it directly)."""
        probe = self._services[name].probes[index]
        with self._lock:
            container = self._containers.get(name)
            state = self._states[(name, index)]
            identity = (container.id, container.started_at) if container else ("", "")
            if identity != state.container:  # another container: start afresh
                state.ok, state.successes, state.failures = None, 0, 0
                state.detail, state.container = "new container: probes not settled", identity
            if container is None:
                return
        if probe.initial_delay and _age(container, self._clock()) < probe.initial_delay:
            return
        problem = run_probe(probe, self._gateway, container)
        with self._lock:
            if state.container != identity:
                return  # the container changed while the probe ran: this result is stale
            before = state.ok
            if problem is None:
                state.successes, state.failures = state.successes + 1, 0
                if state.successes >= probe.success_threshold:
                    state.ok, state.detail = True, "passing"
            else:
                state.failures, state.successes = state.failures + 1, 0
                state.detail = problem
                if state.failures >= probe.failure_threshold:
                    state.ok = False
            changed = before is not state.ok
        if changed:
            self._on_change(name)

    def _loop(self, name: str, index: int) -> None:
        probe = self._services[name].probes[index]
        while not self._stop.is_set():
            self.run_once(name, index)
            if self._stop.wait(probe.period):
                return


def _age(container: ContainerSnapshot, now: float) -> float:
    """Seconds since the container started (0 when its start time cannot be read)."""
    started = engine_ns(container.started_at)
    return max(0.0, now - started / 1e9) if started is not None else 0.0


__all__: Sequence[str] = ["Prober", "run_probe"]
