"""A swarm stack's tasks as our snapshots, on tasks recorded from a real three-node swarm
(tests/unit/swarm-tasks/: the stack in stack.yaml, deployed by scripts/swarm-up's swarm;
the manager's ``api.tasks`` at four moments): pure functions, no engine."""

from __future__ import annotations

import copy
import json
import threading
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import controller.observe.swarm as swarm_module
from controller.model import (
    Action,
    ContainerSnapshot,
    ContainerState,
    Health,
    StepRecord,
    engine_ns,
)
from controller.observe.gateway import EngineError
from controller.observe.swarm import SwarmEngine, _SwarmEvents, _TaskLog
from controller.observe.swarmtasks import (
    SERVICE_LABEL,
    Made,
    Sighting,
    SlotCount,
    carry,
    deploy_command,
    exit_code,
    local_hint,
    needs_health,
    replicas_of,
    seen_on_node,
    service_event,
    sighted,
    slot_snapshots,
    task_events,
)
from controller.remediate.verify import instance, new_fault
from tests.fakes import FakeStream

DATA = Path(__file__).parent / "swarm-tasks"
NODES: dict[str, str] = json.loads((DATA / "nodes.json").read_text())
SICK = "twk2z2jqcd5bmbc6c4xny7vcl"  # obs_sick's service ID


def services(ticker_replicas: int = 2) -> list[dict[str, Any]]:
    """The stack's services as recorded last (the ticker scaled to 1 then); the moments
    before the scale down had 2 replicas of it."""
    found: list[dict[str, Any]] = json.loads((DATA / "services.json").read_text())
    for service in found:
        if service["Spec"]["Name"] == "obs_ticker":
            service["Spec"]["Mode"]["Replicated"]["Replicas"] = ticker_replicas
    return found


def tasks(moment: str) -> list[dict[str, Any]]:
    loaded: list[dict[str, Any]] = json.loads((DATA / f"tasks-{moment}.json").read_text())
    return loaded


def listing(moment: str, **kwargs: Any) -> dict[tuple[str, str], ContainerSnapshot]:
    """The snapshots of a moment by (service, node's short name) (slots for the ticker)."""
    replicas = 1 if moment == "scaled-and-updated" else 2
    found = slot_snapshots("obs", services(replicas), tasks(moment), NODES, **kwargs)
    return {(c.service, c.node.rsplit("-", 1)[1]): c for c in found.snapshots}


def by_service(moment: str) -> dict[str, list[ContainerSnapshot]]:
    grouped: dict[str, list[ContainerSnapshot]] = {}
    for (service, _), snap in listing(moment).items():
        grouped.setdefault(service, []).append(snap)
    return grouped


def test_every_replica_and_every_global_task_is_a_container_on_its_node():
    seen = by_service("deployed")
    tickers = sorted(seen["ticker"], key=lambda c: c.number)
    assert [(c.number, c.status, c.health, c.node) for c in tickers] == [
        (1, ContainerState.RUNNING, None, "ccsw-obs-fieg-n2"),
        (2, ContainerState.RUNNING, None, "ccsw-obs-fieg-n3"),
    ]
    assert all(c.restart_count == 0 and c.config_hash == "abc123" for c in tickers)
    assert tickers[0].image == "cc-busybox:1" and tickers[0].image_id == ""  # never resolved
    assert tickers[0].name == f"ticker.1.{tickers[0].id}"
    assert tickers[0].started_at == "2026-12-05T07:17:53.729920361Z"
    # a global service: one per node, its healthcheck passed (running), no slot
    assert sorted(c.node[-2:] for c in seen["everywhere"]) == ["n1", "n2", "n3"]
    assert {(c.number, c.health) for c in seen["everywhere"]} == {(0, Health.HEALTHY)}
    assert seen["everywhere"][0].health_interval == 1.0


def test_ended_tasks_are_exited_with_their_code_or_their_error():
    seen = by_service("deployed")
    (crasher,) = seen["crasher"]  # its restart policy gave up after 2 attempts
    assert (crasher.status, crasher.exit_code, crasher.restart_count) == ("exited", 3, 2)
    assert crasher.error == "task: non-zero exit (3)" and crasher.finished_at
    (missing,) = seen["missing"]  # rejected: never ran a container
    assert (missing.status, missing.exit_code) == ("exited", -1)
    assert missing.error == "No such image: cc-nosuch:1"


