"""A swarm stack read through a manager's API: ``EngineGateway``'s read side for Swarm.

``SwarmEngine`` is a ``DockerEngine`` on a swarm manager's socket whose "containers" are
the stack's tasks (the stack is the gateway's ``project``: its services are labelled
``com.docker.stack.namespace=<project>``). It makes no call of the docker SDK of its own:
it hands its calls to ``DockerEngine._call`` (engine.py stays the one importer of
``docker``). What a task becomes is pure and tested alone (``observe.swarmtasks``).

- **Listing**: the stack's services, their tasks (one call, by label) and the nodes' host
  names; each slot's newest task is its container. The restart count and the start time
  of a task that ended are carried from one listing to the next (the cluster keeps only
  the last few tasks of a slot).
- **Events**: a manager's own events are its own engine's containers only; swarm-wide come
  the service and node events, which pass through as hints, and Docker 20.10 has no task
  events: a poll of the stack's tasks every ``poll`` seconds (one call) turns each task's
  change into the container event it is most like (``swarmtasks.task_events``). The
  manager's own engine's container events of the stack's tasks come too: a death there is
  seen at once (the task's state follows about 0.1 s later), an OOM kill and a
  healthcheck's verdict only there; the listing shows them (``swarmtasks.seen_on_node``).
  So do the events of every other node whose engine was given (``node_engines``), each
  followed on its own: a node's engine that does not answer, or whose stream breaks, is
  tried again every ``NODE_RETRY_SECONDS`` and costs nothing but the speed of what it
  would have said first (its tasks' states still come through the manager).
- **Logs**: the manager serves every node's task logs, by service (``service_logs``, with
  the details that name each line's task); a task's lines are picked from its service's.
  A followed service log does not end when one task dies: a watch of the task ends the
  stream, and a last read to the end of the log (not followed) takes what was still on
  its way.
- **Acting on the stack** (``StackControl``, what ``remediate.swarmsteps`` asks): a forced
  update of a service (``docker service update --force``: Swarm replaces its tasks, one
  at a time as its update config says) and a scale of a replicated one. An exec in a
  task's container, and the stats of one, go to the engine of the task's node: the
  manager's own for its own tasks, a node's engine where one was given
  (``node_engines``, by host name).
- **What a swarm does not do through its manager** raises ``EngineError`` naming the
  limitation: disk usage (each node has its own layers and volumes), a restart of one
  task (Swarm replaces tasks; the remediation updates the service), unpause, and images
  (each node has its own).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from loguru import logger

from controller.model import (
    ContainerSnapshot,
    ContainerUsage,
    DiskUsage,
    StackView,
    SwarmPause,
    SwarmUpdate,
    engine_ns,
)
from controller.observe.engine import DockerEngine, _Lines, _Stream
from controller.observe.gateway import (
    ContainerGone,
    ContainerSummary,
    EngineError,
    EngineIdentity,
    EngineUnavailable,
    EventStream,
    ImageInfo,
    LogStream,
    NodeUnreachable,
)
from controller.observe.logwire import WireLog
from controller.observe.swarmnodes import swarm_nodes, task_failures
from controller.observe.swarmtasks import (
    PRE_RUN,
    STACK_LABEL,
    TASK_LABEL,
    Made,
    Sighting,
    SlotCount,
    compose_name,
    last_update,
    local_hint,
    needs_health,
    paused_update,
    replicas_of,
    rolled_back_update,
    service_event,
    sighted,
    slot_snapshots,
    state_of,
    status_of,
    task_events,
)

# what a manager says when it cannot speak for the swarm (Docker 20.10 to 28)
NO_CONTROL = (
    "does not have a leader",
    "This node is not a swarm manager",
    "This node is not part of a swarm",
)
T = TypeVar("T")
POLL_SECONDS = 0.5  # how often the event stream polls the stack's tasks
WATCH_SECONDS = 1.0  # how often a followed task's log checks that the task still runs
NODE_RETRY_SECONDS = 5.0  # a node's engine whose events could not be read: tried again


# reading a check's result right after its exec died: this often, at most this many times
HEALTH_WAIT = 0.02
HEALTH_READS = 10
CLOCK_SLACK = 0.05  # seconds: the event's time and the health log's, both the engine's


def _unsupported(what: str, why: str) -> EngineError:
    return EngineError(f"{what}: not available on a swarm through its manager ({why})")


class SwarmEngine(DockerEngine):
    """``EngineGateway`` over a swarm manager: a stack's tasks as containers (read only)."""

    def __init__(
        self,
        base_url: str | None = None,
        timeout: float = 30.0,
        poll: float = POLL_SECONDS,
        node_engines: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(base_url, timeout)
        self._poll = poll
        self._lock = threading.Lock()
        self._counts: dict[str, SlotCount] = {}
        self._starts: dict[str, str] = {}
        self._node_urls = dict(node_engines or {})  # a node's host name -> its DOCKER_HOST
        self._node_engines: dict[str, DockerEngine] = {}
        self._made = Made()  # what our own updates and scales asked swarm for
        self._sightings: dict[str, Sighting] = {}  # by task id: what its node's engine said
        self._own = ""  # the manager's node ID, once read

    def _call(self, what: str, fn: Callable[[Any], T]) -> T:
        """As ``DockerEngine._call``; a manager that answers but cannot speak for the
        swarm (no leader: too few managers online; demoted; left the swarm) is an engine
        that is not there: nothing it says of the stack can be trusted until it can."""
        try:
            return super()._call(what, fn)
        except EngineUnavailable:
            raise
        except EngineError as exc:
            if any(mark in str(exc) for mark in NO_CONTROL):
                raise EngineUnavailable(f"{exc} (the swarm cannot be read here)") from exc
            raise

    # --- reading the stack ---------------------------------------------------------------

    def _stack(self, what: str, project: str) -> list[dict[str, Any]]:
        """The stack's services or tasks (``what``), by the stack's label."""
        filters = {"label": f"{STACK_LABEL}={project}"}
        found: list[dict[str, Any]] = self._call(
            f"list {what}",
            lambda api: getattr(api, what)(filters=filters),
        )
        return found

    def _services(self, project: str) -> list[dict[str, Any]]:
        return self._stack("services", project)

    def _tasks(self, project: str) -> list[dict[str, Any]]:
        return self._stack("tasks", project)

    def _node_list(self) -> list[dict[str, Any]]:
        nodes: list[dict[str, Any]] = self._call("list nodes", lambda api: api.nodes())
        return nodes

    def _nodes(self) -> dict[str, str]:
        return {
            str(n.get("ID")): str((n.get("Description") or {}).get("Hostname") or n.get("ID"))
            for n in self._node_list()
        }

    def _listing(self, project: str, only: str | None = None) -> list[ContainerSnapshot]:
        services = self._services(project)
        if only is not None:
            services = [s for s in services if s.get("ID") == only]
            tasks: list[dict[str, Any]] = self._call(
                "list tasks",
                lambda api: api.tasks(filters={"service": only}),
            )
        else:
            tasks = self._tasks(project)
        nodes = self._nodes()
        with self._lock:
            listing = slot_snapshots(
                project, services, tasks, nodes, self._counts, self._starts, self._sightings
            )
            if only is None:
                self._counts, self._starts = listing.counts, listing.starts
                listed = {str(t.get("ID")) for t in tasks}
                self._sightings = {k: v for k, v in self._sightings.items() if k in listed}
            else:
                self._counts.update(listing.counts)
                self._starts.update(listing.starts)
        return listing.snapshots

    def identity(self) -> EngineIdentity:
        found = super().identity()
        info: dict[str, Any] = self._call("info", lambda api: api.info())
        swarm = info.get("Swarm") or {}
        if not swarm.get("ControlAvailable"):
            state = swarm.get("LocalNodeState") or "inactive"
            raise EngineError(f"{found.host} is not a swarm manager (swarm state {state})")
        return found

    def stack_view(self, project: str, deploy: str) -> StackView:
        """What the manager keeps of the stack beside its tasks' snapshots (three calls):
        each service's replicas as its spec says (what Swarm keeps, which a person may
        have scaled, and what is deployed at all), the swarm's nodes, and the stack's
        tasks that failed and that run, each on its node (``swarmnodes``: what a node's
        drain report is judged on). ``deploy``: the command that deploys the stack."""
        services = self._services(project)
        listed = self._node_list()
        nodes = swarm_nodes(listed)
        hosts = {str(n.get("ID")): node.name for n, node in zip(listed, nodes, strict=True)}
        failures, runs = task_failures(project, services, self._tasks(project), hosts)
        replicas = replicas_of(project, services)
        return StackView(project, replicas, deploy, nodes, failures, runs)

    def list_containers(self, project: str) -> list[ContainerSnapshot]:
        return self._listing(project)

    def list_summaries(self, project: str) -> list[ContainerSummary]:
        """Each task's summary; its marks change with Swarm's update of its service too
        (the cache reads the task afresh when Swarm's update begins or ends)."""
        return [
            ContainerSummary(
                id=c.id,
                state=str(c.status),
                marks=(
                    f"({c.health}) ({c.exit_code}) restarts {c.restart_count} on {c.node}"
                    f" update {c.update} {c.update_started}"
                ),
            )
            for c in self._listing(project)
        ]

    def inspect(self, container_id: str) -> ContainerSnapshot:
        task = self._task(container_id)
        service_id = str(task.get("ServiceID") or "")
        labels = (task.get("Spec") or {}).get("ContainerSpec", {}).get("Labels") or {}
        project = str(labels.get(STACK_LABEL) or "")
        for found in self._listing(project, only=service_id):
            if found.id == container_id:
                return found
        # no longer its slot's container (a newer task took the slot, or swarm took it)
        raise ContainerGone(f"inspect {container_id[:12]}: no longer a current task")

    def _task(self, task_id: str) -> dict[str, Any]:
        task: dict[str, Any] = self._call(
            f"inspect task {task_id[:12]}",
            lambda api: api.inspect_task(task_id),
        )
        return task

    # --- events and logs -----------------------------------------------------------------

    def events(self, project: str) -> EventStream:
        what = "events"
        filters = {"type": ["service", "node"]}
        stream = _Stream(
            self._call(what, lambda api: api.events(decode=True, filters=filters)), what
        )
        local = self.local_events(project)
        return _SwarmEvents(self, project, stream, self._poll, local, self.other_nodes())

    def local_events(self, project: str, node: str | None = None) -> _Stream:
        """The container events of the stack's tasks on this manager's own engine (or on
        ``node``'s, as given in ``node_engines``): a death, an OOM kill, a healthcheck's
        verdict, seen as they happen (the manager's task state follows about 0.1 s after a
        death, and never says the others). A node's engine is pinged first, within the
        timeout: the SDK waits for an event stream's answer without one, so a node whose
        engine froze (or whose host went away without a reset) would hold its follower for
        ever, unheard of, and one more at each reconnect of the watcher."""
        engine: DockerEngine = self if node is None else self._node_engine(node)
        if node is not None:
            engine.reach()
        what = f"{'the manager' if node is None else node}'s container events"
        filters = {"type": ["container"], "label": [f"{STACK_LABEL}={project}"]}
        return _Stream(
            DockerEngine._call(engine, what, lambda api: api.events(decode=True, filters=filters)),
            what,
        )

    def other_nodes(self) -> list[str]:
        """The nodes given in ``node_engines`` but the manager's own (its engine's events
        are read already), by host name."""
        if not self._node_urls:
            return []
        info: dict[str, Any] = self._call("info", lambda api: api.info())
        own = self._nodes().get(str((info.get("Swarm") or {}).get("NodeID") or ""))
        return sorted(host for host in self._node_urls if host != own)

    def sight(self, event: Mapping[str, Any], node: str | None = None) -> bool:
        """Keep what a task's container event says (``swarmtasks.sighted``), read on the
        manager's own engine (or ``node``'s); True when it said something of the task's run."""
        task_id = str(((event.get("Actor") or {}).get("Attributes") or {}).get(TASK_LABEL) or "")
        with self._lock:
            before = self._sightings.get(task_id)
        health = None
        if needs_health(event, before):
            engine: DockerEngine = self if node is None else self._node_engine(node)
            try:
                health = _health_after(engine, str(event.get("id") or ""), event)
            except EngineError:
                return False  # gone already: its death says the rest
        with self._lock:
            found = sighted(event, self._sightings.get(task_id), health)
            if found is not None:
                self._sightings[task_id] = found
        return found is not None

    def made(self) -> Made:
        """What the controller's own updates and scales asked swarm for so far."""
        with self._lock:
            return self._made

    def poll_tasks(self, project: str) -> tuple[dict[str, str], list[dict[str, Any]]]:
        """The stack's service names by ID and its tasks (for the event stream's poll)."""
        services = self._services(project)
        names = {str(s.get("ID")): str((s.get("Spec") or {}).get("Name") or "") for s in services}
        return names, self._tasks(project)

    def follow_logs(self, container_id: str, since: float | None) -> LogStream:
        task = self._task(container_id)
        return _TaskLog(self, str(task.get("ServiceID") or ""), container_id, since)

    def service_log(self, service_id: str, since: float | None, *, follow: bool) -> LogStream:
        """A service's log: every task's lines, each its time stamp, the details that name
        its node, service and task, and its text. Read off the socket (``logwire``) where
        the engine's is local or plain TCP; through the SDK otherwise (TLS, ssh), whose
        stream a close ends only at its next line."""
        address = self._log_address()
        if address is not None:
            version = str(self._call("version", lambda api: api.api_version))
            return WireLog(
                address,
                version,
                service_id,
                since,
                timeout=self._timeout,
                engine_alive=self.ping,
                service=True,
                follow=follow,
            )
        what = f"service logs {service_id[:12]}"
        options: dict[str, Any] = {
            "details": True,
            "follow": follow,
            "stdout": True,
            "stderr": True,
            "timestamps": True,
            "since": f"{since:.9f}" if since else 0,
        }
        return _Lines(
            _Stream(self._call(what, lambda api: api.service_logs(service_id, **options)), what)
        )

    def task_running(self, task_id: str) -> bool:
        """The task may still print: it has not ended (nor been taken away)."""
        try:
            state = state_of(self._task(task_id))
        except ContainerGone:
            return False
        return state in PRE_RUN or state in ("starting", "running")

    # --- what a manager cannot do --------------------------------------------------------

    def usage(self, container_id: str) -> ContainerUsage:
        """What a task's container uses, from the engine of its node (the manager's own,
        or one given with ``--node-engine``), as the task's."""
        container, engine = self._on_node(container_id, f"stats {container_id[:12]}")
        found = super().usage(container) if engine is None else engine.usage(container)
        return replace(found, container=container_id)

    def disk_usage(self, project: str) -> DiskUsage:
        raise _unsupported("disk usage", "each node has its own layers and volumes")

    def restart(self, container_id: str, timeout: float) -> None:
        raise _unsupported(
            f"restart {container_id[:12]}",
            "Swarm replaces tasks: the controller updates their service (service update --force)",
        )

    # --- acting on the stack -------------------------------------------------------------

    def _service(self, project: str, service: str) -> dict[str, Any]:
        """The stack's swarm service of a compose service (``<stack>_<service>``)."""
        name = f"{project}_{service}"
        found: list[dict[str, Any]] = self._call(
            f"find service {name}",
            lambda api: api.services(filters={"name": name}),
        )
        exact = [s for s in found if (s.get("Spec") or {}).get("Name") == name]
        if not exact:
            raise EngineError(
                f"service {name} is not deployed in stack {project} (docker stack deploy "
                f"deploys it)"
            )
        return exact[0]

    def _update(self, service: dict[str, Any], what: str, **changes: Any) -> None:
        service_id = str(service["ID"])
        version = int((service.get("Version") or {}).get("Index") or 0)
        self._call(
            what,
            lambda api: api.update_service(service_id, version, fetch_current_spec=True, **changes),
        )

    def force_update(self, project: str, service: str) -> str:
        """``docker service update --force``: Swarm replaces every task of the service, as
        its update config says (one at a time by default). Its name."""
        found = self._service(project, service)
        name = str(found["Spec"]["Name"])
        template = dict(found["Spec"].get("TaskTemplate") or {})
        template["ForceUpdate"] = int(template.get("ForceUpdate") or 0) + 1
        with self._lock:
            forced = self._made.forced | {(str(found["ID"]), template["ForceUpdate"])}
            self._made = replace(self._made, forced=forced)
        self._update(found, f"service update --force {name}", task_template=template)
        return name

    def paused(self, project: str, service: str) -> SwarmPause | None:
        """The update of the service Swarm paused (its new tasks failed), with what it
        changed; None when it paused none."""
        return paused_update(self._service(project, service))

    def rolled_back(self, project: str, service: str) -> SwarmPause | None:
        """The rollback Swarm completed of the service (it runs its previous spec again),
        with what it runs and the change rolled back; None when it was not rolled back."""
        found = self._service(project, service)
        rolled = rolled_back_update(found)
        if rolled is None or rolled.previous:
            return rolled
        tasks: list[dict[str, Any]] = self._call(
            "list tasks", lambda api: api.tasks(filters={"service": found["ID"]})
        )
        return rolled_back_update(found, tasks)

    def updates(self, project: str) -> dict[str, SwarmUpdate]:
        """The last update of each service of the stack that keeps a previous spec, by
        compose name (one call): which services one ``docker stack deploy`` changed."""
        return {
            compose_name(project, found.name): found
            for s in self._services(project)
            if (found := last_update(s)) is not None
        }

    def rollback(self, project: str, service: str) -> SwarmPause | None:
        """``docker service rollback``: Swarm puts the service back on its
        ``PreviousSpec`` (as its rollback config says). What was paused before it (None:
        nothing was). The SDK has no call for it: it is the CLI's request, an update with
        ``rollback=previous`` and the current spec as its body."""
        found = self._service(project, service)
        name = str(found["Spec"]["Name"])
        version = int((found.get("Version") or {}).get("Index") or 0)
        path = "/services/{0}/update"
        params = {"version": version, "rollback": "previous"}
        self._call(
            f"service rollback {name}",
            lambda api: api._result(
                api._post_json(api._url(path, found["ID"]), data=found["Spec"], params=params),
                json=True,
            ),
        )
        return paused_update(found)

    def scale(self, project: str, service: str, replicas: int) -> tuple[str, int | None]:
        """``docker service scale <service>=<replicas>`` of a replicated service: its name
        and the replicas Swarm kept before (None: a global service, not scaled)."""
        found = self._service(project, service)
        name = str(found["Spec"]["Name"])
        replicated = (found["Spec"].get("Mode") or {}).get("Replicated")
        if replicated is None:
            return name, None
        before = int(replicated.get("Replicas") or 0)
        if before != replicas:
            # the tasks swarm creates for the slots this adds are ours (not a person's);
            # a second of slack for the manager's clock
            when = time.time_ns() - 1_000_000_000
            added = {(str(found["ID"]), slot): when for slot in range(before + 1, replicas + 1)}
            with self._lock:
                self._made = replace(self._made, added={**self._made.added, **added})
            mode = {"Replicated": {"Replicas": replicas}}
            self._update(found, f"service scale {name}={replicas}", mode=mode)
        return name, before

    def exec(
        self,
        container_id: str,
        argv: Sequence[str],
        *,
        user: str = "",
        env: Mapping[str, str] | None = None,
        timeout: float = 60.0,
    ) -> tuple[int, bytes]:
        """``argv`` in a task's container, through the engine of the task's node. A node
        whose engine is not known, or does not answer, raises ``NodeUnreachable``: the
        step goes to a person at once, as no retry would reach it."""
        container, engine = self._on_node(container_id, f"exec in task {container_id[:12]}")
        if engine is None:  # the manager's own engine runs the task
            return super().exec(container, argv, user=user, env=env, timeout=timeout)
        return engine.exec(container, argv, user=user, env=env, timeout=timeout)

    def _on_node(self, task_id: str, what: str) -> tuple[str, DockerEngine | None]:
        """The container of a task and the engine of its node (None: the manager's own);
        a task without a container yet is gone for ``what``."""
        task = self._task(task_id)
        container = str(status_of(task).get("ContainerStatus", {}).get("ContainerID") or "")
        if not container:
            raise ContainerGone(f"{what}: the task has no container (yet, or any more)")
        return container, self._engine_of(str(task.get("NodeID") or ""))

    def _own_node(self) -> str:
        """The manager's own node ID (read once: a node keeps its ID while in the swarm)."""
        if not self._own:
            info: dict[str, Any] = self._call("info", lambda api: api.info())
            self._own = str((info.get("Swarm") or {}).get("NodeID") or "")
        return self._own

    def _engine_of(self, node_id: str) -> DockerEngine | None:
        """The engine of a node that is not the manager's own (None: the manager's), once
        it answered a ping: what fails after that is the call's own failure."""
        if node_id == self._own_node():
            return None
        host = self._nodes().get(node_id, node_id)
        if host not in self._node_urls:
            raise NodeUnreachable(
                f"no engine known for node {host}, where the task runs (the controller "
                f"reaches the manager's own): pass --node-engine {host}=URL"
            )
        engine = self._node_engine(host)
        try:
            engine.reach()
        except EngineUnavailable as exc:
            url = self._node_urls[host]
            raise NodeUnreachable(f"cannot reach node {host}'s engine at {url}: {exc}") from exc
        return engine

    def _node_engine(self, host: str) -> DockerEngine:
        """The engine given for node ``host`` (one client per node, made at first use)."""
        with self._lock:
            if host not in self._node_engines:
                self._node_engines[host] = DockerEngine(self._node_urls[host], self._timeout)
            return self._node_engines[host]

    def close(self) -> None:
        with self._lock:
            engines, self._node_engines = list(self._node_engines.values()), {}
        for engine in engines:
            engine.close()
        super().close()

    def unpause(self, container_id: str) -> None:
        raise _unsupported(f"unpause {container_id[:12]}", "a task is paused on its node")

    def image(self, ref: str) -> ImageInfo | None:
        raise _unsupported(f"inspect image {ref[:80]}", "each node has its own images")

    def tag_image(self, image_id: str, repository: str, tag: str) -> None:
        raise _unsupported(f"tag {repository}:{tag}", "each node has its own images")

    def untag_image(self, ref: str) -> None:
        raise _unsupported(f"untag {ref[:80]}", "each node has its own images")


def _health_after(
    engine: DockerEngine, container_id: str, event: Mapping[str, Any]
) -> ContainerSnapshot:
    """The container's health as its node's ``engine`` keeps it, once it holds the check
    that ended with ``event``: the engine says an exec died a moment before it writes the
    check's result (read at once, a first failure is not there yet). The plain engine's
    inspect, also on the manager: a ``SwarmEngine`` inspects tasks, not containers."""
    ended = int(event.get("timeNano") or 0) / 1e9
    found = DockerEngine.inspect(engine, container_id)
    for _ in range(HEALTH_READS):
        if not ended or found.last_check_at >= ended - CLOCK_SLACK:
            break
        time.sleep(HEALTH_WAIT)
        found = DockerEngine.inspect(engine, container_id)
    return found


_END = object()


class _SwarmEvents:
    """The manager's service and node events and the stack's task changes, merged into
    one ``EventStream``. It breaks (raises) when either source does, as an engine's
    event stream breaks, so the watcher reconnects and the cache relists."""

    def __init__(
        self,
        engine: SwarmEngine,
        project: str,
        stream: _Stream,
        poll: float,
        local: _Stream | None = None,
        nodes: Sequence[str] = (),
    ) -> None:
        self._engine = engine
        self._project = project
        self._stream = stream
        self._local = local
        self._poll = poll
        self._following: dict[str, _Stream] = {}  # the other nodes' streams now read
        self._follow_lock = threading.Lock()
        self._queue: queue.Queue[Any] = queue.Queue()
        self._closed = threading.Event()
        # the first poll is the baseline: a stream says what happens from now on
        self._names, tasks = engine.poll_tasks(project)
        _, self._signatures = task_events(project, self._names, {}, tasks)
        self._threads = [
            threading.Thread(target=self._read, name="swarm-events", daemon=True),
            threading.Thread(target=self._poll_tasks, name="swarm-tasks", daemon=True),
        ]
        if local is not None:
            self._threads.append(
                threading.Thread(target=self._read_local, name="swarm-local", daemon=True)
            )
        for node in nodes:
            self._threads.append(
                threading.Thread(
                    target=self._follow_node, args=(node,), name=f"swarm-node-{node}", daemon=True
                )
            )
        for thread in self._threads:
            thread.start()

    def _pump(
        self, stream: _Stream, hint: Callable[[dict[str, Any]], dict[str, Any] | None]
    ) -> None:
        """Each event of ``stream`` as its ``hint`` (None: none) into the queue, until the
        stream ends or breaks."""
        try:
            for event in stream:
                found = hint(event)
                if found is not None:
                    self._queue.put(found)
        except EngineError as exc:
            self._queue.put(exc)
        self._queue.put(_END)

    def _read(self) -> None:
        self._pump(self._stream, lambda event: service_event(self._project, event))

    def _read_local(self) -> None:
        """The manager's own containers' events: a task's death, OOM kill or health
        verdict kept for the listing (``SwarmEngine.sight``) and passed on as a hint."""
        assert self._local is not None
        self._pump(
            self._local,
            lambda e: local_hint(self._project, e) if self._engine.sight(e) else None,
        )

    def _follow_node(self, node: str) -> None:
        """Another node's tasks' container events, as ``_read_local``'s, for as long as
        the stream lasts. Unlike the manager's streams, a node's that cannot be read
        breaks nothing (the manager's task states say the same, a moment later, without
        an OOM kill or a check's result): said once, tried again every
        ``NODE_RETRY_SECONDS``, said again once it flows."""
        lost = False
        while not self._closed.is_set():
            try:
                stream = self._engine.local_events(self._project, node)
            except EngineError as exc:
                if not lost:
                    logger.warning("node {}: its engine's events cannot be read: {}", node, exc)
                lost = True
                self._closed.wait(NODE_RETRY_SECONDS)
                continue
            with self._follow_lock:
                if self._closed.is_set():
                    stream.close()
                    return
                self._following[node] = stream
            if lost:
                logger.info("node {}: its engine's events are read again", node)
            lost = False
            try:
                for event in stream:
                    if self._engine.sight(event, node):
                        found = local_hint(self._project, event)
                        if found is not None:
                            self._queue.put(found)
            except EngineError as exc:
                if not self._closed.is_set():
                    logger.warning("node {}: its engine's events broke off: {}", node, exc)
                    lost = True
            with self._follow_lock:
                self._following.pop(node, None)
            self._closed.wait(NODE_RETRY_SECONDS)

    def _poll_tasks(self) -> None:
        while not self._closed.wait(self._poll):
            try:
                self._names, tasks = self._engine.poll_tasks(self._project)
            except EngineError as exc:
                self._queue.put(exc)
                return
            events, self._signatures = task_events(
                self._project, self._names, self._signatures, tasks, self._engine.made()
            )
            for event in events:
                self._queue.put(event)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        while True:
            item = self._queue.get()
            if item is _END or self._closed.is_set():
                self.close()
                return
            if isinstance(item, EngineError):
                self.close()
                raise item
            yield item

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        self._stream.close()
        if self._local is not None:
            self._local.close()
        with self._follow_lock:
            following, self._following = list(self._following.values()), {}
        for stream in following:
            stream.close()
        self._queue.put(_END)


class _TaskLog:
    """One task's log (``LogStream``): its lines picked out of its service's log, with
    their time stamps, without the details. Followed while the task runs; once it has
    ended, read to the end of the log, and ended."""

    def __init__(
        self, engine: SwarmEngine, service_id: str, task_id: str, since: float | None
    ) -> None:
        self._engine = engine
        self._service = service_id
        self._task = task_id
        self._mark = f"com.docker.swarm.task.id={task_id}".encode()
        self._since = since
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._stream: LogStream | None = None
        self._last = b""  # the newest time stamp handed on
        self._at_last: set[bytes] = set()  # the lines handed on at exactly that stamp
        self._resuming = False  # a read began where the last one stopped: skip what it read

    def __iter__(self) -> Iterator[list[bytes]]:
        follow = self._engine.task_running(self._task)
        while not self._closed.is_set():
            nanos = engine_ns(self._last) if self._last else None
            since = (nanos - 1000) / 1e9 if nanos else self._since  # a microsecond early
            resume = (self._last, frozenset(self._at_last))
            self._resuming = bool(self._last)
            stream = self._engine.service_log(self._service, since, follow=follow)
            with self._lock:
                self._stream = stream
            if follow:
                threading.Thread(
                    target=self._watch, args=(stream,), name="swarm-log-watch", daemon=True
                ).start()
            try:
                for lines in stream:
                    picked = self._pick(lines, resume)
                    if picked:
                        yield picked
            except EngineError:
                if self._closed.is_set():
                    return
                if not follow:
                    raise
                # a followed stream cut: the next look at the task says whether it ended
            finally:
                stream.close()
            if not follow:
                return  # read to its end: the task had ended before this read began
            follow = self._engine.task_running(self._task)

    def _watch(self, stream: LogStream) -> None:
        """End a followed stream once its task has ended (the last read comes after)."""
        while not self._closed.wait(WATCH_SECONDS):
            with self._lock:
                if self._stream is not stream:
                    return
            try:
                running = self._engine.task_running(self._task)
            except EngineError:
                continue
            if not running:
                stream.close()
                return

    def _pick(self, lines: list[bytes], resume: tuple[bytes, frozenset[bytes]]) -> list[bytes]:
        """This task's lines as ``<stamp> <text>``. A read that resumes where the last one
        stopped skips what that one handed on, at its start only: within one read the
        engine repeats no line, and stdout and stderr are stamped apart (slightly out of
        order), so a later line is never dropped for its stamp."""
        picked = []
        for line in lines:
            stamp, _, rest = line.partition(b" ")
            details, _, text = rest.partition(b" ")
            if self._mark not in details:
                continue
            if self._resuming:
                at, seen = resume
                if stamp < at or (stamp == at and text in seen):
                    continue
                self._resuming = False
            if stamp > self._last:
                self._last, self._at_last = stamp, set()
            if stamp == self._last:
                self._at_last.add(text)
            picked.append(stamp + b" " + text)
        return picked

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            stream = self._stream
        if stream is not None:
            stream.close()
