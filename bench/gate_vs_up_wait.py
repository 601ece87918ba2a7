"""Benchmark: how long the CI gate takes to fail a service that always crashes the same way,
against ``docker compose up --wait`` on the same stack, in the same run.

    .venv/bin/python bench/gate_vs_up_wait.py [--trials N] [--json PATH]

The stack is one busybox service with no network that exits 1 three seconds after every
start, with a healthcheck whose first check comes after 5 s (so ``up --wait`` waits, and
sees the exit). Each trial, on a fresh compose project each:

- theirs: ``docker compose up --detach --wait``, from nothing to its non-zero exit;
- ours: ``controller --env bench --once`` on the same file (it starts what is missing,
  sees the crash, restarts once, sees the same crash and fails), from nothing to its
  non-zero exit.

Both must fail (a contender that passes is reported and counts as no result). It prints
the median time of each and the ratio ours/theirs, then one JSON line. ``up --wait``
fails on the first crash and proves nothing beyond it; the gate restarts once, because a
crash once may be a blip, and fails on the second crash that matches the first.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONTROLLER = ROOT / ".venv" / "bin" / "controller"
COMPOSE = """\
services:
  crashy:
    image: cc-busybox:1
    network_mode: none
    command: ["sh", "-c", "echo starting; sleep 3; echo 'giving up'; exit 1"]
    healthcheck:
      test: ["CMD", "true"]
      interval: 5s
      timeout: 1s
      retries: 1
"""


def timed(argv: list[str], cwd: Path) -> tuple[float, int]:
    began = time.monotonic()
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=600, check=False)
    return time.monotonic() - began, done.returncode


def down(project: str, cwd: Path) -> None:
    subprocess.run(
        ["docker", "compose", "-p", project, "down", "-t", "1", "--remove-orphans"],
        cwd=cwd,
        capture_output=True,
        timeout=120,
        check=False,
    )


def trial(root: Path) -> tuple[float | None, float | None]:
    theirs_project = f"gatebench-up-{uuid.uuid4().hex[:8]}"
    ours_project = f"gatebench-ours-{uuid.uuid4().hex[:8]}"
    try:
        theirs, code = timed(
            ["docker", "compose", "-p", theirs_project, "up", "--detach", "--wait"], root
        )
        theirs_failed = code != 0
        state = root / ours_project
        state.mkdir()
        (root / "desired_state").mkdir(exist_ok=True)
        (root / "desired_state" / "bench.yaml").write_text(
            f"project: {ours_project}\ncompose_files: [../compose.yaml]\n"
        )
        ours, code = timed(
            [
                str(CONTROLLER), "--env", "bench", "--once", "--quiet", "--timeout", "300",
                "--desired-state-dir", str(root / "desired_state"), "--state-dir", str(state),
            ],
            root,
        )  # fmt: skip
        ours_failed = code != 0
    finally:
        down(theirs_project, root)
        down(ours_project, root)
    return (ours if ours_failed else None), (theirs if theirs_failed else None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    ours: list[float] = []
    theirs: list[float] = []
    with tempfile.TemporaryDirectory(prefix="gatebench") as tmp:
        root = Path(tmp)
        (root / "compose.yaml").write_text(COMPOSE)
        for n in range(args.trials):
            mine, other = trial(root)
            print(f"trial {n + 1}: ours {mine}, up --wait {other}", file=sys.stderr, flush=True)
            if mine is not None:
                ours.append(mine)
            if other is not None:
                theirs.append(other)
    if not ours or not theirs:
        print("a contender never failed the crashing service", file=sys.stderr)
        return 1
    result = {
        "ours_median_s": statistics.median(ours),
        "up_wait_median_s": statistics.median(theirs),
        "ratio": statistics.median(ours) / statistics.median(theirs),
        "trials": args.trials,
    }
    print(
        f"fail an always-crashing service: ours {result['ours_median_s']:.2f} s, "
        f"docker compose up --wait {result['up_wait_median_s']:.2f} s, "
        f"ratio {result['ratio']:.2f}x (goal: at most 2x)"
    )
    line = json.dumps(result)
    print(line)
    if args.json is not None:
        args.json.write_text(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
