"""Benchmark: how fast real faults are detected and repaired, ours against two baselines.

    .venv/bin/python bench/latency.py [--trials N] [--json PATH]

Three compose projects run the same services (bench/latency_stack.yaml: busybox, no
network, a healthcheck that tests /tmp/healthy, which every start re-creates), each
looked after by one contender:

- ours: the controller, ``controller --env bench --interval-active 5 --interval-quiet
  50``, with a desired_state file written to the temp dir. Its budget is raised to 100 and
  its backoff reset to 10 s of readiness (Docker's own restart policy resets its delay
  after 10 s of running), and each trial waits until the controller has reset it: every
  trial measures a first fix, not the crash-loop protection that rightly slows the 2nd;
- autoheal: bench/autoheal_baseline.py, what docker-autoheal does (every 5 s, restart
  whatever is unhealthy or exited; it prints a timestamped line when it notices). Its
  faults come after a random 0-5 s offset, so they meet its cadence at a random phase;
- docker: Docker's own ``restart: on-failure`` policy, for crashes only (the engine does
  not restart an unhealthy container and does not read logs).

Each of ``--trials`` rounds (default 5) injects, into each contender's services:

1. crash: SIGKILL of the container's main process from the host (os.kill on State.Pid);
2. healthcheck: ``rm /tmp/healthy`` in the container (fault time: when the exec ended);
3. error line: ``Error: connect ECONNREFUSED 127.0.0.1:6379`` (pattern conn-refused) on
   the service's own stdout (a ``docker exec`` writes it to /proc/1/fd/1); fault time: the
   engine's timestamp of that line in the container's log.

and measures, from the fault, (a) detection: the issue appearing, reopening or counting
up in the controller's GET /status (polled every 20 ms), or the time autoheal printed that
it noticed; (b) recovery: ``docker inspect`` (the API call, every 50 ms) showing the
service running and healthy in a container started after the fault. An error line needs
no repair (conn-refused is reported, not fixed) and autoheal cannot see one at all: both
are "n/a". The engine's own "unhealthy" verdict (interval 1 s x retries 2) is recorded
too, with each contender's detection relative to it: autoheal waits for the verdict; the
controller reports the first failed check and acts on the verdict.

It prints p50/p95 per case and contender, the ratios ours/autoheal and ours/docker and the
goals next to them (printed, not asserted), then the same as one JSON line (the last line
of stdout; ``--json PATH`` writes it there too). The controller's log, the autoheal output
and the desired_state and issues files stay in the temp dir it prints. Everything it
starts is torn down at the end, also on failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any, Protocol, TypeVar

import docker
from docker.errors import DockerException, NotFound

ROOT = Path(__file__).resolve().parents[1]
STACK = ROOT / "bench" / "latency_stack.yaml"
BASELINE = ROOT / "bench" / "autoheal_baseline.py"
CONTROLLER = str(Path(sys.executable).parent / "controller")

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
ERROR_LINE = "Error: connect ECONNREFUSED 127.0.0.1:6379"
FAULTS = ("crash", "healthcheck", "error line")
SERVICE = {"crash": "crash", "healthcheck": "sick", "error line": "noisy"}
CONTENDERS = ("ours", "autoheal", "docker")
LABEL = {"ours": "ours", "autoheal": "autoheal (5 s)", "docker": "docker on-failure"}
ACTIVE = {"open", "remediating", "failed", "needs-human"}
UNHEALTHY = "health_status: unhealthy"  # engine events
DIE = "die"
FAILED_CHECK = "exec_die"  # an exec ended non-zero: a failing health probe (ours exit 0)

STATUS_EVERY = 0.02  # s between GET /status polls
INSPECT_EVERY = 0.05  # s between docker inspect polls
AUTOHEAL_INTERVAL = 5.0  # s between the baseline's checks
TRIAL_TIMEOUT = 60.0  # s a trial may take to detect and recover
SETTLE_TIMEOUT = 90.0  # s a contender may take to be steady before a trial
BACKOFF_RESET = 10.0  # s of readiness after which ours counts a fix as the first again
DOCKER_RESET = 10.5  # s of running after which Docker's restart delay is back to 100 ms

T = TypeVar("T")


class Interrupted(Exception):
    """SIGTERM, turned into an exception so that teardown runs."""


def wait_for(predicate: Callable[[], T | None], timeout: float, what: str, every: float) -> T:
    """Poll ``predicate`` until it returns something truthy; TimeoutError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)


