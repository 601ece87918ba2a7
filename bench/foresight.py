"""Benchmark: foresight at full scale, on real processes under real limits, one run.

    .venv/bin/python bench/foresight.py [--minutes 30]

One compose project (tests/e2e/stacks/foresight.yaml) and the ``controller`` command with
its defaults (a sample every 30 s, 3 min of history before any forecast, a 30 min window,
warning within 1 h, critical within 15 min):

- leaky: a Python process holding 0.2 MiB more every second under a 256 MiB limit, from
  nothing (about 21 min to its OOM kill);
- sawtooth: one climbing from 60 to 200 MiB over 150 s and giving it all back, again and
  again, under the same limit, for the whole run;
- filler: a volume written at 200 KiB/s from empty, its size declared as 256 MiB.

Printed: for the leak and the volume, when the trend became evident (the process's own
count: 5 % of the limit above where it began), when the ``predicted`` issue opened, when
the limit was reached (the OOM kill as the engine recorded it; the volume at its declared
size, by the filler's count), the lead time and its share of what the trend allowed once
evident (``lead / (limit reached - evident)``); for the saw-tooth, whether it was ever
forecast. Times come from the engine, the processes and the issues file; everything is
removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from procstat import free_port  # noqa: E402

CONTROLLER = str(Path(sys.executable).parent / "controller")
STACKS = ROOT / "tests" / "e2e" / "stacks"
MIB = 1024 * 1024
LIMIT_MIB = 256
EVIDENT_SHARE = 0.05


def epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def holds(log: str) -> list[tuple[float, float]]:
    """(epoch s, MiB) of a process's own "<time> holds N MiB" lines."""
    out = []
    for line in log.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[1] == "holds":
            out.append((float(parts[0]), float(parts[2])))
    return out


def crossing(series: list[tuple[float, float]], level: float) -> float | None:
    return next((t for t, v in series if v >= level), None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="how long it runs")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-foresight-"))
    project = f"bench-foresight-{uuid.uuid4().hex[:8]}"
    environment = {
        "LEAK_LIMIT": f"{LIMIT_MIB}m",
        "LEAK_START": "0",
        "LEAK_RATE": "0.2",
        "SAW_LOW": "60",
        "SAW_HIGH": "200",
        "SAW_PERIOD": "150",
        "FILL_START": "0",
        "FILL_RATE": "205",
        "FILL_STOP": str(LIMIT_MIB + 8),
    }
    env = {**os.environ, **environment}
    compose = ["docker", "compose", "-p", project, "-f", str(STACKS / "foresight.yaml")]
    proc = None
    try:
        (work / "desired").mkdir()
        (work / "desired" / "bench.yaml").write_text(
            f"project: {project}\n"
            f"compose_files: [{STACKS / 'foresight.yaml'}]\n"
            "environment:\n"
            + "".join(f'  {k}: "{v}"\n' for k, v in environment.items())
            + "services:\n"
            f"  filler: {{predict: {{limits: {{volume/data: {LIMIT_MIB}MiB}}}}}}\n"
        )
        subprocess.run([*compose, "up", "-d"], env=env, check=True, capture_output=True)
        started = time.time()
        port = free_port()
        log = (work / "controller.log").open("wb")
        proc = subprocess.Popen(
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
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=work,
            env=env,
        )
        issues_file = work / "state" / "docker_issues_bench.json"
        first: dict[str, dict[str, Any]] = {}
        deadline = started + args.minutes * 60
        while time.time() < deadline:
            time.sleep(5)
            try:
                doc = json.loads(issues_file.read_text())
            except (OSError, ValueError):
                continue
            for issue in doc["issues"]:
                if issue["kind"] == "predicted" and issue["fingerprint"] not in first:
                    first[issue["fingerprint"]] = issue
                    print(
                        f"{time.time() - started:7.0f} s  {issue['service']}: {issue['title']}",
                        flush=True,
                    )
        doc = json.loads(issues_file.read_text())
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        logs = {
            service: subprocess.run(
                [*compose, "logs", "--no-log-prefix", service],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            ).stdout
            for service in ("leaky", "filler")
        }
        report(doc, first, logs, started)
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
        subprocess.run(
            [*compose, "down", "--volumes", "--timeout", "1"],
            env=env,
            capture_output=True,
            check=False,
        )
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}")
    return 0


def report(
    doc: dict[str, Any], first: dict[str, dict[str, Any]], logs: dict[str, str], started: float
) -> None:
    by_fp = {i["fingerprint"]: i for i in doc["issues"]}
    evident_mib = EVIDENT_SHARE * LIMIT_MIB
    print(f"\nforesight at full scale ({LIMIT_MIB} MiB limits, 0.2 MiB/s), controller defaults")
    killed = by_fp.get("drift:leaky:exited")
    leak = holds(logs["leaky"])
    kill_at = epoch(killed.get("fault_since") or killed["first_seen"]) if killed else None
    line("leak (OOM kill)", leak, evident_mib, first.get("predict:leaky:memory"), kill_at, started)
    fill = holds(logs["filler"])
    full_at = crossing(fill, LIMIT_MIB)
    line(
        "volume (declared size)",
        fill,
        evident_mib,
        first.get("predict:filler:volume/data"),
        full_at,
        started,
    )
    saw = [i for i in doc["issues"] if i["fingerprint"] == "predict:sawtooth:memory"]
    print(
        f"saw-tooth (60-200 MiB every 150 s, {(time.time() - started) / 60:.0f} min): "
        f"{'FORECAST: ' + saw[0]['title'] if saw else 'never forecast'}"
    )


def line(
    what: str,
    series: list[tuple[float, float]],
    evident_mib: float,
    issue: dict[str, Any] | None,
    limit_at: float | None,
    started: float,
) -> None:
    base = series[0][1] if series else 0.0
    evident = crossing(series, base + evident_mib)
    opened = epoch(issue["first_seen"]) if issue else None
    if limit_at is None or evident is None:
        print(f"{what}: did not reach its limit within the run")
        return
    allowed = limit_at - evident
    if opened is None:
        print(f"{what}: limit at {limit_at - started:.0f} s, NO forecast before it")
        return
    lead = limit_at - opened
    print(
        f"{what}: evident at {evident - started:.0f} s, forecast at {opened - started:.0f} s, "
        f"limit at {limit_at - started:.0f} s: lead {lead / 60:.1f} min of {allowed / 60:.1f} min "
        f"allowed once evident ({lead / allowed:.0%}); the forecast said "
        f"{issue['forecast']['seconds_left'] / 60:.1f} min"
    )


if __name__ == "__main__":
    sys.exit(main())
