"""The fault catalog: every kind of fault the soak injects, and what a correct controller
does about each (the ground truth the scorer holds the controller to).

Each entry cites the documented behaviour (README.md and docs/); where the docs are silent, the
choice is what an operator paged at night expects, and the reason is written next to it.

Each kind: what the injector does -> what a correct controller does.

- crash: SIGKILL of the main process from the host (os.kill on State.Pid) -> issue
  ``drift:S:exited``, restart ("a crash or a docker kill (SIGKILL) is not a person").
- crash-policy: SIGKILL of the ticker, under ``restart: unless-stopped`` -> issue
  ``engine:ticker:docker-restart``, no action ("while a service's own restart policy
  restarts it, the controller adds no restart of its own"; Docker's restarts are findings).
- crash-loop: every start of the reporter dies 3 s later, for 40 s -> issue
  ``drift:reporter:exited``, restart then recreate with the backoff between, and never
  "fixed" while it still crashes ("a service that dies 3 s after every start is held
  5 s, so 'ready for 2 s' never passes for fixed"); fixed once the loop is over.
- oom: the worker allocates past its 192 MB limit -> ``drift:worker:exited`` (OOM killed,
  critical), restart.
- health-blip: the healthcheck fails once, then passes -> ``drift:S:unhealthy``
  (failing-healthcheck), no action ("acted on when the engine calls the service
  unhealthy", which it never does).
- health-hang: the healthcheck fails until the process restarts -> ``drift:S:unhealthy``,
  restart.
- probe-fail: the api's declared /ready probe answers 503 until it restarts ->
  ``drift:api:probe-failed``, restart.
- slow-start: the next start takes 8-15 s, then a SIGKILL -> ``drift:S:exited``, one
  restart, proven once it is up (a start within the healthcheck's start period is no
  failure).
- log: a real error line of one of the 8 categories on the service's stdout ->
  ``log:S:<pattern>:...``; a restart only for patterns that suggest one (never config,
  import, auth), else reported only.
- runbook: the worker uses a database that does not exist (a real PostgreSQL error) ->
  ``log:worker:pg-database-missing:...``, the runbook ``create-missing-database``.
- dependency-crash: SIGKILL of db -> ``drift:db:exited``, restart db; the api's and the
  worker's drifts and connection/database errors linked to it ("caused by"), left alone.
- dependency-stop: a person stops db, starts it 15-30 s later -> db left alone
  (needs-human: "stopped by a person"), dependents linked to it, no action; optionally an
  error naming a host that is no service meanwhile (linked to nothing).
- person-stop: ``docker stop`` of a service, ``docker start`` 15-30 s later ->
  ``drift:S:exited``, needs-human ("left alone"), no action.
- person-restart: ``docker compose restart`` -> nothing ("a service in the middle of a
  person's operation is never touched ... records nothing of its transient state").
- person-up: a person edits the compose file (a changed variable) and runs ``docker
  compose up -d S`` -> nothing once the new container runs: it *is* the new config ("reads
  the config hashes again whenever a compose file changes"); between the edit and the up
  the old container is outdated, and may be reported so (low, a human decides).
- job-fail: a person re-runs the migrate job, which fails (exit 1) ->
  ``drift:migrate:job-failed``, start (a job's ladder: start, then recreate).
- flood: thousands of ordinary lines (access logs, "0 errors") -> nothing.
- quiet: nothing for a while -> nothing.

Where the docs are silent or unclear, the choices (also in ``Spec.why``):

- A person's ``docker stop`` is documented as needs-human ("left alone, and its issue says
  so"); the soak expects exactly that, a page that names the person, and counts it as a
  page with a fault behind it.
- Collateral issues of a dependency's outage (the api failing its healthcheck, the worker's
  "connection refused") may open; they must be linked to the dependency's issue and left
  alone. A page about them is backed by the outage.
- A service whose process stops (a crash, a restart by the controller or a person) leaves
  its dependencies' connections open: PostgreSQL logs "could not receive data from
  client: Connection reset by peer". The controller opens that low, expected of a client
  leaving (docs/detection.md); the soak allows it, low only, on the dependencies of the
  service of any such fault. At its own severity it is still an issue with no fault
  behind it.
- An error naming a host that is no service of the stack (``payments.internal``) is never
  linked to a dependency, even during that dependency's outage: the operator would chase the
  wrong service (issue 18's rule: evidence, not the graph alone).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from soak.journal import Expectation, IssueExpect
from soak.stack import SERVICES, dependencies, dependents

KINDS = (
    "crash",
    "crash-policy",
    "crash-loop",
    "oom",
    "health-blip",
    "health-hang",
    "probe-fail",
    "slow-start",
    "log",
    "runbook",
    "dependency-crash",
    "dependency-stop",
    "person-stop",
    "person-restart",
    "person-up",
    "job-fail",
    "flood",
    "quiet",
)
# which services each kind may hit
TARGETS: dict[str, tuple[str, ...]] = {
    "crash": ("api", "worker", "reporter", "edge", "agent"),
    "crash-policy": ("ticker",),
    "crash-loop": ("reporter",),
    "log": ("api", "worker", "reporter"),  # as LOG_CASES' services allow
    "oom": ("worker",),
    "health-blip": ("api", "edge"),
    "health-hang": ("api", "edge"),
    "probe-fail": ("api",),
    "slow-start": ("api", "edge"),
    "runbook": ("worker",),
    "dependency-crash": ("db",),
    "dependency-stop": ("db",),
    "person-stop": ("reporter", "ticker", "agent", "worker"),
    "person-restart": ("reporter", "ticker", "agent", "worker", "api", "edge"),
    # not edge: agent joins edge's namespace by container id, so a recreated edge leaves
    # agent pointing at a container that is gone (Compose recreates dependents only
    # without --no-deps); that is the person's mistake, not a fault to score
    "person-up": ("reporter", "ticker", "worker"),
    "job-fail": ("migrate",),
    "flood": ("api", "worker", "reporter", "ticker", "agent"),
    "quiet": ("*",),
}


@dataclass(frozen=True)
class LogCase:
    """A real error line (or record) of one category, the pattern that must match it,
    and what the pattern's library entry says to do."""

    category: str
    pattern: str
    services: tuple[str, ...]
    text: str
    action: str = ""  # "restart": the pattern suggests one, and the category allows it
    why: str = ""
    names: str = ""  # what the line names, which tells its issue from others of the pattern


