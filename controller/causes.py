"""Root causes on evidence: which upstream issues explain an issue. Pure, no I/O.

An issue linked "caused by" an upstream issue is not fixed on its own (the store's
``actionable``, the reconciler's ``_work_of``): the dependency is fixed first. A wrong
link stops a fix, so a link needs evidence, never the dependency graph alone. The graph
only bounds the candidates: the services a service depends on, directly or not
(``upstream``), with an active blocking drift; a link never crosses it, so two issues can
never wait on each other.

**A connection or database error** (a log issue) is linked to a dependency's issues when

1. it *names* that dependency (``Issue.named``, read from the error line by
   ``detect.names``): its service name, ``container_name``, hostname, a network alias,
   its alias in a ``links`` entry, compose's ``<project>-<service>-<n>`` container name,
   a declared address (``addresses``), or a port it listens on (``ports``, ``expose``,
   its healthcheck's and probes' ports, a declared ``:PORT``). A host name decides alone
   (``db:5432`` is about ``db`` whatever the port); a loopback or Docker host name
   (``localhost``, ``127.0.0.1``, ``host.docker.internal``) or an IP address is decided by
   its port, since under host networking every service listens on loopback. An error
   that names anything specific is linked to the dependencies it names and to no other:
   ``connection refused to db:5432``, where no service is ``db`` and no dependency's
   port is 5432, stays the dependent's own issue whatever else is broken;
2. or it names nothing specific (no host, no port: ``Connection refused``, a bare
   ``localhost``) and the dependency's fault began before it: the upstream issue's
   fault (``Issue.began``: the engine's record of the death or the failing streak, else
   the issue's opening) at or before the log issue's current occurrence began.

**A drift** (its exit, its unhealthiness, Docker's restarts of it) is linked when

1. its crash is explained by log errors of its own (``remediate.blame.explains``, passed
   in as ``explained``: the same container run, shortly before it died, a run that never
   became ready): then those errors decide. Connection and database errors link it to
   whatever they are linked to by the rule above; an error of any other kind (config,
   import, auth ...) is its own fault and it is not linked;
2. otherwise (no error explains it, or it is unhealthy, not dead) when the dependency's
   fault began at or before its own: a dependent that broke first broke on its own.

**A dependency still starting** explains a connection or database error without an
issue of its own (``while_starting``): Swarm starts a stack's services together
(``depends_on`` is not honoured), and so does Compose for ``depends_on`` without a
condition, so a dependent's first connections fail while the database comes up (and the
database itself says it is starting up). An error logged while a dependency it names (or,
naming nothing specific, any dependency, or the service itself) was not yet ready, or
ready for less than ``STARTING_GRACE`` seconds, and that has no active drift and no
restart by Docker's restart policy (a dependency that crashed or turned unhealthy is an
issue, and links as above; one the engine brought back at once was a crash, not a start;
one no pass reported yet is not known to be starting; a critical error, a database
that does not exist, is never a start's: ``logflow.expected``), is
expected: the store opens it low, resolves it once the dependencies have been ready for
the grace without a new line, and raises it to its own severity if it is logged after.

**A client leaving** explains the mirror case (``clients_left``): a server's "the peer
went away" (connection reset by peer, broken pipe, PostgreSQL's "could not receive data
from client"; a pattern marked ``client_gone``) logged within ``STARTING_GRACE`` of a
service that depends on it, directly or not, stopping, dying or starting again (its
containers' end and start times, by the engine's record) is expected the same way: its
client's death, a restart by the controller or a person, not the server's fault. A reset
with no client leaving near it keeps its pattern's severity. "Connection refused" and a
name that does not resolve are never a server's view of a client leaving.

Each link carries its evidence in words ("names db:5432, a name of db (network alias)",
"names 127.0.0.1:18432, port 18432 of db (its healthcheck)", "names no host or port, and
db's fault began 3 s before it", "db's fault began 2 s before it"), which the
issue keeps in ``cause_evidence`` for the JSON, the report and ``controller status``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from controller.model import (
    LINKED_CATEGORIES,
    Category,
    DesiredState,
    Endpoint,
    Issue,
    IssueSource,
    ObservedState,
    engine_time,
)

Links = dict[str, dict[str, str]]  # fingerprint -> upstream issue id -> evidence


# seconds after a dependency became ready during which a dependent's connection error is
# still its start's: a client retries after a pause, and a pass sees readiness a moment late
STARTING_GRACE = 10.0


def while_starting(
    desired: DesiredState,
    service: str,
    category: Category,
    named: Sequence[str],
    ready_since: Mapping[str, float | None],
    at: float,
) -> list[str]:
    """The services whose start explains a connection or database error ``service``
    logged at ``at`` (epoch seconds): its dependencies, nearest first; only when none
    does, itself (a database's own "the database system is starting up"). ``ready_since``:
    the services without an active drift, each with when it became ready (None: not yet)."""
    if category not in LINKED_CATEGORIES or service not in desired.services:
        return []
    endpoints = [e for text in named if (e := Endpoint.parse(text)) is not None and e.specific]

    def explains(name: str) -> bool:
        if name not in ready_since:
            return False  # a drift of its own: the ordinary causes link to it
        since = ready_since[name]
        if since is not None and since <= at - STARTING_GRACE:
            return False  # ready for longer than the grace: not starting
        return not endpoints or any(naming(desired, name, e) is not None for e in endpoints)

    # a dependency starting explains it; the service's own start only when none does (a
    # client that just started and cannot reach its starting database waits on the database)
    deps = [dep for dep in upstream(desired, service) if explains(dep)]
    return deps or ([service] if explains(service) else [])


def clients_left(
    desired: DesiredState,
    service: str,
    category: Category,
    left: Mapping[str, Sequence[float]],
    at: float,
) -> dict[str, float]:
    """The clients whose leaving explains a "the peer went away" error ``service`` (a
    server) logged at ``at`` (epoch seconds): the services that depend on it, directly or
    not, that stopped, died or started again within ``STARTING_GRACE`` of the line, each
    with the moment nearest to it. ``left``: each service's moments of that kind, by the
    engine's record (``departures``). A client that crashed for real leaves the same way:
    its own issue carries that fault, not the server's line."""
    if category not in LINKED_CATEGORIES or service not in desired.services:
        return {}
    found: dict[str, float] = {}
    for client in downstream(desired, service):
        near = [t for t in left.get(client, ()) if abs(t - at) <= STARTING_GRACE]
        if near:
            found[client] = min(near, key=lambda t: abs(t - at))
    return found


def departures(observed: ObservedState) -> dict[str, list[float]]:
    """Each service's moments of a run ending or a new one starting (epoch seconds), by
    the engine's record of its containers: what tells that a client of a server left."""
    found: dict[str, list[float]] = {}
    for container in observed.containers:
        for stamp in (container.finished_at, container.started_at):
            if stamp and (moment := engine_time(stamp)) is not None:
                found.setdefault(container.service, []).append(moment.timestamp())
    return found


def downstream(desired: DesiredState, service: str) -> list[str]:
    """Every service that depends on ``service``, directly or not, by name: its clients."""
    return [
        other
        for other in sorted(desired.services)
        if other != service and service in upstream(desired, other)
    ]


def upstream(desired: DesiredState, service: str) -> list[str]:
    """Every service ``service`` depends on, directly or not, nearest first."""
    seen: list[str] = []
    frontier = list(desired.services[service].depends_on) if service in desired.services else []
    while frontier:
        dep = frontier.pop(0)
        if dep in seen or dep == service or dep not in desired.services:
            continue
        seen.append(dep)
        frontier.extend(desired.services[dep].depends_on)
    return seen


def root_causes(
    desired: DesiredState,
    issues: Sequence[Issue],
    explained: Mapping[str, Sequence[str]] | None = None,
) -> Links:
    """fingerprint -> {id of an upstream issue that explains it: the evidence}.

    ``explained`` maps a drift's fingerprint to the fingerprints of the log issues that
    explain its crash (``remediate.blame.explained_crashes``); none: no crash is explained.
    """
    explained = explained or {}
    active = [i for i in issues if i.active]
    broken: dict[str, list[Issue]] = {}
    for issue in active:
        if issue.source is IssueSource.DRIFT and issue.blocking:
            broken.setdefault(issue.service, []).append(issue)
    by_fingerprint = {i.fingerprint: i for i in active}
    links: Links = {}
    for issue in active:
        candidates = [
            (dep, u) for dep in upstream(desired, issue.service) for u in broken.get(dep, [])
        ]
        if not candidates:
            continue
        if issue.source is IssueSource.LOG:
            if issue.category not in LINKED_CATEGORIES:
                continue
            causes = _error_causes(desired, issue, candidates)
        else:
            errors = [
                by_fingerprint[fp]
                for fp in explained.get(issue.fingerprint, ())
                if fp in by_fingerprint
            ]
            causes = _drift_causes(desired, issue, candidates, errors)
        if causes:
            links[issue.fingerprint] = causes
    return links


def _error_causes(
    desired: DesiredState, issue: Issue, candidates: Sequence[tuple[str, Issue]]
) -> dict[str, str]:
    """A connection or database error: what it names, else what broke before it."""
    named = [e for text in issue.named if (e := Endpoint.parse(text)) is not None and e.specific]
    if not named:
        return _earlier(issue, candidates, "names no host or port, and ")
    causes: dict[str, str] = {}
    for service, cause in candidates:
        why = next((w for e in named if (w := naming(desired, service, e)) is not None), None)
        if why is not None:
            causes[cause.id] = why
    return causes


def _drift_causes(
    desired: DesiredState,
    issue: Issue,
    candidates: Sequence[tuple[str, Issue]],
    errors: Sequence[Issue],
) -> dict[str, str]:
    """A drift: the errors that explain its crash decide; without any, what broke first."""
    if not errors:
        return _earlier(issue, candidates, "")
    causes: dict[str, str] = {}
    for error in errors:
        if error.category not in LINKED_CATEGORIES:
            return {}  # a config, import or auth error of its own explains it
        for cause, why in _error_causes(desired, error, candidates).items():
            causes.setdefault(cause, f"its crash is explained by its error {error.id}, which {why}")
    return causes


def _earlier(issue: Issue, candidates: Sequence[tuple[str, Issue]], prefix: str) -> dict[str, str]:
    """The candidates whose fault began at or before ``issue``'s."""
    began = issue.began
    causes: dict[str, str] = {}
    for service, cause in candidates:
        ahead = (began - cause.began).total_seconds()
        if ahead >= 0:
            when = f"{ahead:.0f} s before it" if ahead >= 1 else "at the same moment"
            causes[cause.id] = f"{prefix}{service}'s fault began {when}"
    return causes


def naming(desired: DesiredState, service: str, endpoint: Endpoint) -> str | None:
    """How ``endpoint`` names ``service``, in words, or None when it does not.

    A host name decides by itself; a local host or an IP address by its port (an IP a
    declared address gives decides by itself too)."""
    addresses = desired.services[service].addresses
    host = endpoint.host
    if host and not endpoint.local:
        for address in addresses:
            if address.endpoint.host == host and (
                not endpoint.literal or address.endpoint.port in (0, endpoint.port)
            ):
                return f"names {endpoint}, a name of {service} ({address.source})"
        if not endpoint.literal:
            if _compose_container(desired.project, service, host):
                return f"names {endpoint}, a name of {service} (compose container name)"
            return None
    if endpoint.port:
        for address in addresses:
            if address.endpoint.port == endpoint.port:
                return f"names {endpoint}, port {endpoint.port} of {service} ({address.source})"
    return None


def _compose_container(project: str, service: str, host: str) -> bool:
    """``host`` is a container name Compose gives ``service``: ``<project>-<service>-<n>``
    (``_`` for the separators before Compose v2)."""
    pattern = rf"{re.escape(project.lower())}[-_]{re.escape(service.lower())}[-_][0-9]+"
    return re.fullmatch(pattern, host) is not None
