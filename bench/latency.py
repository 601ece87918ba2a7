"""Benchmark: how fast faults are detected and fixed, ours against two baselines, one run.

    .venv/bin/python bench/latency.py [--trials 5] [--json PATH]

Three compose projects run the same small service (bench/latency_stack.yaml: busybox,
no network, a file-based healthcheck, and a loop that prints what is written to a file):

- ours: looked after by the controller (`controller --env bench`, default 5 s / 50 s
  resync). Its backoff is set to 0.1 s and its budget to 1000 for the run, because the
  trials inject the same fault again and again: the benchmark measures detection and
  repair, not loop protection (which would rightly slow the 3rd fix of a flapping service);
- poller: bench/autoheal_baseline.py, docker-autoheal's behaviour (every 5 s, restart what
  is unhealthy or exited);
- docker: Docker's own `restart: on-failure` policy (crashes only; it ignores health).

Each trial injects one fault into each contender's container and measures, from the
moment of the fault, (a) detection: the issue appearing in the controller's /status
(polled every 20 ms) or the poller printing that it noticed, and (b) recovery: the
container running and healthy again, started after the fault (docker inspect, every
50 ms). Faults: a crash (SIGKILL of the container's main process from the host), a
failing healthcheck (its file removed), and an error line printed by the service (only
the controller reads logs: n/a for the others). It prints p50 and p95 per case and
contender, and the ratios. Nothing here is asserted: machines are noisy.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from controller.observe.lines import parse_timestamp  # noqa: E402

STACK = ROOT / "bench" / "latency_stack.yaml"
CONTROLLER = str(Path(sys.executable).parent / "controller")
ERROR_LINE = "Error: connect ECONNREFUSED 127.0.0.1:6379\n"
CASES = ("crash", "healthcheck", "error line")


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def poll(predicate: Callable[[], bool], timeout: float, every: float) -> float | None:
    """The time the predicate first held, or None after ``timeout`` seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return time.time()
        time.sleep(every)
    return None