LOG_CASES: tuple[LogCase, ...] = (
    LogCase(
        "connection",
        "conn-refused",
        ("api", "worker"),
        "ERROR {service}: requests.exceptions.ConnectionError: HTTPConnectionPool("
        "host='payments.internal', port=8443): Max retries exceeded with url: /v1/charge "
        "(Caused by NewConnectionError('<urllib3.connection.HTTPConnection object at "
        "0x7f3a2c1d5e50>: Failed to establish a new connection: [Errno 111] Connection "
        "refused'))\n",
        why="conn-refused suggests nothing: reported only; payments.internal is no "
        "service of the stack, so it is linked to nothing",
        names="payments.internal",
    ),
    LogCase(
        "database",
        "db-deadlock",
        ("worker",),
        "ERROR worker: psycopg2.errors.DeadlockDetected: deadlock detected\n"
        "DETAIL:  Process 4242 waits for ShareLock on transaction 1234; blocked by process "
        "4243.\n",
        why="db-deadlock suggests nothing (medium): reported only; no dependency is down",
    ),
    LogCase(
        "auth",
        "jwt-expired",
        ("api",),
        "WARNING api: jwt.exceptions.ExpiredSignatureError: Signature has expired\n",
        why="auth: a restart cannot fix it; with no runbook it is reported only",
    ),
    LogCase(
        "config",
        "config-parse-error",
        ("reporter",),
        "ERROR reporter: yaml.scanner.ScannerError: mapping values are not allowed here\n"
        '  in "/etc/reporter/rules.yaml", line 12, column 18\n',
        why="config: never restarted for; no runbook declared: reported only (the "
        "service runs on: nothing crashed, so nobody is paged for a human)",
    ),
    LogCase(
        "import",
        "py-module-not-found",
        ("reporter", "worker"),
        "ERROR {service}: optional exporter disabled: ModuleNotFoundError: No module named "
        "'ujson'\n",
        why="import: never restarted for; reported only",
    ),
    LogCase(
        "filesystem",
        "too-many-open-files",
        ("api",),
        "ERROR api: OSError: [Errno 24] Too many open files\n",
        action="restart",
        why="too-many-open-files suggests a restart (filesystem, allowed): restart, proven "
        "when the error stays away for log_quiet_seconds",
    ),
    LogCase(
        "performance",
        "db-pool-exhausted",
        ("worker",),
        "ERROR worker: sqlalchemy.exc.TimeoutError: QueuePool limit of size 5 overflow 10 "
        "reached, connection timed out, timeout 30.00 (Background on this error at: "
        "https://sqlalche.me/e/20/3o7r)\n",
        action="restart",
        why="db-pool-exhausted suggests a restart (a restart frees leaked connections)",
    ),
    LogCase(
        "health",
        "python-traceback",
        ("reporter",),
        "Traceback (most recent call last):\n"
        '  File "/apps/report.py", line 210, in summarise\n'
        "    mean = statistics.mean(durations)\n"
        '  File "/usr/local/lib/python3.11/statistics.py", line 432, in mean\n'
        "    raise StatisticsError('mean requires at least one data point')\n"
        "statistics.StatisticsError: mean requires at least one data point\n",
        why="a bare traceback (python-traceback, generic) suggests nothing: reported only "
        "(a module's exception: the packs give a category only to the built-in ones, and "
        "a built-in one such as ZeroDivisionError is a bug, category code)",
    ),
)
CATEGORIES = tuple(c.category for c in LOG_CASES)
# An error naming a host that is no service of the stack, printed by the api while db is
# down (dependency-stop): another pattern than the api's own "connection refused" to the
# database (that one would be the same issue: a fingerprint hashes the matched text, and
# conn-refused matches only "Connection refused"), so its issue is its own.
FOREIGN_ERROR = LogCase(
    "connection",
    "dns-failure",
    ("api",),
    "ERROR api: requests.exceptions.ConnectionError: HTTPSConnectionPool(host="
    "'payments.internal', port=443): Max retries exceeded with url: /v1/charge (Caused by "
    'NameResolutionError("<urllib3.connection.HTTPSConnection object at 0x7f3a2c1d5e50>: '
    "Failed to resolve 'payments.internal' ([Errno -2] Name or service not known)\"))\n",
    why="names payments.internal, no service of the stack: linked to nothing",
    names="payments.internal",
)