def test_a_task_waiting_for_its_healthcheck_is_running_and_starting():
    (sick,) = by_service("deployed")["sick"]
    assert (sick.status, sick.health) == (ContainerState.RUNNING, Health.STARTING)
    assert sick.restart_count == 3  # three earlier tasks killed as unhealthy


def test_a_task_that_turns_running_after_its_first_healthy_check_keeps_its_start():
    # one run: the start the engine saw first stays, or a proof would take the turn to
    # running for a death and a start again
    first = slot_snapshots("obs", services(), tasks("deployed"), NODES)
    (starting,) = [c for c in first.snapshots if c.service == "sick"]
    later = copy.deepcopy(tasks("deployed"))
    for task in later:
        if task["ID"] == starting.id:
            task["Status"]["State"] = "running"
            task["Status"]["Timestamp"] = "2099-01-01T00:00:00.000000000Z"
    second = slot_snapshots("obs", services(), later, NODES, first.counts, first.starts)
    (running,) = [c for c in second.snapshots if c.service == "sick"]
    assert (running.id, running.health) == (starting.id, Health.HEALTHY)
    assert running.started_at == starting.started_at != ""


def test_a_task_killed_as_unhealthy_is_unhealthy_while_swarm_replaces_it():
    moment = tasks("deployed")
    sick = sorted(
        (t for t in moment if t["ServiceID"] == SICK),
        key=lambda t: t["CreatedAt"],
    )
    newest = sick[-1]
    newest["Status"]["State"], newest["DesiredState"] = "ready", "ready"  # in its delay
    found = slot_snapshots("obs", services(), moment, NODES).snapshots
    (shown,) = [c for c in found if c.service == "sick"]
    assert shown.id == sick[-2]["ID"]
    assert (shown.status, shown.health, shown.exit_code) == ("restarting", "unhealthy", 143)
    assert shown.error.endswith("dockerexec: unhealthy container")


def test_a_killed_task_shows_its_death_then_its_replacement_with_its_restart_counted():
    # the recording killed slot 1's task twice: after the deployment, and again here
    deployed = slot_snapshots("obs", services(), tasks("deployed"), NODES)
    first = next(c for c in deployed.snapshots if c.service == "ticker" and c.number == 1)
    restarting = slot_snapshots(
        "obs", services(), tasks("restarting"), NODES, deployed.counts, deployed.starts
    )
    (dying,) = [c for c in restarting.snapshots if c.service == "ticker" and c.number == 1]
    # the replacement is made at once and waits out the restart delay: the slot is the
    # task that died, restarting, with its exit code; its death counted already, as
    # Docker counts a container restarting (the count the replacement shows next)
    assert dying.status == ContainerState.RESTARTING
    assert (dying.exit_code, dying.error, dying.restart_count) == (
        137,
        "task: non-zero exit (137)",
        2,
    )
    replaced = slot_snapshots(
        "obs", services(), tasks("replaced"), NODES, restarting.counts, restarting.starts
    )
    (new,) = [c for c in replaced.snapshots if c.service == "ticker" and c.number == 1]
    assert new.status == ContainerState.RUNNING and new.id != dying.id
    assert new.restart_count == 2 and new.node != ""
    # the start the engine saw of a task that died outlives its running state
    assert restarting.starts.get(first.id) == first.started_at


def test_a_scale_down_and_an_update_leave_no_stale_container():
    seen = by_service("scaled-and-updated")
    # scaled to 1: swarm deleted slot 2's running task and left its old failed one
    assert [c.number for c in seen["ticker"]] == [1]
    assert len(seen["everywhere"]) == 3 and all(c.status.running for c in seen["everywhere"])


