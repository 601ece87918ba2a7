"""Benchmark: what sampling resources costs, ours beside the `docker stats` CLI, one run.

    .venv/bin/python bench/sampling.py [--containers 100] [--repeat 3]

Starts one compose project of ``--containers`` busybox containers (no network, nothing
printed), then, on those same containers, in turns:

- ours: one round of the controller's sampler (``observe.usage.UsageSampler`` over the
  ``DockerEngine`` gateway: the engine's one-shot stats of every container, 8 at a time),
  and one call of the engine's disk usage (writable layers and volumes, the disk round);
- the CLI: ``docker stats --no-stream`` for the same containers (memory and pids of each).

For each: the CPU of the controller's threads (what the round says it cost) or of the CLI
process, and the engine's (dockerd, containerd and the containers' shims, from /proc),
less the engine's CPU over an idle stretch as long, measured between the turns (the
machine is shared). Medians of ``--repeat`` turns. Printed: the cost of one sample each
way, their ratio, and what sampling 100 containers costs at the default cadence (a watched
container every 30 s, a quiet one every 5 min, ``predict.cadence``) as a share of one core,
all quiet, some watched, all watched. Everything is removed at the end.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from procstat import cpu_seconds  # noqa: E402

from controller.model import ObservedState, PredictSettings, system_clock  # noqa: E402
from controller.observe.engine import DockerEngine  # noqa: E402
from controller.observe.usage import Round, UsageSampler  # noqa: E402

REPLICAS = 5
FAST, QUIET = PredictSettings().interval, PredictSettings().quiet_interval
SERVICE = """  s{n}:
    image: cc-busybox:1
    network_mode: none
    deploy: {{replicas: {replicas}}}
    command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 3600 & wait $$!; done"]