def log_case(category: str) -> LogCase:
    return next(c for c in LOG_CASES if c.category == category)


# ordinary lines for a flood: access logs and the harmless words a naive grep flags
FLOOD_LINES = (
    '127.0.0.1 - - "GET /items?page={n} HTTP/1.1" 200 512 "-" "soak/1.0" 0.003',
    "{service}: batch {n} done: 0 errors, error_rate=0.0, retries=0",
    'level=info msg="request served" path=/items status=200 errors=0 n={n}',
)


@dataclass(frozen=True)
class Spec:
    """A fault's expectation and its place in the stack: ``touch`` are the services it
    acts on (each must be ready and settled in the controller's eyes before, and no
    other fault may run on them meanwhile), ``near`` those where collateral shows (ready,
    without an active drift); ``steps`` the fix steps a correct controller takes per
    service (the schedule keeps each service within its budget)."""

    expect: Expectation
    touch: tuple[str, ...]
    near: tuple[str, ...] = ()
    person: bool = False
    recovery: bool = False
    steps: dict[str, int] = field(default_factory=dict)


def _collateral(root: str, cause: str) -> tuple[IssueExpect, ...]:
    """What the dependents of ``root`` may show while it is down: drifts and connection or
    database errors, linked to ``cause``; errors the library does not know, unlinked."""
    found: list[IssueExpect] = []
    for service in dependents(root):
        if service == "migrate":
            continue  # a finished job does not notice
        found.append(IssueExpect(service, f"drift:{service}:", required=False, cause=cause))
        found.append(
            IssueExpect(service, f"log:{service}:", False, ("connection", "database"), cause=cause)
        )
        found.append(IssueExpect(service, f"log:{service}:unclassified:", required=False))
    return tuple(found)


def _own_restart_logs(service: str) -> tuple[IssueExpect, ...]:
    """A restarted database says so in its own log (clients connecting while it starts:
    "the database system is starting up"; backends ended by its death): its own issues,
    linked to nothing."""
    if service != "db":
        return ()
    return (
        IssueExpect("db", "log:db:", False, ("database", "connection")),
        # its backends' "terminating connection due to unexpected postmaster exit" when
        # the postmaster is SIGKILLed: no pattern knows it, discovery reports it
        IssueExpect("db", "log:db:unclassified:", False),
    )


