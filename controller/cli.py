"""``controller``: parse flags, run the controller or one of its commands, map to exit codes.

    controller [--env NAME] [flags]       run: keep the stack healthy (--once: the CI gate);
                                          without desired_state/NAME.yaml, the compose
                                          project here (zero-config: ``desired.zeroconfig``)
    controller check [--env NAME]         validate desired state and compose model, no engine
    controller schema                     print the desired state's JSON Schema
    controller status [SERVICE]           what a running controller thinks (kubectl get/describe)
    controller patterns                   what it learned: precursors of incidents, fixes

Exit codes (``gate.run.Verdict``): 0 converged (``--once``), a clean shutdown or a clean
check; 1 not converged (``--once``: something needs a human or stayed broken); 2 bad
input (a flag, a desired-state file, a state directory it cannot write), one line per
problem on stderr; 3 the engine could not be reached (``--once``); 4 timed out while
still progressing (``--once``); 5 rolled back (``--once``): every required service ready,
but a bad change was rolled back (or held back) to a last-good snapshot, so the stack is
not what its compose files declare. 141 (128 + SIGPIPE, as a shell reports a tool SIGPIPE
ended): the reader of the output went away (``controller status | head -1``); the command
ends quietly.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import select
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from loguru import logger

from controller import __version__, flagvalues
from controller.desired import DesiredStateError, environments
from controller.desired.schema import DAY, HOUR, json_schema
from controller.detect.redact import RedactedStream, redact
from controller.envflags import with_environment
from controller.flagvalues import OneLineParser, env_name, integer, seconds
from controller.gate.outputs import (
    OutputError,
    check_junit_path,
    check_summary_path,
    failed_write,
)
from controller.gate.verdict import Verdict
from controller.handover import disagreement
from controller.issues.files import StateDirError, atomic_write, check_state_dir
from controller.model import system_clock, to_datetime
from controller.runtime.settings import Settings, load

if TYPE_CHECKING:
    from controller.gate.run import GateResult
    from controller.runtime.controller import Controller
    from controller.runtime.reload import ReloadStatus

# What only a run needs (the engine's SDK, the remediation, the HTTP server, the gate's
# outputs: two thirds of the start-up's imports) is imported inside the functions that
# use it, while the desired state is being read: a CI gate starts its first step sooner.

EXIT_OK = int(Verdict.CONVERGED)
EXIT_NOT_CONVERGED = int(Verdict.NOT_CONVERGED)
EXIT_BAD_INPUT = int(Verdict.BAD_INPUT)
EXIT_ENGINE_UNREACHABLE = int(Verdict.ENGINE_UNREACHABLE)
EXIT_TIMED_OUT = int(Verdict.TIMED_OUT)
EXIT_ROLLED_BACK = int(Verdict.ROLLED_BACK)
EXIT_READER_GONE = 128 + signal.SIGPIPE  # 141: what a shell says of a tool SIGPIPE ended

EXIT_CODES = """exit codes:
  0  converged (--once), a clean shutdown, or `check` found no problem
  1  not converged (--once): something needs a human or stayed broken
  2  bad input: a flag, a desired-state file or the state directory (one line per problem)
  3  the Docker engine could not be reached (--once)
  4  timed out while still progressing (--once)
  5  rolled back (--once): ready, but on a last-good snapshot: a bad change was rolled back
     (or never ran: its image does not exist); the reason says which and why
  141 the reader of the output went away (`controller status | head -1`), nothing said

commands:
  controller check [--env NAME]   validate desired state and compose model (no engine)
  controller schema               print the desired state's JSON Schema
  controller status [SERVICE]     a running controller's view: one row per service, or one
                                  service in full (--file FILE, --json)
  controller patterns             what it learned: log templates that come before incidents
                                  (their evidence, how to declare one), fixes that worked