"""


def engine_pids() -> list[int]:
    pids = [int(Path("/var/run/docker.pid").read_text())]
    found = subprocess.run(["pgrep", "-f", "containerd"], capture_output=True, text=True)
    return pids + [int(p) for p in found.stdout.split()]


def engine_cpu(pids: list[int]) -> dict[int, float]:
    out = {}
    for pid in pids:
        try:
            out[pid] = sum(cpu_seconds(pid))
        except (FileNotFoundError, ProcessLookupError):
            continue
    return out


def engine_delta(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(after[p] - before[p] for p in before if p in after)


def measured(work: Callable[[], float]) -> tuple[float, float, float]:
    """(our or the CLI's CPU, the engine's CPU, wall seconds) of ``work``, which returns
    its own CPU."""
    pids = engine_pids()
    before, started = engine_cpu(pids), time.monotonic()
    own = work()
    wall = time.monotonic() - started
    return own, engine_delta(before, engine_cpu(pids)), wall


def idle(seconds: float) -> float:
    pids = engine_pids()
    before = engine_cpu(pids)
    time.sleep(seconds)
    return engine_delta(before, engine_cpu(pids))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--containers", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    services = max(1, args.containers // REPLICAS)
    work = Path(tempfile.mkdtemp(prefix="bench-sampling-"))
    project = f"bench-sampling-{uuid.uuid4().hex[:8]}"
    compose = ["docker", "compose", "-p", project, "-f", str(work / "compose.yaml")]
    gateway = DockerEngine()
    try:
        (work / "compose.yaml").write_text(
            "services:\n" + "".join(SERVICE.format(n=n, replicas=REPLICAS) for n in range(services))
        )
        subprocess.run([*compose, "up", "-d", "--wait"], check=True, capture_output=True)
        containers = gateway.list_containers(project)
        ids = [c.id for c in containers]
        count = len(ids)
        rounds: list[Round] = []
        sampler = UsageSampler(
            gateway,
            project,
            PredictSettings(),
            rounds.append,
            lambda container, now: True,  # every container, every round
            lambda now: False,  # the disk usage is measured on its own
            system_clock,
        )
        sampler.update(ObservedState(project, time.time(), tuple(containers)))
        sampler.run_once()  # warm: the connection pool, the engine's host memory
        ours, ours_disk, cli = [], [], []
        for _ in range(args.repeat):
            own, engine, wall = measured(lambda: sampler.run_once().cpu_seconds)
            ours.append((own, engine - idle(wall)))
            own, engine, wall = measured(lambda: disk_call(gateway, project))
            ours_disk.append((own, engine - idle(wall)))
            own, engine, wall = measured(lambda: docker_stats(ids))
            cli.append((own, engine - idle(wall)))
        assert all(len(r.samples) == count for r in rounds), "a round missed containers"
        report(count, ours, ours_disk, cli)
    finally:
        gateway.close()
        subprocess.run([*compose, "down", "--timeout", "1"], capture_output=True, check=False)
        label = f"label=com.docker.compose.project={project}"
        left = subprocess.run(
            ["docker", "ps", "-aq", "--filter", label], capture_output=True, text=True
        ).stdout.split()
        if left:
            subprocess.run(["docker", "rm", "-f", *left], capture_output=True, check=False)
    return 0


def disk_call(gateway: DockerEngine, project: str) -> float:
    started = time.thread_time()
    gateway.disk_usage(project)
    return time.thread_time() - started


def docker_stats(ids: list[str]) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(
        ["docker", "stats", "--no-stream", "--format", "{{.ID}} {{.MemUsage}} {{.PIDs}}", *ids],
        check=True,
        capture_output=True,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def report(
    count: int,
    ours: list[tuple[float, float]],
    disk: list[tuple[float, float]],
    cli: list[tuple[float, float]],
) -> None:
    def med(pairs: list[tuple[float, float]], i: int) -> float:
        return statistics.median(p[i] for p in pairs)

    ours_own, ours_engine = med(ours, 0) / count, max(0.0, med(ours, 1)) / count
    disk_own, disk_engine = med(disk, 0), max(0.0, med(disk, 1))
    cli_own, cli_engine = med(cli, 0) / count, max(0.0, med(cli, 1)) / count
    ours_total, cli_total, disk_total = (
        ours_own + ours_engine,
        cli_own + cli_engine,
        disk_own + disk_engine,
    )

    def share(samples_per_second: float, disks_per_second: float) -> str:
        cpu = samples_per_second * ours_total + disks_per_second * disk_total
        return f"{100 * cpu:.2f} % of a core"

    print(f"sampling {count} running containers, median of {len(ours)} turns (CPU per sample)")
    print(
        f"  ours, one-shot stats:  {ours_own * 1e3:6.2f} ms controller + "
        f"{ours_engine * 1e3:6.2f} ms engine = {ours_total * 1e3:6.2f} ms"
    )
    print(
        f"  docker stats CLI:      {cli_own * 1e3:6.2f} ms CLI        + "
        f"{cli_engine * 1e3:6.2f} ms engine = {cli_total * 1e3:6.2f} ms"
    )
    print(f"  ratio (docker stats / ours): {cli_total / ours_total:.2f}x")
    print(
        f"  ours, disk usage (one call for all): {disk_own * 1e3:.1f} ms controller + "
        f"{disk_engine * 1e3:.1f} ms engine"
    )
    print(
        f"  100 containers at the default cadence (watched every {FAST:g} s, quiet every "
        f"{QUIET:g} s):"
    )
    print(f"    all quiet, no declared disk sizes: {share(100 / QUIET, 1 / QUIET)}")
    print(f"    all quiet, a declared disk size:   {share(100 / QUIET, 1 / FAST)}")
    print(f"    10 watched, 90 quiet:              {share(10 / FAST + 90 / QUIET, 1 / QUIET)}")
    print(f"    all watched (every {FAST:g} s):         {share(100 / FAST, 1 / FAST)}")


if __name__ == "__main__":
    sys.exit(main())