def test_the_restart_count_outlives_the_task_history_the_cluster_keeps():
    kept = frozenset({"b", "c", "d", "e"})
    first = carry(None, kept, bounded=False)
    assert first == SlotCount(kept, 4)
    later = carry(first, frozenset({"c", "d", "e", "f"}), bounded=False)
    assert later.restarts == 5
    # swarm replaced the task on purpose (an update): the count begins again there
    assert carry(later, frozenset({"g"}), bounded=True).restarts == 1


def test_exit_codes_come_from_the_container_or_the_error():
    assert exit_code({"Status": {"State": "failed", "Err": "task: non-zero exit (137)"}}) == 137
    assert exit_code({"Status": {"State": "complete", "ContainerStatus": {"ExitCode": 0}}}) == 0
    assert exit_code({"Status": {"State": "rejected", "Err": "No such image: x"}}) == -1


def test_task_changes_become_container_event_hints():
    names = {s["ID"]: s["Spec"]["Name"] for s in services()}
    _, before = task_events("obs", names, {}, tasks("deployed"))
    events, now = task_events("obs", names, before, tasks("restarting"))
    actions = {(e["Actor"]["Attributes"][SERVICE_LABEL], e["Action"]) for e in events}
    assert ("ticker", "die") in actions and ("ticker", "restart") in actions
    # swarm's replacements of tasks that ended are not a person's create or start (a
    # fresh budget; on a service without a restart policy a start is a person's)
    assert not [a for a in actions if a[1] in ("create", "start")]
    die = next(e for e in events if e["Action"] == "die" and e["id"] in before)
    assert die["Actor"]["Attributes"]["exitCode"] == "137" and die["timeNano"] > 0
    later, _ = task_events("obs", names, now, tasks("replaced"))
    assert ("ticker", "restart") in {
        (e["Actor"]["Attributes"][SERVICE_LABEL], e["Action"]) for e in later
    }
    assert task_events("obs", names, now, tasks("restarting"))[0] == []  # nothing new


def test_service_events_of_the_stack_name_their_compose_service():
    event = {
        "Type": "service",
        "Action": "update",
        "Actor": {"ID": "s1", "Attributes": {"name": "obs_web"}},
    }
    hint = service_event("obs", event)
    assert hint is not None and hint["Actor"]["Attributes"][SERVICE_LABEL] == "web"
    other = copy.deepcopy(event)
    other["Actor"]["Attributes"]["name"] = "elsewhere_web"
    assert service_event("obs", other) is None
    node = {
        "Type": "node",
        "Action": "update",
        "Actor": {"ID": "n", "Attributes": {"state.new": "down"}},
    }
    assert service_event("obs", node) == node


@pytest.mark.parametrize(
    "call",
    [
        lambda e: e.restart("t", 1.0),
        lambda e: e.disk_usage("obs"),
        lambda e: e.unpause("t"),
        lambda e: e.image("cc-busybox:1"),
        lambda e: e.tag_image("i", "r", "t"),
        lambda e: e.untag_image("r:t"),
    ],
)
def test_what_a_manager_cannot_do_says_so(call: Any):
    engine = SwarmEngine("unix:///nonexistent/docker.sock")
    with pytest.raises(EngineError, match="not available on a swarm"):
        call(engine)


class FakeManager:
    """Our seam of ``_TaskLog``: the task's state and the service's log, scripted."""

    def __init__(self, running: list[bool], logs: list[list[bytes]]) -> None:
        self.running = running
        self.logs = logs
        self.reads: list[tuple[float | None, bool]] = []

    def task_running(self, task_id: str) -> bool:
        return self.running.pop(0)

    def service_log(self, service_id: str, since: float | None, *, follow: bool) -> FakeStream:
        self.reads.append((since, follow))
        return FakeStream([self.logs.pop(0)])


class FakeNodes:
    """Our seam of ``_SwarmEvents``: a stack with no task changes, whose manager stream
    stays open, and another node whose engine first cannot be reached, then says a death,
    then breaks."""

    def __init__(self, node_streams: list[FakeStream | EngineError]) -> None:
        self.node_streams = node_streams
        self.opened: list[str | None] = []

    def poll_tasks(self, project: str) -> tuple[dict[str, str], list[dict[str, Any]]]:
        return {}, []

    def made(self) -> Any:
        return None

    def local_events(self, project: str, node: str | None = None) -> FakeStream:
        self.opened.append(node)
        if not self.node_streams:
            raise EngineError("still unreachable")
        found = self.node_streams.pop(0)
        if isinstance(found, EngineError):
            raise found
        return found

    def sight(self, event: dict[str, Any], node: str | None = None) -> bool:
        return node == "n2"


