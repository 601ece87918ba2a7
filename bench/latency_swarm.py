"""Benchmark: detection latency on a swarm against the same faults on plain Compose.

    .venv/bin/python bench/latency_swarm.py [--trials N] [--json PATH]

Needs root (it starts a private one-node swarm of its own: ``scripts/swarm-up --nodes 1
--images cc-busybox:1 DIR``, removed by ``scripts/swarm-down DIR`` at the end, also on
failure or Ctrl-C; the machine's own engine is never made a swarm). In one run, the
services of bench/latency.py (bench/latency_stack.yaml) run twice, each looked after by
the controller:

- compose: a compose project on the machine's engine and ``controller --env bench``, as
  bench/latency.py runs its "ours" (restart policy "no": the controller restarts);
- swarm: the same services deployed as a stack on the swarm (``docker stack deploy
  --resolve-image never``) and ``controller --env bench --engine swarm -f STACKFILE -p
  STACK`` with DOCKER_HOST on the manager. The stack file is written to the temp dir from
  latency_stack.yaml: what stack deploy ignores goes (``network_mode``, ``restart``), each
  service joins the host's network (``networks: [hostnet]``, the external network
  ``host``) and Swarm restarts it (``deploy.restart_policy: {condition: any, delay: 1s}``):
  Swarm replaces a dead task, the controller defers to it.

Both controllers get the same desired state, flags and settling as bench/latency.py's
(budget 100, backoff reset after 10 s of readiness, each trial waits until the service is
healthy and steady in /status). Each of ``--trials`` rounds (default 5) injects, into
each, the three faults of bench/latency.py, the swarm's through the manager's engine (the
one node runs every task, its dockerd on this machine):

1. crash: SIGKILL of the task container's main process from the host (its State.Pid);
2. healthcheck: ``rm /tmp/healthy`` in the task's container (a ``docker exec``);
3. error line: the conn-refused line on the task's stdout (an exec); fault time: the
   engine's timestamp of the line.

It measures, from the fault, detection (the issue appearing, reopening or counting up in
the controller's GET /status, polled every 20 ms) and recovery (the service running and
healthy in a new container: the controller's restart on Compose, Swarm's replacement task
on the swarm), and prints p50/p95 per case, the ratio swarm/compose per case and quantile,
and the goal next to them (detection on a swarm within 1.5x of Compose's; printed, not
asserted), then the same as one JSON line (the last line of stdout; ``--json PATH`` too).

A task carries no health state, so the manager's task list shows a failing healthcheck
only once Swarm killed the task; the controller also reads the manager's own engine's
events (a failing probe's ``exec_die``), and so sees the first failed check on both sides.
When that first failing check comes after the fault is the check's phase (interval 1 s:
anywhere from 0 to 1 s), alike in distribution on both sides but different trial by trial,
so a few trials' detection p50 can differ by a few tenths of a second either way. The
engine's events on each side split the figure: its first failing probe (``exec_die`` with
a non-zero exit code), its verdict (``health_status: unhealthy``, interval 1 s x retries
2) and the death (Swarm's kill; the controller's restart on Compose); "detection after
the first failing check" is the controller's own path on each side, whatever the phase,
and its ratio is printed next to the others.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import yaml
from docker.errors import NotFound

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.latency import (  # noqa: E402
    DIE,
    FAILED_CHECK,
    FAULTS,
    PROJECT_LABEL,
    SERVICE,
    SERVICE_LABEL,
    STACK,
    UNHEALTHY,
    Ours,
    Outcome,
    Project,
    Series,
    Verdicts,
    bench_args,
    goal,
    make_workdir,
    measure,
    render_cases,
    render_moment,
    render_ratios_and_goals,
    report_table,
    run_bench,
    settle,
    stats,
    wait_for,
)

SWARM_UP = ROOT / "scripts" / "swarm-up"
SWARM_DOWN = ROOT / "scripts" / "swarm-down"
IMAGE = "cc-busybox:1"
STACK_LABEL = "com.docker.stack.namespace"
SWARM_SERVICE_LABEL = "com.docker.swarm.service.name"
CONTENDERS = ("compose", "swarm")
GOAL = 1.5  # detection on a swarm within 1.5x of Compose's


def write_stack_file(dest: Path) -> Path:
    """bench/latency_stack.yaml in the words ``docker stack deploy`` reads."""
    model = yaml.safe_load(STACK.read_text())
    services = {}
    for name, spec in model["services"].items():
        spec = {
            k: copy.deepcopy(v) for k, v in spec.items() if k not in ("network_mode", "restart")
        }
        spec["networks"] = ["hostnet"]
        spec["deploy"] = {"restart_policy": {"condition": "any", "delay": "1s"}}
        services[name] = spec
    stack = {
        "version": "3.8",
        "services": services,
        "networks": {"hostnet": {"external": True, "name": "host"}},
    }
    header = "# written by bench/latency_swarm.py from bench/latency_stack.yaml\n"
    dest.write_text(header + yaml.safe_dump(stack, sort_keys=False))
    return dest


class PrivateSwarm:
    """A one-node swarm scripts/swarm-up makes in a directory of its own."""

    def __init__(self) -> None:
        # short: the node's sockets live under it (swarm-up allows 60 bytes)
        self.dir = Path(tempfile.mkdtemp(prefix="ccswb-", dir="/tmp"))
        self.manager = ""  # the manager's DOCKER_HOST, once up

    def up(self) -> None:
        argv = [str(SWARM_UP), "--nodes", "1", "--images", IMAGE, str(self.dir)]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=180, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"swarm-up exited {done.returncode}: {done.stderr[-2000:]}")
        self.manager = done.stdout.split()[2]  # NAME ROLE DOCKER_HOST NODE_ID HOSTNAME

    def down(self) -> None:
        argv = [str(SWARM_DOWN), str(self.dir)]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
        if done.returncode != 0:
            print(f"swarm-down failed: {done.stderr[-2000:]}", file=sys.stderr)


@dataclass
class StackProject(Project):
    """The services as a stack; its tasks' containers are found, inspected and given their
    faults through the manager's engine (``client``), which runs them all."""

    host: str = ""  # the manager's DOCKER_HOST
    stack_file: Path = STACK

    def docker(self, *args: str, check: bool = True) -> None:
        argv = ["docker", "-H", self.host, *args]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=180, check=False)
        if check and done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr.strip()[-1000:]}")

    def up(self) -> None:
        file = str(self.stack_file)
        self.docker("stack", "deploy", "--resolve-image", "never", "-c", file, self.name)
        wait_for(
            lambda: all(self.ready(s) for s in self.services),
            120,
            f"stack {self.name} running and healthy",
            0.25,
        )

    def down(self) -> None:
        self.docker("stack", "rm", self.name, check=False)  # swarm-down removes the rest

    def inspect(self, service: str) -> dict[str, Any] | None:
        """The container of the service's newest task (its running one, if any)."""
        for _ in range(2):
            found = self.client.api.containers(
                all=True, filters={"label": [f"{SWARM_SERVICE_LABEL}={self.name}_{service}"]}
            )
            if not found:
                return None
            newest = max(found, key=lambda c: (c["State"] == "running", c["Created"]))
            try:
                data: dict[str, Any] = self.client.api.inspect_container(newest["Id"])
                return data
            except NotFound:  # a task of the history, pruned meanwhile
                continue
        return None


