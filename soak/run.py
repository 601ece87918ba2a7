"""One soak run, start to end: the stack, the controller, Prometheus and the receiver up;
the quiet stretch; the faults; the evidence collected; everything torn down (also on a
failure or Ctrl-C); the baselines; the score.

The run directory (printed at the start, kept) holds everything the scorer reads and
everything needed to investigate: ``journal.jsonl``, ``timeline.jsonl``,
``notifications.jsonl``, ``alerts.json``, ``status.json``, ``ours/controller.log``,
``ours/state/docker_issues_soak.json``, ``prometheus.log``, the baselines' directories.
"""

from __future__ import annotations

import json
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import docker

from soak import baseline, evidence
from soak.catalog import Spec, spec
from soak.engine import Engine, wait_until
from soak.inject import Injector, Timeouts
from soak.journal import Fault, Journal
from soak.recorder import IssueWatcher, NoticeLog, fetch_alerts
from soak.schedule import Planned, long_plan, short_tour
from soak.score import Score, score
from soak.stack import Ports, SoakStack
from soak.watch import CheckFailures
from tests.e2e.conftest import free_ports, http_get
from tests.e2e.test_prometheus import Prometheus
from tests.receiver import Receiver

SHORT_QUIET_MINUTES = 2.5  # longer than the stall limit (30 s) and the quiet cadence (50 s)
LONG_QUIET_MINUTES = 30.0
GRACE = 15.0  # s after the last fault: notifications are grouped for 10 s
SHORT_BLOCK = 150.0  # s a fault of the short tour waits for its services to settle


class Interrupted(Exception):
    """SIGTERM or SIGINT: the run stops, and everything it started is torn down."""


@dataclass(frozen=True)
class Options:
    minutes: float | None = None  # None: the short tour
    quiet_minutes: float | None = None
    seed: int = 1
    workdir: Path | None = None
    baselines: bool = True

    @property
    def mode(self) -> str:
        return "short" if self.minutes is None else f"long {self.minutes:g} min"

    @property
    def quiet_seconds(self) -> float:
        default = SHORT_QUIET_MINUTES if self.minutes is None else LONG_QUIET_MINUTES
        return 60.0 * (self.quiet_minutes if self.quiet_minutes is not None else default)


def conflicts(a: Spec, b: Spec) -> bool:
    """Two faults that must not run at once: one acts where the other acts or watches."""
    return bool(set(a.touch) & (set(b.touch) | set(b.near)) or set(b.touch) & set(a.near))