class Broken(FakeStream):
    def __iter__(self) -> Any:
        yield from super().__iter__()
        raise EngineError("n2's stream broke")


class Open(FakeStream):
    """A stream that stays open until closed (the manager's)."""

    def __init__(self) -> None:
        super().__init__([])
        self._shut = threading.Event()

    def __iter__(self) -> Any:
        self._shut.wait()
        return iter(())

    def close(self) -> None:
        super().close()
        self._shut.set()


@pytest.mark.timeout(20)
def test_another_nodes_events_come_through_and_its_failures_break_nothing(monkeypatch):
    monkeypatch.setattr(swarm_module, "NODE_RETRY_SECONDS", 0.01)
    died = {
        "Type": "container",
        "Action": "die",
        "id": "c1",
        "timeNano": 1,
        "Actor": {
            "ID": "c1",
            "Attributes": {
                "com.docker.stack.namespace": "obs",
                "com.docker.swarm.task.id": "t1",
                "com.docker.swarm.service.name": "obs_web",
                "exitCode": "137",
            },
        },
    }
    engine = FakeNodes([EngineError("n2: connection refused"), Broken([died]), Broken([died])])
    manager = Open()
    events = _SwarmEvents(engine, "obs", manager, 60.0, None, ["n2"])  # type: ignore[arg-type]
    seen = iter(events)
    first, second = next(seen), next(seen)  # the stream of n2, twice: it broke in between
    events.close()
    assert first["id"] == second["id"] == "t1" and first["Action"] == "die"
    assert first["Actor"]["Attributes"]["com.docker.compose.service"] == "web"
    assert engine.opened[:3] == ["n2", "n2", "n2"]
    assert manager.closed


def line(stamp: str, task: str, text: str) -> bytes:
    details = f"com.docker.swarm.node.id=n1,com.docker.swarm.service.id=s1,com.docker.swarm.task.id={task}"
    return f"2026-12-05T07:19:{stamp}Z {details} {text}".encode()


def test_a_task_log_is_its_lines_of_the_service_log_read_to_the_end_once_it_ended():
    followed = [line("38.1", "t1", "one"), line("38.2", "t2", "other"), line("38.3", "t1", "two")]
    # the last read begins where the followed one stopped: "two" again, then the last line
    last = [line("38.3", "t1", "two"), line("38.4", "t1", "last words")]
    manager = FakeManager(running=[True, False], logs=[followed, last])
    log = _TaskLog(manager, "s1", "t1", None)  # type: ignore[arg-type]
    got = [piece for lines in log for piece in lines]
    assert got == [
        b"2026-12-05T07:19:38.1Z one",
        b"2026-12-05T07:19:38.3Z two",
        b"2026-12-05T07:19:38.4Z last words",
    ]
    assert [follow for _, follow in manager.reads] == [True, False]
    assert manager.reads[1][0] is not None  # resumed from the newest stamp read


def test_lines_slightly_out_of_order_within_one_read_are_all_kept():
    lines = [line("38.3", "t1", "stdout"), line("38.2", "t1", "stderr, stamped first")]
    manager = FakeManager(running=[False], logs=[lines])
    got = [piece for read in _TaskLog(manager, "s1", "t1", None) for piece in read]  # type: ignore[arg-type]
    assert len(got) == 2


def _slot(*states: tuple[str, str, int]) -> list[dict[str, Any]]:
    """One slot's tasks, oldest first: (state, desired state, ForceUpdate) each."""
    return [
        {
            "ID": f"t{n}",
            "ServiceID": "s1",
            "Slot": 1,
            "CreatedAt": f"2026-12-05T10:00:0{n}.000000000Z",
            "DesiredState": desired,
            "Spec": {"ForceUpdate": force},
            "Status": {"State": state, "Timestamp": f"2026-12-05T10:00:0{n}.500000000Z"},
        }
        for n, (state, desired, force) in enumerate(states)
    ]


