"""``controller``: parse flags, run the controller, map the result to an exit code.

Exit codes: 0 converged (``--once``) or clean shutdown; 1 not converged (``--once``);
2 bad input (flags or the desired-state file), with one line on stderr saying what.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

import prometheus_client
from loguru import logger

from controller import __version__
from controller.desired import DesiredStateError
from controller.http import StatusServer
from controller.runtime import Controller, Settings, load

EXIT_OK, EXIT_NOT_CONVERGED, EXIT_BAD_INPUT = 0, 1, 2


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value


def _agents(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError(f"must be between 1 and 64, got {text}")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"not a port: {text}")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="controller",
        description="Reconcile a Docker Compose project with its declared healthy state.",
    )
    p.add_argument("--env", default="dev", help="environment: reads DIR/ENV.yaml (default dev)")
    p.add_argument(
        "--desired-state-dir",
        type=Path,
        default=Path("desired_state"),
        metavar="DIR",
        help="where the environments' YAML files are (default ./desired_state)",
    )
    p.add_argument(
        "--state-dir",
        type=Path,
        default=Path("."),
        metavar="DIR",
        help="where docker_issues_ENV.json and its report go (default .)",
    )
    p.add_argument(
        "--max-agents",
        type=_agents,
        default=3,
        metavar="N",
        help="remediation workers at most (default 3)",
    )
    p.add_argument(
        "--interval-active",
        type=_positive,
        default=5.0,
        metavar="SECONDS",
        help="pass interval while issues are open (default 5)",
    )
    p.add_argument(
        "--interval-quiet",
        type=_positive,
        default=50.0,
        metavar="SECONDS",
        help="pass interval when all is well (default 50)",
    )
    p.add_argument(
        "--once", action="store_true", help="converge once and exit: 0 converged, 1 not (a CI gate)"
    )
    p.add_argument(
        "--timeout",
        type=_positive,
        default=300.0,
        metavar="SECONDS",
        help="with --once: give up after this long (default 300)",
    )
    p.add_argument(
        "--dry-run", action="store_true", help="report what would be done; change nothing"
    )
    p.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        help="address for /metrics, /healthz, /readyz (default 127.0.0.1)",
    )
    p.add_argument(
        "--metrics-port",
        type=_port,
        default=9180,
        metavar="PORT",
        help="port for the HTTP endpoints (default 9180; 0 picks a free one)",
    )
    p.add_argument(
        "--shutdown-timeout",
        type=_positive,
        default=30.0,
        metavar="SECONDS",
        help="on SIGTERM/SIGINT, wait this long for running fixes (default 30)",
    )
    p.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="default INFO",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return p


class _ToLoguru(logging.Handler):
    """Route the standard logging of libraries (APScheduler) into the one log."""

    def emit(self, record: logging.LogRecord) -> None:
        logger.opt(depth=6, exception=record.exc_info).log(record.levelname, record.getMessage())


def configure_logging(level: str) -> None:
    logger.remove()
    logger.add(
        sys.stderr, level=level, format="{time:YYYY-MM-DD HH:mm:ss.SSS} {level:<7} {message}"
    )
    logging.basicConfig(handlers=[_ToLoguru()], level=logging.WARNING, force=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    configure_logging(args.log_level)
    prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]  # halves a scrape
    settings = Settings(
        env=args.env,
        desired_dir=args.desired_state_dir,
        state_dir=args.state_dir,
        max_agents=args.max_agents,
        interval_active=args.interval_active,
        interval_quiet=args.interval_quiet,
        dry_run=args.dry_run,
        once=args.once,
        once_timeout=args.timeout,
        shutdown_timeout=args.shutdown_timeout,
    )
    try:
        desired = load(settings)
    except DesiredStateError as exc:
        print(f"controller: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    controller = Controller(settings, desired)
    mode = " (dry run: nothing will be changed)" if settings.dry_run else ""
    logger.info(
        "controller {} for env {} (project {}), {} service(s), {} agent(s){}",
        __version__,
        desired.env,
        desired.project,
        len(desired.services),
        settings.max_agents,
        mode,
    )
    if settings.once:
        ok = controller.run_once()
        if settings.dry_run:
            print_plan(controller)
        logger.info(
            "{}; report: {}", "converged" if ok else "NOT converged", controller.report_path
        )
        return EXIT_OK if ok else EXIT_NOT_CONVERGED
    return _serve(controller, args.metrics_host, args.metrics_port)


def print_plan(controller: Controller) -> None:
    """The dry run's plan, one line per active issue, on stdout."""
    active = [i for i in controller.store.issues() if i.active]
    print(f"Plan for {controller.desired.env} (dry run, nothing changed): {len(active)} issue(s)")
    for issue in sorted(active, key=lambda i: (i.service, -i.severity.rank)):
        if issue.caused_by:
            what = f"nothing of its own: caused by {', '.join(issue.caused_by)}, fixed first"
        else:
            what = issue.plan or issue.resolution or "report only"
        print(f"- {issue.service}: {issue.title} [{issue.severity}] -> {what}")


def _serve(controller: Controller, host: str, port: int) -> int:
    try:
        server = StatusServer(
            host, port, controller.registry, controller.ready, controller.document
        )
    except OSError as exc:
        print(
            f"controller: error: --metrics-port: cannot listen on {host}:{port}: {exc}",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        logger.info("{} received; shutting down", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server.start()
    bound_host, bound_port = server.address
    logger.info("serving /metrics /healthz /readyz /status on http://{}:{}", bound_host, bound_port)
    controller.start()
    stop.wait()
    controller.stop()
    server.stop()
    logger.info("stopped")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