@dataclass
class SwarmSeries(Series):
    died: list[float] = field(default_factory=list)  # the container's death, from the fault
    after_died: list[float] = field(default_factory=list)  # detection after that death
    checked: list[float] = field(default_factory=list)  # the first failing probe, from the fault
    after_checked: list[float] = field(default_factory=list)  # detection after that probe

    def summary(self, fault: str, detect: dict[str, Any]) -> dict[str, Any]:
        entry = super().summary(fault, detect)
        if fault == "healthcheck":
            entry["failed_check"] = stats(self.checked)
            entry["detect_after_failed_check"] = stats(self.after_checked)
            entry["died"] = stats(self.died)
            entry["detect_after_died"] = stats(self.after_died)
        return entry


@dataclass
class Side:
    """One contender: its project, the controller on it, and its engine's events, where
    the labels ``labels`` of a service's containers are the project's name and
    ``prefix`` + the service's (a stack's service is ``<stack>_<service>``)."""

    project: Project
    ours: Ours
    labels: tuple[str, str] = (PROJECT_LABEL, SERVICE_LABEL)
    prefix: str = ""
    verdicts: Verdicts | None = None

    def first_event(self, service: str, t0: float, action: str) -> float | None:
        if self.verdicts is None:
            return None
        return self.verdicts.first_after(self.project.name, self.prefix + service, t0, action)