def _creates(history: list[dict[str, Any]], made: Made | None = None) -> list[str]:
    """The tasks a poll says a person created (and started, if it runs already)."""
    names = {"s1": "app_web"}
    _, before = task_events("app", names, {}, history[:-1])
    events, _ = task_events("app", names, before, history, made)
    created = [e["id"] for e in events if e["Action"] == "create"]
    started = [e["id"] for e in events if e["Action"] == "start"]
    assert started in ([], created) or not created, events
    return created


def test_a_task_is_a_persons_create_unless_swarm_or_the_controller_made_it():
    crashed = _slot(("failed", "shutdown", 0), ("ready", "running", 0))
    assert _creates(crashed) == []  # swarm's restart policy at work: no fresh budget
    # a person's update (the slot's task shut down on purpose), seen already running
    updated = _slot(("shutdown", "shutdown", 0), ("running", "running", 1))
    assert _creates(updated) == ["t1"]
    # the same forced update made by the controller: its task's start is no person's
    ours = Made(forced=frozenset({("s1", 1)}))
    assert _creates(updated, ours) == []
    _, before = task_events("app", {"s1": "app_web"}, {}, updated[:-1])
    events, _ = task_events("app", {"s1": "app_web"}, before, updated, ours)
    assert [e["Action"] for e in events] == ["restart"]
    # a person's deploy after the controller's forced update keeps its counter
    redeployed = _slot(("shutdown", "shutdown", 1), ("new", "running", 1))
    assert _creates(redeployed, Made(forced=frozenset({("s1", 1)}))) == ["t1"]
    # a slot the controller's scale added (created after it) and one a person's added
    scaled = _slot(("assigned", "running", 0))
    at = 1_796_464_800_000_000_000  # 2026-12-05T10:00:00Z
    assert _creates([{"ID": "x", "ServiceID": "s1", "Slot": 2}, *scaled]) == ["t0"]
    ours = Made(added={("s1", 1): at})
    assert _creates([{"ID": "x", "ServiceID": "s1", "Slot": 2}, *scaled], ours) == []
    later = Made(added={("s1", 1): at + 10**10})
    assert _creates([{"ID": "x", "ServiceID": "s1", "Slot": 2}, *scaled], later) == ["t0"]


def _container_event(task_id: str, action: str, **extra: str) -> dict[str, Any]:
    """A node engine's container event of a task of the ``obs`` stack."""
    attributes = {
        "com.docker.stack.namespace": "obs",
        "com.docker.swarm.service.name": "obs_ticker",
        "com.docker.swarm.task.id": task_id,
        **extra,
    }
    return {
        "Type": "container",
        "Action": action,
        "id": "c0ffee",
        "Actor": {"ID": "c0ffee", "Attributes": attributes},
        "timeNano": 1_796_464_800_500_000_000,
    }


def test_a_death_the_node_saw_first_shows_before_the_manager_knows_it():
    (ticker, _) = sorted(by_service("deployed")["ticker"], key=lambda c: c.number)
    died = sighted(_container_event(ticker.id, "die", exitCode="137"), None)
    assert died == Sighting(died_at="2026-12-05T10:00:00.500000+00:00", exit_code=137)
    found = slot_snapshots("obs", services(), tasks("deployed"), NODES, sightings={ticker.id: died})
    (seen,) = [c for c in found.snapshots if c.id == ticker.id]
    assert (seen.status, seen.exit_code) == (ContainerState.EXITED, 137)
    assert engine_ns(seen.finished_at) == 1_796_464_800_500_000_000
    # an OOM kill, which a task never says, stays once the manager knows of the death
    oom = sighted(_container_event(ticker.id, "oom"), died)
    assert oom is not None and oom.oom
    assert seen_on_node(replace(seen, status=ContainerState.EXITED), oom).oom_killed