_RFC3339 = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def parse_time(text: str) -> float:
    """An engine timestamp (RFC 3339, nanoseconds) as epoch seconds."""
    found = _RFC3339.match(text.strip())
    if found is None:
        raise ValueError(f"not a timestamp: {text!r}")
    zone = "+00:00" if found.group(3) == "Z" else found.group(3)
    whole = datetime.fromisoformat(found.group(1) + zone).timestamp()
    return whole + float("0" + (found.group(2) or ""))


def free_port() -> int:
    """A loopback port in 18000-18999 that nothing listens on now."""
    while True:
        port = random.randint(18000, 18999)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port


def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default); None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def stop_process(proc: subprocess.Popen[bytes] | None, grace: float) -> None:
    """SIGTERM the process we started, SIGKILL it if it outlives ``grace`` seconds."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


# --- the engine side ---------------------------------------------------------------------


@dataclass
class Project:
    """One compose project of the benchmark, and its containers through the docker API."""

    name: str
    client: docker.DockerClient
    services: tuple[str, ...]
    restart_policy: str = "no"
    _ids: dict[str, str] = field(default_factory=dict)

    def compose(self, *args: str, check: bool = True) -> str:
        argv = ["docker", "compose", "-p", self.name, "-f", str(STACK), *args]
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
            env={**os.environ, "RESTART_POLICY": self.restart_policy},
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr.strip()[-1000:]}")
        return done.stdout

    def up(self) -> None:
        self.compose(
            "up", "--detach", "--pull", "never", "--wait", "--wait-timeout", "120", *self.services
        )

    def down(self) -> None:
        self.compose("down", "-v", "--remove-orphans", "-t", "1", check=False)

    def inspect(self, service: str) -> dict[str, Any] | None:
        """The service's container as ``docker inspect`` shows it (None: there is none).
        The id is cached; a recreated container is found again by its compose labels."""
        for _ in range(2):
            cid = self._ids.get(service)
            if cid is None:
                found = self.client.api.containers(
                    all=True,
                    filters={
                        "label": [f"{PROJECT_LABEL}={self.name}", f"{SERVICE_LABEL}={service}"]
                    },
                )
                if not found:
                    return None
                cid = self._ids[service] = str(found[0]["Id"])
            try:
                data: dict[str, Any] = self.client.api.inspect_container(cid)
                return data
            except NotFound:
                self._ids.pop(service, None)
        return None

    def started_at(self, service: str) -> str:
        data = self.inspect(service)
        return "" if data is None else f"{data['Id']}@{data['State']['StartedAt']}"

    def ready(self, service: str, not_start: str | None = None) -> bool:
        """Running and healthy (and, with ``not_start``, in a different run than that)."""
        data = self.inspect(service)
        if data is None or data["State"]["Status"] != "running":
            return False
        if (data["State"].get("Health") or {}).get("Status") != "healthy":
            return False
        return not_start is None or f"{data['Id']}@{data['State']['StartedAt']}" != not_start

    def running_for(self, service: str) -> float:
        data = self.inspect(service)
        if data is None or data["State"]["Status"] != "running":
            return 0.0
        return time.time() - parse_time(data["State"]["StartedAt"])

    def inject(self, service: str, fault: str) -> float:
        """Cause ``fault`` in the service's container; the time it happened."""
        data = self.inspect(service)
        if data is None or data["State"]["Status"] != "running":
            raise RuntimeError(f"{self.name}/{service} is not running")
        if fault == "crash":
            t0 = time.time()
            os.kill(int(data["State"]["Pid"]), signal.SIGKILL)
            return t0
        if fault == "healthcheck":
            self._exec(data["Id"], ["rm", "-f", "/tmp/healthy"])
            return time.time()  # the file is gone by now
        before = time.time()
        self._exec(data["Id"], ["sh", "-c", f"echo '{ERROR_LINE}' > /proc/1/fd/1"])
        after = time.time()
        return self._line_time(data["Id"], before) or after

    def _exec(self, cid: str, argv: list[str]) -> None:
        exec_id = self.client.api.exec_create(cid, argv)["Id"]
        self.client.api.exec_start(exec_id)
        code = self.client.api.exec_inspect(exec_id)["ExitCode"]
        if code != 0:
            raise RuntimeError(f"{argv} exited {code} in {self.name}")

    def _line_time(self, cid: str, since: float) -> float | None:
        """The engine's timestamp of our error line: when it entered the container's log."""
        raw = self.client.api.logs(
            cid, stdout=True, stderr=True, timestamps=True, since=int(since) - 1
        )
        for line in reversed(raw.decode("utf-8", "replace").splitlines()):
            stamp, _, text = line.partition(" ")
            if text.strip() == ERROR_LINE:
                at = parse_time(stamp)
                return at if at >= since - 1.0 else None
        return None


