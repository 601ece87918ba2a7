"""Benchmark: log detection end to end, the controller against ``docker logs | grep``.

    .venv/bin/python bench/log_pipeline.py [--lines 1000000] [--rounds 3] [--seed 7] [--keep]

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

This machine is shared: one process's CPU for the same work moves by a fifth from one
minute to the next. So it runs ``--rounds`` rounds (a new container and a new controller
each, then grep on that container's log), prints each round and the median of the
ratios. Everything it starts is removed at the end, also on failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

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


class Round:
    """One round: a container printing the corpus, the controller following it, grep after."""

    def __init__(self, work: Path, number: int) -> None:
        self.work = work / f"round-{number}"
        self.project = f"bench-pipe-{uuid.uuid4().hex[:8]}"
        self.compose = ["docker", "compose", "-p", self.project, "-f", str(work / "compose.yaml")]
        self.controller: subprocess.Popen[bytes] | None = None

    def ours(self, lines: int) -> dict[str, Any]:
        """Start the container and the controller, let it print, measure the controller."""
        go = self.work.parent / "go"
        for name in ("start", "done"):
            (go / name).unlink(missing_ok=True)
        (self.work / "desired").mkdir(parents=True)
        (self.work / "desired" / "bench.yaml").write_text(
            f"project: {self.project}\ncompose_files: [../../compose.yaml]\n"
        )
        subprocess.run([*self.compose, "up", "-d", "--wait"], check=True, capture_output=True)
        self.cid = subprocess.run(
            [*self.compose, "ps", "-q", "corpus"], check=True, capture_output=True, text=True
        ).stdout.strip()
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        with (self.work / "controller.log").open("wb") as log:
            self.controller = subprocess.Popen(
                [
                    CONTROLLER,
                    "--env",
                    "bench",
                    "--desired-state-dir",
                    str(self.work / "desired"),
                    "--state-dir",
                    str(self.work / "state"),
                    "--metrics-port",
                    str(port),
                    "--dry-run",  # observe only: the corpus' errors would have it restart
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.work,
            )
        pid = self.controller.pid
        deadline = time.monotonic() + 60
        while "compose_controller_log_lines_total" not in scrape(base):
            if time.monotonic() > deadline or self.controller.poll() is not None:
                raise SystemExit(f"the controller did not come up; see {self.work}/controller.log")
            time.sleep(0.2)
        time.sleep(2.0)  # its first pass and its follower are in place

        user0, sys0 = cpu_seconds(pid)
        started = time.monotonic()
        (go / "start").touch()
        # done: the container printed everything, then the controller went idle
        while not (go / "done").exists():
            time.sleep(0.2)
        idle_since, last = None, sum(cpu_seconds(pid))
        while True:
            time.sleep(0.5)
            now = sum(cpu_seconds(pid))
            if now - last > 0.02:
                idle_since, last = None, now
                continue
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since >= 1.0:
                user1, sys1 = cpu_seconds(pid)
                text = scrape(base)
                read = samples(text, "compose_controller_log_lines_total")
                if sum(read.values()) >= lines:
                    break
                idle_since = None  # not all read yet: it was only waiting
            last = now
        per_pattern = Counter(
            {
                re.search(r'pattern="([^"]+)"', labels).group(1): int(value)  # type: ignore[union-attr]
                for labels, value in samples(text, "compose_controller_findings_total").items()
                if value
            }
        )
        return {
            "cpu": (user1 - user0) + (sys1 - sys0),
            "user": user1 - user0,
            "sys": sys1 - sys0,
            "wall": time.monotonic() - started - 1.0,
            "rss": memory_mb(pid, "VmHWM"),
            "per_pattern": per_pattern,
        }

    def grep(self, patterns: Path, env: dict[str, str], name: str) -> tuple[float, float, Path]:
        out = self.work / f"grep-{name}.out"
        return (*run_grep(self.cid, patterns, out, env), out)

    def stop_controller(self) -> None:
        if self.controller is not None and self.controller.poll() is None:
            self.controller.send_signal(signal.SIGTERM)
            try:
                self.controller.wait(30)
            except subprocess.TimeoutExpired:
                self.controller.kill()

    def close(self) -> None:
        self.stop_controller()
        subprocess.run([*self.compose, "down", "-t", "1"], capture_output=True, check=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    parser.add_argument(
        "--ours-only", action="store_true", help="skip grep and the reference (no checks)"
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    rounds: list[Round] = []
    try:
        lines, planted = corpus(args.lines, args.seed)
        (work / "corpus.log").write_text("\n".join(lines) + "\n")
        size = (work / "corpus.log").stat().st_size
        matcher = Matcher(build_patterns())
        patterns = work / "patterns.ere"
        patterns.write_text("\n".join(matcher.export_ere()) + "\n")
        (work / "go").mkdir()
        (work / "compose.yaml").write_text(COMPOSE)
        print(
            f"corpus: {len(lines):,} lines, {size / 1e6:.0f} MB, {len(planted):,} planted error "
            f"lines, {len(matcher.patterns)} patterns, seed {args.seed}",
            flush=True,
        )
        expected, ref_seen = (Counter(), 0) if args.ours_only else reference(lines, planted)
        env = dict(os.environ)
        locale_name = env.get("LC_ALL") or env.get("LANG") or "POSIX"
        ratios: list[float] = []
        rates: list[float] = []
        ok = ref_seen == len(planted) or args.ours_only
        for number in range(1, args.rounds + 1):
            round_ = Round(work, number)
            rounds.append(round_)
            ours = round_.ours(len(lines))
            rate = len(lines) / ours["cpu"]
            rates.append(rate)
            same = ours["per_pattern"] == expected
            print(
                f"round {number}\n"
                f"  ours: controller following the container's log into its issue store\n"
                f"    CPU {ours['cpu']:6.2f} s (user {ours['user']:.2f}, system "
                f"{ours['sys']:.2f})  {rate:9,.0f} lines per CPU-second  (wall "
                f"{ours['wall']:.1f} s, peak RSS {ours['rss']:.0f} MB)\n"
                f"    findings: {sum(ours['per_pattern'].values()):,} in "
                f"{len(ours['per_pattern'])} patterns"
                + (
                    ""
                    if args.ours_only
                    else f"; per pattern the same as the line-by-line reference: "
                    f"{'yes' if same else 'NO'}"
                ),
                flush=True,
            )
            round_.stop_controller()
            if args.ours_only:
                round_.close()
                continue
            if not same:
                ok = False
                for pattern in sorted(set(ours["per_pattern"]) | set(expected)):
                    if ours["per_pattern"][pattern] != expected[pattern]:
                        print(
                            f"    {pattern}: ours {ours['per_pattern'][pattern]}, "
                            f"reference {expected[pattern]}"
                        )
            docker_cpu, grep_cpu, out = round_.grep(patterns, env, "locale")
            grep_seen, hidden = grep_saw(out, lines, planted)
            ok = ok and grep_seen + hidden == len(planted)
            docker_c, grep_c, _ = round_.grep(patterns, {**env, "LC_ALL": "C"}, "c")
            for name, cpu_docker, cpu_grep in (
                (locale_name, docker_cpu, grep_cpu),
                ("LC_ALL=C", docker_c, grep_c),
            ):
                total = cpu_docker + cpu_grep
                print(
                    f"  docker logs -t | grep -E -i -f patterns ({name}):\n"
                    f"    CPU {total:6.2f} s (docker {cpu_docker:.2f}, grep {cpu_grep:.2f})  "
                    f"{len(lines) / total:9,.0f} lines per CPU-second"
                )
            print(
                f"    planted error lines grep printed: {grep_seen:,} of {len(planted):,} "
                f"({hidden} more only ^-anchored patterns match: -t's timestamp hides them)"
            )
            round_.close()
            ratio = ours["cpu"] / (docker_cpu + grep_cpu)
            ratios.append(ratio)
            print(
                f"  ratio (our CPU / grep's CPU): {ratio:.2f}x ({locale_name}), "
                f"{ours['cpu'] / (docker_c + grep_c):.2f}x (LC_ALL=C)",
                flush=True,
            )
        print(
            f"planted error lines in a record with a finding (reference): {ref_seen:,} of "
            f"{len(planted):,}\n"
            f"median of {len(rates)} rounds: ours {statistics.median(rates):,.0f} lines per "
            f"CPU-second (goal >= 250,000)"
            + (
                f"; ratio {statistics.median(ratios):.2f}x grep's CPU ({locale_name}; goal <= "
                f"0.25x; rounds: {', '.join(f'{r:.2f}' for r in ratios)})"
                if ratios
                else ""
            )
        )
        return 0 if ok else 1
    finally:
        for round_ in rounds:
            round_.close()
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
