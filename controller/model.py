"""Plain data shared by every stage: enums, snapshots, the desired state, drifts, issues.

Nothing here does I/O or imports another module of ours. Snapshots and drifts are frozen
dataclasses (cheap, hashable); issues are pydantic models because they are persisted to
and reloaded from ``docker_issues_<env>.json``.
"""

from __future__ import annotations

import calendar
import hashlib
import ipaddress
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

# --- vocabulary -------------------------------------------------------------------------


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.LOW: 0, Severity.MEDIUM: 1, Severity.HIGH: 2, Severity.CRITICAL: 3}


class Category(StrEnum):
    CONNECTION = "connection"
    DATABASE = "database"
    AUTH = "auth"
    CONFIG = "config"
    IMPORT = "import"
    FILESYSTEM = "filesystem"
    PERFORMANCE = "performance"
    HEALTH = "health"
    CODE = "code"  # a bug in the program: an exception nothing caught (TypeError, KeyError ...)
    PREDICTED = "predicted"  # not yet a fault: a forecast of exhaustion, a learned precursor


# errors that may be a dependency's fault: linked to an upstream issue on evidence
LINKED_CATEGORIES = frozenset({Category.CONNECTION, Category.DATABASE})


class IssueSource(StrEnum):
    """Where an issue comes from."""

    DRIFT = "drift"  # a pass's diff of declaration and observation
    LOG = "log"  # a log finding (a pattern, or a template discovery mined)
    ENGINE = "engine"  # what the engine did on its own (its restart policy's restarts)
    CHANGE = "change"  # a change of a service's config or image, and its verdict
    PREDICT = "predict"  # what is coming: a resource forecast, a learned precursor seen


class IssueState(StrEnum):
    OPEN = "open"
    REMEDIATING = "remediating"
    RESOLVED = "resolved"
    FAILED = "failed"
    NEEDS_HUMAN = "needs-human"


ACTIVE_STATES = frozenset(
    {IssueState.OPEN, IssueState.REMEDIATING, IssueState.FAILED, IssueState.NEEDS_HUMAN}
)


class DriftKind(StrEnum):
    """How observed state differs from the declaration of one service."""

    MISSING = "missing"  # no container at all
    EXITED = "exited"  # a container that should run has stopped (or was created, never started)
    DEAD = "dead"  # the engine could not stop or remove it cleanly
    RESTARTING = "restarting"  # the engine's restart policy is looping it
    UNHEALTHY = "unhealthy"  # its healthcheck fails
    # its healthcheck has begun failing; the engine has not called it unhealthy yet
    FAILING_HEALTHCHECK = "failing-healthcheck"
    # the engine stopped running its healthcheck (moby/moby#41871): health is unknown
    HEALTHCHECK_STALLED = "healthcheck-stalled"
    PAUSED = "paused"
    REPLICAS = "replicas"  # more or fewer containers than declared
    JOB_FAILED = "job-failed"  # a `state: completed` service exited non-zero
    PROBE_FAILED = "probe-failed"  # a probe the declaration adds fails
    OUTDATED = "outdated"  # runs a config older than the compose model (file or env edited)
    ORPHAN = "orphan"  # a container of the project whose service is no longer declared
    # on a swarm: a person scaled the service below its declared replicas (``docker
    # service scale``); the controller never scales below the declaration
    SCALED_DOWN = "scaled-down"
    UNPLACEABLE = "unplaceable"  # on a swarm: a task Swarm finds no node for (pending)
    UNDEPLOYED = "undeployed"  # on a swarm: the stack has no such service (service rm)


class FindingKind(StrEnum):
    """What a finding (and the issue it opens) is, for issues that are not drifts."""

    LOG = "log"  # a line matched a pattern of the library
    UNCLASSIFIED = "unclassified"  # an unknown error template that recurred (discovery)
    RESTART = "restart"  # Docker's restart policy restarted a container
    BAD_CHANGE = "bad-change"  # a new config or image made the service worse
    ROLLED_BACK = "rolled-back"  # it runs a last-good snapshot, not its declared config
    PREDICTED = "predicted"  # a resource's trend reaches its limit within a horizon
    PRECURSOR = "precursor"  # a log template learned to come before the service's incidents
    # on a swarm: a node where tasks keep failing while the same services run elsewhere
    NODE_FAILING = "node-failing"


# what an issue is: one of the drift kinds, or one of the finding kinds
IssueKind = DriftKind | FindingKind


class ContainerState(StrEnum):
    """A container's state as the engine reports it (``State.Status``)."""

    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    RESTARTING = "restarting"  # dead, in Docker's restart delay
    REMOVING = "removing"
    EXITED = "exited"
    DEAD = "dead"
    UNKNOWN = "unknown"  # a state this code does not know

    @classmethod
    def of(cls, text: str) -> ContainerState:
        try:
            return cls(text)
        except ValueError:
            return cls.UNKNOWN

    @property
    def running(self) -> bool:
        return self is ContainerState.RUNNING

    @property
    def stopped(self) -> bool:
        """Not running and nothing will start it by itself: exited, or created only."""
        return self in (ContainerState.EXITED, ContainerState.CREATED)

    @property
    def down(self) -> bool:
        """Its process died: exited, dead, or waiting out Docker's restart delay."""
        return self in (ContainerState.EXITED, ContainerState.DEAD, ContainerState.RESTARTING)

    @property
    def up(self) -> bool:
        """Running, or about to run again (Docker restarts it)."""
        return self in (ContainerState.RUNNING, ContainerState.RESTARTING)

    @property
    def has_process(self) -> bool:
        """A process that may write to its log: running, paused, or restarting."""
        return self in (ContainerState.RUNNING, ContainerState.RESTARTING, ContainerState.PAUSED)


class Health(StrEnum):
    """A container's health, as its healthcheck's last verdict says."""

    STARTING = "starting"
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"

    @classmethod
    def of(cls, text: str | None) -> Health | None:
        """None when there is no healthcheck (or a verdict this code does not know)."""
        try:
            return cls(text) if text else None
        except ValueError:
            return None


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """Docker's restart policy of a service (compose's ``restart``), parsed once at load."""

    name: str = "no"  # no | always | unless-stopped | on-failure
    max_retries: int | None = None  # on-failure:N
    by: str = "Docker"  # whose policy: Docker's, or Swarm's (a stack's restart_policy)
    said: str = ""  # how the user wrote it, where not in Docker's words

    @classmethod
    def of(cls, text: str) -> RestartPolicy:
        name, _, retries = (text or "no").partition(":")
        return cls(name, int(retries) if retries.isdigit() else None)

    @property
    def restarts(self) -> bool:
        """Docker brings the service's containers back when they die."""
        return self.name in ("always", "unless-stopped", "on-failure")

    @property
    def on_failure(self) -> bool:
        """Docker restarts a container only when it exits non-zero."""
        return self.name == "on-failure"

    @property
    def kills_unhealthy(self) -> bool:
        """An unhealthy container is ended by its runner: Swarm kills an unhealthy task
        (and replaces it as its policy says); Docker leaves one running."""
        return self.by == "Swarm"

    @classmethod
    def of_swarm(cls, policy: object) -> RestartPolicy:
        """A stack's ``deploy.restart_policy`` in Docker's words: Swarm replaces a task that
        ended on ``condition: any`` (its default) as ``always`` restarts a container, on
        ``on-failure`` after a non-zero exit (``max_attempts`` times), on ``none`` never."""
        found = policy if isinstance(policy, Mapping) else {}
        condition = str(found.get("condition") or "any")
        attempts = found.get("max_attempts")
        retries = int(attempts) if isinstance(attempts, int) and attempts > 0 else None
        said = f"condition {condition}" + (f", max_attempts {retries}" if retries else "")
        name = {"on-failure": "on-failure", "none": "no"}.get(condition, "always")
        return cls(name, retries, "Swarm", said)

    def __str__(self) -> str:
        if self.said:
            return self.said
        return self.name if self.max_retries is None else f"{self.name}:{self.max_retries}"