class Verdicts:
    """When an engine itself declared a container unhealthy, or saw it die: its
    ``health_status: unhealthy`` and ``die`` events, by the container's labels (those of
    ``labels``: a compose project and service by default)."""

    def __init__(
        self, base_url: str | None = None, labels: tuple[str, str] = (PROJECT_LABEL, SERVICE_LABEL)
    ) -> None:
        self._client = docker.DockerClient(base_url=base_url) if base_url else docker.from_env()
        self._labels = labels
        self._events = self._client.events(decode=True, filters={"type": "container"})
        self._seen: dict[tuple[str, str, str], list[float]] = {}
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, name="verdicts", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for event in self._events:
                action = event.get("Action")
                labels = (event.get("Actor") or {}).get("Attributes") or {}
                if action == FAILED_CHECK and str(labels.get("exitCode", "0")) == "0":
                    continue
                if action not in (UNHEALTHY, DIE, FAILED_CHECK):
                    continue
                key = (action, labels.get(self._labels[0], ""), labels.get(self._labels[1], ""))
                with self._lock:
                    self._seen.setdefault(key, []).append(int(event["timeNano"]) / 1e9)
        except Exception:  # the stream is closed at teardown
            pass

    def first_after(
        self, project: str, service: str, t0: float, action: str = UNHEALTHY
    ) -> float | None:
        with self._lock:
            seen = self._seen.get((action, project, service), [])
            return min((t for t in seen if t >= t0), default=None)

    def stop(self) -> None:
        self._events.close()
        self._client.close()


# --- the contenders ----------------------------------------------------------------------