Every flag also reads CONTROLLER_<FLAG> (--max-agents: CONTROLLER_MAX_AGENTS); a flag wins
(-f and -p read Compose's COMPOSE_FILE and COMPOSE_PROJECT_NAME instead).

zero-config: without DIR/ENV.yaml (and without --desired-state-dir) the compose project of
the current directory is managed, found as docker compose finds it; settings may come from
x-controller: and compose-controller.* labels in it, notification URLs from
CONTROLLER_NOTIFY_URLS or Apprise's configuration files."""


# Every number a flag takes, with bounds a person can reason about (said in --help).
MAX_AGENTS = 64
_INTERVAL_ACTIVE = seconds(0.1, HOUR)
_INTERVAL_QUIET = seconds(0.1, DAY)
_TIMEOUT = seconds(0, DAY, low_included=False)
_ENGINE_TIMEOUT = seconds(0, HOUR, low_included=False)
_BLIP = seconds(0, HOUR)
_SHUTDOWN = seconds(0, HOUR, low_included=False)


DESIRED_DIR = Path("desired_state")
# Compose's own flags, read from Compose's own variables (COMPOSE_FILE ...), not CONTROLLER_*
COMPOSE_FLAGS = frozenset({"compose_files", "project_name"})


def _desired_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--desired-state-dir",
        type=flagvalues.path,
        default=None,
        metavar="DIR",
        help=(
            "where the environments' YAML files are (default ./desired_state; without "
            "DIR/ENV.yaml and this flag: the compose project of the current directory)"
        ),
    )
    p.add_argument(
        "-f",
        "--file",
        dest="compose_files",
        type=flagvalues.path,
        action="append",
        default=[],
        metavar="FILE",
        help=(
            "a compose file, as for docker compose (repeat for more; default COMPOSE_FILE,"
            " else compose.yaml ... here or in a parent); wins over compose_files"
        ),
    )
    p.add_argument(
        "-p",
        "--project-name",
        type=flagvalues.project_name,
        metavar="NAME",
        help="the compose project's name (default COMPOSE_PROJECT_NAME, else Compose's); wins"
        " over project",
    )


def parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="controller",
        description="Reconcile a Docker Compose project with its declared healthy state.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--env",
        type=env_name,
        default="dev",
        help="environment: reads DIR/ENV.yaml (default dev; letters, digits, _ . -)",
    )
    _desired_dir(p)
    p.add_argument(
        "--state-dir",
        type=flagvalues.path,
        default=Path("."),
        metavar="DIR",
        help="where docker_issues_ENV.json and its report go (default .)",
    )
    p.add_argument(
        "--max-agents",
        type=integer(1, MAX_AGENTS),
        default=3,
        metavar="N",
        help=f"remediation workers at most (default 3; 1 to {MAX_AGENTS})",
    )
    p.add_argument(
        "--interval-active",
        type=_INTERVAL_ACTIVE,
        default=5.0,
        metavar="SECONDS",
        help="pass interval while issues are open (default 5; 0.1 to 3600)",
    )
    p.add_argument(
        "--interval-quiet",
        type=_INTERVAL_QUIET,
        default=50.0,
        metavar="SECONDS",
        help="pass interval when all is well (default 50; 0.1 to 86400)",
    )
    p.add_argument(
        "--blip-seconds",
        type=_BLIP,
        default=0.0,
        metavar="SECONDS",
        help=(
            "leave a fresh drift (a crash, a failing healthcheck ...) this long to heal on its"
            " own before acting, when running and with --once; one that heals within it is"
            " not a failure (default 0; 0 to 3600)"
        ),
    )
    gate = p.add_argument_group("the CI gate (--once)")
    gate.add_argument(
        "--once",
        action="store_true",
        help="converge and exit with a verdict (see exit codes): a CI gate",
    )
    gate.add_argument(
        "--timeout",
        type=_TIMEOUT,
        default=300.0,
        metavar="SECONDS",
        help="with --once: give up after this long (default 300; more than 0, at most 86400)",
    )
    gate.add_argument(
        "--engine-timeout",
        type=_ENGINE_TIMEOUT,
        default=30.0,
        metavar="SECONDS",
        help=(
            "with --once: wait this long for an engine that does not answer "
            "(default 30; more than 0, at most 3600)"
        ),
    )
    gate.add_argument(
        "--junit",
        type=flagvalues.path,
        metavar="FILE",
        help="with --once: write a JUnit XML report",
    )
    gate.add_argument(
        "--quiet",
        action="store_true",
        help="with --once: no progress lines and no final table",
    )
    p.add_argument(
        "--dry-run", action="store_true", help="report what would be done; change nothing"
    )
    p.add_argument(
        "--engine",
        choices=["compose", "swarm"],
        default="compose",
        help=(
            "compose (default): the project's containers on this engine; swarm: the project "
            "is a stack deployed on the swarm this engine manages (docs/swarm.md)"
        ),
    )
    p.add_argument(
        "--node-engine",
        type=flagvalues.node_engines,
        default={},
        metavar="NODE=URL[,...]",
        help=(
            "with --engine swarm: the engine of a swarm node by its host name, for a "
            "runbook's exec in a task on that node (the manager's own tasks need none)"
        ),
    )
    p.add_argument(
        "--metrics-host",
        type=flagvalues.host,
        default="127.0.0.1",
        metavar="HOST",
        help=(
            "address for /metrics, /healthz, /readyz, /status (default 127.0.0.1; a name "
            "must resolve to loopback: beyond loopback give the address itself, e.g. "
            "0.0.0.0 for every interface)"
        ),
    )
    p.add_argument(
        "--metrics-port",
        type=integer(0, 65535),
        default=9180,
        metavar="PORT",
        help="port for the HTTP endpoints (default 9180; 0 to 65535, 0 picks a free one)",
    )
    p.add_argument(
        "--shutdown-timeout",
        type=_SHUTDOWN,
        default=30.0,
        metavar="SECONDS",
        help=(
            "on SIGTERM/SIGINT, wait this long for running fixes "
            "(default 30; more than 0, at most 3600)"
        ),
    )
    p.add_argument(
        "--log-level",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="default INFO; with --once ERROR (the progress lines tell the story)",
    )
    p.add_argument(
        "--log-format",
        choices=["text", "json"],
        default="text",
        help="text (default) or json: one JSON object per line, for log shippers",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return p


def check_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="controller check",
        description=(
            "Validate desired-state files and their compose model without an engine; "
            "print every problem as FILE:LINE: field: problem. Exit 2 on any."
        ),
    )
    p.add_argument("--env", type=env_name, help="one environment (default: every DIR/*.yaml)")
    _desired_dir(p)
    return p


class _ToLoguru(logging.Handler):
    """Route the standard logging of libraries (APScheduler) into the one log."""

    def emit(self, record: logging.LogRecord) -> None:
        logger.opt(depth=6, exception=record.exc_info).log(record.levelname, record.getMessage())


def configure_logging(level: str, json_lines: bool = False) -> None:
    logger.remove()
    logger.add(
        RedactedStream(sys.stderr, json_lines),  # a log line may quote container text
        level=level,
        format="{time:YYYY-MM-DD HH:mm:ss.SSS} {level:<7} {message}",
        serialize=json_lines,
        diagnose=False,  # a traceback shows no variable's value: it may hold a log line
    )
    logging.basicConfig(handlers=[_ToLoguru()], level=logging.WARNING, force=True)


def _bad_input(exc: DesiredStateError) -> int:
    for problem in exc.problems:  # may quote compose's stderr
        print(f"controller: error: {redact(str(problem))}", file=sys.stderr)
    return EXIT_BAD_INPUT


COMMANDS: dict[str, Callable[[list[str]], int]] = {}


