"""``python -m soak``: run the soak and print its table.

    .venv/bin/python -m soak                       # the short run: 2.5 min quiet, ~20 faults
    .venv/bin/python -m soak --minutes 60 --quiet-minutes 30 --seed 1 [--json PATH]
    .venv/bin/python -m soak --score RUN_DIR       # score a run directory again
    .venv/bin/python -m soak --baselines RUN_DIR   # replay its baselines again, then score

Prints the table, then what went wrong (each false action, false page, miss and wrong
link with its time and evidence), then the same as one JSON line (the last line of
stdout; ``--json PATH`` writes it there too). Exit 0 when the run finished (whatever the
score), 1 when it could not run, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

from soak import baseline, evidence
from soak.journal import read_records
from soak.report import json_line, render, render_faults, render_problems
from soak.run import Interrupted, Options, run
from soak.score import score
from tests.e2e.conftest import PORTS_VARIABLE


def main(argv: list[str] | None = None) -> int:
    # its own ports, apart from the tests' (a soak may run beside the e2e suite)
    os.environ.setdefault(PORTS_VARIABLE, "19000-19999")
    parser = argparse.ArgumentParser(prog="python -m soak", description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, help="a long run of this many minutes of faults")
    parser.add_argument(
        "--quiet-minutes", type=float, help="the quiet stretch first (2.5 short, 30 long)"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the JSON line here")
    parser.add_argument("--workdir", type=Path, help="the run directory (default: a new one)")
    parser.add_argument("--no-baselines", action="store_true", help="skip the baselines")
    parser.add_argument("--score", type=Path, metavar="RUN_DIR", help="score a finished run")
    parser.add_argument(
        "--baselines", type=Path, metavar="RUN_DIR", help="replay a finished run's baselines"
    )
    args = parser.parse_args(argv)
    if args.baselines is not None:
        replay_baselines(args.baselines)
        return rescore(args.baselines, args.json)
    if args.score is not None:
        return rescore(args.score, args.json)
    options = Options(
        minutes=args.minutes,
        quiet_minutes=args.quiet_minutes,
        seed=args.seed,
        workdir=args.workdir,
        baselines=not args.no_baselines,
    )
    try:
        found, meta = run(options, lambda text: print(text, file=sys.stderr, flush=True))
    except Interrupted:
        print("soak: interrupted; everything it started was torn down", file=sys.stderr)
        return 130
    print(render(found, meta))
    print()
    print(render_faults(found))
    print()
    print(render_problems(found))
    line = json_line(found, meta)
    print(line)
    if args.json:
        args.json.write_text(line + "\n")
    return 0


def replay_baselines(run: Path) -> None:
    """Replay the crash and healthcheck faults of a finished run on the baselines again
    (in directories of their own) and keep their figures in its score.json."""
    faults = evidence.load(run).faults
    saved = run / "score.json"
    data = json.loads(saved.read_text()) if saved.exists() else {}
    data["baselines"] = {}
    stop = threading.Event()
    stamp = time.strftime("%H%M%S")
    for contender in ("autoheal", "docker"):
        print(f"soak: baseline {contender}", file=sys.stderr, flush=True)
        workdir = run / f"replay-{stamp}"
        workdir.mkdir(exist_ok=True)
        data["baselines"][contender] = baseline.run_baseline(contender, workdir, faults, stop)
    saved.write_text(json.dumps(data, default=str))


def rescore(run: Path, json_path: Path | None) -> int:
    """Score a run directory again (the baselines' figures come from its score.json)."""
    found = score(evidence.load(run))
    saved = run / "score.json"
    if saved.exists():
        found.baselines = json.loads(saved.read_text()).get("baselines", {})
    first = next((r for r in read_records(run / "journal.jsonl") if r.get("event") == "run"), {})
    meta = {
        "seed": first.get("seed", "?"),
        "mode": f"{first.get('mode', '?')}, scored again",
        "workdir": str(run),
    }
    print(render(found, meta))
    print()
    print(render_faults(found))
    print()
    print(render_problems(found))
    line = json_line(found, meta)
    print(line)
    if json_path:
        json_path.write_text(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