class Ours:
    """The controller, on its own project, with its /status. ``engine_args`` and
    ``environment`` are added to its command line and environment (another backend)."""

    def __init__(
        self,
        project: Project,
        workdir: Path,
        compose_file: Path = STACK,
        engine_args: tuple[str, ...] = (),
        environment: dict[str, str] | None = None,
    ) -> None:
        self.project = project
        self.workdir = workdir
        self.compose_file = compose_file
        self.engine_args = engine_args
        self.environment = {**os.environ, **(environment or {})}
        self.log = workdir / "controller.log"
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        desired = self.workdir / "desired_state"
        desired.mkdir()
        (desired / "bench.yaml").write_text(
            f"project: {self.project.name}\n"
            f"compose_files: [{self.compose_file}]\n"
            "environment: {RESTART_POLICY: 'no'}\n"
            "remediation:\n"
            "  budget: 100\n"
            f"  backoff_reset_seconds: {BACKOFF_RESET:g}\n"
        )
        state = self.workdir / "state"
        state.mkdir()
        argv = [
            CONTROLLER,
            "--env",
            "bench",
            "--desired-state-dir",
            str(desired),
            "--state-dir",
            str(state),
            "--metrics-port",
            str(self.port),
            "--interval-active",
            "5",
            "--interval-quiet",
            "50",
            "--shutdown-timeout",
            "5",
            *self.engine_args,
        ]
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                env=self.environment,
                start_new_session=True,
            )
        wait_for(
            lambda: self._alive() and self._get("/readyz") is not None,
            60,
            "the controller to be ready",
            0.1,
        )

    def _alive(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"the controller exited with {self.proc.returncode}")
        return True

    def _get(self, path: str) -> bytes | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as reply:
                body: bytes = reply.read()
                return body
        except (urllib.error.URLError, OSError):
            return None

    def status(self) -> dict[str, Any]:
        body = self._get("/status")
        data: dict[str, Any] = json.loads(body) if body else {}
        return data

    @staticmethod
    def _relevant(issue: dict[str, Any], service: str, fault: str) -> bool:
        if issue.get("service") != service:
            return False
        if fault == "error line":
            return issue.get("source") == "log" and issue.get("pattern_id") == "conn-refused"
        return issue.get("source") == "drift"

    def steady(self, service: str) -> bool:
        """Ready in its eyes, no drift open, and its backoff reset (a first fix next)."""
        doc = self.status()
        if not doc:
            return False
        condition = next((s["condition"] for s in doc["services"] if s["name"] == service), "")
        drifting = any(
            i["service"] == service and i["source"] == "drift" and i["state"] in ACTIVE
            for i in doc["issues"]
        )
        history = (doc.get("remediation") or {}).get(service) or {}
        return condition == "Ready" and not drifting and not history.get("consecutive")

    def snapshot(self, service: str, fault: str) -> dict[str, tuple[str, int, int]]:
        return {
            i["fingerprint"]: (i["state"], int(i.get("occurrences", 0)), int(i["count"]))
            for i in self.status().get("issues", [])
            if self._relevant(i, service, fault)
        }

    def detected(self, service: str, fault: str, before: dict[str, tuple[str, int, int]]) -> bool:
        """The issue appeared, reopened or counted up since ``before``."""
        for issue in self.status().get("issues", []):
            if not self._relevant(issue, service, fault) or issue["state"] not in ACTIVE:
                continue
            old = before.get(issue["fingerprint"])
            if old is None or old[0] not in ACTIVE:
                return True
            if int(issue.get("occurrences", 0)) > old[1] or int(issue["count"]) > old[2]:
                return True
        return False

    def detector(self, service: str, fault: str) -> Callable[[float], float | None]:
        """A poll for ``measure``: the time the issue appeared, reopened or counted up in
        /status since now (None: not yet)."""
        before = self.snapshot(service, fault)
        return lambda t0: time.time() if self.detected(service, fault, before) else None

    def stop(self) -> None:
        stop_process(self.proc, 15)


class Autoheal:
    """bench/autoheal_baseline.py on its own project; its notices are read from its output."""

    def __init__(self, project: Project, workdir: Path) -> None:
        self.project = project
        self.log = workdir / "autoheal.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = [
            sys.executable,
            str(BASELINE),
            "--project",
            self.project.name,
            "--interval",
            f"{AUTOHEAL_INTERVAL:g}",
        ]
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        wait_for(lambda: " started " in self._text(), 30, "the autoheal baseline", 0.05)

    def _text(self) -> str:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"the autoheal baseline exited with {self.proc.returncode}")
        return self.log.read_text() if self.log.exists() else ""

    def notices(self, service: str, since: float) -> list[float]:
        """When it noticed something wrong with ``service`` at or after ``since``."""
        times = []
        for line in self._text().splitlines():
            words = line.split()
            if len(words) >= 5 and words[1] == "notice" and words[4] == f"service={service}":
                at = datetime.fromisoformat(words[0]).timestamp()
                if at >= since:
                    times.append(at)
        return times

    def first_notice(self, service: str, since: float) -> float | None:
        return next(iter(self.notices(service, since)), None)

    def stop(self) -> None:
        stop_process(self.proc, 10)


# --- the trials --------------------------------------------------------------------------


@dataclass
class Outcome:
    """One fault and what followed it, in epoch seconds (None: not seen in time)."""

    t0: float
    detect: float | None = None
    recover: float | None = None
    timed_out: bool = False

    def shown(self) -> str:
        pairs = (("detect", self.detect), ("recover", self.recover))
        return " ".join(f"{k} {v - self.t0:.3f} s" for k, v in pairs if v)