def test_a_task_swarm_is_stopping_on_purpose_is_not_read_dead_from_its_node():
    (ticker, _) = sorted(by_service("deployed")["ticker"], key=lambda c: c.number)
    moment = tasks("deployed")
    for task in moment:
        if task["ID"] == ticker.id:
            task["DesiredState"] = "shutdown"  # a scale down or an update's old task
    died = Sighting(died_at="2026-12-05T10:00:00+00:00", exit_code=143)
    found = slot_snapshots("obs", services(), moment, NODES, sightings={ticker.id: died})
    assert all(c.exit_code != 143 for c in found.snapshots)


def test_failed_checks_the_node_saw_show_on_a_running_task_until_a_check_passes():
    everywhere = by_service("deployed")["everywhere"][0]
    failed = _container_event(everywhere.id, "exec_die", exitCode="1")
    assert needs_health(failed, None)
    # the node engine's own inspect: one check failed, not yet its verdict
    failing = replace(everywhere, failing_streak=1, failing_since="2026-12-05T10:00:00Z")
    sighting = sighted(failed, None, failing)
    assert sighting is not None
    seen = seen_on_node(everywhere, sighting)
    assert (seen.health, seen.failing_streak) == (Health.HEALTHY, 1)
    # the verdict, then a passing check (asked for only while checks were failing)
    unhealthy = replace(failing, health=Health.UNHEALTHY, failing_streak=3)
    verdict = sighted(
        _container_event(everywhere.id, "health_status: unhealthy"), sighting, unhealthy
    )
    assert verdict is not None and seen_on_node(everywhere, verdict).health is Health.UNHEALTHY
    passed = _container_event(everywhere.id, "exec_die", exitCode="0")
    assert needs_health(passed, verdict) and not needs_health(passed, None)
    # Swarm kills it: its death reads unhealthy, as the manager will say, not a crash
    killed = sighted(_container_event(everywhere.id, "die", exitCode="143"), verdict)
    assert killed is not None
    dead = seen_on_node(everywhere, killed)
    assert (dead.status, dead.health, dead.exit_code) == ("exited", Health.UNHEALTHY, 143)
    assert "unhealthy container" in dead.error
    healed = sighted(passed, verdict, everywhere)
    assert healed is not None and seen_on_node(everywhere, healed).failing_streak == 0
    # what says nothing of a task's run is no sighting, nor a container of no task
    assert sighted(_container_event(everywhere.id, "exec_start"), None) is None
    assert sighted(_container_event("", "die"), None) is None


def test_a_node_engines_container_event_is_a_hint_about_its_task():
    hint = local_hint("obs", _container_event("t1", "die", exitCode="1"))
    assert hint is not None and hint["id"] == "t1" and hint["Actor"]["ID"] == "t1"
    assert hint["Actor"]["Attributes"][SERVICE_LABEL] == "ticker"
    assert local_hint("other", _container_event("t1", "die")) is None


NO_NODE = "no suitable node (scheduling constraints not satisfied on 1 node)"


@pytest.mark.parametrize("state", ["new", "pending", "assigned", "preparing", "ready"])
def test_a_task_swarm_has_not_started_is_its_work_in_progress_with_its_state(state: str):
    task = copy.deepcopy(next(t for t in tasks("replaced") if t["Status"]["State"] == "running"))
    task["Status"] = {"State": state, "Err": NO_NODE if state == "pending" else ""}
    task["DesiredState"] = "running"
    (found,) = slot_snapshots("obs", services(), [task], NODES).snapshots
    assert (found.status, found.pending) == (ContainerState.CREATED, state)
    assert found.error == (NO_NODE if state == "pending" else "")


def test_a_slot_waiting_out_its_restart_delay_shows_the_death_not_swarms_work():
    restarting = slot_snapshots("obs", services(), tasks("restarting"), NODES).snapshots
    assert [c.pending for c in restarting] == [""] * len(restarting)
    assert any(c.status == ContainerState.RESTARTING for c in restarting)


