"""The remediator on a fake engine: the ladder, verification, budget, dependencies, dry run."""

import threading
import time

from prometheus_client import CollectorRegistry

from controller.issues.store import IssueStore
from controller.metrics import Metrics
from controller.model import DesiredState, IssueState, Outcome
from controller.observe.observer import Observer
from controller.reconcile import diff
from controller.remediate.policy import RetryPolicy
from controller.remediate.remediator import Remediator
from controller.remediate.strategies import Actuator
from tests.fakes import FakeClock, FakeWorld, desired, spec


class Rig:
    def __init__(self, world: FakeWorld, state: DesiredState, **options: object) -> None:
        self.world, self.state = world, state
        self.clock = FakeClock()
        self.store = IssueStore(state.env, self.clock)
        self.registry = CollectorRegistry()
        self.observer = Observer(world, "demo", self.clock)
        self.remediator = Remediator(
            desired=state,
            store=self.store,
            observe=self.observer.observe,
            actuator=Actuator(world, world),
            policy=RetryPolicy(max_attempts=state.max_attempts),
            metrics=Metrics(self.registry, state.env),
            clock=self.clock,
            wait=self.clock.wait,
            **options,  # type: ignore[arg-type]
        )

    def sync(self) -> None:
        self.store.sync_drifts(diff(self.state, self.observer.observe()), [])

    def fix(self, service: str) -> None:
        self.sync()
        self.remediator.handle(service)

    def issue(self, fingerprint: str):  # type: ignore[no-untyped-def]
        issue = self.store.get(fingerprint)
        assert issue is not None
        return issue


def test_an_exited_service_is_restarted_and_verified():
    world = FakeWorld()
    world.run("web", status="exited", exit_code=137)
    rig = Rig(world, desired(spec("web")))
    rig.fix("web")
    assert world.actions == [("restart", "demo-web-1")]
    issue = rig.issue("drift:web:exited")
    assert issue.state is IssueState.RESOLVED
    assert issue.resolution == "fixed by restart"
    assert issue.attempts[0].outcome is Outcome.SUCCESS
    assert (
        rig.registry.get_sample_value(
            "compose_controller_remediation_actions_total",
            {"env": "dev", "action": "restart", "outcome": "success"},
        )
        == 1
    )


def test_a_missing_service_is_started_with_compose():
    world = FakeWorld()
    rig = Rig(world, desired(spec("web", replicas=2)))
    rig.fix("web")
    assert world.actions == [("up", "web")]
    assert len(world.list_containers("demo")) == 2
    assert rig.issue("drift:web:missing").state is IssueState.RESOLVED


def test_an_unhealthy_service_is_restarted_until_its_healthcheck_passes():
    world = FakeWorld()
    world.healthchecked.add("web")
    world.run("web", health="unhealthy")
    rig = Rig(world, desired(spec("web", check_health=True)))
    rig.fix("web")
    assert world.actions == [("restart", "demo-web-1")]
    assert rig.issue("drift:web:unhealthy").state is IssueState.RESOLVED


def test_a_fix_that_does_not_verify_climbs_the_ladder_then_backs_off():
    world = FakeWorld()
    world.crashing.add("web")
    world.run("web", status="exited", exit_code=1)
    rig = Rig(world, desired(spec("web"), max_attempts=3))
    rig.fix("web")
    assert [a for a, _ in world.actions] == ["restart", "recreate"]
    issue = rig.issue("drift:web:exited")
    assert issue.state is IssueState.FAILED
    assert [a.outcome for a in issue.attempts] == [Outcome.FAILURE, Outcome.FAILURE]
    assert issue.next_attempt_at is not None
    wait = issue.next_attempt_at.timestamp() - rig.clock()
    assert 19 <= wait <= 20  # two failures: the second backoff step, 20 s
    rig.fix("web")  # still backing off: nothing happens
    assert len(world.actions) == 2


