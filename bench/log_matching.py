"""Benchmark: our log matcher against GNU grep on the same corpus, in the same run.

    python bench/log_matching.py [--lines 1200000] [--seed 7] [--runs 3] [--keep PATH]

Generates a realistic mixed log (nginx access logs, PostgreSQL logs, Python application
logs, JSON logs; about 0.5 % of the lines are real error lines taken from the pattern
library's examples, and as many are its near-misses), exports the full library as
``grep -E`` patterns, then times, on one core and the same file (in the page cache):

- ours: ``Matcher.matching_lines`` (the matcher the controller runs), best of N;
- grep: ``LC_ALL=C grep -E -i -c -f patterns``, best of N.

It checks both find exactly the same matching lines, and prints lines per second for each
and the ratio (grep time / our time: above 1 means we are faster).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from controller.detect.library import build_patterns, library_specs  # noqa: E402
from controller.detect.matcher import Matcher  # noqa: E402

PATHS = [
    "/",
    "/api/orders",
    "/api/orders/{n}",
    "/static/app.{h}.js",
    "/health",
    "/login",
    "/api/users/{n}/profile",
    "/favicon.ico",
    "/api/search?q=shoes&page={n}",
]
AGENTS = [
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36",
    "curl/8.5.0",
    "kube-probe/1.29",
    "Prometheus/2.42.0",
    "python-requests/2.31.0",
]
APP_INFO = [
    "order {n} created for customer {m}",
    "cache hit ratio {f}",
    "worker heartbeat ok",
    "processed batch {n} in {f} ms",
    "user {m} logged in",
    "retrying job {n} (attempt 1)",
    "scheduled task sync_inventory finished",
    "connection pool size {n}",
    "payment {n} authorised",
    "sent email to customer {m}",
]
PG_LOG = [
    "checkpoint starting: time",
    "checkpoint complete: wrote {n} buffers ({f}%)",
    'automatic vacuum of table "app.public.orders": index scans: 1',
    "duration: {f} ms  statement: SELECT * FROM orders WHERE id = {n}",
    "connection received: host=127.0.0.1 port={n}",
    "database system is ready to accept connections",
]


def corpus_lines(count: int, seed: int) -> tuple[list[str], int]:
    """The corpus and how many error lines were planted in it."""
    lines, planted = corpus(count, seed)
    return lines, len(planted)


def corpus(count: int, seed: int) -> tuple[list[str], list[int]]:
    """The corpus (``count`` lines, the same for the same seed) and the indices of the
    error lines planted in it (bench/log_pipeline.py checks each was seen)."""
    rng = random.Random(seed)
    specs = library_specs()
    hits = [e for s in specs for e in s.examples]
    misses = [m for s in specs for m in s.near_misses]

    def fill(template: str) -> str:
        return template.format(
            n=rng.randint(1, 99999),
            m=rng.randint(1000, 9999),
            f=f"{rng.uniform(0.1, 999):.3f}",
            h=f"{rng.getrandbits(32):08x}",
        )

    lines: list[str] = []
    planted: list[int] = []
    for i in range(count):
        ts = f"2026-11-28T{(i // 3600000) % 24:02d}:{(i // 60000) % 60:02d}:{(i // 1000) % 60:02d}.{i % 1000:03d}Z"
        roll = rng.random()
        if roll < 0.005:
            lines.append(rng.choice(hits))
            planted.append(i)
        elif roll < 0.010:
            lines.append(rng.choice(misses))
        elif roll < 0.40:
            lines.append(
                f"10.0.{rng.randint(0, 255)}.{rng.randint(1, 254)} - - [28/Nov/2026:10:{i % 60:02d}:00 +0000] "
                f'"GET {fill(rng.choice(PATHS))} HTTP/1.1" {rng.choice((200, 200, 200, 304, 404))} '
                f'{rng.randint(100, 90000)} "-" "{rng.choice(AGENTS)}"'
            )
        elif roll < 0.55:
            lines.append(
                f"{ts[:10]} {ts[11:23]} UTC [{rng.randint(100, 9999)}] LOG:  {fill(rng.choice(PG_LOG))}"
            )
        elif roll < 0.80:
            level = rng.choice(("INFO", "INFO", "INFO", "DEBUG", "WARNING"))
            lines.append(
                f"{ts} {level} app.{rng.choice(('orders', 'users', 'billing'))}: {fill(rng.choice(APP_INFO))}"
            )
        else:
            lines.append(
                json.dumps(
                    {
                        "ts": ts,
                        "level": rng.choice(("info", "debug")),
                        "msg": fill(rng.choice(APP_INFO)),
                        "req": rng.getrandbits(48),
                    }
                )
            )
    return lines, planted


def best_of(runs: int, fn) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    best, result = float("inf"), None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_200_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="write the corpus here and keep it")
    args = parser.parse_args()
    if shutil.which("grep") is None:
        print("grep is missing", file=sys.stderr)
        return 2
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core, grep too

    matcher = Matcher(build_patterns())
    workdir = Path(tempfile.mkdtemp(prefix="bench-logs-"))
    corpus = args.keep or workdir / "corpus.log"
    patterns_file = workdir / "patterns.ere"
    try:
        lines, planted = corpus_lines(args.lines, args.seed)
        corpus.write_text("\n".join(lines) + "\n")
        patterns_file.write_text("\n".join(matcher.export_ere()) + "\n")
        size = corpus.stat().st_size
        corpus.read_bytes()  # into the page cache for both contenders
        grep = ["grep", "-E", "-i", "-f", str(patterns_file), str(corpus)]
        env = {**os.environ, "LC_ALL": "C"}

        grep_time, grep_count = best_of(
            args.runs,
            lambda: int(
                subprocess.run(
                    [*grep[:3], "-c", *grep[3:]],
                    capture_output=True,
                    text=True,
                    env=env,
                    check=False,
                ).stdout.strip()
            ),
        )
        our_time, ours = best_of(args.runs, lambda: matcher.matching_lines(corpus))
        listed = subprocess.run(
            [*grep[:3], "-n", *grep[3:]], capture_output=True, text=True, env=env, check=False
        ).stdout
        grep_lines = [int(row.split(":", 1)[0]) - 1 for row in listed.splitlines()]
        assert isinstance(ours, list)
        same = ours == grep_lines and len(ours) == grep_count

        print(
            f"corpus: {len(lines):,} lines, {size / 1e6:.0f} MB, {len(matcher.patterns)} patterns "
            f"({matcher.engine}), {planted:,} planted error lines, seed {args.seed}"
        )
        print(
            f"matching lines: ours {len(ours):,}, grep {grep_count:,} "
            f"({'the same lines' if same else 'DIFFERENT'})"
        )
        for name, seconds in (("grep -E -i", grep_time), ("ours", our_time)):
            print(
                f"{name:>10}: {seconds:7.3f} s  {len(lines) / seconds / 1e6:7.2f} M lines/s  "
                f"{size / seconds / 1e6:7.0f} MB/s"
            )
        print(f"ratio (grep time / our time): {grep_time / our_time:.2f}x")
        if not same:
            missing = sorted(set(grep_lines) - set(ours))[:5]
            extra = sorted(set(ours) - set(grep_lines))[:5]
            for n in missing:
                print(f"  grep only: {lines[n]}")
            for n in extra:
                print(f"  ours only: {lines[n]}")
            return 1
        return 0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
