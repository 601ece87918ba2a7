"""Foresight on a fake of our gateway: samples to trends to predicted issues, what the
document, the report and the metrics say of them, the state file, and the restart a
service may declare before exhaustion. The controller is built by the composition root;
a test takes each pass and each round of samples by hand on a fake clock."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

from prometheus_client import CollectorRegistry

from controller.issues.report import render_markdown
from controller.model import (
    Category,
    DesiredState,
    FindingKind,
    IssueSource,
    IssueState,
    PredictSettings,
    PreemptAction,
    QuietWindow,
    RemediationSettings,
    ServicePredict,
    Severity,
    Sighting,
)
from controller.runtime import Controller, Settings, assemble
from tests.fakes import FakeClock, FakeWorld, desired, spec

MIB = 1024 * 1024
FAST = PredictSettings(interval=5.0, min_history=60.0, window=1800.0)


class Rig:
    def __init__(self, tmp_path: Path, world: FakeWorld, state: DesiredState) -> None:
        self.world, self.clock, self.tmp_path = world, FakeClock(), tmp_path
        self.registry = CollectorRegistry()
        self.controller: Controller = assemble(
            Settings(env="dev", state_dir=tmp_path, shutdown_timeout=5.0),
            state,
            gateway=world,
            compose=world,
            hashes=world,
            registry=self.registry,
            clock=self.clock,
        )
        self.controller.restore()

    def rounds(self, count: int, step: float = 5.0, each=None) -> None:  # type: ignore[no-untyped-def]
        """``count`` rounds of samples ``step`` seconds apart, a pass before each."""
        for n in range(count):
            if each is not None:
                each(n)
            self.controller.run_pass(submit=False)
            self.controller.parts.sampler.run_once()
            self.clock.advance(step)

    def issue(self, fingerprint: str):  # type: ignore[no-untyped-def]
        return self.controller.store.get(fingerprint)

    def metric(self, name: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(name, {"env": "dev", **labels})


def leaky(tmp_path: Path, **predict: object) -> tuple[Rig, FakeWorld]:
    world = FakeWorld()
    world.run("web")
    world.memory_limit["web"] = 256 * MIB
    state = replace(
        desired(spec("web", predict=ServicePredict(**predict))),  # type: ignore[arg-type]
        predict=FAST,
    )
    return Rig(tmp_path, world, state), world


def leak(world: FakeWorld, rate_mib: float = 1.0, base_mib: float = 20.0):  # type: ignore[no-untyped-def]
    def each(n: int) -> None:
        world.memory["web"] = int((base_mib + rate_mib * 5 * n) * MIB)

    return each


def test_a_leak_opens_a_predicted_issue_that_says_when_and_what_happens(tmp_path):
    rig, world = leaky(tmp_path)
    rig.rounds(14, each=leak(world))  # 65 s of history at 1 MiB/s: 170 s left
    issue = rig.issue("predict:web:memory")
    assert issue is not None and issue.state is IssueState.OPEN
    assert issue.source is IssueSource.PREDICT and issue.kind is FindingKind.PREDICTED
    assert issue.category is Category.PREDICTED and issue.blocking is False
    assert issue.severity is Severity.CRITICAL  # within the critical horizon (15 min)
    assert issue.title.startswith("at this rate web reaches its 256 MiB memory limit in about ")
    assert issue.title.endswith("min (OOM kill)")
    assert issue.pattern_id == "predicted-memory"
    forecast = issue.forecast
    assert forecast is not None and forecast.limit == 256 * MIB
    assert math.isclose(forecast.fit.slope_per_second, MIB, rel_tol=0.01)
    assert 150 < forecast.seconds_left < 190 and forecast.fit.z > 2.33
    assert len(forecast.samples) == 14
    left = rig.metric(
        "compose_controller_resource_exhaustion_seconds", service="web", resource="memory"
    )
    assert left is not None and 150 < left < 190
    ratio = rig.metric("compose_controller_resource_usage_ratio", service="web", resource="memory")
    assert ratio is not None and 0.2 < ratio < 0.4
    assert rig.metric("compose_controller_usage_samples_total", result="ok") == 14
    assert (rig.metric("compose_controller_usage_sampling_cpu_seconds_total") or 0) > 0


def test_the_document_and_the_report_carry_the_forecast_and_the_suggested_limit(tmp_path):
    rig, world = leaky(tmp_path)
    rig.rounds(14, each=leak(world))
    doc = rig.controller.document()
    (issue,) = [i for i in doc["issues"] if i["kind"] == "predicted"]
    assert issue["forecast"]["fit"]["method"].startswith("maxima of")
    assert issue["forecast"]["samples"][0][1] == 20 * MIB
    (memory,) = [t for t in doc["trends"] if t["resource"] == "memory"]
    assert memory["trend"] == "rising" and memory["suggested_limit"] == 185 * MIB
    report = render_markdown(doc)
    assert "## Resources" in report and "| web | memory | 85 MiB | 256 MiB (its limit) |" in report
    assert "185 MiB |" in report  # the VPA formula on the 85 MiB peak
    assert "at this rate web reaches its 256 MiB memory limit" in report


def test_the_forecast_resolves_when_the_trend_turns(tmp_path):
    rig, world = leaky(tmp_path)
    rig.rounds(14, each=leak(world))
    assert rig.issue("predict:web:memory").state is IssueState.OPEN

    def freed(n: int) -> None:  # the collector gave it all back, and it holds
        world.memory["web"] = 40 * MIB

    rig.rounds(40, each=freed)
    issue = rig.issue("predict:web:memory")
    assert issue.state is IssueState.RESOLVED
    assert issue.resolution.startswith("the trend turned: memory of web is no longer rising")


def test_a_saw_tooth_opens_nothing(tmp_path):
    rig, world = leaky(tmp_path)

    def saw(n: int) -> None:
        world.memory["web"] = int((60 + 20 * (n % 6)) * MIB)  # 30 s teeth, 60-160 MiB

    rig.rounds(200, each=saw)
    assert [i for i in rig.controller.store.issues() if i.kind is FindingKind.PREDICTED] == []
    left = rig.metric(
        "compose_controller_resource_exhaustion_seconds", service="web", resource="memory"
    )
    assert left == math.inf  # the series exists (alerts and panels see it), not rising


def test_memory_without_a_limit_is_held_against_the_hosts(tmp_path):
    rig, world = leaky(tmp_path)
    world.memory_limit.clear()
    world.host_memory = 300 * MIB
    rig.rounds(14, each=leak(world))
    issue = rig.issue("predict:web:memory")
    assert issue.title.startswith("at this rate web reaches the host's 300 MiB of memory in")
    assert "the kernel's OOM killer" in issue.title


def test_a_volume_filling_toward_its_declared_size_is_forecast(tmp_path):
    world = FakeWorld()
    world.run("db")
    db = spec("db", volumes=("data",), predict=ServicePredict(limits={"volume/data": 256 * MIB}))
    rig = Rig(tmp_path, world, replace(desired(db), predict=FAST))

    def fill(n: int) -> None:
        world.volumes["data"] = int((10 + 5 * n) * MIB)

    rig.rounds(14, each=fill)
    issue = rig.issue("predict:db:volume/data")
    assert issue is not None
    assert issue.title.startswith("at this rate the volume data of db fills its declared 256 MiB")
    assert issue.pattern_id == "predicted-volume"


def test_the_rings_and_what_was_learned_survive_a_restart_of_the_controller(tmp_path):
    rig, world = leaky(tmp_path)
    rig.rounds(8, each=leak(world))  # not yet enough history
    rig.controller.parts.foresight.save()
    saved = json.loads((tmp_path / "docker_foresight_dev.json").read_text())
    assert set(saved["trends"]["histories"]) == {"web-1-id", "service/web"}

    again = Rig(tmp_path, world, rig.controller.desired)
    again.clock.now = rig.clock.now
    again.rounds(6, each=lambda n: leak(world)(8 + n))  # the history goes on
    issue = again.issue("predict:web:memory")
    assert issue is not None and len(issue.forecast.samples) == 14


def test_an_unreadable_state_file_is_kept_aside_and_the_run_starts_afresh(tmp_path):
    (tmp_path / "docker_foresight_dev.json").write_text("{not json")
    rig, world = leaky(tmp_path)
    assert not (tmp_path / "docker_foresight_dev.json").exists()
    assert list(tmp_path.glob("docker_foresight_dev.json.unreadable-*"))
    rig.rounds(14, each=leak(world))
    assert rig.issue("predict:web:memory") is not None


def test_a_declared_restart_waits_for_the_critical_forecast_without_a_window(tmp_path):
    rig, world = leaky(tmp_path, act=PreemptAction.RESTART, warning=3600.0, critical=60.0)
    rig.rounds(14, each=leak(world))
    issue = rig.issue("predict:web:memory")
    assert issue.severity is Severity.MEDIUM and issue.suggested == "restart"
    result = rig.controller.parts.remediation.reconciler.reconcile("web")
    assert "once the forecast is critical" in str(result)
    assert world.actions == []
    rig.rounds(24, each=lambda n: leak(world)(14 + n))  # now within a minute of its limit
    assert rig.issue("predict:web:memory").severity is Severity.CRITICAL
    rig.controller.parts.remediation.reconciler.reconcile("web")
    assert world.actions == [("restart", "demo-web-1")]


def test_a_declared_restart_waits_for_its_quiet_window(tmp_path):
    window = QuietWindow(2 * 60, 3 * 60)  # 02:00-03:00 UTC
    rig, world = leaky(tmp_path, act=PreemptAction.RESTART, window=window)
    rig.clock.now = 1_800_000_000.0 - 1_800_000_000.0 % 86400 + 3600  # 01:00 UTC
    rig.rounds(14, each=leak(world))
    result = rig.controller.parts.remediation.reconciler.reconcile("web")
    assert "RequeueAfter" in type(result).__name__
    assert 3000 < result.seconds < 3600  # type: ignore[attr-defined]
    assert world.actions == []
    plan = rig.controller.document()["issues"][0]["plan"]
    assert plan == "restarts before exhaustion in its quiet window (02:00-03:00 UTC)"
    rig.clock.now += result.seconds  # type: ignore[attr-defined]
    rig.controller.parts.remediation.reconciler.reconcile("web")
    assert world.actions == [("restart", "demo-web-1")]


def test_without_a_declared_action_a_forecast_is_never_acted_on(tmp_path):
    rig, world = leaky(tmp_path)
    rig.rounds(30, each=leak(world))
    assert rig.issue("predict:web:memory").severity is Severity.CRITICAL
    assert rig.controller.store.actionable() == {}
    rig.controller.parts.remediation.reconciler.reconcile("web")
    assert world.actions == []


def test_a_runbook_for_the_predicted_pattern_is_what_runs(tmp_path):
    from controller.model import Runbook, RunbookStep, StepKind

    world = FakeWorld()
    world.run("web")
    world.memory_limit["web"] = 256 * MIB
    flush = Runbook(
        "flush-cache",
        "predicted-memory",
        RunbookStep(StepKind.EXEC, argv=("flush",), service="web"),
    )
    state = replace(
        desired(spec("web"), remediation=RemediationSettings(log_quiet=0.0, runbooks=(flush,))),
        predict=FAST,
    )
    rig = Rig(tmp_path, world, state)
    rig.rounds(14, each=leak(world))
    assert rig.issue("predict:web:memory").suggested == "runbook"
    rig.controller.parts.remediation.reconciler.reconcile("web")
    assert world.actions == [("exec", "demo-web-1: flush")]


def test_restarts_and_error_like_records_are_each_services_rates_never_forecasts(tmp_path):
    rig, world = leaky(tmp_path)
    line = Sighting("web", "demo-web-1", "conn-refused", "conn-refused", "refused", "x", 0.0)

    def each(n: int) -> None:
        world.set("web", restart_count=n // 2)  # Docker restarts it every 10 s
        rig.controller.parts.learning.sightings([line] * 3)  # 3 errors every 5 s

    rig.rounds(20, each=each)
    trends = {t.resource: t for t in rig.controller.parts.trends.views()}
    assert math.isclose(trends["restarts"].slope_per_second, 0.1, rel_tol=0.1)
    assert math.isclose(trends["errors"].slope_per_second, 0.6, rel_tol=0.1)
    assert trends["errors"].seconds_left is None and trends["errors"].limit == 0
    assert rig.issue("predict:web:restarts") is None and rig.issue("predict:web:errors") is None
    report = render_markdown(rig.controller.document())
    assert "| web | errors | 60 | none | rising, toward no known limit; 36 errors/min |" in report
    assert "| web | restarts | 9 | none | rising, toward no known limit; 6 restarts/min |" in report


def test_a_quiet_container_is_sampled_every_quiet_interval_a_moving_one_every_round(tmp_path):
    world = FakeWorld()
    world.run("web")
    world.run("db")
    world.memory_limit["web"] = world.memory_limit["db"] = 256 * MIB
    state = replace(desired(spec("web"), spec("db")), predict=replace(FAST, quiet_interval=60.0))
    rig = Rig(tmp_path, world, state)
    sampled: list[list[str]] = []
    counted = rig.controller.parts.sampler._on_round

    def each(n: int) -> None:
        world.memory["web"] = int((20 + 5 * n) * MIB)  # a leak: moves every round
        world.memory["db"] = 40 * MIB  # quiet

    rig.controller.parts.sampler._on_round = lambda r: (  # type: ignore[method-assign]
        sampled.append(sorted(s.container.service for s in r.samples)),
        counted(r),
    )
    rig.rounds(30, each=each)  # 150 s, a round every 5 s
    db = [n for n, names in enumerate(sampled) if "db" in names]
    assert db[:2] == [0, 1]  # a new run: sampled until it shows it is quiet
    assert len(db) == 2 + 150 // 60  # then once a minute (the quiet interval here)
    assert all("web" in names for names in sampled)  # the leak, every round
    disks = rig.metric("compose_controller_usage_samples_total", result="ok")
    assert disks == 30 + len(db)
