"""Benchmark: what the controller costs with many containers, against an autoheal poller.

    .venv/bin/python bench/scale.py [--containers 100] [--minute 60]

Starts one compose project of ``--containers`` busybox containers (services of 5 replicas
each, no network, nothing printed, no healthcheck), then, on those same containers, side
by side in the same minutes:

- ours: the ``controller`` command (following every container's log, watching events,
  serving /metrics), run twice: once at a 5 s cadence (``--interval-quiet 5``), where it
  reports the CPU of one reconcile pass (process CPU over the minute divided by the passes
  made, so the idle cost is included), and once at the quiet cadence (50 s, the default),
  where it reports idle CPU (% of one core over the minute) and RSS;
- autoheal: bench/autoheal_baseline.py at its 5 s cadence (one list call per check), its
  CPU per check and % of a core over the same minutes, and its RSS.

CPU is read from /proc (user + system, all threads). Everything is removed at the end.
"""

from __future__ import annotations

import argparse
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from procstat import cpu_seconds, free_port, memory_mb  # noqa: E402

CONTROLLER = str(Path(sys.executable).parent / "controller")
BASELINE = ROOT / "bench" / "autoheal_baseline.py"
REPLICAS = 5
SERVICE = """  s{n}:
    image: cc-busybox:1
    network_mode: none
    deploy: {{replicas: {replicas}}}
    command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 3600 & wait $$!; done"]
"""


def cpu(pid: int) -> float:
    return sum(cpu_seconds(pid))


def metric(base: str, name: str) -> float:
    with urllib.request.urlopen(base + "/metrics", timeout=30) as reply:
        text = reply.read().decode()
    return sum(float(v) for v in re.findall(rf"^{name}(?:\{{[^}}]*\}})? ([0-9.e+]+)$", text, re.M))


def passes(base: str) -> tuple[float, float, float]:
    """(passes made, seconds the passes took, passes timed) so far."""
    return (
        metric(base, "compose_controller_reconcile_passes_total"),
        metric(base, "compose_controller_reconcile_duration_seconds_sum"),
        metric(base, "compose_controller_reconcile_duration_seconds_count"),
    )


class Controller:
    def __init__(self, work: Path, cadence: float, quiet: float, tag: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = (work / f"controller-{tag}.log").open("wb")
        self.proc = subprocess.Popen(
            [
                CONTROLLER,
                "--env",
                "bench",
                "--desired-state-dir",
                str(work / "desired"),
                "--state-dir",
                str(work / f"state-{tag}"),
                "--metrics-port",
                str(self.port),
                "--interval-active",
                str(cadence),
                "--interval-quiet",
                str(quiet),
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=work,
        )

    def ready(self, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(self.base + "/readyz", timeout=5) as reply:
                    if reply.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise SystemExit("the controller did not become ready; see its log")
            time.sleep(0.5)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--containers", type=int, default=100)
    parser.add_argument("--minute", type=float, default=60.0, help="seconds measured")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = parser.parse_args()
    services = max(1, args.containers // REPLICAS)
    count = services * REPLICAS

    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    project = f"bench-scale-{uuid.uuid4().hex[:8]}"
    compose = ["docker", "compose", "-p", project, "-f", str(work / "compose.yaml")]
    running: list[Controller] = []
    baseline: subprocess.Popen[bytes] | None = None
    try:
        (work / "compose.yaml").write_text(
            "services:\n" + "".join(SERVICE.format(n=n, replicas=REPLICAS) for n in range(services))
        )
        (work / "desired").mkdir()
        (work / "desired" / "bench.yaml").write_text(
            f"project: {project}\ncompose_files: [../compose.yaml]\n"
        )
        started = time.monotonic()
        subprocess.run([*compose, "up", "-d"], check=True, capture_output=True, timeout=1800)
        print(
            f"containers: {count} ({services} services x {REPLICAS} replicas, busybox, no "
            f"network, no healthcheck), up in {time.monotonic() - started:.0f} s",
            flush=True,
        )
        with (work / "autoheal.log").open("wb") as out:
            baseline = subprocess.Popen(
                [sys.executable, str(BASELINE), "--project", project, "--interval", "5"],
                stdout=out,
                stderr=subprocess.STDOUT,
            )

        # ours at a 5 s cadence: CPU per pass
        ours = Controller(work, 5.0, 5.0, "cadence5")
        running.append(ours)
        ours.ready()
        time.sleep(15)  # first pass (every container inspected), followers started
        before, ours_cpu0, base_cpu0 = passes(ours.base), cpu(ours.proc.pid), cpu(baseline.pid)
        time.sleep(args.minute)
        ours_cpu = cpu(ours.proc.pid) - ours_cpu0
        after = passes(ours.base)
        base_cpu = cpu(baseline.pid) - base_cpu0
        made = after[0] - before[0]
        seconds_per_pass = (after[1] - before[1]) / max(1.0, after[2] - before[2])
        ours.stop()
        running.remove(ours)
        checks = args.minute / 5.0
        print(
            f"a pass at a 5 s cadence, over {args.minute:.0f} s:\n"
            f"  ours:     {ours_cpu / max(made, 1):.3f} s CPU per pass ({made:.0f} passes, mean "
            f"wall {seconds_per_pass:.3f} s), {ours_cpu / args.minute * 100:.2f} % of a core\n"
            f"  autoheal: {base_cpu / checks:.3f} s CPU per check ({checks:.0f} checks), "
            f"{base_cpu / args.minute * 100:.2f} % of a core",
            flush=True,
        )

        # ours at the quiet cadence: idle CPU and memory
        ours = Controller(work, 5.0, 50.0, "quiet")
        running.append(ours)
        ours.ready()
        time.sleep(20)  # first pass, followers started, switched to the quiet cadence
        ours_cpu0, base_cpu0 = cpu(ours.proc.pid), cpu(baseline.pid)
        time.sleep(args.minute)
        ours_cpu = cpu(ours.proc.pid) - ours_cpu0
        base_cpu = cpu(baseline.pid) - base_cpu0
        print(
            f"idle, over {args.minute:.0f} s:\n"
            f"  ours (quiet cadence, 50 s): {ours_cpu / args.minute * 100:.2f} % of a core, "
            f"RSS {memory_mb(ours.proc.pid, 'VmRSS'):.0f} MB\n"
            f"  autoheal (5 s):             {base_cpu / args.minute * 100:.2f} % of a core, "
            f"RSS {memory_mb(baseline.pid, 'VmRSS'):.0f} MB\n"
            f"goals: a pass <= 0.1 s CPU at 500 containers; idle <= 1 % of a core, RSS <= 100 MB "
            f"at 500 (<= 80 MB at 100)",
            flush=True,
        )
        return 0
    finally:
        for controller in running:
            controller.stop()
        if baseline is not None and baseline.poll() is None:
            baseline.send_signal(signal.SIGTERM)
            try:
                baseline.wait(30)
            except subprocess.TimeoutExpired:
                baseline.kill()
        subprocess.run(
            [*compose, "down", "-t", "1"], capture_output=True, check=False, timeout=1800
        )
        # with hundreds of containers `down` may leave some behind: remove them by label
        label = f"label=com.docker.compose.project={project}"
        left = subprocess.run(
            ["docker", "ps", "-aq", "--filter", label], capture_output=True, text=True
        ).stdout.split()
        if left:
            subprocess.run(["docker", "rm", "-f", *left], capture_output=True, check=False)
            print(f"removed {len(left)} containers compose down left behind")
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