def test_the_replicas_each_service_of_the_stack_keeps_and_how_to_deploy_it():
    assert replicas_of("obs", services(ticker_replicas=0)) == {
        "missing": 1,
        "crasher": 1,
        "everywhere": None,  # global
        "sick": 1,
        "ticker": 0,  # docker service scale obs_ticker=0
    }
    assert replicas_of("elsewhere", services()) == {}
    assert deploy_command("obs", [Path("/srv/my stack/stack.yaml")]) == (
        "docker stack deploy -c '/srv/my stack/stack.yaml' obs"
    )


def test_a_task_swarm_has_not_started_has_no_start_and_its_first_is_not_a_restart():
    # a scale's new task, seen before it starts, then running: the same run (a proof
    # that recorded it waiting must not read its first start as a death and a restart)
    moment = tasks("replaced")
    task = copy.deepcopy(next(t for t in moment if t["Status"]["State"] == "running"))
    task["Status"], task["DesiredState"] = {"State": "assigned"}, "running"
    (waiting,) = slot_snapshots("obs", services(), [task], NODES).snapshots
    assert waiting.started_at == ""
    task["Status"] = {"State": "running", "Timestamp": "2026-12-05T10:00:01.000000000Z"}
    (running,) = slot_snapshots("obs", services(), [task], NODES).snapshots
    began = datetime(2026, 12, 5, 10, tzinfo=UTC)
    step = StepRecord(
        action=Action.START,
        label="start",
        started_at=began,
        until=began,
        instances=[instance(waiting)],
    )
    assert new_fault(step, [running]) is None
    # a later start of the same task's container is a restart
    restarted = replace(running, started_at="2026-12-05T10:00:09.000000000Z")
    step = step.model_copy(update={"instances": [instance(running)]})
    assert new_fault(step, [restarted]) is not None


SERVICE = {
    "ID": "svc1",
    "Spec": {
        "Name": "obs_crash",
        "Labels": {"com.docker.stack.namespace": "obs"},
        "Mode": {"Replicated": {"Replicas": 1}},
    },
}


def task(n: int, state: str, desired: str, code: int | None = None) -> dict[str, Any]:
    """A task of slot 1 of ``obs_crash`` as the manager's ``api.tasks`` returns it (the
    fields the listing reads), created ``n`` seconds into the minute."""
    status: dict[str, Any] = {
        "Timestamp": f"2026-12-05T17:30:{n:02d}.5Z",
        "State": state,
        "Message": state,
    }
    if code is not None:
        status["ContainerStatus"] = {"ContainerID": f"c{n}", "PID": 0, "ExitCode": code}
    if code:
        status["Err"] = f"task: non-zero exit ({code})"
    return {
        "ID": f"t{n:02d}",
        "Version": {"Index": n},
        "CreatedAt": f"2026-12-05T17:30:{n:02d}Z",
        "ServiceID": "svc1",
        "Slot": 1,
        "NodeID": "node1",
        "Spec": {"ContainerSpec": {"Image": "cc-busybox:1", "Labels": {}}},
        "Status": status,
        "DesiredState": desired,
    }


def test_the_count_begins_again_after_a_persons_forced_update_and_carries_on_from_there():
    """A crash loop (``sh -c 'sleep 1; exit 3'``, condition any) and a person's
    ``docker service update --force`` in its restart delay, as a one-node swarm recorded
    it: the task waiting to start is shut down (``ready`` while its desired state is
    ``shutdown``, then ``shutdown``), the new task loops on."""
    failed = [task(n, "failed", "shutdown", 3) for n in range(1, 4)]
    moments = [
        [*failed, task(4, "ready", "ready")],  # restarting: 3 deaths
        [*failed, task(4, "ready", "shutdown"), task(5, "pending", "ready")],  # the update
        [*failed, task(4, "shutdown", "shutdown", 0), task(5, "running", "running", 0)],
        # the new task died; the oldest task fell out of the history (5 kept)
        [
            *failed[1:],
            task(4, "shutdown", "shutdown", 0),
            task(5, "failed", "shutdown", 3),
            task(6, "ready", "ready"),
        ],
        # and again, a bit later: the shutdown task fell out too; the count carries on
        [
            task(5, "failed", "shutdown", 3),
            task(6, "failed", "shutdown", 3),
            task(7, "failed", "shutdown", 3),
            task(8, "failed", "shutdown", 3),
            task(9, "running", "running", 0),
        ],
    ]
    counts: dict[str, SlotCount] = {}
    seen = []
    for tasks_now in moments:
        found = slot_snapshots("obs", [SERVICE], tasks_now, {"node1": "n1"}, counts)
        counts = found.counts
        ((slot,),) = [found.snapshots]
        seen.append((slot.id, slot.status, slot.restart_count))
    assert seen == [
        ("t03", ContainerState.RESTARTING, 3),
        ("t05", ContainerState.CREATED, 3),  # the old task not shut down yet: unchanged
        ("t05", ContainerState.RUNNING, 0),  # the update began a new count
        ("t05", ContainerState.RESTARTING, 1),
        ("t09", ContainerState.RUNNING, 4),  # the bound gone: the update's 1, 3 new
    ]


