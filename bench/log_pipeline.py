"""Benchmark: log detection end to end, the controller against ``docker logs | grep``.

    .venv/bin/python bench/log_pipeline.py [--lines 1000000] [--seed 7] [--keep]

A container (cc-busybox:1, no network) prints the corpus of bench/log_matching.py (nginx,
PostgreSQL, Python and JSON logs, about 0.5 % of them real error lines from the pattern
library's examples, as many near-misses) through the real engine. In the same run:

- ours: the ``controller`` command, as a user runs it (with ``--dry-run``: the corpus'
  errors would otherwise have it restart the container), on a compose project holding that
  container. It is started and ready before the container prints; from the moment the
  container starts printing until every line is in the controller's issue store, its
  process CPU (user + system, every thread) is measured from /proc. That covers reading
  the log off the engine, grouping records, matching, discovery, the issue store, the
  metrics and the debounced JSON and Markdown files: the whole path a line takes.
- grep: ``docker logs -t C | grep -E -i -f patterns`` on the same container's log, with
  the library exported by ``Matcher.export_ere`` (what the seed's scripts did), in this
  shell's locale, and again with ``LC_ALL=C`` (grep's fastest mode). The CPU of both
  processes is measured (wait4).

It checks that ours found the same number of findings per pattern as the line-by-line
reference (``Detector.feed``, run here in-process on the same lines: today's semantics)
and that every planted error line is in a record with a finding, and that grep printed
every planted line a pattern can match behind ``-t``'s timestamp (the library's two
``^``-anchored patterns cannot). It prints lines per CPU-second for both and the ratio
(our CPU / grep's CPU: below 1 means we use less), and the controller's peak RSS.
Everything it starts is removed at the end, also on failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from log_matching import corpus  # noqa: E402
from procstat import cpu_seconds, free_port, memory_mb  # noqa: E402

from controller.detect.detector import Detector  # noqa: E402
from controller.detect.library import build_patterns  # noqa: E402
from controller.detect.matcher import Matcher  # noqa: E402
from controller.model import DetectionSettings, LogLine  # noqa: E402

CONTROLLER = str(Path(sys.executable).parent / "controller")
COMPOSE = """services:
  corpus:
    image: cc-busybox:1
    network_mode: none
    volumes: ["./corpus.log:/corpus.log:ro", "./go:/go"]
    command: ["sh", "-c", "trap 'exit 0' TERM; while [ ! -f /go/start ]; do sleep 0.1; done; cat /corpus.log; touch /go/done; while :; do sleep 1 & wait $$!; done"]
"""


def scrape(base: str) -> str:
    try:
        with urllib.request.urlopen(base + "/metrics", timeout=10) as reply:
            return str(reply.read().decode())
    except OSError:
        return ""


def samples(text: str, name: str) -> dict[str, float]:
    """label text -> value of every sample of one metric."""
    found = re.findall(rf"^{name}\{{(.*)\}} ([0-9.e+]+)$", text, flags=re.MULTILINE)
    return {labels: float(value) for labels, value in found}


def reference(lines: list[str], planted: list[int]) -> tuple[Counter[str], int]:
    """Findings per pattern of the line-by-line path (``Detector.feed``), and how many
    planted lines lie in a record with a finding. A line's timestamp is its index here,
    so a finding's ts says where its record starts."""
    detector = Detector(DetectionSettings(patterns=build_patterns()))
    findings = []
    batch = 5000
    for start in range(0, len(lines), batch):
        chunk = [LogLine("corpus", "c", n, lines[n]) for n in range(start, start + batch)]
        findings += detector.feed(chunk[: len(lines) - start], 0.0)
    findings += detector.flush(10.0)
    covered: dict[int, int] = {}
    for f in findings:
        first = round(f.ts * 1e9)
        covered[first] = max(covered.get(first, 0), f.evidence.count("\n") + 1)
    seen = 0
    for n in planted:
        seen += any(0 <= n - first < covered.get(first, 0) for first in range(n - 80, n + 1))
    return Counter(f.pattern_id for f in findings), seen


