"""``controller patterns``: what the controller learned from history, for a person.

Reads the same document as ``controller status`` (a running controller's ``/status``, or
the JSON file with ``--file``) and prints the log templates learned to come before a
service's incidents (and the nearest candidates): the evidence (which incidents, how long
ahead, how often seen without one), what ``learn: warn`` would do, and the pattern that
declares one in the desired state (promote it: paste it under ``detection.patterns``).
Then the ladder's memory: which fix worked for which fault, tried first next time.

Exit codes: 0 printed; 1 no document could be read; 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import yaml

from controller.envflags import with_environment
from controller.status.source import StatusUnavailable, from_file, from_url

Doc = dict[str, Any]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="controller patterns",
        description=(
            "Print the log templates the controller learned to come before incidents, "
            "their evidence and how to declare one as a pattern; and which fix worked "
            "for which fault."
        ),
    )
    p.add_argument("--metrics-host", default="127.0.0.1", help="the controller's address")
    p.add_argument("--metrics-port", type=int, default=9180, metavar="PORT", help="its port")
    p.add_argument("--url", help="the full URL of /status (instead of host and port)")
    p.add_argument(
        "--file",
        type=Path,
        metavar="FILE",
        help="read docker_issues_ENV.json instead",
    )
    p.add_argument("--json", action="store_true", help="print the learned part of the document")
    return p


def _at(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _indent(text: str, by: str) -> list[str]:
    return [by + line for line in text.rstrip("\n").splitlines()]


def _precursor(entry: Mapping[str, Any], learned: Mapping[str, Any], env: str) -> list[str]:
    incidents = entry.get("incidents") or []
    state = (
        "LEARNED"
        if entry.get("learned")
        else (f"candidate ({len(incidents)} of {learned.get('min_incidents', 3)} incidents)")
    )
    lines = [f"{entry['service']}: {state}  {entry['key']}"]
    lines.append(f"  template:  {entry['template']}")
    lines.append(f"  last line: {entry['example']}")
    ahead = ", ".join(
        f"{i['what']} at {_at(i['at'])}, {i['lead_seconds']:g} s after it" for i in incidents
    )
    lines.append(f"  before:    {ahead}")
    lines.append(
        f"  sightings: {entry['before_incidents']} before an incident, {entry['otherwise']} "
        f"without one within {learned.get('lookback_seconds', 300):g} s"
    )
    if entry.get("learned"):
        mode = learned.get("mode", "report")
        if mode == "warn":
            lines.append("  learn: warn: its next appearance opens a warning issue")
        else:
            lines.append(
                f"  with `detection.learn.mode: warn` its next appearance would open a "
                f"warning issue (now: {mode})"
            )
        lines.append(
            f"  promote it: add this under detection.patterns in desired_state/{env}.yaml "
            "(give it a category, a title and a hint that say what it means):"
        )
        spec = entry.get("promote") or {}
        lines += _indent(yaml.safe_dump([spec], sort_keys=False, width=1000), "    ")
    return lines


def render(doc: Doc) -> str:
    env = str(doc.get("env", "ENV"))
    learned: Mapping[str, Any] = doc.get("learned") or {}
    entries = list(learned.get("precursors") or [])
    count = sum(1 for e in entries if e.get("learned"))
    out = [
        f"Precursors learned from the history of {env} (learn: {learned.get('mode', 'off')}, "
        f"lookback {learned.get('lookback_seconds', 300):g} s, at least "
        f"{learned.get('min_incidents', 3)} incidents): {count} learned, "
        f"{len(entries) - count} candidate(s)"
    ]
    for entry in entries:
        out += ["", *_precursor(entry, learned, env)]
    out += ["", "What fixed what (the ladder's memory: tried first when the fault comes back):"]
    fixes = [
        (service, fingerprint, action)
        for service, record in sorted((doc.get("remediation") or {}).items())
        for fingerprint, action in sorted(
            ((record.get("ladder") or {}).get("learned") or {}).items()
        )
    ]
    if not fixes:
        out.append("  nothing yet")
    out += [
        f"  {service}: {fingerprint} -> fixed by {action}" for service, fingerprint, action in fixes
    ]
    return "\n".join(out)


def patterns_command(
    argv: list[str], *, out: TextIO | None = None, environ: Mapping[str, str] | None = None
) -> int:
    out = out if out is not None else sys.stdout
    environ = os.environ if environ is None else environ
    args = with_environment(_parser(), environ).parse_args(argv)
    host = "127.0.0.1" if args.metrics_host in ("0.0.0.0", "::", "") else args.metrics_host
    url = args.url or f"http://{host}:{args.metrics_port}/status"
    try:
        doc = from_file(args.file) if args.file is not None else from_url(url)
    except StatusUnavailable as exc:
        print(f"controller patterns: error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(doc.get("learned") or {}, indent=2), file=out)
        return 0
    print(render(doc), file=out)
    return 0