class SwarmBench:
    def __init__(self, trials: int, workdir: Path) -> None:
        self.trials = trials
        self.workdir = workdir
        self.client = docker.from_env()
        self.manager: docker.DockerClient | None = None
        self.swarm = PrivateSwarm()
        self.tag = uuid.uuid4().hex[:8]
        every = tuple(SERVICE.values())
        compose = Project(f"bench-lsw-{self.tag}", self.client, every)
        (workdir / "compose").mkdir()
        self.sides: dict[str, Side] = {"compose": Side(compose, Ours(compose, workdir / "compose"))}
        self.results = {f: {c: SwarmSeries() for c in CONTENDERS} for f in FAULTS}

    def setup(self) -> None:
        self.client.images.get(IMAGE)  # never pulled: it must be local
        self.swarm.up()
        print(f"swarm: {self.swarm.dir}, manager {self.swarm.manager}", file=sys.stderr)
        self.manager = docker.DockerClient(base_url=self.swarm.manager)
        stack_file = write_stack_file(self.workdir / "stack.yaml")
        stack = StackProject(
            f"bsw{self.tag}",
            self.manager,
            tuple(SERVICE.values()),
            host=self.swarm.manager,
            stack_file=stack_file,
        )
        (self.workdir / "swarm").mkdir()
        flags = ("--engine", "swarm", "-f", str(stack_file), "-p", stack.name)
        ours = Ours(
            stack, self.workdir / "swarm", stack_file, flags, {"DOCKER_HOST": self.swarm.manager}
        )
        self.sides["swarm"] = Side(
            stack, ours, (STACK_LABEL, SWARM_SERVICE_LABEL), f"{stack.name}_"
        )
        for name, side in self.sides.items():
            base_url = self.swarm.manager if name == "swarm" else None
            side.verdicts = Verdicts(base_url, side.labels)
            side.project.up()
            side.ours.start()

    def teardown(self) -> None:
        for side in self.sides.values():
            side.ours.stop()
            if side.verdicts is not None:
                side.verdicts.stop()
            side.project.down()
        self.swarm.down()  # whatever the stack left, and the swarm
        if self.manager is not None:
            self.manager.close()
        self.client.close()

    def logs(self) -> list[Path]:
        return [side.ours.log for side in self.sides.values()]

    def run(self) -> None:
        for trial in range(1, self.trials + 1):
            for fault in FAULTS:
                for contender in CONTENDERS:
                    self._trial(trial, fault, contender)

    def _trial(self, trial: int, fault: str, contender: str) -> None:
        series = self.results[fault][contender]
        side, service = self.sides[contender], SERVICE[fault]
        note = settle(
            [
                (f"{contender}/{service} running and healthy", lambda: side.project.ready(service)),
                (f"{contender}/{service} steady in /status", lambda: side.ours.steady(service)),
            ]
        )
        if note:
            series.notes.append(f"trial {trial}: {note}")
        detected = side.ours.detector(service, fault)
        outcome = measure(side.project, service, fault, detected, fault != "error line")
        self._record(trial, series, side, service, fault, outcome)
        print(
            f"trial {trial} {fault:<11} {contender:<8} {outcome.shown()}",
            file=sys.stderr,
            flush=True,
        )

    @staticmethod
    def _record(
        trial: int, series: SwarmSeries, side: Side, service: str, fault: str, outcome: Outcome
    ) -> None:
        verdict = died = checked = None
        if fault == "healthcheck":
            verdict = side.first_event(service, outcome.t0, UNHEALTHY)
            died = side.first_event(service, outcome.t0, DIE)
            checked = side.first_event(service, outcome.t0, FAILED_CHECK)
        series.record(trial, outcome, verdict)
        for moment, since, after in (
            (died, series.died, series.after_died),
            (checked, series.checked, series.after_checked),
        ):
            if moment is not None:
                since.append(moment - outcome.t0)
                if outcome.detect is not None:
                    after.append(outcome.detect - moment)

    # --- the report ----------------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        cases: dict[str, dict[str, Any]] = {}
        for fault in FAULTS:
            cases[fault] = {}
            for contender in CONTENDERS:
                s = self.results[fault][contender]
                cases[fault][contender] = s.summary(fault, stats(s.detect))

        ratios: dict[str, float | None] = {}
        for fault in FAULTS:
            for kind in ("detect", "recover"):
                for q in ("p50", "p95"):
                    swarm = cases[fault]["swarm"][kind][q]
                    compose = cases[fault]["compose"][kind][q]
                    if kind == "detect" or fault != "error line":
                        ratios[f"{fault} {kind} {q} swarm/compose"] = _ratio(swarm, compose)
        for q in ("p50", "p95"):
            hc = cases["healthcheck"]
            ratios[f"healthcheck detect after the first failing check {q} swarm/compose"] = _ratio(
                hc["swarm"]["detect_after_failed_check"][q],
                hc["compose"]["detect_after_failed_check"][q],
            )
        goals = [
            goal(
                f"{fault} detection {q}: swarm <= {GOAL:g}x compose",
                ratios[f"{fault} detect {q} swarm/compose"],
                GOAL,
                "x",
            )
            for fault in FAULTS
            for q in ("p50", "p95")
        ]
        logs = {name: str(side.ours.log) for name, side in self.sides.items()}
        table = report_table(self.trials, cases, ratios, goals, self.workdir)
        return {**table, "controller_logs": logs}


def _ratio(swarm: float | None, compose: float | None) -> float | None:
    return None if swarm is None or not compose else swarm / compose


def render(table: dict[str, Any]) -> str:
    out = render_cases(table)
    why = {"compose": "restarted by the controller", "swarm": "killed as unhealthy by Swarm"}
    for contender, entry in table["cases"]["healthcheck"].items():
        what = f"healthcheck, {contender}: the engine's first failing probe"
        out.append(render_moment(what, entry["failed_check"], entry["detect_after_failed_check"]))
        what = f"healthcheck, {contender}: the container died ({why[contender]})"
        out.append(render_moment(what, entry["died"], entry["detect_after_died"]))
    out += render_ratios_and_goals(table)
    out.append("")
    out += [f"controller log, {name}: {log}" for name, log in table["controller_logs"].items()]
    out.append(f"files: {table['workdir']}")
    return "\n".join(out)


def main() -> int:
    args = bench_args(__doc__)
    if os.geteuid() != 0:
        print("root is needed: scripts/swarm-up starts a dockerd of its own")
        return 2
    workdir = make_workdir("bench-latency-swarm-")
    return run_bench(SwarmBench(args.trials, workdir), render, args.json)


if __name__ == "__main__":
    sys.exit(main())