@dataclass
class Series:
    detect: list[float] = field(default_factory=list)
    recover: list[float] = field(default_factory=list)
    verdict: list[float] = field(default_factory=list)  # engine said unhealthy, from the fault
    after_verdict: list[float] = field(default_factory=list)  # detection after that verdict
    notes: list[str] = field(default_factory=list)

    def record(self, trial: int, outcome: Outcome, verdict: float | None) -> None:
        """A trial's times, from its fault; ``verdict``: the engine's unhealthy verdict."""
        if outcome.timed_out:
            self.notes.append(f"trial {trial}: timed out after {TRIAL_TIMEOUT:g} s")
        if outcome.detect is not None:
            self.detect.append(outcome.detect - outcome.t0)
        if outcome.recover is not None:
            self.recover.append(outcome.recover - outcome.t0)
        if verdict is not None:
            self.verdict.append(verdict - outcome.t0)
            if outcome.detect is not None:
                self.after_verdict.append(outcome.detect - verdict)

    def summary(self, fault: str, detect: dict[str, Any]) -> dict[str, Any]:
        """The series as a row of the report; ``detect``: its detection's stats (or why
        there are none)."""
        entry = {
            "detect": detect,
            "recover": stats(
                self.recover,
                fault != "error line",
                "nothing to repair: conn-refused is reported, not fixed",
            ),
            "notes": self.notes,
        }
        if fault == "healthcheck":
            entry["engine_unhealthy"] = stats(self.verdict)
            entry["detect_after_engine"] = stats(self.after_verdict)
        return entry


def settle(checks: list[tuple[str, Callable[[], bool]]]) -> str:
    """Wait until each check holds in turn; a note if one did not in time ("": all did)."""
    for what, check in checks:
        try:
            wait_for(check, SETTLE_TIMEOUT, what, 0.1)
        except TimeoutError as err:
            return str(err)
    return ""


def measure(
    project: Project,
    service: str,
    fault: str,
    detected: Callable[[float], float | None] | None,
    want_recover: bool,
) -> Outcome:
    """Inject ``fault`` into the service, then poll ``detected(t0)`` (when it was noticed,
    None: not yet; every STATUS_EVERY) and, with ``want_recover``, the engine for the service
    running and healthy in a new run (every INSPECT_EVERY), until both or TRIAL_TIMEOUT."""
    start = project.started_at(service)
    outcome = Outcome(project.inject(service, fault))
    next_status = next_inspect = time.time()
    while (detected and outcome.detect is None) or (want_recover and outcome.recover is None):
        now = time.time()
        if now - outcome.t0 > TRIAL_TIMEOUT:
            outcome.timed_out = True
            break
        if detected and outcome.detect is None and now >= next_status:
            outcome.detect = detected(outcome.t0)
            next_status = now + STATUS_EVERY
        if want_recover and outcome.recover is None and now >= next_inspect:
            if project.ready(service, not_start=start):
                outcome.recover = time.time()
            next_inspect = now + INSPECT_EVERY
        time.sleep(max(0.002, min(next_status, next_inspect) - time.time()))
    return outcome