# faults whose service's process stops (dies, is restarted or recreated) while clients of
# its dependencies may hold connections to them
STOPS = frozenset(
    {
        "crash",
        "crash-loop",
        "crash-policy",
        "oom",
        "slow-start",
        "health-hang",
        "probe-fail",
        "job-fail",
        "person-stop",
        "person-restart",
        "person-up",
    }
)


def _clients_leaving(service: str) -> tuple[IssueExpect, ...]:
    """What the services ``service`` depends on may log when its process stops with
    their connections open (PostgreSQL's "could not receive data from client: Connection
    reset by peer"): low, expected of a client leaving (docs/detection.md), linked to
    nothing. The same line at its own severity is a fault no restart explains."""
    return tuple(
        IssueExpect(dep, f"log:{dep}:", False, ("connection",), low=True)
        for dep in dependencies(service)
    )


def spec(kind: str, service: str, params: dict[str, object]) -> Spec:
    """The expectation of one fault; see the module's table for the rules, and a client
    leaving (``_clients_leaving``) for every fault that stops its service."""
    found = _spec(kind, service, params)
    if kind not in STOPS or not (leaving := _clients_leaving(service)):
        return found
    expect = replace(found.expect, issues=(*found.expect.issues, *leaving))
    return replace(found, expect=expect)


