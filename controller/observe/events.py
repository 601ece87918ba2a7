"""The engine's event stream for one project: each container event becomes a hint.

Events never carry state into a decision (level-triggered): a hint only makes the next
pass come at once, and the pass re-reads everything (``on_container`` tells the container
cache which containers to inspect again). A hint carries the engine's time stamp, so the
remediator can tell its own actions' events from a person's, and a kill's signal, so a
person's ``docker stop`` (a signal, then death) is told from a crash. When the
stream breaks (the engine restarted, the socket went away) the watcher reconnects with
backoff and says so, so the runtime can resync fully on return.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

from loguru import logger

from controller.observe.engine import SERVICE_LABEL
from controller.observe.gateway import EngineError, EngineGateway, EventStream

# container actions worth a pass (and a swarm manager's service actions: create, update,
# remove); most exec_* events are noise (every healthcheck is one)
ACTIONS = frozenset(
    {
        "create",
        "start",
        "restart",
        "die",
        "kill",
        "oom",
        "stop",
        "destroy",
        "pause",
        "unpause",
        "health_status",
        "rename",
        "update",
        "remove",  # a swarm manager's service event: `docker service rm`, `docker stack rm`
    }
)


class EventWatcher:
    def __init__(
        self,
        gateway: EngineGateway,
        project: str,
        on_event: Callable[[str, str, float | None, int | None], None],
        on_connection: Callable[[bool], None],
        on_container: Callable[[str, str, Mapping[str, object], float | None], None],
        max_backoff: float = 30.0,
    ) -> None:
        self._gateway = gateway
        self._project = project
        self._on_event = on_event
        self._on_connection = on_connection
        self._on_container = on_container
        self._max_backoff = max_backoff
        self._stop = threading.Event()
        self._stream: EventStream | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="events", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        with self._lock:
            stream = self._stream
        if stream is not None:
            stream.close()
        self._thread.join(timeout)

    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                stream = self._gateway.events(self._project)
            except EngineError as exc:
                logger.debug("event stream unavailable: {}", exc)
            else:
                with self._lock:
                    self._stream = stream
                self._on_connection(True)
                backoff = 0.5
                try:
                    for event in stream:
                        self._dispatch(event)
                except EngineError as exc:
                    logger.debug("event stream broke: {}", exc)
                with self._lock:
                    self._stream = None
                if self._stop.is_set():
                    return
                self._on_connection(False)
            if self._stop.wait(backoff):
                return
            backoff = min(backoff * 2, self._max_backoff)

    def _dispatch(self, event: dict[str, object]) -> None:
        action = str(event.get("Action") or event.get("status") or "")
        base = action.split(":", 1)[0]  # "health_status: unhealthy"
        actor = event.get("Actor")
        attributes = actor.get("Attributes", {}) if isinstance(actor, dict) else {}
        if not isinstance(attributes, dict):
            attributes = {}
        container_id = event.get("id") or (actor.get("ID") if isinstance(actor, dict) else None)
        if container_id:  # every event, for the container cache (it picks what matters)
            self._on_container(str(container_id), base, attributes, _stamp(event))
        if base not in ACTIONS and not _failed_exec(base, attributes):
            return
        self._on_event(
            str(attributes.get(SERVICE_LABEL, "")), base, _stamp(event), _signal(attributes)
        )


def _stamp(event: dict[str, object]) -> float | None:
    """When the engine emitted the event (epoch seconds), None if it does not say."""
    nanos, seconds = event.get("timeNano"), event.get("time")
    if isinstance(nanos, int) and nanos > 0:
        return nanos / 1e9
    if isinstance(seconds, int) and seconds > 0:
        return float(seconds)
    return None


def _signal(attributes: dict[str, object]) -> int | None:
    """The signal a ``kill`` event sent (``docker stop`` sends 15, then 9 after its
    timeout; ``docker kill`` 9 unless told otherwise), None for other events."""
    value = str(attributes.get("signal", ""))
    return int(value) if value.isdigit() else None


def _failed_exec(action: str, attributes: dict[str, object]) -> bool:
    """An exec that exited non-zero: a failed healthcheck looks like this, the first
    time a check fails, seconds before the engine's ``health_status: unhealthy``."""
    return action == "exec_die" and str(attributes.get("exitCode", "0")) != "0"