class Bench:
    def __init__(self, trials: int, workdir: Path) -> None:
        self.trials = trials
        self.workdir = workdir
        self.client = docker.from_env()
        tag = uuid.uuid4().hex[:8]
        every = tuple(SERVICE.values())
        self.projects = {
            "ours": Project(f"bench-lat-{tag}-ours", self.client, every),
            "autoheal": Project(f"bench-lat-{tag}-autoheal", self.client, every),
            "docker": Project(f"bench-lat-{tag}-docker", self.client, ("crash",), "on-failure"),
        }
        self.ours = Ours(self.projects["ours"], workdir)
        self.autoheal = Autoheal(self.projects["autoheal"], workdir)
        self.verdicts: Verdicts | None = None
        self.results = {f: {c: Series() for c in CONTENDERS} for f in FAULTS}
        self.unseen_lines = 0  # error lines shown to autoheal
        self.unseen_since: float | None = None  # when the first of them was

    def setup(self) -> None:
        self.client.images.get("cc-busybox:1")  # never pulled: it must be local
        self.verdicts = Verdicts()
        for project in self.projects.values():
            project.up()
        self.ours.start()
        self.autoheal.start()

    def teardown(self) -> None:
        self.ours.stop()
        self.autoheal.stop()
        if self.verdicts is not None:
            self.verdicts.stop()
        downs = [threading.Thread(target=p.down) for p in self.projects.values()]
        for thread in downs:
            thread.start()
        for thread in downs:
            thread.join(120)
        self.client.close()

    def logs(self) -> list[Path]:
        return [self.ours.log]

    def run(self) -> None:
        for trial in range(1, self.trials + 1):
            for fault in FAULTS:
                for contender in CONTENDERS:
                    if contender == "docker" and fault != "crash":
                        continue  # the engine neither restarts unhealthy containers nor reads logs
                    if contender == "autoheal" and fault == "error line":
                        self._show_autoheal_an_error_line()
                        continue
                    self._trial(trial, fault, contender)

    def _settle(self, fault: str, contender: str) -> str:
        """Wait until the contender is steady; a note if it was not in time."""
        project, service = self.projects[contender], SERVICE[fault]
        checks: list[tuple[str, Callable[[], bool]]] = [
            (f"{contender}/{service} running and healthy", lambda: project.ready(service))
        ]
        if contender == "ours":
            checks.append((f"ours/{service} steady in /status", lambda: self.ours.steady(service)))
        if contender == "docker":
            checks.append(
                (
                    f"docker/{service} its restart delay reset",
                    lambda: project.running_for(service) >= DOCKER_RESET,
                )
            )
        return settle(checks)

    def _trial(self, trial: int, fault: str, contender: str) -> None:
        series = self.results[fault][contender]
        project, service = self.projects[contender], SERVICE[fault]
        note = self._settle(fault, contender)
        if note:
            series.notes.append(f"trial {trial}: {note}")
        if contender == "autoheal":
            # the trials' own rhythm would meet the poller's fixed 5 s cadence at much the
            # same phase every time: a random offset makes the phase uniform, as in life
            time.sleep(random.uniform(0.0, AUTOHEAL_INTERVAL))
        detected: Callable[[float], float | None] | None = None
        if contender == "ours":
            detected = self.ours.detector(service, fault)
        elif contender == "autoheal":
            detected = functools.partial(self.autoheal.first_notice, service)
        outcome = measure(project, service, fault, detected, fault != "error line")
        verdict = None
        if fault == "healthcheck" and self.verdicts is not None:
            verdict = self.verdicts.first_after(project.name, service, outcome.t0)
        series.record(trial, outcome, verdict)
        print(
            f"trial {trial} {fault:<11} {contender:<8} {outcome.shown()}",
            file=sys.stderr,
            flush=True,
        )

    def _show_autoheal_an_error_line(self) -> None:
        """The same line for the poller; it cannot see it (checked in the report)."""
        project = self.projects["autoheal"]
        if self._settle("error line", "autoheal"):
            return
        t0 = project.inject(SERVICE["error line"], "error line")
        self.unseen_since = t0 if self.unseen_since is None else self.unseen_since
        self.unseen_lines += 1

    # --- the report ----------------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        """The table as data: p50/p95 per case and contender, ratios and goals."""
        since = self.unseen_since
        noticed = len(self.autoheal.notices(SERVICE["error line"], since)) if since else 0
        cases: dict[str, dict[str, Any]] = {}
        for fault in FAULTS:
            cases[fault] = {}
            for contender in CONTENDERS:
                if contender == "docker" and fault != "crash":
                    continue
                s = self.results[fault][contender]
                blind = contender == "autoheal" and fault == "error line"
                detect = stats(
                    s.detect,
                    contender != "docker" and not blind,
                    "restart policy: no detection step"
                    if contender == "docker"
                    else f"cannot read logs (noticed {noticed} of {self.unseen_lines} lines)",
                )
                cases[fault][contender] = s.summary(fault, detect)

        def ratio(fault: str, kind: str, other: str, q: str) -> float | None:
            ours = cases[fault]["ours"][kind][q]
            theirs = cases[fault][other][kind][q]
            return None if ours is None or not theirs else ours / theirs

        ratios: dict[str, float | None] = {}
        for fault in ("crash", "healthcheck"):
            for kind in ("detect", "recover"):
                for q in ("p50", "p95"):
                    ratios[f"{fault} {kind} {q} ours/autoheal"] = ratio(fault, kind, "autoheal", q)
        for q in ("p50", "p95"):
            ratios[f"crash recover {q} ours/docker"] = ratio("crash", "recover", "docker", q)

        goals = [
            goal(f"our {fault} detection p95 <= 1 s", cases[fault]["ours"]["detect"]["p95"], 1, "s")
            for fault in FAULTS
        ]
        for kind in ("crash detect", "healthcheck detect"):
            for q in ("p50", "p95"):
                text = f"{kind.replace('detect', 'detection')} {q}: ours <= 0.2x autoheal's"
                goals.append(goal(text, ratios[f"{kind} {q} ours/autoheal"], 0.2, "x"))
        for q in ("p50", "p95"):
            text = f"crash recovery {q}: ours <= 1.5x Docker's policy"
            goals.append(goal(text, ratios[f"crash recover {q} ours/docker"], 1.5, "x"))
        table = report_table(self.trials, cases, ratios, goals, self.workdir)
        return {**table, "controller_log": str(self.ours.log)}