def entry() -> None:
    """The console script: ``main``, then the process ends at once. Every output is
    written and flushed by then (state files atomically, the report, JUnit, stdout and
    stderr), and every thread that works is stopped; what is left is the interpreter's
    teardown of some 600 modules, a tenth of a second of every CI gate.

    A reader of the output that went away (``controller status | head -1``) ends the
    command quietly with ``EXIT_READER_GONE``, as a shell reports a tool SIGPIPE killed:
    Python ignores SIGPIPE, so the write raises instead, and its traceback would say
    nothing a person needs."""
    try:
        code = main()
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        if not _quiet_if_gone():
            raise  # not our output (a socket): a real error, with its traceback
        code = EXIT_READER_GONE
    os._exit(code)


def _quiet_if_gone() -> bool:
    """Points stdout and stderr whose reader went away at /dev/null (what is left in
    their buffers is dropped there, not raised again); whether either had. On Linux the
    write end of a pipe, or a socket, whose reader closed polls as an error."""
    gone = False
    for stream in (sys.stdout, sys.stderr):
        try:
            fd = stream.fileno()
        except (AttributeError, OSError, ValueError):  # replaced, or closed
            continue
        poll = select.poll()
        poll.register(fd, select.POLLOUT)
        if any(events & (select.POLLERR | select.POLLHUP) for _, events in poll.poll(0)):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, fd)
            os.close(devnull)
            gone = True
    return gone


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] in COMMANDS:
        return COMMANDS[args_list[0]](args_list[1:])
    args = with_environment(parser(), os.environ, skip=COMPOSE_FLAGS).parse_args(args_list)
    if (problem := disagreement(os.environ)) is not None:  # deploy/compose.yaml's hand-over
        print(f"controller: error: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    configure_logging(
        args.log_level or ("ERROR" if args.once else "INFO"), args.log_format == "json"
    )
    settings = Settings(
        env=args.env,
        desired_dir=args.desired_state_dir or DESIRED_DIR,
        desired_dir_given=args.desired_state_dir is not None,
        compose_files=tuple(args.compose_files),
        project_name=args.project_name,
        state_dir=args.state_dir,
        max_agents=args.max_agents,
        interval_active=args.interval_active,
        interval_quiet=args.interval_quiet,
        dry_run=args.dry_run,
        once=args.once,
        shutdown_timeout=args.shutdown_timeout,
        blip_seconds=args.blip_seconds,
        engine=args.engine,
        node_engines=args.node_engine,
    )
    with ThreadPoolExecutor(1, thread_name_prefix="load") as loader:
        loading = loader.submit(load, settings)  # Compose renders the model meanwhile
        import prometheus_client

        from controller.gate.summary import step_summary_path
        from controller.runtime.assembly import assemble

        prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]  # halves a scrape
        if settings.once:
            try:  # before any work: a report CI asked for must be writable
                if args.junit is not None:
                    check_junit_path(args.junit)
                if (summary := step_summary_path()) is not None:
                    check_summary_path(summary)
            except OutputError as exc:
                print(f"controller: error: {exc}", file=sys.stderr)
                return EXIT_BAD_INPUT
        try:
            desired = loading.result()
        except DesiredStateError as exc:
            return _bad_input(exc)
    controller = assemble(settings, desired, clock=system_clock)
    try:
        check_state_dir(settings.state_dir, (controller.json_path, controller.report_path))
    except StateDirError as exc:
        print(f"controller: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
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
    from controller.detect.matcher import UNAVAILABLE

    if UNAVAILABLE:
        logger.warning(
            "log patterns are matched with Python's re, several times slower: Hyperscan "
            "cannot be loaded ({}); it needs the C++ runtime, libstdc++6",
            UNAVAILABLE,
        )
    if settings.once:
        return _gate(controller, args)
    return _serve(controller, args.metrics_host, args.metrics_port)


def _gate(controller: Controller, args: argparse.Namespace) -> int:
    """The CI gate: converge, then the verdict, the table, the report, JUnit, summary."""
    from controller.gate.junit import junit_report
    from controller.gate.progress import Progress
    from controller.gate.run import run_gate
    from controller.gate.summary import append_step_summary, step_summary_path
    from controller.issues.report import render_markdown

    names = list(controller.desired.services)
    progress = Progress(sys.stderr, names, enabled=not args.quiet)
    result = run_gate(
        controller,
        timeout=args.timeout,
        engine_timeout=args.engine_timeout,
        on_progress=lambda: progress.update(
            controller.store.services(),
            controller.store.issues(),
            controller.records(),
            controller.engine_error,
            {name: controller.hold(name) for name in controller.unsettled()},
            controller.parts.files.set_aside,
        ),
    )
    if controller.settings.dry_run:
        print_plan(controller)
    doc = controller.document()
    declared = {name: spec.required for name, spec in controller.desired.services.items()}
    written = True
    if args.junit is not None:
        try:
            atomic_write(args.junit, junit_report(doc, declared, result))
        except OSError as exc:
            print(f"controller: error: {failed_write('--junit', args.junit, exc)}", file=sys.stderr)
            written = False
    summary = step_summary_path()
    if summary is not None:
        try:
            append_step_summary(summary, controller.desired.env, result, render_markdown(doc))
        except OSError as exc:
            error = failed_write("$GITHUB_STEP_SUMMARY", summary, exc)
            print(f"controller: error: {error}", file=sys.stderr)
            written = False
    if not args.quiet:
        _print_verdict(controller, declared, result, args.junit if written else None)
    if not written and result.verdict is Verdict.CONVERGED:
        return EXIT_BAD_INPUT  # green, but a report CI relies on is missing
    return int(result.verdict)


def _print_verdict(
    controller: Controller, declared: dict[str, bool], result: GateResult, junit: Path | None
) -> None:
    from controller.gate.progress import final_table

    out = sys.stderr
    print("", file=out)
    rows = final_table(
        declared,
        controller.store.services(),
        controller.store.issues(),
        controller.records(),
        result.unsettled,
        controller.parts.files.set_aside,
    )
    for row in rows:
        print(row, file=out)
    words = {
        Verdict.CONVERGED: "converged",
        Verdict.NOT_CONVERGED: "NOT converged",
        Verdict.ENGINE_UNREACHABLE: "engine unreachable",
        Verdict.TIMED_OUT: "timed out",
        Verdict.ROLLED_BACK: "ROLLED BACK",
    }
    print(f"\n{words[result.verdict]} (exit {int(result.verdict)}): {result.reason}", file=out)
    print(f"report: {controller.report_path}", file=out)
    if junit is not None:
        print(f"junit: {junit}", file=out)


def print_plan(controller: Controller) -> None:
    """The dry run's plan, one line per active issue, on stdout."""
    from controller.issues.present import intended

    active = [i for i in controller.store.issues() if i.active]
    records = controller.records()
    print(f"Plan for {controller.desired.env} (dry run, nothing changed): {len(active)} issue(s)")
    for issue in sorted(active, key=lambda i: (i.service, -i.severity.rank)):
        if issue.caused_by:
            causes = "; ".join(
                f"{c} ({why})" if (why := issue.cause_evidence.get(c)) else c
                for c in issue.caused_by
            )
            what = f"nothing of its own: caused by {causes}, fixed first"
        else:
            plan = intended(issue, records.get(issue.service)).plan
            what = plan or issue.resolution or "report only"
        print(f"- {issue.service}: {issue.title} [{issue.severity}] -> {what}")


def _answer(status: ReloadStatus) -> tuple[bool, str]:
    """``POST /-/reload``'s answer: worked, and a line."""
    if status.successful:
        return True, "reloaded: the desired state is in force"
    return False, f"reload refused, the desired state in force kept: {status.error}"


def _serve(controller: Controller, host: str, port: int) -> int:
    from controller.http import RELOAD_PATH, ListenRefused, StatusServer, listen_address
    from controller.status.page import StatusPages

    reloader = controller.parts.reloader
    try:
        address, warning = listen_address(host)
    except ListenRefused as exc:
        print(f"controller: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        server = StatusServer(
            address,
            port,
            controller.registry,
            controller.ready,
            lambda: {**controller.document(), "config": reloader.status.document()},
            reload=lambda: _answer(reloader.reload(f"POST {RELOAD_PATH}")),
            pages=StatusPages(lambda: to_datetime(system_clock())),
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
    signal.signal(signal.SIGHUP, lambda _signum, _frame: reloader.request("SIGHUP"))
    if warning:
        logger.warning("{}", warning)
    server.start()
    bound_host, bound_port = server.address
    logger.info(
        "serving the status page (/) and /metrics /healthz /readyz /status (and POST {}) "
        "on http://{}:{}",
        RELOAD_PATH,
        bound_host,
        bound_port,
    )
    controller.start()
    # What start made (modules, models, the pattern library) lives as long as the process:
    # moved out of the collector's sight, a full collection under a log flood walks only
    # what came since.
    gc.collect()
    gc.freeze()
    stop.wait()
    controller.stop()
    server.stop()
    logger.info("stopped")
    return EXIT_OK


# --- commands -------------------------------------------------------------------------------


def check(argv: list[str]) -> int:
    """``controller check``: every problem of every (or one) environment, no engine."""
    args = with_environment(check_parser(), os.environ, skip=COMPOSE_FLAGS).parse_args(argv)
    directory: Path = args.desired_state_dir or DESIRED_DIR
    envs = [args.env] if args.env else environments(directory)
    if not envs and args.desired_state_dir is not None:
        print(f"controller: error: {directory}: no environment files (*.yaml)", file=sys.stderr)
        return EXIT_BAD_INPUT
    failed = 0
    for env in envs or ["dev"]:  # none: the compose project here (zero-config)
        settings = Settings(
            env=env,
            desired_dir=directory,
            desired_dir_given=args.desired_state_dir is not None,
            compose_files=tuple(args.compose_files),
            project_name=args.project_name,
        )
        try:
            desired = load(settings)
        except DesiredStateError as exc:
            failed += len(exc.problems)
            for problem in exc.problems:
                print(problem)
            continue
        print(
            f"{desired.source}: ok: project {desired.project}, {len(desired.services)} service(s)"
        )
        for name, spec in desired.services.items():  # the evidence root causes need
            known = [str(a) for a in spec.addresses]
            if any(a.source == "service name" for a in spec.addresses):  # on a network
                known.append(f"{desired.project}-{name}-N (compose container name)")
            if known:
                print(f"  {name} is reached at: {', '.join(known)}")
            else:
                print(
                    f"  {name} is reached at nothing a client's error could name "
                    f"(declare services.{name}.addresses if clients reach it)"
                )
    if failed:
        print(f"controller check: {failed} problem(s)", file=sys.stderr)
    return EXIT_BAD_INPUT if failed else EXIT_OK


def schema(argv: list[str]) -> int:
    """``controller schema``: the desired state's JSON Schema on stdout."""
    OneLineParser(
        prog="controller schema",
        description="Print the JSON Schema of desired_state/<env>.yaml (for editors).",
    ).parse_args(argv)
    print(json.dumps(json_schema(), indent=2))
    return EXIT_OK


def status(argv: list[str]) -> int:
    """``controller status``: see ``controller.status``."""
    from controller.status import status_command

    return status_command(argv)


def patterns(argv: list[str]) -> int:
    """``controller patterns``: see ``controller.status.patterns``."""
    from controller.status.patterns import patterns_command

    return patterns_command(argv)


COMMANDS.update({"check": check, "schema": schema, "status": status, "patterns": patterns})


if __name__ == "__main__":
    sys.exit(main())
