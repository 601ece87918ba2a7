"""The fault injector: carries out one fault of the catalog on the real stack, journals
it, and waits for its outcome as the engine shows it.

Every fault is real: a SIGKILL is ``os.kill`` of the container's main process from the
host, an OOM is the worker's own allocation past its cgroup limit, a failing healthcheck
is the service's own check failing, an error line is printed by the service itself (the
injector leaves it in the service's control directory, ``ctl/<service>/say-*.txt``, which
the service prints on its stdout: log text never passes through a command line or a
shell), a person is ``docker stop``/``docker start``/``docker compose ...`` run as a
person would.

After the injection the fault's thread waits, polling the engine, for its outcome (the
service ready again in a new run, the line in the log, the person's part done), then for
the controller to settle on the services it touched (nothing open on their state, no step
being proven), so that a slow machine never turns one fault into two: the scheduler
injects nothing on a service before that. Each wait has a generous timeout; a fault whose
outcome never came is journaled so, and a fault the harness had to undo (a healthcheck
still failing after the timeout) says so in its notes.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from soak.catalog import FLOOD_LINES, FOREIGN_ERROR, log_case
from soak.engine import Engine, wait_until
from soak.journal import Fault, Journal
from soak.recorder import IssueWatcher, drift_free, settled
from soak.stack import JOBS, SoakStack, dependents
from soak.stack import write_atomically as _write

PROBE_PERIOD, PROBE_THRESHOLD = 2.0, 3  # the api's declared probe (soak.stack)


class InjectionError(Exception):
    """The fault could not be injected (its service was not running): nothing happened."""


@dataclass(frozen=True)
class Timeouts:
    outcome: float = 240.0  # the service back (a backoff of a repeated fault included)
    settle: float = 660.0  # the controller settled: a crash's proof lasts up to 10 min
    log_line: float = 30.0  # an injected line in the engine's log


class Injector:
    def __init__(
        self,
        stack: SoakStack,
        engine: Engine,
        journal: Journal,
        watcher: IssueWatcher | None,
        timeouts: Timeouts,
        stopping: threading.Event,
    ) -> None:
        self.stack = stack
        self.engine = engine
        self.journal = journal
        self.watcher = watcher
        self.timeouts = timeouts
        self.stopping = stopping
        self._seq = 0
        self._lock = threading.Lock()

    # --- the service's control directory ---------------------------------------------

    def ctl(self, service: str, name: str, text: str) -> None:
        _write(self.stack.ctl / service / name, text)

    def unctl(self, service: str, name: str) -> None:
        (self.stack.ctl / service / name).unlink(missing_ok=True)

    def say(self, service: str, text: str) -> None:
        """The service prints ``text`` on its stdout, as it is."""
        with self._lock:
            self._seq += 1
            name = f"say-{time.time_ns():020d}-{self._seq:06d}.txt"
        self.ctl(service, name, text)

    # --- shared steps ---------------------------------------------------------------------

    def _running(self, service: str) -> dict[str, object]:
        data = self.engine.inspect(service)
        if data is None or data["State"]["Status"] != "running" or not data["State"]["Pid"]:
            raise InjectionError(f"{service} is not running")
        return data

    def _kill(self, fault: Fault) -> str:
        """SIGKILL of the main process from the host; the run it ended."""
        data = self._running(fault.service)
        before = f"{data['Id']}@{data['State']['StartedAt']}"  # type: ignore[index]
        fault.t0 = time.time()
        os.kill(int(data["State"]["Pid"]), signal.SIGKILL)  # type: ignore[index]
        self.journal.injected(fault)
        fault.effect_at = fault.t0
        return before

    def _back(self, fault: Fault, service: str, before: str | None) -> bool:
        """Wait for the service ready in another run than ``before``; note a timeout."""
        ok = wait_until(
            lambda: self.engine.ready(service, not_run=before), self.timeouts.outcome, 0.1
        )
        if ok and service == fault.service:
            fault.recovered_at = time.time()
        if not ok:
            fault.notes.append(f"{service} not ready again within {self.timeouts.outcome:g} s")
        return ok

    def _dependents_back(self, fault: Fault) -> None:
        for other in dependents(fault.service):
            if other not in JOBS and self.engine.inspect(other) is not None:
                self._back(fault, other, None)

    def _line(self, fault: Fault, service: str, first: str) -> None:
        at: list[float] = []

        def seen() -> bool:
            found = self.engine.line_time(service, first, fault.t0)
            if found is not None:
                at.append(found)
            return found is not None

        if wait_until(seen, self.timeouts.log_line, 0.2):
            fault.effect_at = at[0]
        else:
            fault.notes.append(f"the line never showed in {service}'s log")

    def _person(self, *args: str) -> None:
        self.stack.docker(*args)

    # --- the kinds --------------------------------------------------------------------

    def crash(self, fault: Fault) -> None:
        before = self._kill(fault)
        self._back(fault, fault.service, before)
        if fault.kind == "dependency-crash":
            self._dependents_back(fault)

    def slow_start(self, fault: Fault) -> None:
        self.ctl(fault.service, "slow", f"{fault.params['seconds']}\n")
        self.crash(fault)

    def crash_loop(self, fault: Fault) -> None:
        """Every start dies ``seconds`` later while the loop lasts; a SIGKILL begins it."""
        self.ctl(fault.service, "crashloop", f"{fault.params['seconds']}\n")
        before = self._kill(fault)
        time.sleep(float(str(fault.params["for"])))
        self.unctl(fault.service, "crashloop")
        fault.ended_at = time.time()
        self._back(fault, fault.service, before)

    def oom(self, fault: Fault) -> None:
        data = self._running(fault.service)
        before = f"{data['Id']}@{data['State']['StartedAt']}"  # type: ignore[index]
        fault.t0 = time.time()
        self.ctl(fault.service, "oom", "1\n")
        self.journal.injected(fault)
        # dead: exited, or already started again by a restart policy (a baseline's)
        if wait_until(
            lambda: (
                self.engine.finished_at(fault.service) is not None
                or self.engine.run_of(fault.service) != before
            ),
            60,
            0.05,
        ):
            fault.effect_at = self.engine.last_exit(fault.service, fault.t0)
        self._back(fault, fault.service, before)

    def health_blip(self, fault: Fault) -> None:
        self._running(fault.service)
        fault.t0 = time.time()
        self.ctl(fault.service, "sick", "1\n")
        self.journal.injected(fault)
        failed: list[float] = []

        def first_failure() -> bool:
            at = self.engine.failed_check_after(fault.service, fault.t0)
            if at is not None:
                failed.append(at)
            return at is not None

        if wait_until(first_failure, 60, 0.05):
            fault.effect_at = failed[0]
        else:
            fault.notes.append("no failed check within 60 s")
        self.unctl(fault.service, "sick")
        fault.ended_at = time.time()
        data = self.engine.inspect(fault.service) or {}
        if ((data.get("State") or {}).get("Health") or {}).get("Status") == "unhealthy":
            fault.notes.append("the engine called it unhealthy before the check passed again")
        self._back(fault, fault.service, None)

    def health_hang(self, fault: Fault) -> None:
        data = self._running(fault.service)
        before = f"{data['Id']}@{data['State']['StartedAt']}"  # type: ignore[index]
        fault.t0 = time.time()
        self.ctl(fault.service, "sick", "1\n")
        self.journal.injected(fault)
        if wait_until(
            lambda: self.engine.failed_check_after(fault.service, fault.t0) is not None, 60, 0.05
        ):
            fault.effect_at = self.engine.failed_check_after(fault.service, fault.t0)
        if not self._back(fault, fault.service, before):
            self.unctl(fault.service, "sick")
            fault.notes.append("the harness removed the fault (no restart came)")

    def probe_fail(self, fault: Fault) -> None:
        data = self._running(fault.service)
        before = f"{data['Id']}@{data['State']['StartedAt']}"  # type: ignore[index]
        fault.t0 = time.time()
        self.ctl(fault.service, "notready", "1\n")
        self.journal.injected(fault)
        # the probe can fail no sooner than its threshold of periods after the fault
        fault.effect_at = fault.t0 + PROBE_PERIOD * (PROBE_THRESHOLD - 1)
        if not self._back(fault, fault.service, before):
            self.unctl(fault.service, "notready")
            fault.notes.append("the harness removed the fault (no restart came)")

    def log(self, fault: Fault) -> None:
        case = log_case(str(fault.params["category"]))
        text = case.text.format(service=fault.service)
        data = self._running(fault.service)
        before = f"{data['Id']}@{data['State']['StartedAt']}"  # type: ignore[index]
        fault.t0 = time.time()
        self.say(fault.service, text)
        self.journal.injected(fault)
        self._line(fault, fault.service, text.splitlines()[0])
        if case.action:
            self._back(fault, fault.service, before)

    def runbook(self, fault: Fault) -> None:
        name = str(fault.params["database"])
        self._running(fault.service)
        fault.t0 = time.time()
        self.ctl(fault.service, "dbname", name + "\n")
        self.journal.injected(fault)
        port = self.stack.ports.db
        first = (
            f'ERROR worker: psycopg2.OperationalError: connection to server at "127.0.0.1", '
            f'port {port} failed: FATAL:  database "{name}" does not exist'
        )
        self._line(fault, fault.service, first)
        if wait_until(
            lambda: self.engine.logged_since(
                fault.service, f"connected to database {name}\n", fault.t0
            ),
            self.timeouts.outcome,
            0.2,
        ):
            fault.recovered_at = time.time()
        else:
            fault.notes.append(f"the worker never reached database {name}")
        self.unctl(fault.service, "dbname")  # back to its own database
        fault.ended_at = time.time()

    def stop_start(self, fault: Fault) -> None:
        """A person stops the service, and starts it again a while later."""
        data = self._running(fault.service)
        before = f"{data['Id']}@{data['State']['StartedAt']}"  # type: ignore[index]
        fault.t0 = time.time()
        self._person("stop", str(data["Id"]))
        self.journal.injected(fault)
        fault.effect_at = self.engine.finished_at(fault.service) or fault.t0
        if fault.params.get("foreign"):
            time.sleep(3.0)
            self.say("api", FOREIGN_ERROR.text)
            fault.notes.append(f"foreign error printed by api at {time.time():.3f}")
        left = fault.t0 + float(str(fault.params["seconds"])) - time.time()
        if left > 0:
            time.sleep(left)
        self._person("start", str(data["Id"]))
        fault.ended_at = time.time()
        self._back(fault, fault.service, before)
        self._dependents_back(fault)

    def person_restart(self, fault: Fault) -> None:
        data = self._running(fault.service)
        before = f"{data['Id']}@{data['State']['StartedAt']}"  # type: ignore[index]
        fault.t0 = time.time()
        self.journal.injected(fault)
        self.stack.compose("restart", fault.service)
        fault.ended_at = time.time()
        self._back(fault, fault.service, before)

    def person_up(self, fault: Fault) -> None:
        data = self._running(fault.service)
        before = f"{data['Id']}@{data['State']['StartedAt']}"  # type: ignore[index]
        fault.t0 = time.time()
        fault.params["generation"] = self.stack.new_config(fault.service)
        self.journal.injected(fault)
        self.stack.compose("up", "--detach", "--no-deps", fault.service)
        fault.ended_at = time.time()
        self._back(fault, fault.service, before)

    def job_fail(self, fault: Fault) -> None:
        self.ctl(fault.service, "fail", "1\n")
        fault.t0 = time.time()
        self.journal.injected(fault)
        self.stack.compose("up", "--detach", "--no-deps", "--force-recreate", fault.service)
        fault.ended_at = time.time()
        failed: list[str] = []

        def failed_run() -> bool:
            data = self.engine.inspect(fault.service)
            state = (data or {}).get("State") or {}
            if state.get("Status") == "exited" and state.get("ExitCode") not in (0, None):
                failed.append(f"{data['Id']}@{state['StartedAt']}")  # type: ignore[index]
                return True
            return False

        if wait_until(failed_run, 120, 0.1):
            fault.effect_at = self.engine.finished_at(fault.service)
            self._back(fault, fault.service, failed[0])
        else:
            self.unctl(fault.service, "fail")
            fault.notes.append("the job did not fail as injected")

    def flood(self, fault: Fault) -> None:
        self._running(fault.service)
        count = int(str(fault.params["lines"]))
        marker = f"{fault.service}: flood {fault.id} done"
        lines = [
            FLOOD_LINES[n % len(FLOOD_LINES)].format(n=n, service=fault.service)
            for n in range(count)
        ]
        fault.t0 = time.time()
        self.say(fault.service, "\n".join([*lines, marker]) + "\n")
        self.journal.injected(fault)
        fault.effect_at = fault.t0
        if wait_until(lambda: self.engine.logged_since(fault.service, marker, fault.t0), 120, 0.5):
            fault.ended_at = time.time()
        else:
            fault.notes.append("the flood's last line never showed")

    def quiet(self, fault: Fault) -> None:
        fault.t0 = time.time()
        self.journal.injected(fault)
        fault.effect_at = fault.t0
        self.stopping.wait(float(str(fault.params["seconds"])))
        fault.ended_at = time.time()

    KINDS: ClassVar[dict[str, Callable[[Injector, Fault], None]]] = {
        "crash": crash,
        "crash-policy": crash,
        "dependency-crash": crash,
        "slow-start": slow_start,
        "crash-loop": crash_loop,
        "oom": oom,
        "health-blip": health_blip,
        "health-hang": health_hang,
        "probe-fail": probe_fail,
        "log": log,
        "runbook": runbook,
        "dependency-stop": stop_start,
        "person-stop": stop_start,
        "person-restart": person_restart,
        "person-up": person_up,
        "job-fail": job_fail,
        "flood": flood,
        "quiet": quiet,
    }

    # --- one fault, start to end ------------------------------------------------------

    def run(self, fault: Fault, touch: tuple[str, ...]) -> bool:
        """Inject ``fault``, wait for its outcome and for the controller to settle on
        ``touch``; journal it. False when it could not be injected (nothing happened)."""
        try:
            self.KINDS[fault.kind](self, fault)
        except InjectionError as exc:
            self.journal.write({"event": "skip", "id": fault.id, "why": str(exc)})
            return False
        except Exception as exc:  # the harness must go on and say what went wrong
            fault.notes.append(f"harness error: {type(exc).__name__}: {exc}")
            if not fault.t0:
                self.journal.write({"event": "skip", "id": fault.id, "why": str(exc)})
                return False
        if self.watcher is not None:
            if wait_until(self.is_settled(touch), self.timeouts.settle, 0.25, self.stopping):
                fault.settled_at = time.time()
            elif not self.stopping.is_set():
                fault.notes.append(
                    f"the controller did not settle within {self.timeouts.settle:g} s"
                )
        self.journal.done(fault)
        return True

    def is_settled(self, services: tuple[str, ...]) -> Callable[[], bool]:
        def check() -> bool:
            if self.watcher is None:
                return True
            doc = self.watcher.latest()
            return all(self.engine.ready(s) and settled(doc, s) for s in services)

        return check

    def is_calm(self, services: tuple[str, ...]) -> bool:
        """Ready, with no drift open in the controller's eyes (a step may still be proven)."""
        doc = self.watcher.latest() if self.watcher is not None else {}
        return all(self.engine.ready(s) and drift_free(doc, s) for s in services)