def stats(values: list[float], applies: bool = True, why: str = "") -> dict[str, Any]:
    """p50, p95 and the samples; with ``applies`` false, "n/a" and why."""
    if not applies:
        return {"p50": None, "p95": None, "n": 0, "samples": [], "na": why}
    return {
        "p50": percentile(values, 0.5),
        "p95": percentile(values, 0.95),
        "n": len(values),
        "samples": [round(v, 4) for v in values],
    }


def report_table(
    trials: int,
    cases: dict[str, dict[str, Any]],
    ratios: dict[str, float | None],
    goals: list[dict[str, Any]],
    workdir: Path,
) -> dict[str, Any]:
    return {
        "trials": trials,
        "unit": "seconds from the fault",
        "cases": cases,
        "ratios": ratios,
        "goals": goals,
        "workdir": str(workdir),
    }


def goal(text: str, value: float | None, limit: float, unit: str) -> dict[str, Any]:
    """A goal of the report: met when ``value`` is at most ``limit`` (None: no value)."""
    met = None if value is None else value <= limit
    return {"goal": text, "value": value, "limit": limit, "unit": unit, "met": met}


def cell(stat: dict[str, Any], q: str) -> str:
    return "n/a" if stat.get("na") or stat[q] is None else f"{stat[q]:.2f}"


def render_ratios_and_goals(table: dict[str, Any]) -> list[str]:
    out = ["", "ratios:"]
    for name, value in table["ratios"].items():
        out.append(f"  {name:<50} {'n/a' if value is None else f'{value:.2f}x':>7}")
    out += ["", "goals (not asserted):"]
    for g in table["goals"]:
        value = (
            "n/a"
            if g["value"] is None
            else f"{g['value']:.2f}{' ' if g['unit'] == 's' else ''}{g['unit']}"
        )
        verdict = {True: "met", False: "MISSED", None: "n/a"}[g["met"]]
        out.append(f"  {g['goal']:<66} {value:>8}  {verdict}")
    return out


def render_cases(table: dict[str, Any]) -> list[str]:
    """The table's rows (p50/p95 per case and contender) and the engine's verdicts."""
    out = [
        f"latency, {table['trials']} trial(s) per case, seconds from the fault",
        "",
        f"{'fault':<12} {'contender':<18} {'detect p50':>10} {'p95':>6} "
        f"{'recover p50':>11} {'p95':>6}  notes",
    ]
    for fault, by in table["cases"].items():
        for contender, entry in by.items():
            why = [s["na"] for s in (entry["detect"], entry["recover"]) if s.get("na")]
            out.append(
                f"{fault:<12} {LABEL.get(contender, contender):<18} "
                f"{cell(entry['detect'], 'p50'):>10} "
                f"{cell(entry['detect'], 'p95'):>6} {cell(entry['recover'], 'p50'):>11} "
                f"{cell(entry['recover'], 'p95'):>6}  {'; '.join(why + entry['notes'])}"
            )
    out.append("")
    for contender, entry in table["cases"]["healthcheck"].items():
        out.append(
            render_moment(
                f"healthcheck, {LABEL.get(contender, contender)}: engine said unhealthy",
                entry["engine_unhealthy"],
                entry["detect_after_engine"],
            )
        )
    return out