class StepKind(StrEnum):
    """What a runbook step (or the hook) runs."""

    EXEC = "exec"  # argv in a running container of a service
    COMPOSE = "compose"  # a compose action on a service
    HOOK = "hook"  # the user's command on this machine


class ProbeKind(StrEnum):
    """What a declared probe checks."""

    HTTP = "http"  # GET a URL
    TCP = "tcp"  # connect to host:port
    EXEC = "exec"  # run argv in a running container of the service


class Action(StrEnum):
    START = "start"  # docker compose up -d --no-deps SERVICE
    RESTART = "restart"  # restart the affected containers
    RECREATE = "recreate"  # docker compose up -d --force-recreate --no-deps SERVICE
    REBUILD = "rebuild"  # docker compose up -d --build --force-recreate --no-deps SERVICE
    UNPAUSE = "unpause"
    RUNBOOK = "runbook"  # a step the desired state declares for a known issue
    HOOK = "hook"  # the user's external command, given the issue as JSON
    ROLLBACK = "rollback"  # docker compose up --force-recreate with a last-good snapshot


class Outcome(StrEnum):
    SUCCESS = "success"  # the action ran and verification passed
    FAILURE = "failure"  # the action ran, verification did not pass by the deadline
    ERROR = "error"  # the action itself failed (engine or compose error)
    DRY_RUN = "dry-run"  # planned, not executed
    CANCELLED = "cancelled"  # cut short by shutdown


class RollbackMode(StrEnum):
    """What a bad change of a service gets."""

    OFF = "off"  # nothing: no snapshots, no verdicts
    NOTIFY = "notify"  # a verdict, an issue and a notification with the command that reverts
    AUTO = "auto"  # that, and the controller rolls it back to its last good snapshot


class RollbackScope(StrEnum):
    """What a rollback reverts."""

    SERVICE = "service"  # the service whose change was bad
    STACK = "stack"  # every service changed by the same operation, dependencies first


class ChangeVerdict(StrEnum):
    """What a change of a service turned out to be."""

    PENDING = "pending"  # under watch: its window has not passed
    GOOD = "good"  # every replica ready, and stayed ready through the window
    BAD = "bad"  # it died, restarted, turned unhealthy, failed a probe, logged ... in time


class ServiceRunState(StrEnum):
    """What a declaration asks of a service."""

    RUNNING = "running"  # long-running: containers up (and healthy if checked)
    COMPLETED = "completed"  # one-shot job: ran and exited 0


class ResourceKind(StrEnum):
    """What a container can run out of, as the controller samples it."""

    MEMORY = "memory"  # the working set against the memory limit (or the host's memory)
    PIDS = "pids"  # processes and threads against the pids limit
    WRITABLE = "writable-layer"  # the container's writable layer against a declared size
    VOLUME = "volume"  # a volume's size against the size declared for it


def resource_key(kind: ResourceKind, name: str = "") -> str:
    """The key of one resource of a service: ``memory``, ``pids``, ``writable-layer`` or
    ``volume/NAME`` (the compose name of the volume)."""
    return f"{kind}/{name}" if kind is ResourceKind.VOLUME else str(kind)


class LearnMode(StrEnum):
    """What the controller does with log templates learned to come before incidents."""

    OFF = "off"  # learns nothing
    REPORT = "report"  # learns and lists them (the report, ``controller patterns``)
    WARN = "warn"  # and a learned precursor's next appearance opens a warning issue


class PreemptAction(StrEnum):
    """What the controller may do before a forecast exhaustion (a runbook for the
    ``predicted-<resource>`` pattern id runs whatever this says)."""

    NONE = "none"  # report only (the default)
    RESTART = "restart"  # restart the service, within its quiet window if it declares one


# --- time -------------------------------------------------------------------------------


class Clock(Protocol):
    """Wall-clock time in epoch seconds; injected so tests of timing never sleep."""

    def __call__(self) -> float: ...


def system_clock() -> float:
    return time.time()


