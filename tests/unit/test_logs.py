"""Following logs: every line once, across restarts, recreates and controller restarts."""

from dataclasses import replace

from controller.model import LogBlock, LogLine, ObservedState
from controller.observe.lines import parse_timestamp
from controller.observe.logs import LogReader
from tests.fakes import FakeWorld, container

T0 = 1_800_000_000_000_000_000


def test_docker_timestamps_parse_to_nanoseconds():
    assert parse_timestamp(b"2027-01-15T08:00:00.000000001Z") == T0 + 1
    assert parse_timestamp(b"2027-01-15T08:00:00.5Z") == T0 + 500_000_000
    assert parse_timestamp(b"2027-01-15T08:00:00Z") == T0
    assert parse_timestamp(b"not-a-time") is None


class Lines(list[LogLine]):
    """A reader's sink that keeps what it is sent line by line."""

    def append_block(self, block: LogBlock) -> None:
        self.extend(block.lines())


def read_all(reader: LogReader, world: FakeWorld, sink: Lines) -> list[str]:
    """One sync, then wait for every follower to finish its (finite) fake stream."""
    before = len(sink)
    reader.sync(ObservedState("demo", 0.0, tuple(world.list_containers("demo"))))
    for thread in list(reader._threads.values()):
        thread.join(5)
    return [line.text for line in sink[before:]]


def test_each_line_is_read_once_across_a_restart_of_the_same_container():
    world = FakeWorld()
    world.run("web", status="exited")
    cid = "web-1-id"
    for n in range(3):
        world.print(cid, T0 + n, f"line {n}".encode())
    sink = Lines()
    reader = LogReader(world, sink.append_block)
    assert read_all(reader, world, sink) == ["line 0", "line 1", "line 2"]
    assert read_all(reader, world, sink) == []  # read to its end: not followed again

    # restarted (same id, new start time): the engine keeps its old lines, adds new ones,
    # one of them stamped at the very nanosecond of the last line read
    world.set("web", status="running", started_at="2027-01-15T08:01:00Z")
    world.print(cid, T0 + 2, b"same instant, new line")
    world.print(cid, T0 + 5, b"line 5")
    assert read_all(reader, world, sink) == ["same instant, new line", "line 5"]
    assert world.follows[-1] == (cid, (T0 + 2 - 1000) / 1e9)  # resumed at the cursor


def test_a_recreated_container_is_read_from_its_start():
    world = FakeWorld()
    world.run("web")
    world.print("web-1-id", T0, b"old container")
    sink = Lines()
    reader = LogReader(world, sink.append_block)
    assert read_all(reader, world, sink) == ["old container"]
    world.containers.clear()
    world.containers["web-1-new"] = container("web", id="web-1-new")
    world.print("web-1-new", T0 - 10, b"new container, clock earlier")
    assert read_all(reader, world, sink) == ["new container, clock earlier"]
    assert reader.cursors() == {"web-1-new": T0 - 10}  # the removed container is forgotten


def test_a_restarted_controller_resumes_from_saved_cursors():
    world = FakeWorld()
    world.run("web")
    for n in range(4):
        world.print("web-1-id", T0 + n, f"line {n}".encode())
    first = Lines()
    reader = LogReader(world, first.append_block)
    read_all(reader, world, first)
    saved = reader.cursors()
    world.print("web-1-id", T0 + 9, b"while the controller was down")
    again = Lines()
    restarted = LogReader(world, again.append_block, cursors=saved)
    assert read_all(restarted, world, again) == ["while the controller was down"]


def test_lines_carry_service_container_and_timestamp_and_are_cleaned():
    world = FakeWorld()
    world.run("web")
    world.print("web-1-id", T0, b"\x1b[31mERROR\x1b[0m \xff boom")
    sink = Lines()
    read_all(LogReader(world, sink.append_block), world, sink)
    assert sink == [LogLine("web", "demo-web-1", T0, "ERROR \ufffd boom")]


def test_one_off_containers_are_not_followed():
    world = FakeWorld()
    world.run("web")
    world.containers["web-1-id"] = replace(world.containers["web-1-id"], oneoff=True)
    world.print("web-1-id", T0, b"from docker compose run")
    sink = Lines()
    assert read_all(LogReader(world, sink.append_block), world, sink) == []


def test_a_container_that_died_before_any_pass_is_read_to_its_end_when_asked():
    """A reconcile judging a crash asks for the dead run's last lines: the reader follows
    it then (no pass saw it yet) and says so only once every line of that run is read."""
    world = FakeWorld()
    world.run("web", status="exited")
    world.print("web-1-id", T0, b"ModuleNotFoundError: No module named 'payments_sdk'")
    sink = Lines()
    reader = LogReader(world, sink.append_block)
    (dead,) = world.list_containers("demo")
    assert reader.read_to_end([dead]) is False  # not read yet: followed from now on
    for thread in list(reader._threads.values()):
        thread.join(5)
    assert reader.read_to_end([dead]) is True
    assert [line.text for line in sink] == ["ModuleNotFoundError: No module named 'payments_sdk'"]
    # a new run of the same container is a new end to read to
    again = replace(dead, started_at="2027-01-15T08:01:00Z")
    assert reader.read_to_end([again]) is False


def test_a_run_read_to_its_end_is_announced_by_its_container_name_after_its_last_line():
    world = FakeWorld()
    world.run("web", status="exited", exit_code=1)
    world.print("web-1-id", T0, b"giving up")
    sink = Lines()
    said: list[tuple[str, int]] = []
    reader = LogReader(world, sink.append_block, on_end=lambda name: said.append((name, len(sink))))
    assert read_all(reader, world, sink) == ["giving up"]
    assert said == [("demo-web-1", 1)]  # after its last block went to the sink