def render_moment(what: str, moment: dict[str, Any], after: dict[str, Any]) -> str:
    """When something happened after the fault, and detection relative to it."""
    return (
        f"{what} after p50 {cell(moment, 'p50')} / p95 {cell(moment, 'p95')}; detection "
        f"relative to that p50 {cell(after, 'p50')} / p95 {cell(after, 'p95')} "
        "(negative: before it)"
    )


def render(table: dict[str, Any]) -> str:
    out = render_cases(table) + render_ratios_and_goals(table)
    out += ["", f"controller log: {table['controller_log']}", f"files: {table['workdir']}"]
    return "\n".join(out)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(f"signal {signum}")


class Runnable(Protocol):
    """What ``run_bench`` runs: a Bench of this file or another's."""

    def setup(self) -> None: ...
    def run(self) -> None: ...
    def report(self) -> dict[str, Any]: ...
    def teardown(self) -> None: ...
    def logs(self) -> list[Path]: ...


def missing(*argvs: list[str]) -> str:
    """The first of the commands that fails, as a message ("": all work)."""
    for argv in argvs:
        if subprocess.run(argv, capture_output=True, check=False).returncode != 0:
            return f"`{' '.join(argv)}` fails"
    return ""


def run_bench(
    bench: Runnable, render: Callable[[dict[str, Any]], str], json_path: Path | None
) -> int:
    """Set up, run and report ``bench``; tear it down whatever happens (also on Ctrl-C or
    SIGTERM). Prints the table, then its JSON as the last line of stdout (also to
    ``json_path``); on a failure, the traceback and the last lines of its logs."""
    signal.signal(signal.SIGTERM, _interrupt)
    failed = ""
    try:
        bench.setup()
        bench.run()
        table = bench.report()
    except (KeyboardInterrupt, Interrupted):
        failed = "interrupted"
    except (DockerException, RuntimeError, TimeoutError, OSError):
        failed = traceback.format_exc()
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # teardown must not be cut short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("tearing down ...", file=sys.stderr, flush=True)
        bench.teardown()
    if failed:
        print(failed, file=sys.stderr)
        for log in bench.logs():
            if log.exists():
                tail = log.read_text(errors="replace").splitlines()[-40:]
                print(f"--- last lines of {log}:", *tail, sep="\n", file=sys.stderr)
        return 130 if failed == "interrupted" else 1
    print(render(table))
    line = json.dumps(table, separators=(",", ":"))
    if json_path:
        json_path.write_text(line + "\n")
    print(line)
    return 0


def bench_args(doc: str) -> argparse.Namespace:
    """--trials and --json, as every latency benchmark takes them; exits 2 where there is
    no Docker engine or no Compose v2."""
    parser = argparse.ArgumentParser(description=doc.split("\n", 1)[0])
    parser.add_argument("--trials", type=int, default=5, help="trials per fault (default 5)")
    parser.add_argument("--json", type=Path, help="also write the table as JSON here")
    args = parser.parse_args()
    if args.trials < 1:
        parser.error("--trials must be at least 1")
    problem = missing(["docker", "info"], ["docker", "compose", "version"])
    if problem:
        parser.exit(2, f"{problem}: a Docker engine and Compose v2 are needed\n")
    return args


def make_workdir(prefix: str) -> Path:
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    print(f"files and logs: {workdir}", file=sys.stderr, flush=True)
    return workdir


def main() -> int:
    args = bench_args(__doc__)
    return run_bench(Bench(args.trials, make_workdir("bench-latency-")), render, args.json)


if __name__ == "__main__":
    sys.exit(main())