def to_datetime(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def at_utc(moment: datetime) -> str:
    """A time for a person, in UTC (``12:04:05 UTC``)."""
    return moment.astimezone(UTC).strftime("%H:%M:%S UTC")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECONDS: dict[str, int] = {}  # "YYYY-MM-DDTHH:MM:SS" -> epoch seconds (a log repeats them)


def engine_ns(text: str | bytes) -> int | None:
    """Nanoseconds since the epoch of an engine time stamp: RFC 3339 with up to nine
    decimals, ``Z`` or an offset, as the engine writes ``StartedAt`` and log lines. None
    when unset (Docker's zero time ``0001-01-01...``) or malformed. The one parser of the
    engine's times (the log path parses a stamp per read with it: one cached ``strptime``
    per second)."""
    s = text.decode("ascii", "replace") if isinstance(text, bytes) else text
    if len(s) < 20 or s[10] != "T" or s.startswith("0001-"):
        return None
    if s.endswith("Z"):
        body, offset = s[:-1], 0
    elif len(s) >= 25 and s[-6] in "+-" and s[-3] == ":" and s[-5:-3].isdigit():
        hours, minutes = s[-5:-3], s[-2:]
        if not minutes.isdigit():
            return None
        offset = (int(hours) * 3600 + int(minutes) * 60) * (1 if s[-6] == "+" else -1)
        body = s[:-6]
    else:
        return None
    second = body[:19]
    base = _SECONDS.get(second)
    if base is None:
        try:
            base = calendar.timegm(time.strptime(second, "%Y-%m-%dT%H:%M:%S"))
        except ValueError:  # the shape of a time, not a real one (February 30th, 24:00)
            return None
        if len(_SECONDS) > 4096:
            _SECONDS.clear()
        _SECONDS[second] = base
    if len(body) == 19:
        fraction = ""
    elif body[19] == "." and body[20:].isdigit():
        fraction = body[20:]
    else:
        return None
    return (base - offset) * 1_000_000_000 + int((fraction + "000000000")[:9])


def engine_time(text: str) -> datetime | None:
    """An engine time stamp (``engine_ns``) to the microsecond; None when unset or
    malformed."""
    nanos = engine_ns(text)
    if nanos is None:
        return None
    return _EPOCH + timedelta(microseconds=nanos // 1000)


# --- desired state ----------------------------------------------------------------------


MIN_WINDOW = 30.0  # seconds: the monitor window of a change is at least this by default


@dataclass(frozen=True, slots=True)
class RollbackPolicy:
    """How a change of one service is judged, and what a bad one gets (``rollback`` in
    the desired state, the stack's merged under the service's)."""

    mode: RollbackMode = RollbackMode.NOTIFY
    window: float | None = None  # every replica ready this long: good (None: its hold, >= 30 s)
    deadline: float = 300.0  # not ready this long after the change: bad (Nomad's 5 min)
    severity: Severity = Severity.CRITICAL  # a log finding this bad within the window: bad

    def window_for(self, hold: float) -> float:
        """The monitor window of a service whose hold is ``hold`` seconds."""
        return self.window if self.window is not None else max(hold, MIN_WINDOW)


@dataclass(frozen=True, slots=True)
class RollbackSettings:
    """The stack-wide part of ``rollback``: what one rollback reverts, snapshots kept."""

    scope: RollbackScope = RollbackScope.SERVICE
    keep: int = 3  # last-good snapshots per service


@dataclass(frozen=True, slots=True)
class PatternDef:
    """One log pattern of the library (or of the user), validated and ready to compile."""

    id: str
    regex: str
    category: Category
    severity: Severity
    title: str
    hint: str = ""
    remediation: str = "none"  # restart | recreate | runbook | none: what it suggests
    generic: bool = False  # a catch-all (a bare traceback): only when nothing specific matches
    # what a client logs while its peer starts (connection refused): expected then
    starting: bool = False
    # what a server logs when a client of it went away (connection reset by peer):
    # expected when one just stopped
    client_gone: bool = False


@dataclass(frozen=True, slots=True)
class LearnSettings:
    """Precursors learned from history (``detection.learn``)."""

    mode: LearnMode = LearnMode.REPORT
    lookback: float = 300.0  # seconds before an incident in which a template counts
    min_incidents: int = 3  # incidents it must have come before to be learned


@dataclass(frozen=True, slots=True)
class DetectionSettings:
    """How logs become findings: the patterns, what to ignore, escalation and discovery."""

    patterns: tuple[PatternDef, ...] = ()
    ignore: Mapping[str, frozenset[str]] = field(default_factory=dict)  # service -> ids, "*"
    escalate_after: int = 10  # occurrences ...
    escalate_window: float = 60.0  # ... within this many seconds raise severity one level
    resolve_after_quiet: float = 300.0  # a log issue not seen this long is resolved
    discovery: bool = True  # mine unmatched error-looking lines into templates
    discovery_min_occurrences: int = 3
    learn: LearnSettings = field(default_factory=LearnSettings)

    def ignored(self, service: str, pattern_id: str) -> bool:
        ids = self.ignore.get(service, frozenset())
        return "*" in ids or pattern_id in ids


@dataclass(frozen=True, slots=True)
class QuietWindow:
    """A daily window, UTC, in which a restart before exhaustion is acceptable: minutes
    after midnight; ``end`` before ``start`` spans midnight."""

    start: int
    end: int

    def contains(self, minute: int) -> bool:
        if self.start <= self.end:
            return self.start <= minute < self.end
        return minute >= self.start or minute < self.end

    def wait(self, now: float) -> float:
        """Seconds from ``now`` (epoch) until the window opens; 0 while it is open."""
        minute = int(now // 60) % (24 * 60)
        if self.contains(minute):
            return 0.0
        ahead = (self.start - minute) % (24 * 60)
        return ahead * 60.0 - now % 60

    def __str__(self) -> str:
        start, end = divmod(self.start, 60), divmod(self.end, 60)
        return f"{start[0]:02d}:{start[1]:02d}-{end[0]:02d}:{end[1]:02d} UTC"


@dataclass(frozen=True, slots=True)
class ServicePredict:
    """A service's forecasts: its horizons, what may be done before exhaustion, and the
    sizes of what the engine gives no limit for (``services.<name>.predict``)."""

    warning: float = 3600.0  # a forecast exhaustion within this many seconds: a warning
    critical: float = 900.0  # ... within this many: critical
    act: PreemptAction = PreemptAction.NONE
    window: QuietWindow | None = None  # a restart only within it (None: once critical)
    limits: Mapping[str, int] = field(default_factory=dict)  # resource key -> bytes


@dataclass(frozen=True, slots=True)
class PredictSettings:
    """How resources are sampled and trends fitted (the desired state's ``predict``)."""

    enabled: bool = True
    interval: float = 30.0  # seconds between samples of a watched container (and rounds)
    quiet_interval: float = 300.0  # seconds between samples of a quiet one
    window: float = 1800.0  # seconds of a run's samples a trend is fitted to
    min_history: float = 180.0  # seconds of samples before any forecast
    min_points: int = 6  # samples before any forecast


@dataclass(frozen=True, slots=True)
class ComposeProject:
    """Everything `docker compose` needs to address one project the way the user does."""

    name: str
    files: tuple[Path, ...]
    workdir: Path
    env_files: tuple[Path, ...] = ()
    profiles: tuple[str, ...] = ()
    environment: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ProbeSpec:
    """A check the declaration adds to a service, with Kubernetes' settings.

    ``http``: GET ``url``, pass on ``status`` (or any 2xx/3xx) and, if given, ``body`` in
    the first 64 KiB; ``tcp``: connect to ``host``:``port``; ``exec``: ``argv`` exits 0 in a
    running container of the service.
    """

    kind: ProbeKind
    url: str = ""
    status: int | None = None
    body: str = ""
    host: str = "127.0.0.1"
    port: int = 0
    argv: tuple[str, ...] = ()
    period: float = 10.0
    timeout: float = 1.0
    failure_threshold: int = 3
    success_threshold: int = 1
    initial_delay: float = 0.0

    @property
    def name(self) -> str:
        target = self.url or (
            f"{self.host}:{self.port}" if self.kind is ProbeKind.TCP else " ".join(self.argv)
        )
        return f"{self.kind} {target}"


# Host names that say "this machine", not which service: under host networking every
# service listens on them (and under a bridge network a published port is reached at the
# host's names), so only a port says which service they mean.
LOCAL_HOSTS = frozenset(
    {
        "localhost",
        "localhost.localdomain",
        "ip6-localhost",
        "ip6-loopback",
        "0.0.0.0",
        "::",
        "::1",
        "host.docker.internal",
        "gateway.docker.internal",
    }
)
_ENDPOINT = re.compile(
    r"(?:\[(?P<v6>[0-9a-f:.%a-z]+)\]|(?P<host>[a-z0-9_.-]*))(?::(?P<port>[0-9]{1,5}))?"
)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A host, a port, or both: what an error names, or one way a service is reached.

    ``host`` is lower case (an IPv6 address without brackets), "" when only a port is
    known; ``port`` is 0 when only a host is known. ``str()`` gives ``host:port``,
    ``host``, ``:port`` or ``[v6]:port``, which ``parse`` reads back.
    """

    host: str = ""
    port: int = 0

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}" if self.port else host

    @property
    def local(self) -> bool:
        """The host is this machine (loopback, any address, Docker's host names)."""
        return self.host in LOCAL_HOSTS or self.host.startswith("127.")

    @property
    def literal(self) -> bool:
        """The host is an IP address, not a name."""
        try:
            ipaddress.ip_address(self.host.split("%", 1)[0])
        except ValueError:
            return False
        return True

    @property
    def specific(self) -> bool:
        """It can tell one service from another: a port, or a host that is not local."""
        return bool(self.port) or (bool(self.host) and not self.local)

    @classmethod
    def parse(cls, text: str) -> Endpoint | None:
        """The endpoint ``str()`` wrote, or None when ``text`` is not one (or names
        neither a host nor a port, or a port outside 1-65535)."""
        found = _ENDPOINT.fullmatch(text.strip().lower())
        if found is None:
            return None
        host = found["v6"] or found["host"] or ""
        port = int(found["port"] or 0)
        if (not host and not port) or (found["port"] and not 0 < port < 65536):
            return None
        if found["v6"] is None and host.strip(".-_") != host:
            return None
        if found["v6"] is not None and ":" not in host:
            return None
        return cls(host, port)


@dataclass(frozen=True, slots=True)
class ServiceAddress:
    """One way clients reach a service, and where the controller learned it ("service
    name", "container_name", "network alias", "published port", "healthcheck", ...)."""

    endpoint: Endpoint
    source: str

    def __str__(self) -> str:
        return f"{self.endpoint} ({self.source})"


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """The healthy state of one compose service: the declaration merged over compose."""

    name: str
    state: ServiceRunState = ServiceRunState.RUNNING
    replicas: int = 1
    # require `healthy`: True (declared, or compose defines a healthcheck), False (declared
    # `healthy: false`, or compose disables it), None: as the container reports (a
    # healthcheck from the image counts)
    check_health: bool | None = None
    required: bool = True  # optional services never fail convergence; their drifts are low
    enforce: bool = False  # act even on what a person paused
    depends_on: tuple[str, ...] = ()
    has_build: bool = False  # compose can build its image (a rebuild is possible)
    restart: RestartPolicy = field(default_factory=RestartPolicy)  # compose's restart
    # what Swarm does when a task ends (deploy.restart_policy): ``restart`` on a swarm
    swarm_restart: RestartPolicy = field(
        default_factory=lambda: RestartPolicy("always", None, "Swarm", "condition any")
    )
    recreate_outdated: bool = False  # recreate it when its config hash is outdated
    stop_timeout: float = 10.0  # compose's stop_grace_period: a restart waits this long
    probes: tuple[ProbeSpec, ...] = ()
    verify_timeout: float = 30.0  # seconds a fix has to become ready
    min_ready: float = 2.0  # seconds it must stay ready to count as fixed
    # how its clients reach it (names, aliases, ports), from compose, its healthcheck and
    # probes, and the declaration's ``addresses``: the evidence that an error names it
    addresses: tuple[ServiceAddress, ...] = ()
    rollback: RollbackPolicy = field(default_factory=RollbackPolicy)
    volumes: tuple[str, ...] = ()  # the compose names of the named volumes it mounts
    predict: ServicePredict = field(default_factory=ServicePredict)

    def __post_init__(self) -> None:
        if isinstance(self.restart, str):  # as compose writes it
            object.__setattr__(self, "restart", RestartPolicy.of(self.restart))


@dataclass(frozen=True, slots=True)
class RunbookStep:
    """One action of a runbook (or the external hook), validated at load.

    ``exec``: run ``argv`` in a running container of ``service`` (no shell);
    ``compose``: ``action`` (start, restart, recreate) on ``service``;
    ``hook``: run the user's ``argv`` on this machine, the issue as JSON on stdin.
    ``argv`` may hold ``{capture}`` placeholders, filled with validated captured values.
    """

    kind: StepKind
    argv: tuple[str, ...] = ()
    service: str = ""
    action: Action | None = None
    user: str = ""
    env: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 60.0


DEFAULT_CAPTURE = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}"  # what a captured value may be


@dataclass(frozen=True, slots=True)
class Runbook:
    """A known fix for a known issue: when ``pattern`` matches, run ``step``."""

    name: str
    pattern: str  # a pattern id
    step: RunbookStep
    services: frozenset[str] = frozenset()  # whose findings trigger it; empty: any
    capture_pattern: str = DEFAULT_CAPTURE  # a captured value must match it in full
    then_restart: bool = False  # restart the service that logged it afterwards

    def applies_to(self, service: str, pattern_id: str | None) -> bool:
        return pattern_id == self.pattern and (not self.services or service in self.services)


@dataclass(frozen=True, slots=True)
class RemediationSettings:
    budget: int = 5  # fix steps per service ...
    budget_window: float = 3600.0  # ... within this many seconds, then it needs a human
    backoff_initial: float = 10.0  # wait before the 2nd fix of an unstable service ...
    backoff_max: float = 300.0  # ... doubling up to this
    backoff_reset: float = 600.0  # ready this long since the last fix: stable again
    log_quiet: float = 10.0  # a fixed log issue must not recur for this long
    log_active: float = 60.0  # a log issue is acted on only if seen this recently
    operation_timeout: float = 300.0  # a person's operation still in progress after this
    # long is called abandoned (and handed to a human, never acted on)
    runbooks: tuple[Runbook, ...] = ()
    hook: RunbookStep | None = None  # the last rung of every ladder, when declared


class NotifyEvent(StrEnum):
    """An issue's transitions a person can be told about."""

    OPENED = "opened"  # new, or back after it was resolved
    NEEDS_HUMAN = "needs-human"  # the controller stopped acting on it
    ESCALATED = "escalated"  # its severity rose while open
    RESOLVED = "resolved"  # gone (told only when an earlier transition was told)


@dataclass(frozen=True, slots=True)
class NotifySettings:
    """Where and what to tell people (the desired state's ``notify`` section)."""

    urls: tuple[str, ...] = ()  # Apprise URLs; none: notifications are off
    events: frozenset[NotifyEvent] = frozenset(NotifyEvent)
    min_severity: Severity = Severity.HIGH  # issues below it are never told
    group_seconds: float = 10.0  # a service's transitions within this go out as one message
    max_per_hour: int = 12  # messages per service; more wait and are grouped
    timeout: float = 10.0  # per endpoint and message


@dataclass(frozen=True, slots=True)
class DesiredState:
    env: str
    source: Path  # the desired_state/<env>.yaml it came from
    compose: ComposeProject
    services: Mapping[str, ServiceSpec]
    detection: DetectionSettings = field(default_factory=DetectionSettings)
    remediation: RemediationSettings = field(default_factory=RemediationSettings)
    notify: NotifySettings = field(default_factory=NotifySettings)
    rollback: RollbackSettings = field(default_factory=RollbackSettings)
    predict: PredictSettings = field(default_factory=PredictSettings)

    @property
    def project(self) -> str:
        return self.compose.name


# --- observed state ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ContainerSnapshot:
    """One container as the engine reported it at one moment: a field for each thing of
    ``docker inspect`` a decision reads (hence their number)."""

    id: str
    name: str
    service: str
    number: int
    status: ContainerState
    health: Health | None  # None: no healthcheck
    exit_code: int
    oom_killed: bool
    restart_count: int
    started_at: str
    config_hash: str | None
    oneoff: bool = False
    finished_at: str = ""  # when it last stopped (RFC 3339), "" if never
    failing_since: str = ""  # start of its current failing healthcheck streak, "" if none
    failing_streak: int = 0  # healthchecks failed in a row (Docker's FailingStreak)
    # the last line the last failed healthcheck printed (raw: the issue store redacts it)
    health_output: str = ""
    health_interval: float = 0.0  # seconds between its healthchecks, 0: none
    health_timeout: float = 0.0  # seconds a healthcheck may take
    health_start_period: float = 0.0  # seconds of its start period
    health_retries: int = 0  # failures in a row before it is unhealthy
    last_check_at: float = 0.0  # epoch s its last check ended, or it started if later; 0: ?
    image_id: str = ""  # the image it runs (``sha256:...``)
    image: str = ""  # the image it was created from, as named (``app:1``)
    created_at: str = ""  # when it was created (RFC 3339)
    node: str = ""  # the swarm node it runs on (its host name); "" on a single engine
    error: str = ""  # what the engine said went wrong, a swarm task's ``Status.Err``
    # a swarm task Swarm has not started yet: its state (pending, preparing, ready ...),
    # Swarm's work in progress, never a container a person left created; "" otherwise
    pending: str = ""
    # Swarm's update of the task's service (its ``UpdateStatus``): its state ("updating",
    # "paused", "rollback_started", "completed", ...) and when it began (RFC 3339); ""
    # on a single engine and for a service never updated
    update: str = ""
    update_started: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.status, ContainerState):  # the engine's text
            object.__setattr__(self, "status", ContainerState.of(self.status))
        if self.health is not None and not isinstance(self.health, Health):
            object.__setattr__(self, "health", Health.of(self.health))

    def checks_overdue(self, now: float) -> bool:
        """No healthcheck has ended for longer than the stall limit at ``now`` (epoch s),
        while the container runs and is not (yet) judged unhealthy. True of a snapshot
        only says the snapshot is old or the checks stopped: the container cache reads
        the engine's record afresh before a pass may see it (``observe.informer``)."""
        if not self.health_interval or not self.last_check_at:
            return False
        if not self.status.running or self.health is Health.UNHEALTHY:
            return False
        limit = STALL_INTERVALS * self.health_interval + self.health_timeout
        return now - self.last_check_at > max(limit, STALL_FLOOR)


# A healthcheck has stopped running when its last check ended longer ago than this many
# intervals plus its timeout (two checks in a row that never came, and slack for a slow
# one), and at least STALL_FLOOR seconds ago: a busy machine delays checks of a second by
# seconds, never by half a minute. Docker 20.10 stops the healthchecks of containers
# restored by --live-restore (moby/moby#41871, fixed in 23.0): a failing streak then
# never reaches a verdict.
STALL_INTERVALS = 3
STALL_FLOOR = 30.0

# Docker's defaults for a healthcheck that does not set them (nanoseconds in the API)
_DEFAULT_INTERVAL = _DEFAULT_TIMEOUT = 30.0
_DEFAULT_RETRIES = 3


def healthcheck_timing(check: Mapping[str, Any]) -> tuple[float, float, float, int]:
    """(interval, timeout, start period) in seconds and the retries of a healthcheck as
    the engine's API writes it (a container's ``Config.Healthcheck``, a swarm task's
    ``ContainerSpec.Healthcheck``), Docker's defaults where unset; zeros for ``NONE``."""
    test = check.get("Test") or []
    if test[:1] == ["NONE"]:
        return 0.0, 0.0, 0.0, 0
    interval = int(check.get("Interval") or 0) / 1e9 or _DEFAULT_INTERVAL
    timeout = int(check.get("Timeout") or 0) / 1e9 or _DEFAULT_TIMEOUT
    start_period = int(check.get("StartPeriod") or 0) / 1e9
    retries = int(check.get("Retries") or 0) or _DEFAULT_RETRIES
    return interval, timeout, start_period, retries


@dataclass(frozen=True, slots=True)
class ProbeView:
    """What a service's probes say: passing, failing, or not known yet (None)."""

    ok: bool | None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class StackView:
    """What a swarm manager keeps of a stack beside its tasks: each service's replicas as
    its spec says (by compose name; None: a global service), and the command that deploys
    the stack (``docker stack deploy -c <file> <stack>``). A declared service it does not
    list is not deployed."""

    name: str  # the stack's name (the project)
    replicas: Mapping[str, int | None]
    deploy: str  # the command that deploys it, as a person runs it
    nodes: tuple[SwarmNode, ...] = ()  # the swarm's nodes
    failures: tuple[TaskFailure, ...] = ()  # the stack's failed tasks the cluster keeps
    runs: tuple[TaskRun, ...] = ()  # the stack's tasks that run now


@dataclass(frozen=True, slots=True)
class SwarmNode:
    """A node of the swarm as ``docker node ls`` shows it."""

    name: str  # its host name
    availability: str = "active"  # active | pause | drain: what a person set
    state: str = "ready"  # ready | down | unknown | disconnected


@dataclass(frozen=True, slots=True)
class TaskFailure:
    """A task of the stack that failed on its node (Swarm's ``failed`` or ``rejected``)."""

    service: str  # its compose service
    slot: int  # its replicated service's slot; 0: a global service's
    task: str  # the task's id
    node: str  # the node's host name
    exit_code: int  # -1: it never ran a container (rejected)
    error: str  # Swarm's ``Status.Err``
    at: float  # epoch s it failed


@dataclass(frozen=True, slots=True)
class TaskRun:
    """A task of the stack that runs now, on its node, since when (epoch s)."""

    service: str
    node: str
    since: float


@dataclass(frozen=True, slots=True)
class SwarmPause:
    """A swarm service whose update Swarm itself paused (``UpdateStatus.State`` paused:
    tasks of the new spec failed and its ``update_config.failure_action`` is pause; or
    rollback_paused: a rollback that failed) and what the update changed, as named. Also
    one Swarm rolled back (rollback_completed): then ``image`` is what it runs again and
    ``previous`` the change rolled back (a rollback swaps the two specs). Also an update
    Swarm completed that the controller judged bad after (``judged``: ``swarmverdict``)."""

    name: str  # the swarm service (``<stack>_<service>``)
    # "paused", "rollback_paused" or "rollback_completed" (a stack-scope rollback's other
    # services: "updating" or "completed", and then the message is ``because``'s; one
    # the controller judged: "completed")
    state: str
    message: str  # Swarm's ``UpdateStatus.Message`` (``because``'s; the controller's verdict)
    image: str  # the image its spec asks for (the change)
    previous: str  # the image its ``PreviousSpec`` asked for ("" when it has none)
    # ``rollback: {scope: stack}``: the service (compose name) whose paused update makes
    # this one's bad, as the same operation updated both ("": its own update was paused)
    because: str = ""
    # the swarm services that operation updated, in rollback order (dependencies first);
    # empty with ``scope: service``
    operation: tuple[str, ...] = ()
    # the controller judged the update bad after Swarm completed it (``message``: why);
    # of one swept with such a one: ``because``'s was
    judged: bool = False
    # the update changed nothing of its tasks but the counter a ``--force`` moves: a
    # restart Swarm could not carry out, not a change (``SwarmUpdate.forced``)
    forced: bool = False
    # one judged after Swarm reset the update's record (a deploy or a scale since that
    # replaced none of its tasks): its ``PreviousSpec`` is no longer the spec before the
    # change, so ``docker service rollback`` would not revert it
    reset: bool = False

    @property
    def command(self) -> str:
        """What a person runs to revert it."""
        return f"docker service rollback {self.name}"


@dataclass(frozen=True, slots=True)
class SwarmUpdate:
    """The last update Swarm made of a stack's service that keeps a ``PreviousSpec``:
    which operation changed it (``started``) and what a rollback reverts."""

    name: str  # the swarm service (``<stack>_<service>``)
    state: str  # ``UpdateStatus.State``: updating, completed, paused, rollback_started ...
    started: str  # ``UpdateStatus.StartedAt`` (an engine time stamp)
    image: str  # the image its spec asks for
    previous: str  # the image its ``PreviousSpec`` asked for
    completed: str = ""  # ``UpdateStatus.CompletedAt`` ("" while it runs, or unknown)
    # the update changed nothing of its tasks but ``ForceUpdate``: a ``--force`` (a
    # restart of every task, the controller's or a person's), no change to judge
    forced: bool = False


@dataclass(frozen=True, slots=True)
class ObservedState:
    project: str
    observed_at: float
    containers: tuple[ContainerSnapshot, ...]
    probes: Mapping[str, ProbeView] = field(default_factory=dict)  # by service
    config_hashes: Mapping[str, str] = field(default_factory=dict)  # the compose model's
    began_at: float = 0.0  # epoch s the reads began (0: not said; then ``observed_at``)
    stack: StackView | None = None  # on a swarm: the stack's services; None on one engine

    @property
    def read_at(self) -> float:
        """Epoch s the engine's reads began: an event read after it may say more than this
        observation shows."""
        return self.began_at or self.observed_at

    def of(self, service: str) -> tuple[ContainerSnapshot, ...]:
        """The service's containers, `docker compose run` one-offs excluded."""
        return tuple(c for c in self.containers if c.service == service and not c.oneoff)


@dataclass(frozen=True, slots=True)
class ContainerUsage:
    """What the engine's stats said of one running container at one moment."""

    container: str  # id
    memory: int  # working set, bytes: usage less the inactive page cache (as the kubelet)
    memory_limit: int  # bytes: its limit, or the host's memory when it has none
    memory_limited: bool  # False: ``memory_limit`` is the host's memory
    pids: int  # processes and threads
    pids_limit: int  # 0: no pids limit


@dataclass(frozen=True, slots=True)
class VolumeUsage:
    """A volume of the project as the engine's disk usage reports it."""

    name: str  # the compose name (``pgdata``), not the engine's (``project_pgdata``)
    size: int  # bytes in it


@dataclass(frozen=True, slots=True)
class DiskUsage:
    """The engine's disk usage of the project: writable layers and volumes."""

    writable: Mapping[str, int]  # container id -> bytes of its writable layer
    volumes: tuple[VolumeUsage, ...] = ()


@dataclass(frozen=True, slots=True)
class LogLine:
    """One cleaned line of one container's log, with the engine's timestamp."""

    service: str
    container: str  # container name
    ts_ns: int  # engine timestamp, nanoseconds since the epoch
    text: str


@dataclass(frozen=True, slots=True)
class LogBlock:
    """Consecutive lines of one container's log in one buffer: what the log pipeline moves.

    A busy log is read hundreds of lines at a time; one object per line cost more than
    matching them, so lines travel together and only the few a pattern hits become text.
    """

    service: str
    container: str  # container name
    text: bytes  # the lines, cleaned, valid UTF-8, each ended by "\n"
    count: int  # how many lines
    stamp: Callable[[int], int]  # engine timestamp (ns) of line i, worked out when asked

    def lines(self) -> list[LogLine]:
        """The block as single lines (for tests and the line-by-line reference path)."""
        texts = self.text.decode("utf-8").split("\n")[: self.count]
        stamp = self.stamp
        return [LogLine(self.service, self.container, stamp(i), t) for i, t in enumerate(texts)]


@dataclass(frozen=True, slots=True)
class Sighting:
    """A log record that matched a pattern or looked like an error: each one, before any
    threshold, for learning what comes before incidents."""

    service: str
    container: str  # container name
    key: str  # the pattern id, or ``unclassified:<template id>``
    pattern_id: str  # the pattern id, or ``unclassified``
    text: str  # the pattern's title, or the mined template
    line: str  # the record's telling line, redacted and bounded
    ts: float  # epoch seconds of the record


@dataclass(frozen=True, slots=True)
class Finding:
    """A log record that matched a pattern (or recurred as an unknown error template)."""

    service: str
    container: str
    ts: float  # epoch seconds of the record's first line
    kind: FindingKind
    pattern_id: str
    category: Category
    severity: Severity
    title: str
    fingerprint: str
    evidence: str  # the record, redacted and bounded
    line: str = ""  # the most telling line of the record, redacted and bounded
    hint: str = ""
    suggested: str = "none"  # the remediation its pattern suggests
    captures: Mapping[str, str] = field(default_factory=dict)
    source: IssueSource = IssueSource.LOG  # LOG, or ENGINE (restart counts)
    # connection and database errors: the hosts and ports the line names (``Endpoint``
    # texts), the evidence of which dependency it is about
    named: tuple[str, ...] = ()
    # connection and database errors logged while a dependency the error is about was
    # starting (``causes.while_starting``): expected, not the service's own fault
    while_starting: tuple[str, ...] = ()
    # a server's "the peer went away" logged when these clients of it (services that
    # depend on it) stopped, died or restarted, each with when (epoch seconds;
    # ``causes.clients_left``): expected, not the server's own fault
    clients_left: Mapping[str, float] = field(default_factory=dict)


# --- differences and issues -------------------------------------------------------------


def predicted_pattern(resource: str) -> str:
    """The pattern id a ``predicted`` issue of ``resource`` carries, which a runbook's
    ``when.pattern`` names: ``predicted-memory``, ``predicted-pids``,
    ``predicted-writable-layer``, ``predicted-volume`` (any volume)."""
    return "predicted-" + resource.split("/", 1)[0]


PREDICTED_PATTERNS = frozenset(predicted_pattern(str(kind)) for kind in ResourceKind)
PRECURSOR_PATTERN = "precursor"  # the pattern id of a learned precursor's warning


@dataclass(frozen=True, slots=True)
class Drift:
    """One difference between declaration and observation, found by `reconcile.diff`."""

    service: str
    kind: DriftKind
    severity: Severity
    category: Category
    title: str
    detail: str = ""
    containers: tuple[str, ...] = ()
    blocking: bool = True  # counts against convergence (False for optional services)
    # epoch seconds the fault began by the engine's own record (the container's death,
    # the first failed check of its streak); None when the engine has no such time
    since: float | None = None

    @property
    def fingerprint(self) -> str:
        return f"drift:{self.service}:{_INCIDENT.get(self.kind, self.kind)}"


# kinds that are one incident with another: a healthcheck that begins to fail, the
# engine's verdict and a healthcheck the engine stopped running; a container that exited
# and the engine restarting it in a loop
_INCIDENT = {
    DriftKind.FAILING_HEALTHCHECK: DriftKind.UNHEALTHY,
    DriftKind.HEALTHCHECK_STALLED: DriftKind.UNHEALTHY,
    DriftKind.RESTARTING: DriftKind.EXITED,
}


@dataclass(frozen=True, slots=True)
class Prediction:
    """A forecast within one of the service's horizons, as the issue store records it."""

    service: str
    forecast: Forecast
    title: str
    detail: str
    severity: Severity
    suggested: str = "none"  # "restart": the service declares a restart before exhaustion

    @property
    def fingerprint(self) -> str:
        return f"predict:{self.service}:{self.forecast.resource}"

    @property
    def pattern_id(self) -> str:
        return predicted_pattern(self.forecast.resource)


def issue_id(fingerprint: str) -> str:
    """A short stable id for a fingerprint (the same fault keeps its id across runs)."""
    return hashlib.sha256(fingerprint.encode()).hexdigest()[:12]


class Attempt(BaseModel):
    """One remediation step taken (or planned, in dry run) for an issue."""

    action: Action
    attempt: int  # 1-based number of this step among the issue's attempts
    started_at: datetime
    acted_at: datetime | None = None  # when its command returned (then it is proven)
    finished_at: datetime | None = None
    outcome: Outcome | None = None
    detail: str = ""


class Fit(BaseModel):
    """How a trend was fitted: robust (Theil-Sen) on an upper envelope of the samples."""

    method: str  # what the line was fitted to ("30 s maxima", "peaks of 6 cycles")
    points: int  # envelope points the line was fitted to
    span_seconds: float  # from the first to the last of them
    slope_per_second: float  # the median of the pairwise slopes (unit per second)
    level: float  # the line's value now
    tau: float  # Kendall's tau of the points: 1 when every later point is higher
    z: float  # the Mann-Kendall statistic: above 2.33 a rise at the 1 % level
    spread: float  # the median absolute distance of the points from the line


class ResourceTrend(BaseModel):
    """One resource of one service as the newest round of samples left it: the document's
    ``trends``, the report's resources, the metrics' usage and time to exhaustion."""

    service: str
    resource: str
    container: str  # the container whose trend is the worst (soonest at its limit)
    unit: str
    usage: float
    limit: float  # 0: none known
    limit_source: str
    slope_per_second: float | None = None  # None: too little history for a trend
    seconds_left: float | None = None  # None: not rising toward a limit
    trend: str = ""  # in words: "rising", "not rising", why there is none yet
    peak: float = 0.0  # the highest the service's resource reached
    suggested_limit: int | None = None  # memory: the VPA formula on the peak


class Forecast(BaseModel):
    """A resource's trend projected to its limit: what a ``predicted`` issue carries."""

    resource: str  # ``memory``, ``pids``, ``writable-layer``, ``volume/NAME``
    container: str  # the container (name) whose trend it is
    unit: str  # ``bytes`` or ``pids``
    usage: float  # the latest sample
    limit: float
    limit_source: str  # "its limit", "the host's memory", "its pids limit", "declared"
    consequence: str  # what happens at the limit ("OOM kill", "no space left on device")
    seconds_left: float  # projected seconds until the limit, at this rate
    horizon: str  # ``warning`` or ``critical``: which of the service's horizons it is within
    fit: Fit
    samples: list[tuple[float, float]] = Field(default_factory=list)  # (epoch s, value)


class Issue(BaseModel):
    """A deduplicated fault: every sighting of the same fingerprint updates one issue. Its
    fields are the issues file's (docs/issues-file.md), which users read."""

    id: str
    fingerprint: str
    env: str
    service: str
    source: IssueSource = IssueSource.DRIFT
    kind: IssueKind
    category: Category
    severity: Severity
    state: IssueState = IssueState.OPEN
    blocking: bool = True
    title: str
    detail: str = ""
    count: int = 1  # sightings: passes that saw it, or log lines that matched
    occurrences: int = 1  # times it (re)opened
    first_seen: datetime
    last_seen: datetime
    opened_at: datetime  # when it last (re)opened; its attempt budget counts from here
    resolved_at: datetime | None = None
    resolution: str = ""
    pattern_id: str | None = None  # log issues: the pattern that matched
    container: str = ""  # log issues: the container whose log matched last
    escalated_from: Severity | None = None  # set when repetition raised the severity
    hint: str = ""  # log issues: what a human should look at
    suggested: str = ""  # log issues: the remediation the pattern suggests
    samples: list[str] = Field(default_factory=list)  # log issues: redacted evidence
    captures: dict[str, str] = Field(default_factory=dict)  # log issues: named groups
    caused_by: list[str] = Field(default_factory=list)  # ids of upstream issues behind it
    # why each of ``caused_by`` is linked: upstream issue id -> the evidence, in words
    cause_evidence: dict[str, str] = Field(default_factory=dict)
    # log issues (connection, database): the hosts and ports its recent errors name
    named: list[str] = Field(default_factory=list)
    # log issues (connection, database) logged only while these dependencies were
    # starting: low, and resolved once they are ready, unless it is logged after that
    while_starting: list[str] = Field(default_factory=list)
    # log issues (a server's "the peer went away") logged only when these clients of it
    # stopped, died or restarted (when each did): low, and resolved once the grace after
    # that passed without a new line, unless it is logged after that
    clients_left: dict[str, datetime] = Field(default_factory=dict)
    # when this occurrence's fault began by the engine's record (a death, the start of a
    # failing healthcheck streak), when earlier than ``opened_at``; None: ``opened_at``
    fault_since: datetime | None = None
    forecast: Forecast | None = None  # predicted issues: the trend, its fit, the samples
    attempts: list[Attempt] = Field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def began(self) -> datetime:
        """When this occurrence's fault began: the engine's record, else its opening."""
        if self.fault_since is not None and self.fault_since < self.opened_at:
            return self.fault_since
        return self.opened_at

    def failed_attempts(self) -> int:
        """Failed steps since the issue last opened."""
        return sum(
            1
            for a in self.attempts
            if a.outcome in (Outcome.FAILURE, Outcome.ERROR) and a.started_at >= self.opened_at
        )


class StepRecord(BaseModel):
    """A fix step taken: recorded (and saved) before its command runs, then proven.

    A restarted controller resumes the proof instead of forgetting the step:
    ``finished_at`` None means the command was running when the controller stopped (it
    may have worked). ``instances`` are the service's containers (``id@started_at``) when
    the command returned; one of them dying, or starting again, is a new fault that fails
    the step at once. ``until`` is the proof's deadline: the only copy of it.
    """

    action: Action
    label: str  # "restart", "runbook create-missing-database"
    addresses: list[str] = Field(default_factory=list)  # fingerprints the step acts on
    quiet: list[str] = Field(default_factory=list)  # log fingerprints that must stay away
    started_at: datetime
    finished_at: datetime | None = None
    until: datetime  # proven by then, or the step failed
    hold: float = 0.0  # seconds it must stay ready
    instances: list[str] = Field(default_factory=list)
    ready_since: datetime | None = None
    proven_as: str = ""  # what its issues' resolution says when proven ("fixed by <label>")


class Throttle(BaseModel):
    """How fast fix steps may come, Kubernetes' crash-loop numbers: every step counts
    against a budget per window (then a human); the wait before the next step of the same
    fault doubles while the service stays unstable and resets once it has been ready for
    the backoff reset. ``next_step_at`` is the only copy of the next fix time."""

    steps: list[datetime] = Field(default_factory=list)  # starts of fix steps, in the window
    exhausted_at: datetime | None = None  # budget spent: hands off until it recovers
    consecutive: int = 0  # fix steps of ``fault`` since the service was last stable
    fault: str = ""  # the fingerprint the steps are for; another one is a new fault
    last_step_at: datetime | None = None
    next_step_at: datetime | None = None  # the next step of ``fault`` not before then
    ready_since: datetime | None = None  # ready since (passes' view), for the reset


class Ladder(BaseModel):
    """Which rungs of the strategy ladder to try: what fixed a fault last time comes first;
    a rung that failed in this incident is not tried again until every rung was."""

    learned: dict[str, Action] = Field(default_factory=dict)  # fingerprint -> what fixed it
    tried: list[str] = Field(default_factory=list)  # labels of rungs that failed


class CrashPattern(BaseModel):
    """The service's crashes since it was last stable: a fix must outlive them."""

    longest: float = 0.0  # seconds the longest run lasted before it crashed
    count: int = 0  # crashes seen
    runs: list[str] = Field(default_factory=list)  # the runs counted (``id@StartedAt``)
    # (exit code, seconds lived) of the newest crashes: does it fail the same way each time?
    shapes: list[tuple[int, float]] = Field(default_factory=list)


class RunbookRun(BaseModel):
    """A runbook that ran for a cause (its captures): not a step again until the cause is
    seen after it ran."""

    runbook: str
    captures: dict[str, str] = Field(default_factory=dict)
    at: datetime


class Intent(BaseModel):
    """What the controller said it will do next for some of the service's issues (waits
    for a dependency, backs off, runs a step, leaves it to Docker ...): the issues' plan in
    every output is this, for the issues it names, said after they last opened."""

    text: str = ""
    fingerprints: list[str] = Field(default_factory=list)
    waiting_for: list[str] = Field(default_factory=list)
    backing_off: bool = False  # the issues wait for ``Throttle.next_step_at``
    said_at: datetime | None = None


class Activity(BaseModel):
    """What people and the controller's own commands are doing to the service, from the
    engine's events and state (``remediate.activity`` says how each is read)."""

    stopped: str = ""  # "stop" or "pause": a person did that; theirs until a start
    stopping: int | None = None  # a signal a person's kill sent; its death follows
    stopped_at: float | None = None  # epoch s of a person's stop; a restart's start may follow
    stop_began_at: float | None = None  # epoch s a person's stop signal was sent (its fault)
    scaled_down: bool = False  # on a swarm: a person scaled it below its declared replicas
    operation_seen_at: float | None = None  # epoch s a person's operation was first seen
    left_by_us: list[str] = Field(default_factory=list)  # containers our command left half-done
    command_started: float | None = None  # epoch s the controller's newest command began
    command_ended: float | None = None  # ... and ended (None: it runs; assumed when restored)
    # epoch s the newest engine event about it was read: a pass that read the engine before
    # then does not judge it (not saved: it only orders this run's reads and events)
    event_read_at: float | None = Field(default=None, exclude=True)


class ServiceRecord(BaseModel):
    """Everything about fixing one service, in one place: its throttle, its ladder, the
    step being proven, its crash pattern, Docker's loop, the runbooks run, what the
    controller intends, what people do, and which container runs were ever ready.

    Written by ``remediate.records`` alone, saved with the issues under ``remediation``,
    read back at start; the issues' plan, next attempt and proof deadline in the JSON,
    ``/status``, ``controller status`` and the report are derived from it.
    """

    throttle: Throttle = Field(default_factory=Throttle)
    ladder: Ladder = Field(default_factory=Ladder)
    step: StepRecord | None = None  # taken and not yet proven (or failed)
    crashes: CrashPattern = Field(default_factory=CrashPattern)
    docker_loop_from: int | None = None  # Docker's restart count when its loop began
    runbooks: list[RunbookRun] = Field(default_factory=list)
    intent: Intent = Field(default_factory=Intent)
    activity: Activity = Field(default_factory=Activity)
    ready_runs: dict[str, datetime] = Field(default_factory=dict)  # run -> first seen ready


class Identity(BaseModel):
    """What a service runs: the config hash Compose labelled its containers with and the
    image they run. A change is a new one of either."""

    model_config = ConfigDict(frozen=True)

    config_hash: str = ""
    image_id: str = ""

    def __str__(self) -> str:
        image = self.image_id.removeprefix("sha256:")[:12] or "?"
        return f"config {self.config_hash[:12] or '?'}, image {image}"


class Snapshot(BaseModel):
    """What made a service good, kept to roll back to: taken once it stayed ready for its
    hold. The rendered config (the compose file a rollback runs) and the env files'
    contents are in ``file``'s directory (they hold secrets: never in the issues file);
    this record names them and their digests."""

    number: int  # the n of its tag, counting up per service
    identity: Identity  # what ran
    image: str = ""  # the image as the service named it
    repo_digest: str = ""  # ``repo@sha256:...`` where the image has one
    tag: str  # compose-controller/lastgood/<project>/<service>:<n>: keeps the image
    file: str  # the compose file that rolls the service back to it
    config_sha256: str = ""  # of the rendered service config
    env_files: dict[str, str] = Field(default_factory=dict)  # path -> sha256 of its contents
    reverts_to: Identity  # what the service runs after a rollback to it
    taken_at: datetime


class Change(BaseModel):
    """A new config hash or image on a service (a person's ``compose up``, the controller's
    own recreate or rebuild), and its verdict."""

    id: str
    before: Identity
    after: Identity
    by: str  # "a person", "the controller (rebuild)"
    operation: str  # changes of one operation share it (``scope: stack`` reverts them together)
    seen_at: datetime
    started_at: datetime | None = None  # the earliest start of its containers
    restarts: dict[str, int] = Field(default_factory=dict)  # Docker's count per container then
    ready_since: datetime | None = None  # every replica ready since then (its window runs)
    missing_image: str = ""  # the declared image, which does not exist: never applied
    verdict: ChangeVerdict = ChangeVerdict.PENDING
    reason: str = ""  # why it is bad, or how it proved good
    judged_at: datetime | None = None


class RolledBack(BaseModel):
    """The service runs a last-good snapshot, not what its compose files declare."""

    change: str  # the change that was bad
    bad: Identity  # what it was
    snapshot: int  # the snapshot it runs
    runs: Identity  # what it runs now
    because: str  # why the change was bad
    declared_hash: str = ""  # the config hash the compose files asked for then
    held: bool = False  # the bad change never ran (its image is missing): nothing reverted
    at: datetime


class RollbackRecord(BaseModel):
    """Everything about rolling one service back, in one place: what it runs, its last-good
    snapshots, the newest change and its verdict, the changes rolled back once (never
    again), and whether it runs a snapshot now. Written by ``remediate.lastgood`` alone,
    saved with the issues under ``rollback``, read back at start."""

    running: Identity | None = None  # what a pass last saw it run (every replica the same)
    snapshots: list[Snapshot] = Field(default_factory=list)  # oldest first, at most ``keep``
    numbered: int = 0  # the newest snapshot number given
    change: Change | None = None  # the newest change, judged or under watch
    reverting: str = ""  # the change whose rollback step is under way
    reverted: list[str] = Field(default_factory=list)  # bad identities rolled back once
    rolled_back: RolledBack | None = None


class ServiceCondition(StrEnum):
    READY = "Ready"  # as declared, health settled
    PROGRESSING = "Progressing"  # no drift, but health still starting
    DEGRADED = "Degraded"  # drifted
    REMEDIATING = "Remediating"  # a fix is running


class ServiceStatus(BaseModel):
    """The observed condition of one service, as the reports show it."""

    name: str
    condition: ServiceCondition
    required: bool
    replicas: int
    containers: int
    running: int
    healthy: int | None  # None when health is not checked
    restarts: int
    nodes: list[str] = Field(default_factory=list)  # on a swarm: the nodes its tasks run on
    # not in the files: which container runs these are (``id@StartedAt#RestartCount``
    # of each; a restart changes it), and the earliest they can have been ready (the
    # newest start plus the time it may take to become ready): evidence of how long
    # the service has been ready
    runs: str = Field(default="", exclude=True)
    ready_from: datetime | None = Field(default=None, exclude=True)