def test_a_spent_budget_stops_all_action_and_asks_a_human():
    world = FakeWorld()
    world.crashing.add("web")
    world.run("web", status="exited", exit_code=1)
    rig = Rig(world, desired(spec("web"), max_attempts=3))
    rig.fix("web")
    rig.clock.advance(300)
    rig.fix("web")
    issue = rig.issue("drift:web:exited")
    assert issue.state is IssueState.NEEDS_HUMAN
    assert "budget is 3" in issue.resolution
    rig.clock.advance(3600)
    rig.fix("web")
    assert len(world.actions) == 3  # never more than the budget


def test_a_dependent_waits_for_its_dependency_to_be_ready():
    world = FakeWorld()
    world.run("db", status="exited", exit_code=1)
    rig = Rig(world, desired(spec("db"), spec("web", depends_on=("db",))))
    rig.fix("web")
    assert world.actions == []
    issue = rig.issue("drift:web:missing")
    assert issue.waiting_for == ["db"]
    assert issue.state is IssueState.OPEN
    rig.fix("db")
    rig.fix("web")
    assert world.actions == [("restart", "demo-db-1"), ("up", "web")]


def test_dry_run_changes_nothing_and_records_the_plan():
    world = FakeWorld()
    world.run("web", status="exited", exit_code=1)
    rig = Rig(world, desired(spec("web")), dry_run=True)
    rig.fix("web")
    assert world.actions == []
    issue = rig.issue("drift:web:exited")
    assert issue.state is IssueState.OPEN
    assert issue.plan.startswith(
        "would restart web because web exited with code 1 (attempt 1 of 3)"
    )
    assert issue.attempts == []


def test_a_paused_service_is_left_to_a_human_unless_enforced():
    world = FakeWorld()
    world.run("web", status="paused")
    rig = Rig(world, desired(spec("web")))
    rig.fix("web")
    assert world.actions == []
    issue = rig.issue("drift:web:paused")
    assert issue.state is IssueState.NEEDS_HUMAN
    assert "enforce" in issue.resolution

    enforced = Rig(world, desired(spec("web", enforce=True)))
    enforced.fix("web")
    assert world.actions == [("unpause", "demo-web-1")]


def test_an_engine_error_during_a_fix_is_recorded_as_error():
    world = FakeWorld()
    rig = Rig(world, desired(spec("web")))
    rig.sync()
    world.reachable = False
    rig.remediator.handle("web")  # cannot even observe: nothing is attempted
    assert rig.issue("drift:web:missing").attempts == []
    world.reachable = True
    original_up = world.up

    def failing_up(service, **kw):  # type: ignore[no-untyped-def]
        from controller.observe.gateway import ComposeError

        raise ComposeError("compose up exited 1: no such image")

    world.up = failing_up  # type: ignore[method-assign]
    rig.remediator.handle("web")
    issue = rig.issue("drift:web:missing")
    assert issue.attempts[0].outcome is Outcome.ERROR
    assert "no such image" in issue.attempts[0].detail
    world.up = original_up  # type: ignore[method-assign]


def test_workers_never_exceed_max_agents_nor_share_a_service():
    world = FakeWorld()
    services = [f"s{n}" for n in range(6)]
    for name in services:
        world.run(name, status="exited", exit_code=1)
    lock = threading.Lock()
    in_flight: list[str] = []
    peak = [0]
    original = world.restart

    def slow_restart(container_id: str, timeout: float) -> None:
        service = container_id.split("-")[0]
        with lock:
            assert service not in in_flight
            in_flight.append(service)
            peak[0] = max(peak[0], len(in_flight))
        time.sleep(0.05)  # hold the worker so that others could overlap if allowed
        with lock:
            in_flight.remove(service)
        original(container_id, timeout)

    world.restart = slow_restart  # type: ignore[method-assign]
    rig = Rig(world, desired(*(spec(s) for s in services)), max_agents=2)
    rig.sync()
    rig.remediator.start()
    for name in services:
        rig.remediator.submit(name)
    assert rig.remediator.queue.wait_idle(timeout=30)
    rig.remediator.stop(timeout=5)
    assert 1 <= peak[0] <= 2
    assert all(rig.issue(f"drift:{s}:exited").state is IssueState.RESOLVED for s in services)