def run_grep(container: str, patterns: Path, out: Path, env: dict[str, str]) -> tuple[float, float]:
    """CPU seconds of (docker logs -t, grep -E -i -f) on the container's log."""
    with out.open("wb") as sink:
        logs = subprocess.Popen(["docker", "logs", "-t", container], stdout=subprocess.PIPE)
        grep = subprocess.Popen(
            ["grep", "-E", "-i", "-f", str(patterns)], stdin=logs.stdout, stdout=sink, env=env
        )
        assert logs.stdout is not None
        logs.stdout.close()
        cpu = {}
        for proc in (logs, grep):
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            cpu[proc.pid] = usage.ru_utime + usage.ru_stime
    return cpu[logs.pid], cpu[grep.pid]


def grep_saw(out: Path, lines: list[str], planted: list[int]) -> tuple[int, int]:
    """(planted lines grep printed, planted lines only ``^``-anchored patterns match)."""
    printed = Counter(
        row.split(" ", 1)[1] for row in out.read_text("utf-8", "replace").splitlines()
    )
    matcher = Matcher(build_patterns())
    anchored = {i for i, p in enumerate(matcher.patterns) if p.regex.startswith("^")}
    seen = hidden = 0
    for n in planted:
        if printed[lines[n]] > 0:
            seen += 1
        elif {h.pattern for h in matcher.scan_lines([lines[n]])} <= anchored:
            hidden += 1
    return seen, hidden


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    parser.add_argument(
        "--ours-only", action="store_true", help="skip grep and the reference (no checks)"
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    project = f"bench-pipe-{uuid.uuid4().hex[:8]}"
    compose = ["docker", "compose", "-p", project, "-f", str(work / "compose.yaml")]
    controller: subprocess.Popen[bytes] | None = None
    try:
        lines, planted = corpus(args.lines, args.seed)
        (work / "corpus.log").write_text("\n".join(lines) + "\n")
        size = (work / "corpus.log").stat().st_size
        matcher = Matcher(build_patterns())
        patterns = work / "patterns.ere"
        patterns.write_text("\n".join(matcher.export_ere()) + "\n")
        (work / "go").mkdir()
        (work / "compose.yaml").write_text(COMPOSE)
        (work / "desired").mkdir()
        (work / "desired" / "bench.yaml").write_text(
            f"project: {project}\ncompose_files: [../compose.yaml]\n"
        )
        print(
            f"corpus: {len(lines):,} lines, {size / 1e6:.0f} MB, {len(planted):,} planted error "
            f"lines, {len(matcher.patterns)} patterns, seed {args.seed}",
            flush=True,
        )
        expected, ref_seen = (Counter(), 0) if args.ours_only else reference(lines, planted)

        subprocess.run([*compose, "up", "-d", "--wait"], check=True, capture_output=True)
        cid = subprocess.run(
            [*compose, "ps", "-q", "corpus"], check=True, capture_output=True, text=True
        ).stdout.strip()
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        with (work / "controller.log").open("wb") as log:
            controller = subprocess.Popen(
                [
                    CONTROLLER,
                    "--env",
                    "bench",
                    "--desired-state-dir",
                    str(work / "desired"),
                    "--state-dir",
                    str(work / "state"),
                    "--metrics-port",
                    str(port),
                    "--dry-run",  # observe only: the corpus' errors would have it restart
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=work,
            )
        deadline = time.monotonic() + 60
        while "compose_controller_log_lines_total" not in scrape(base):
            if time.monotonic() > deadline or controller.poll() is not None:
                raise SystemExit("the controller did not come up; see controller.log")
            time.sleep(0.2)
        time.sleep(2.0)  # its first pass and its follower are in place

        user0, sys0 = cpu_seconds(controller.pid)
        started = time.monotonic()
        (work / "go" / "start").touch()
        # done: the container printed everything, then the controller went idle
        while not (work / "go" / "done").exists():
            time.sleep(0.2)
        idle_since, last = None, sum(cpu_seconds(controller.pid))
        while True:
            time.sleep(0.5)
            now = sum(cpu_seconds(controller.pid))
            if now - last > 0.02:
                idle_since, last = None, now
                continue
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since >= 1.0:
                user1, sys1 = cpu_seconds(controller.pid)
                text = scrape(base)
                read = samples(text, "compose_controller_log_lines_total")
                if sum(read.values()) >= len(lines):
                    break
                idle_since = None  # not all read yet: it was only waiting
            last = now
        wall = time.monotonic() - started - 1.0
        ours_cpu = (user1 - user0) + (sys1 - sys0)
        rss = memory_mb(controller.pid, "VmHWM")
        per_pattern = Counter(
            {
                re.search(r'pattern="([^"]+)"', labels).group(1): int(value)  # type: ignore[union-attr]
                for labels, value in samples(text, "compose_controller_findings_total").items()
                if value
            }
        )
        same = per_pattern == expected
        if args.ours_only:
            print(
                f"ours: CPU {ours_cpu:.2f} s (user {user1 - user0:.2f}, system {sys1 - sys0:.2f}) "
                f"{len(lines) / ours_cpu:,.0f} lines per CPU-second (wall {wall:.1f} s, peak RSS "
                f"{rss:.0f} MB), {sum(per_pattern.values()):,} findings\n"
                f"passes: {samples(text, 'compose_controller_reconcile_passes_total')}"
            )
            return 0

        env = dict(os.environ)
        locale_name = env.get("LC_ALL") or env.get("LANG") or "POSIX"
        docker_cpu, grep_cpu = run_grep(cid, patterns, work / "grep.out", env)
        grep_seen, hidden = grep_saw(work / "grep.out", lines, planted)
        docker_c, grep_c = run_grep(cid, patterns, work / "grep-c.out", {**env, "LC_ALL": "C"})
        baseline = docker_cpu + grep_cpu
        baseline_c = docker_c + grep_c

        rate = len(lines) / ours_cpu
        print(
            f"ours: controller following the container's log into its issue store\n"
            f"  CPU {ours_cpu:6.2f} s (user {user1 - user0:.2f}, system {sys1 - sys0:.2f})  "
            f"{rate:9,.0f} lines per CPU-second  (wall {wall:.1f} s, peak RSS {rss:.0f} MB)\n"
            f"  findings: {sum(per_pattern.values()):,} in {len(per_pattern)} patterns; per "
            f"pattern the same as the line-by-line reference: {'yes' if same else 'NO'}\n"
            f"  planted error lines in a record with a finding: {ref_seen:,} of {len(planted):,}"
        )
        for name, tool, cpu_docker, cpu_grep in (
            (f"{locale_name}", "grep", docker_cpu, grep_cpu),
            ("LC_ALL=C", "grep", docker_c, grep_c),
        ):
            total = cpu_docker + cpu_grep
            print(
                f"docker logs -t | grep -E -i -f patterns ({name}):\n"
                f"  CPU {total:6.2f} s (docker {cpu_docker:.2f}, {tool} {cpu_grep:.2f})  "
                f"{len(lines) / total:9,.0f} lines per CPU-second"
            )
        print(
            f"  planted error lines grep printed: {grep_seen:,} of {len(planted):,} "
            f"({hidden} more only ^-anchored patterns match: -t's timestamp hides them)"
        )
        ratio, ratio_c = ours_cpu / baseline, ours_cpu / baseline_c
        print(
            f"ratio (our CPU / grep's CPU): {ratio:.2f}x ({locale_name}), {ratio_c:.2f}x "
            f"(LC_ALL=C); goal <= 0.25x\n"
            f"ours: {rate:,.0f} lines per CPU-second; goal >= 250,000"
        )
        ok = same and ref_seen == len(planted) and grep_seen + hidden == len(planted)
        if not same:
            for pattern in sorted(set(per_pattern) | set(expected)):
                if per_pattern[pattern] != expected[pattern]:
                    print(
                        f"  {pattern}: ours {per_pattern[pattern]}, reference {expected[pattern]}"
                    )
        return 0 if ok else 1
    finally:
        if controller is not None and controller.poll() is None:
            controller.send_signal(signal.SIGTERM)
            try:
                controller.wait(30)
            except subprocess.TimeoutExpired:
                controller.kill()
        subprocess.run([*compose, "down", "-t", "1"], capture_output=True, check=False)
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