def _spec(kind: str, service: str, params: dict[str, object]) -> Spec:
    """The expectation of one fault, but for its clients leaving."""
    near = tuple(dict.fromkeys([*dependencies(service), *dependents(service)]))
    if kind in ("crash", "oom", "slow-start"):
        cause = f"drift:{service}:"
        why = {
            "crash": "docs/remediation.md: exited -> restart, then recreate; a SIGKILL is a "
            "crash, not a person",
            "oom": "docs/features.md: OOM-killed exits are critical drifts; exited -> restart",
            "slow-start": "a start within the healthcheck's start period is not a failure: "
            "one restart, proven once it is up (verify timeout from the healthcheck)",
        }[kind]
        return Spec(
            Expectation(
                (IssueExpect(service, f"drift:{service}:exited"), *_collateral(service, cause)),
                {service: ("restart",)},
                (service, "restart"),
                why,
            ),
            (service,),
            near,
            recovery=True,
            steps={service: 1},
        )
    if kind == "crash-loop":
        return Spec(
            Expectation(
                (IssueExpect(service, f"drift:{service}:exited"),),
                {service: ("restart", "recreate")},
                (service, "restart"),
                "docs/remediation.md: a crash loop is never called fixed: a fix is proven only "
                "once the service outlives its crash pattern; the ladder (restart, recreate) "
                "with the backoff between steps; fixed once the loop is over",
            ),
            (service,),
            near,
            recovery=True,
            steps={service: 4},
        )
    if kind == "crash-policy":
        return Spec(
            Expectation(
                (
                    IssueExpect(service, f"engine:{service}:docker-restart"),
                    IssueExpect(service, f"drift:{service}:", required=False),
                ),
                {},
                None,
                "docs/remediation.md: while its own restart policy restarts it the controller "
                "adds no restart; Docker's restarts are findings (engine:<service>:docker-restart)",
            ),
            (service,),
            recovery=True,
        )
    if kind == "health-blip":
        return Spec(
            Expectation(
                (IssueExpect(service, f"drift:{service}:unhealthy"),),
                {},
                None,
                "docs/remediation.md: failing its healthcheck, not yet unhealthy -> nothing "
                "yet; the engine never calls it unhealthy, so nothing is done and it resolves",
            ),
            (service,),
            near,
        )
    if kind in ("health-hang", "probe-fail"):
        drift = "unhealthy" if kind == "health-hang" else "probe-failed"
        return Spec(
            Expectation(
                (
                    IssueExpect(service, f"drift:{service}:{drift}"),
                    *_collateral(service, f"drift:{service}:"),
                ),
                {service: ("restart",)},
                (service, "restart"),
                f"docs/remediation.md: {drift} -> restart, then recreate"
                " (a restart clears the fault)",
            ),
            (service,),
            near,
            recovery=True,
            steps={service: 1},
        )
    if kind == "log":
        case = log_case(str(params["category"]))
        actions: dict[str, tuple[str, ...]] = {service: (case.action,)} if case.action else {}
        return Spec(
            Expectation(
                (IssueExpect(service, f"log:{service}:{case.pattern}:", text=case.names),),
                actions,
                (service, case.action) if case.action else None,
                case.why,
            ),
            (service,),
            near,
            recovery=bool(case.action),
            steps={service: 1} if case.action else {},
        )
    if kind == "runbook":
        return Spec(
            Expectation(
                (
                    IssueExpect(service, f"log:{service}:pg-database-missing:"),
                    # PostgreSQL logs the client's failed connection too: its own issue of
                    # the same cause, resolved with it by the runbook
                    IssueExpect("db", "log:db:pg-database-missing:", required=False),
                ),
                {service: ("runbook",)},
                (service, "runbook"),
                "docs/remediation.md: a log error with a runbook -> the runbook first "
                "(createdb with the captured name, checked against capture_pattern)",
            ),
            (service, "db"),
            near,
            recovery=True,
            steps={service: 1},
        )
    if kind == "dependency-crash":
        return Spec(
            Expectation(
                (
                    IssueExpect(service, f"drift:{service}:exited"),
                    *_own_restart_logs(service),
                    *_collateral(service, f"drift:{service}:"),
                ),
                {service: ("restart",)},
                (service, "restart"),
                "docs/features.md (Root causes first): the dependency is fixed first; the "
                "dependents' drifts and connection/database errors are linked to it, not fixed",
            ),
            (service,),
            near,
            recovery=True,
            steps={service: 1},
        )
    if kind == "dependency-stop":
        foreign: tuple[IssueExpect, ...] = ()
        if params.get("foreign"):
            # the foreign error first: it must match before the collateral categories do
            foreign = (
                IssueExpect("api", f"log:api:{FOREIGN_ERROR.pattern}:", text=FOREIGN_ERROR.names),
            )
        return Spec(
            Expectation(
                (
                    IssueExpect(service, f"drift:{service}:exited", human=True),
                    *foreign,
                    *_own_restart_logs(service),
                    *_collateral(service, f"drift:{service}:"),
                ),
                {},
                None,
                "docs/configuration.md: a container a person stopped is left alone "
                "(needs-human, 'stopped by a person'); its dependents' issues are linked to it "
                "and wait. An error naming payments.internal names no service: linked to nothing",
            ),
            (service,),
            near,
            person=True,
            recovery=True,
        )
    if kind == "person-stop":
        return Spec(
            Expectation(
                (
                    IssueExpect(service, f"drift:{service}:exited", human=True),
                    *_collateral(service, f"drift:{service}:"),
                ),
                {},
                None,
                "docs/configuration.md: a container someone stopped is left alone "
                "(unless enforce: true) and its issue says so: needs-human, no action; it "
                "resolves once the person starts it",
            ),
            (service,),
            near,
            person=True,
            recovery=True,
        )
    if kind == "person-restart":
        return Spec(
            Expectation(
                (),
                {},
                None,
                "docs/configuration.md: a service in a person's operation is never touched and its "
                "transient state is not recorded; after it, it is ready: nothing to say",
            ),
            (service,),
            near,
            person=True,
        )
    if kind == "person-up":
        return Spec(
            Expectation(
                (
                    # between the person's edit and their `up` the running container *is*
                    # older than the file: "outdated" (low, and a human decides) is the
                    # documented verdict for that moment; it must go once the new one runs
                    IssueExpect(service, f"drift:{service}:outdated", False, human=True),
                ),
                {},
                None,
                "docs/configuration.md: the controller reads the config hashes again when a "
                "compose file changes; the container the person created is the new config: "
                "nothing once it runs (an outdated config between the edit and the up may show)",
            ),
            (service,),
            near,
            person=True,
        )
    if kind == "job-fail":
        return Spec(
            Expectation(
                (
                    IssueExpect(service, f"drift:{service}:job-failed"),
                    *_collateral(service, f"drift:{service}:"),
                ),
                {service: ("start",)},
                (service, "start"),
                "docs/remediation.md: a one-shot job failed -> start, then recreate (the person's "
                "operation is over when it exits)",
            ),
            (service,),
            near,
            recovery=True,
            steps={service: 1},
        )
    if kind == "flood":
        return Spec(
            Expectation((), {}, None, "ordinary lines, however many: nothing"),
            (service,),
        )
    if kind == "quiet":
        return Spec(Expectation((), {}, None, "nothing happens: nothing to say"), SERVICES)
    raise ValueError(f"unknown fault kind {kind!r}")
