"""EventWatcher: which engine events make a pass come at once."""

from __future__ import annotations

import threading

import pytest

from controller.observe.engine import SERVICE_LABEL
from controller.observe.events import EventWatcher
from tests.fakes import FakeStream, FakeWorld


def event(
    action: str, service: str = "web", nanos: int = 1_800_000_000_250_000_000, **attributes: str
) -> dict[str, object]:
    return {
        "Type": "container",
        "Action": action,
        "Actor": {"ID": "c1", "Attributes": {SERVICE_LABEL: service, **attributes}},
        "time": nanos // 1_000_000_000,
        "timeNano": nanos,
    }


def stamped(*events: dict[str, object]) -> list[tuple[str, str, float | None]]:
    world = FakeWorld()
    seen: list[tuple[str, str, float | None]] = []
    done = threading.Event()
    world.events = lambda project: FakeStream(list(events))  # type: ignore[method-assign]
    watcher = EventWatcher(
        world,
        "demo",
        lambda service, action, at, signal: seen.append((service, action, at)),
        done_once(done),
        lambda *event: None,
    )
    watcher.start()
    assert done.wait(10), "the watcher never finished the stream"
    watcher.stop()
    return seen


def hints(*events: dict[str, object]) -> list[tuple[str, str]]:
    return [(service, action) for service, action, _ in stamped(*events)]


def done_once(done: threading.Event):  # type: ignore[no-untyped-def]
    def on_connection(up: bool) -> None:
        if not up:  # the finished fake stream reads as a lost connection
            done.set()

    return on_connection


def test_state_changes_become_hints_with_their_service():
    assert hints(event("die"), event("health_status: unhealthy", "db")) == [
        ("web", "die"),
        ("db", "health_status"),
    ]


def test_a_failed_exec_is_a_hint_and_healthchecks_that_pass_are_not():
    seen = hints(
        event("exec_create: /bin/sh -c test -f /tmp/healthy"),
        event("exec_start: /bin/sh -c test -f /tmp/healthy"),
        event("exec_die", exitCode="0"),
        event("exec_die", exitCode="1"),
        event("top"),
    )
    assert seen == [("web", "exec_die")]


def test_a_hint_carries_the_engines_time_stamp():
    old = {k: v for k, v in event("die").items() if k != "timeNano"}
    assert [at for _, _, at in stamped(event("die"), old, {"Action": "stop"})] == [
        pytest.approx(1_800_000_000.25, abs=1e-6),
        1_800_000_000.0,  # an engine without timeNano: whole seconds
        None,
    ]


def test_a_kill_carries_the_signal_it_sent():
    world = FakeWorld()
    seen: list[tuple[str, int | None]] = []
    done = threading.Event()
    events = [event("kill", signal="15"), event("kill", signal="9"), event("die")]
    world.events = lambda project: FakeStream(events)  # type: ignore[method-assign]
    watcher = EventWatcher(
        world,
        "demo",
        lambda s, action, at, signal: seen.append((action, signal)),
        done_once(done),
        lambda *event: None,
    )
    watcher.start()
    assert done.wait(10)
    watcher.stop()
    assert seen == [("kill", 15), ("kill", 9), ("die", None)]


def test_a_swarm_managers_service_removal_makes_a_pass_come_at_once():
    removed = {
        "Type": "service",
        "Action": "remove",
        "Actor": {"ID": "s1", "Attributes": {"name": "demo_web", SERVICE_LABEL: "web"}},
        "time": 1_800_000_000,
        "timeNano": 1_800_000_000_000_000_000,
    }
    assert hints(removed) == [("web", "remove")]