class Run:
    def __init__(self, options: Options, say: Callable[[str], None] = print) -> None:
        self.options = options
        self.say = say
        self.workdir = options.workdir or Path(tempfile.mkdtemp(prefix="soak-", dir="/tmp"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.journal = Journal(self.workdir / "journal.jsonl")
        self.interrupted = threading.Event()
        self.phase_over = threading.Event()  # the faults are over: stop waiting to settle
        self._teardown: list[tuple[str, Callable[[], None]]] = []
        self.meta: dict[str, Any] = {
            "seed": options.seed,
            "mode": options.mode,
            "workdir": str(self.workdir),
        }

    # --- the whole run ------------------------------------------------------------------

    def execute(self) -> Score:
        self.say(f"soak: run directory {self.workdir}")
        self.journal.write({"event": "run", "started": time.time(), **self.meta})
        try:
            self._ours()
        finally:
            self._tear_down()
        found = score(evidence.load(self.workdir))
        if self.options.baselines and not self.interrupted.is_set():
            for contender in ("autoheal", "docker"):
                self.say(f"soak: baseline {contender}")
                found.baselines[contender] = baseline.run_baseline(
                    contender, self.workdir, found_faults(self.workdir), self.interrupted
                )
        (self.workdir / "score.json").write_text(json.dumps(found.as_dict(), default=str))
        return found

    def _on_teardown(self, what: str, step: Callable[[], None]) -> None:
        self._teardown.append((what, step))

    def _tear_down(self) -> None:
        for what, step in reversed(self._teardown):
            try:
                step()
            except Exception as exc:  # every step runs, whatever the one before did
                self.say(f"soak: teardown of {what} failed: {exc}")
        self._teardown.clear()

    # --- our controller's run -----------------------------------------------------------

    def _ours(self) -> None:
        receiver = Receiver(free_ports(1)[0])
        self._on_teardown("the receiver", receiver.close)
        stack = SoakStack(self.workdir / "ours", Ports(*free_ports(3)), notify_port=receiver.port)
        self._on_teardown("the stack", stack.down)
        self.say(f"soak: starting {stack.project} (8 services)")
        stack.up()
        checks = CheckFailures(stack.project, self.journal)
        checks.start()
        self._on_teardown("the check-failure watch", checks.stop)
        # the recorders stop after the controller: what it says at shutdown is recorded
        notices = NoticeLog(receiver, self.workdir / "notifications.jsonl")
        notices.start()
        self._on_teardown("the notification log", notices.stop)
        watcher = IssueWatcher(stack.issues_file, self.workdir / "timeline.jsonl")
        watcher.start()
        self._on_teardown("the issues watcher", watcher.stop)
        (port,) = free_ports(1)
        started = time.time()
        proc = stack.start_controller(
            "--metrics-port", str(port), "--log-format", "json", "--shutdown-timeout", "5"
        )
        self._on_teardown("the controller", lambda: _stop(proc, 30))
        base = f"http://127.0.0.1:{port}"
        if not wait_until(lambda: http_get(base + "/readyz")[0] == 200, 90, 0.2):
            raise RuntimeError("the controller did not become ready")
        prom = Prometheus(self.workdir, f"127.0.0.1:{port}")
        self._on_teardown("Prometheus", prom.stop)
        self._on_teardown("the alerts", lambda: self._save_alerts(prom.base, started))
        if not wait_until(lambda: prom.series('up{job="compose-controller"} == 1'), 60, 0.5):
            raise RuntimeError("Prometheus never scraped the controller")
        self._on_teardown("the final status", lambda: self._save_status(base))
        client = docker.from_env()
        self._on_teardown("the docker client", client.close)
        engine = Engine(stack, client)
        timeouts = Timeouts() if self.options.minutes is not None else Timeouts(outcome=150.0)
        injector = Injector(stack, engine, self.journal, watcher, timeouts, self.phase_over)

        quiet_end = started + self.options.quiet_seconds
        self.say(f"soak: quiet stretch of {self.options.quiet_seconds / 60:g} min")
        while time.time() < quiet_end:
            self._check(proc)
            self.interrupted.wait(min(1.0, max(0.0, quiet_end - time.time())))
        self.journal.phase("quiet", started, time.time())

        plan = (
            short_tour(self.options.seed)
            if self.options.minutes is None
            else long_plan(self.options.seed, self.options.minutes)
        )
        fault_start = time.time()
        self._faults(plan, injector, proc, timeouts)
        self.journal.phase("faults", fault_start, time.time())
        self.say(f"soak: faults over; {GRACE:g} s for the last notifications")
        self.interrupted.wait(GRACE)

    def _faults(
        self,
        plan: list[Planned],
        injector: Injector,
        proc: subprocess.Popen[str],
        timeouts: Timeouts,
    ) -> None:
        short = self.options.minutes is None
        end = time.time() + 60.0 * (self.options.minutes or 0.0)
        lookahead = 1 if short else 8
        block = SHORT_BLOCK if short else timeouts.settle
        pending = list(plan)
        inflight: dict[str, tuple[threading.Thread, Spec]] = {}
        blocked: dict[str, float] = {}
        tainted: set[str] = set()
        last = time.time()
        while pending and not self.interrupted.is_set():
            if not short and time.time() >= end:
                break
            self._check(proc)
            inflight = {k: v for k, v in inflight.items() if v[0].is_alive()}
            chosen: tuple[Planned, Spec] | None = None
            for planned in pending[:lookahead]:
                sp = spec(planned.kind, planned.service, planned.params)
                if set(sp.touch) & tainted:
                    pending.remove(planned)
                    self.journal.write(
                        {"event": "skip", "id": planned.id, "why": f"tainted: {sorted(tainted)}"}
                    )
                    break
                if time.time() < last + planned.gap:
                    break
                if any(conflicts(sp, other) for _, other in inflight.values()):
                    continue
                if not injector.is_settled(sp.touch)() or not injector.is_calm(sp.near):
                    since = blocked.setdefault(planned.id, time.time())
                    if time.time() - since > block:
                        stuck = [s for s in sp.touch if not injector.is_settled((s,))()]
                        tainted.update(stuck or sp.touch)
                        self.say(f"soak: {planned.id} waited {block:g} s for {stuck}: skipped")
                    continue
                chosen = (planned, sp)
                break
            if chosen is None:
                self.interrupted.wait(0.25)
                continue
            planned, sp = chosen
            pending.remove(planned)
            fault = Fault(
                planned.id,
                planned.kind,
                planned.service,
                dict(planned.params),
                sp.expect,
                person=sp.person,
                recovery_expected=sp.recovery,
            )
            self.say(f"soak: {fault.id} {fault.kind} {fault.service} {fault.params or ''}")
            thread = threading.Thread(
                target=injector.run, args=(fault, sp.touch), name=fault.id, daemon=True
            )
            thread.start()
            inflight[fault.id] = (thread, sp)
            last = time.time()
        self.phase_over.set()
        for thread, _ in inflight.values():
            thread.join(timeouts.outcome + 60)

    def _check(self, proc: subprocess.Popen[str]) -> None:
        if self.interrupted.is_set():
            raise Interrupted()
        if proc.poll() is not None:
            raise RuntimeError(f"the controller exited with {proc.returncode}")

    def _save_status(self, base: str) -> None:
        code, body = http_get(base + "/status")
        if code == 200:
            (self.workdir / "status.json").write_text(body)

    def _save_alerts(self, prom_base: str, start: float) -> None:
        found = fetch_alerts(prom_base, start - 5, time.time())
        (self.workdir / "alerts.json").write_text(json.dumps(found, indent=1))


def found_faults(workdir: Path) -> list[Fault]:
    return evidence.load(workdir).faults


def _stop(proc: subprocess.Popen[str], grace: float) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def run(options: Options, say: Callable[[str], None] = print) -> tuple[Score, dict[str, Any]]:
    """A whole run; SIGTERM and SIGINT stop it (everything torn down)."""
    soak = Run(options, say)

    def interrupt(signum: int, frame: FrameType | None) -> None:
        soak.interrupted.set()
        soak.phase_over.set()
        raise Interrupted()

    previous = {
        sig: signal.signal(sig, interrupt)
        for sig in (signal.SIGTERM, signal.SIGINT)
        if threading.current_thread() is threading.main_thread()
    }
    try:
        return soak.execute(), soak.meta
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
