"""``controller status [SERVICE]``: what a running controller thinks, for a person.

Reads the issues document from a running controller's ``/status`` (the address it serves
on, from ``--metrics-host``/``--metrics-port`` or their ``CONTROLLER_*`` variables, so
``docker exec`` in the controller's container needs no flag) or from the JSON file
(``--file``), and prints one row per service like ``kubectl get``, or one service in full
like ``kubectl describe``. ``--json`` passes the document through for scripts. Colours
only on a terminal, never with ``NO_COLOR`` set.

``--ready`` asks ``/readyz`` instead, for the image's healthcheck: exit 0 when ready.

Exit codes: 0 printed (ready); 1 no document could be read (not ready); 2 bad input (a
flag, no such service); 141 the reader of the output went away (``| head -1``, see
``cli.entry``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TextIO

from controller import flagvalues
from controller.envflags import with_environment
from controller.flagvalues import OneLineParser
from controller.status.render import Paint, describe, table
from controller.status.source import StatusUnavailable, from_file, from_url, readiness

__all__ = ["status_command"]


def _parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="controller status",
        description=(
            "Print what a running controller thinks: one row per service, or one service "
            "in full (its issues, attempts, backoff and what it waits for)."
        ),
    )
    p.add_argument("service", nargs="?", help="describe this service")
    p.add_argument(
        "--metrics-host",
        type=flagvalues.host,
        default="127.0.0.1",
        metavar="HOST",
        help="the controller's address (default 127.0.0.1)",
    )
    p.add_argument(
        "--metrics-port",
        type=flagvalues.integer(1, 65535),
        default=9180,
        metavar="PORT",
        help="its port (default 9180; 1 to 65535)",
    )
    p.add_argument(
        "--url",
        type=status_url,
        help="the full http(s) URL of /status (instead of host and port)",
    )
    p.add_argument(
        "--file",
        type=flagvalues.path,
        metavar="FILE",
        help="read docker_issues_ENV.json instead",
    )
    p.add_argument("--json", action="store_true", help="print the document as it is")
    p.add_argument(
        "--ready",
        action="store_true",
        help=(
            "ask /readyz instead: exit 0 when the controller is ready (a pass completed and "
            "the engine answered recently), 1 otherwise; for healthchecks"
        ),
    )
    p.add_argument(
        "--color",
        choices=["auto", "always", "never"],
        default="auto",
        help="auto (default): only on a terminal and without NO_COLOR",
    )
    return p


def status_url(text: str) -> str:
    """An http(s) URL of at most 2048 characters."""
    flagvalues.text(text)
    if not text.startswith(("http://", "https://")) or len(text) > 2048:
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise argparse.ArgumentTypeError(
            f"not an http(s) URL of at most 2048 characters: {shown!r}"
        )
    return text


def client_host(host: str) -> str:
    """Where to reach a controller listening on ``host``: every interface is reachable on
    loopback; an IPv6 address goes in brackets."""
    if host in ("0.0.0.0", "::"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def colour_wanted(choice: str, stream: TextIO, environ: Mapping[str, str]) -> bool:
    """``auto``: a terminal, and NO_COLOR unset or empty (no-color.org)."""
    if choice != "auto":
        return choice == "always"
    return stream.isatty() and not environ.get("NO_COLOR")


def status_command(
    argv: list[str],
    *,
    out: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> int:
    out = out if out is not None else sys.stdout
    environ = os.environ if environ is None else environ
    args = with_environment(_parser(), environ).parse_args(argv)
    base = f"http://{client_host(args.metrics_host)}:{args.metrics_port}"
    if args.ready:
        ready, said = readiness(args.url or f"{base}/readyz")
        print(said, file=out if ready else sys.stderr)
        return 0 if ready else 1
    url = args.url or f"{base}/status"
    try:
        doc = from_file(args.file) if args.file is not None else from_url(url)
    except StatusUnavailable as exc:
        print(f"controller status: error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(doc, indent=2), file=out)
        return 0
    paint = Paint(colour_wanted(args.color, out, environ))
    moment = now if now is not None else datetime.now(UTC)
    if args.service is None:
        print(table(doc, moment, paint), file=out)
        return 0
    service = next((s for s in doc["services"] if s.get("name") == args.service), None)
    if service is None:
        known = ", ".join(sorted(str(s.get("name")) for s in doc["services"])) or "none"
        print(
            f"controller status: error: no service {args.service!r} (has: {known})",
            file=sys.stderr,
        )
        return 2
    print(describe(doc, service, moment, paint), file=out)
    return 0