def test_a_task_killed_as_unhealthy_that_exited_0_is_unhealthy_by_its_nodes_word():
    # Swarm stopped it with SIGTERM after its node called it unhealthy; the process
    # exited 0, and the task ends ``complete`` with no error: only the node knows
    ended = task(10, "complete", "shutdown", 0)
    replacement = task(12, "ready", "running")
    verdict = Sighting(health=Health.UNHEALTHY, failing_streak=3)
    died = sighted(_container_event("t10", "die", exitCode="0"), verdict)
    assert died is not None
    found = slot_snapshots("obs", [SERVICE], [ended, replacement], {}, sightings={"t10": died})
    (shown,) = found.snapshots
    assert (shown.id, shown.health) == ("t10", Health.UNHEALTHY)
    assert "unhealthy container" in shown.error
    # without the node's word it is a death like any other
    (plain,) = slot_snapshots("obs", [SERVICE], [ended, replacement], {}).snapshots
    assert plain.health is None and plain.error == ""


@pytest.mark.timeout(20)
def test_closing_the_events_ends_every_node_follower(monkeypatch):
    # the watcher reopens the events on every break: the old followers must end, the one
    # reading an open stream, the one waiting to retry and the one still connecting
    monkeypatch.setattr(swarm_module, "NODE_RETRY_SECONDS", 60.0)
    connecting = threading.Event()
    released = threading.Event()

    class Nodes(FakeNodes):
        def local_events(self, project: str, node: str | None = None) -> FakeStream:
            if node == "n4":  # an engine slow to answer: returns after the close
                connecting.set()
                released.wait(10)
                return Open()
            return super().local_events(project, node)

    streams: list[FakeStream | EngineError] = [Open(), EngineError("n3: refused")]
    engine = Nodes(streams)
    events = _SwarmEvents(engine, "obs", Open(), 60.0, None, ["n2", "n3", "n4"])  # type: ignore[arg-type]
    followers = [t for t in events._threads if t.name.startswith("swarm-node-")]
    assert connecting.wait(10)
    events.close()
    released.set()
    for thread in followers:
        thread.join(10)
    assert [t.name for t in followers if t.is_alive()] == []


def test_an_update_that_replaces_a_slot_swarm_gave_up_on_begins_a_new_count():
    """A crash loop whose restart policy gave up (``max_attempts``: no task runs, so none
    is shut down) and then a deploy of the fix, as a one-node swarm recorded it: the fixed
    task's count is of its own spec's deaths, not the old spec's (the controller's verdict
    on the update read them as the fix dying: a rollback to the crash)."""
    failed = [task(n, "failed", "shutdown", 3) for n in range(1, 3)]
    fixed = task(3, "running", "running", 0)
    fixed["Spec"] = {"ContainerSpec": {"Image": "cc-busybox:2", "Labels": {}}}
    counts: dict[str, SlotCount] = {}
    seen = []
    for tasks_now in ([*failed], [*failed, fixed]):
        found = slot_snapshots("obs", [SERVICE], tasks_now, {"node1": "n1"}, counts)
        counts = found.counts
        ((slot,),) = [found.snapshots]
        seen.append((slot.id, slot.restart_count))
    assert seen == [("t02", 1), ("t03", 0)]