@dataclass
class Project:
    name: str
    policy: str = "no"

    def compose(self, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run(
            ["docker", "compose", "-p", self.name, "-f", str(STACK), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
            env={**os.environ, "RESTART_POLICY": self.policy},
        )
        if done.returncode != 0 and args[0] not in ("down", "exec"):
            raise RuntimeError(f"compose {' '.join(args)}: {done.stderr.strip()[-500:]}")
        return done.stdout

    def inspect(self) -> dict[str, Any] | None:
        ids = self.compose("ps", "-aq", "app").split()
        if not ids:
            return None
        out = subprocess.run(
            ["docker", "inspect", ids[0]], capture_output=True, text=True, check=False
        ).stdout
        data: list[dict[str, Any]] = json.loads(out or "[]")
        return data[0] if data else None

    def healthy_since(self, t0: float) -> bool:
        data = self.inspect()
        if not data or data["State"]["Status"] != "running":
            return False
        started = parse_timestamp(str(data["State"]["StartedAt"]).encode())
        health = (data["State"].get("Health") or {}).get("Status")
        return health == "healthy" and started is not None and started / 1e9 > t0

    def healthy(self) -> bool:
        return self.healthy_since(0.0)

    def inject(self, case: str) -> float:
        data = self.inspect()
        assert data is not None
        if case == "crash":
            t0 = time.time()
            os.kill(int(data["State"]["Pid"]), signal.SIGKILL)
        elif case == "healthcheck":
            t0 = time.time()
            self.compose("exec", "-T", "app", "rm", "-f", "/tmp/healthy")
        else:
            t0 = time.time()
            self.compose(
                "exec",
                "-T",
                "app",
                "sh",
                "-c",
                "cat > /tmp/say.new && mv /tmp/say.new /tmp/say",
                stdin=ERROR_LINE,
            )
        return t0


class Verdicts:
    """When Docker itself declared a container unhealthy (its health_status events), so a
    healthcheck fault's detection can also be measured from the engine's verdict."""

    def __init__(self, projects: list[str]) -> None:
        import threading

        self.unhealthy: dict[str, list[float]] = {name: [] for name in projects}
        self._procs = []
        for name in projects:
            proc = subprocess.Popen(
                [
                    "docker",
                    "events",
                    "--filter",
                    "event=health_status",
                    "--filter",
                    f"label=com.docker.compose.project={name}",
                    "--format",
                    "{{json .}}",
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            self._procs.append(proc)
            threading.Thread(target=self._read, args=(name, proc), daemon=True).start()

    def _read(self, project: str, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            event = json.loads(line)
            if str(event.get("status") or event.get("Action") or "").endswith("unhealthy"):
                self.unhealthy[project].append(int(event["timeNano"]) / 1e9)

    def after(self, project: str, t0: float) -> float | None:
        poll(lambda: any(t >= t0 for t in self.unhealthy[project]), 2, 0.02)
        return next((t for t in self.unhealthy[project] if t >= t0), None)

    def stop(self) -> None:
        for proc in self._procs:
            proc.kill()
            proc.wait(10)


@dataclass
class Ours:
    project: Project
    workdir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        desired = self.workdir / "desired_state"
        desired.mkdir()
        (desired / "bench.yaml").write_text(
            f"project: {self.project.name}\ncompose_files: [{STACK}]\n"
            "environment: {RESTART_POLICY: 'no'}\n"
            "remediation: {budget: 1000, backoff_initial_seconds: 0.1, "
            "backoff_max_seconds: 0.1}\n"
        )
        with open(self.workdir / "controller.log", "wb") as log:
            self.proc = subprocess.Popen(
                [
                    CONTROLLER,
                    "--env",
                    "bench",
                    "--desired-state-dir",
                    str(desired),
                    "--state-dir",
                    str(self.workdir),
                    "--metrics-port",
                    str(self.port),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if poll(lambda: self._get("/readyz") is not None, 60, 0.2) is None:
            raise RuntimeError(f"the controller did not get ready; see {self.workdir}")

    def _get(self, path: str) -> bytes | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as r:
                body: bytes = r.read()
                return body
        except OSError:
            return None

    def issues(self) -> list[dict[str, Any]]:
        body = self._get("/status")
        issues: list[dict[str, Any]] = json.loads(body)["issues"] if body else []
        return issues

    def quiet(self) -> bool:
        return not any(i["source"] == "drift" and i["state"] != "resolved" for i in self.issues())

    def detect(self, case: str, t0: float) -> float | None:
        if case == "error line":
            before = sum(i["count"] for i in self.issues() if i.get("pattern_id") == "conn-refused")
            return poll(
                lambda: (
                    sum(i["count"] for i in self.issues() if i.get("pattern_id") == "conn-refused")
                    > before
                ),
                30,
                0.02,
            )
        fingerprint = "drift:app:exited" if case == "crash" else "drift:app:unhealthy"

        def seen() -> bool:
            for issue in self.issues():
                if issue["fingerprint"] == fingerprint and issue["state"] != "resolved":
                    last = parse_timestamp(issue["last_seen"].replace("+00:00", "Z").encode())
                    return last is not None and last / 1e9 >= t0
            return False

        return poll(seen, 30, 0.02)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@dataclass
class Poller:
    project: Project
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def out(self) -> Path:
        return self.workdir / "poller.jsonl"

    def start(self) -> None:
        with open(self.out, "wb") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    str(ROOT / "bench" / "autoheal_baseline.py"),
                    "--project",
                    self.project.name,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def detect(self, case: str, t0: float) -> float | None:
        def noticed() -> float | None:
            for line in self.out.read_text().splitlines():
                event = json.loads(line)
                if event["event"] in ("exited", "unhealthy") and event["t"] >= t0:
                    return float(event["t"])
            return None

        if poll(lambda: noticed() is not None, 30, 0.05) is None:
            return None
        return noticed()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} s"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-latency-"))
    tag = f"{os.getpid()}"
    projects = {
        "ours": Project(f"bench-lat-ours-{tag}"),
        "poller": Project(f"bench-lat-poll-{tag}"),
        "docker": Project(f"bench-lat-dock-{tag}", policy="on-failure"),
    }
    ours, poller = Ours(projects["ours"], workdir), Poller(projects["poller"], workdir)
    results: dict[str, dict[str, dict[str, list[float]]]] = {
        case: {name: {"detect": [], "recover": [], "after verdict": []} for name in projects}
        for case in CASES
    }
    verdicts = Verdicts([p.name for p in projects.values()])
    try:
        for project in projects.values():
            project.compose("up", "-d", "--wait")
        ours.start()
        poller.start()
        for case in CASES:
            for trial in range(args.trials):
                for name, project in projects.items():
                    if name == "docker" and case != "crash":
                        continue
                    if name == "poller" and case == "error line":
                        continue
                    settled = poll(lambda p=project: p.healthy(), 90, 0.1) and (
                        name != "ours" or poll(ours.quiet, 90, 0.1)
                    )
                    if not settled:
                        print(
                            f"{case}/{name}: did not settle before trial {trial + 1}",
                            file=sys.stderr,
                        )
                        continue
                    t0 = project.inject(case)
                    if name == "ours":
                        seen = ours.detect(case, t0)
                    elif name == "poller":
                        seen = poller.detect(case, t0)
                    else:
                        seen = None
                    if seen is not None:
                        results[case][name]["detect"].append(seen - t0)
                    if case != "error line":
                        back = poll(lambda p=project, t=t0: p.healthy_since(t), 90, 0.05)
                        if back is not None:
                            results[case][name]["recover"].append(back - t0)
                    verdict = verdicts.after(project.name, t0) if case == "healthcheck" else None
                    if seen is not None and verdict is not None:
                        results[case][name]["after verdict"].append(seen - verdict)
                print(f"{case}: trial {trial + 1}/{args.trials} done", file=sys.stderr)
    finally:
        ours.stop()
        poller.stop()
        verdicts.stop()
        for project in projects.values():
            project.compose("down", "-v", "--remove-orphans", "-t", "1")
    report(results, args.trials)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    print(f"(controller log and poller output: {workdir})")
    return 0


def report(results: dict[str, dict[str, dict[str, list[float]]]], trials: int) -> None:
    labels = {"ours": "ours", "poller": "5 s poller", "docker": "docker policy"}
    print(f"\n{trials} trial(s) per case; times from the fault\n")
    print(
        f"{'case':<12} {'contender':<14} {'detect p50':>11} {'detect p95':>11} "
        f"{'recover p50':>12} {'recover p95':>12}"
    )
    for case, by_name in results.items():
        for name, series in by_name.items():
            if not series["detect"] and not series["recover"]:
                continue
            print(
                f"{case:<12} {labels[name]:<14} {fmt(percentile(series['detect'], 0.5)):>11} "
                f"{fmt(percentile(series['detect'], 0.95)):>11} "
                f"{fmt(percentile(series['recover'], 0.5)):>12} "
                f"{fmt(percentile(series['recover'], 0.95)):>12}"
            )
    for name in ("ours", "poller"):
        after = results["healthcheck"][name]["after verdict"]
        if after:
            print(
                f"healthcheck  {labels[name]:<14} detection from Docker's unhealthy verdict: "
                f"p50 {fmt(percentile(after, 0.5))}, p95 {fmt(percentile(after, 0.95))}"
            )

    def ratio(case: str, kind: str, other: str) -> str:
        x = percentile(results[case]["ours"][kind], 0.95)
        y = percentile(results[case][other][kind], 0.95)
        return "n/a" if x is None or not y else f"{x / y:.2f}x"

    rows = [
        ("crash detection, ours / 5 s poller", ratio("crash", "detect", "poller"), "<= 0.2x"),
        (
            "health detection from the fault, ours / 5 s poller",
            ratio("healthcheck", "detect", "poller"),
            "",
        ),
        (
            "health detection from Docker's verdict, ours / 5 s poller",
            ratio("healthcheck", "after verdict", "poller"),
            "<= 0.2x",
        ),
        ("crash recovery, ours / 5 s poller", ratio("crash", "recover", "poller"), ""),
        ("health recovery, ours / 5 s poller", ratio("healthcheck", "recover", "poller"), ""),
        ("crash recovery, ours / docker policy", ratio("crash", "recover", "docker"), "<= 1.5x"),
    ]
    print("\nratios of p95:")
    for what, value, goal in rows:
        print(f"  {what:<58} {value:>7}" + (f"   goal {goal}" if goal else ""))
    own = [
        results["crash"]["ours"]["detect"],
        results["error line"]["ours"]["detect"],
        results["healthcheck"]["ours"]["after verdict"],
    ]
    worst = max((percentile(v, 0.95) or 0.0) for v in own)
    print(
        f"  our worst detection p95 (crash; error line; health after Docker's verdict): "
        f"{worst:.2f} s   goal <= 1 s"
    )
    print(
        "  (Docker declares a container unhealthy only after interval x retries of its "
        "healthcheck, 2 s here, for every contender alike)"
    )


if __name__ == "__main__":
    sys.exit(main())
