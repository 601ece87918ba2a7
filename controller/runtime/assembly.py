"""The composition root: every part of one controller built here, once, and connected.

Each part takes what it works with as required arguments; nothing builds its own
collaborators, and no callback defaults to doing nothing. Where a part must call one
built after it (the log pipeline asks for a pass, the scheduler runs it) it gets a
``Wire`` that is connected at the end: an unconnected wire fails at its first call.
``build_remediation`` is the remediation side of the graph, also used by tests that
drive it without an engine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from prometheus_client import CollectorRegistry

from controller.foresight.learning import Learning
from controller.foresight.statefile import ForesightFile
from controller.foresight.trends import Trends
from controller.issues.saver import DebouncedSaver
from controller.issues.store import IssueStore, SyncResult
from controller.logflow import LogPipeline
from controller.metrics import Metrics, StateCollector, StateView
from controller.model import (
    Clock,
    ComposeProject,
    ContainerSnapshot,
    DesiredState,
    ObservedState,
    StackView,
    SwarmPause,
)
from controller.notify import Notifier
from controller.observe.compose_cli import ComposeCli
from controller.observe.compose_model import ConfigHashes, HashSource
from controller.observe.engine import DockerEngine
from controller.observe.events import EventWatcher
from controller.observe.gateway import EngineGateway
from controller.observe.informer import ContainerCache
from controller.observe.observer import Observer
from controller.observe.probes import Prober
from controller.observe.swarm import SwarmEngine
from controller.observe.swarmtasks import deploy_command
from controller.observe.usage import UsageSampler
from controller.remediate.changes import ChangeWatch
from controller.remediate.deference import Deference
from controller.remediate.failures import FailureBackoff
from controller.remediate.keeper import Keeper, SnapshotCompose
from controller.remediate.lastgood import LastGood
from controller.remediate.nodes import NodeWatch
from controller.remediate.pool import WorkerPool
from controller.remediate.proving import Prover
from controller.remediate.queue import WorkQueue
from controller.remediate.reconciler import Reconciler
from controller.remediate.records import Records
from controller.remediate.revert import DeclaredModel, RevertCompose, Reverter
from controller.remediate.runner import StepRunner
from controller.remediate.signals import Signals
from controller.remediate.strategies import Actuator, ComposeActions
from controller.remediate.swarmops import Operations
from controller.remediate.swarmsteps import StackControl, SwarmActuator
from controller.remediate.swarmverdict import SwarmVerdicts
from controller.remediate.throttle import ThrottleRules
from controller.runtime.controller import Controller
from controller.runtime.declared import Declared
from controller.runtime.parts import Parts, Remediation
from controller.runtime.reload import Reloader
from controller.runtime.settings import Settings, load
from controller.runtime.statefiles import Outlook, StateFiles
from controller.runtime.wires import Wire
from controller.scheduling import PassScheduler


class Compose(ComposeActions, SnapshotCompose, RevertCompose, Protocol):
    """Everything remediation asks of Compose (``ComposeCli``; the fake world in tests)."""


def build_remediation(
    *,
    desired: Callable[[], DesiredState],
    store: IssueStore,
    observe: Callable[[], ObservedState],
    gateway: EngineGateway,
    compose: Compose,
    declared: DeclaredModel,
    snapshots: Path,
    metrics: Metrics,
    rules: Callable[[], ThrottleRules],
    clock: Clock,
    max_agents: int,
    dry_run: bool,
    blip: float,
    save_now: Callable[[], None],
    on_change: Callable[[bool], None],
    settle_logs: Callable[[Sequence[ContainerSnapshot], float], bool],
    stack: StackControl | None = None,
) -> Remediation:
    """The remediation side of one controller; ``desired``: the desired state in force
    (``Declared.current``), read at each use; ``snapshots``: where last-good snapshots are
    kept; ``stack``: the swarm manager, where the project is a stack (``--engine swarm``)."""
    records = Records(rules, clock)
    lastgood = LastGood(clock)
    reverter = Reverter(
        lastgood=lastgood,
        compose=compose,
        gateway=gateway,
        declared=declared,
        metrics=metrics,
        clock=clock,
    )
    parts = (
        gateway,
        compose,
        lambda: desired().services,
        observe,
        lambda: desired().remediation.hook,
        reverter,
    )
    actuator = (
        Actuator(*parts) if stack is None else SwarmActuator(stack, desired().project, *parts)
    )
    swarm = None if stack is None else _operations(stack, desired)
    verdicts = None if stack is None else SwarmVerdicts(lambda: stack.updates(desired().project))
    runner = StepRunner(
        store=store,
        records=records,
        actuator=actuator,
        reverter=reverter,
        observe=observe,
        metrics=metrics,
        settings=desired().remediation,
        clock=clock,
        save_now=save_now,
        on_change=on_change,
    )
    reconciler = Reconciler(
        desired=desired,
        store=store,
        records=records,
        lastgood=lastgood,
        reverter=reverter,
        observe=observe,
        prover=Prover(
            store=store,
            records=records,
            reverter=reverter,
            metrics=metrics,
            clock=clock,
            on_change=on_change,
        ),
        deference=Deference(
            store=store,
            records=records,
            clock=clock,
            operation_timeout=lambda: desired().remediation.operation_timeout,
            on_change=on_change,
        ),
        runner=runner,
        clock=clock,
        dry_run=dry_run,
        blip=blip,
        settle_logs=settle_logs,
        on_change=on_change,
        paused=None if swarm is None else swarm.paused,
        watching=None if verdicts is None else verdicts.pending,
    )
    pool = WorkerPool(reconciler, WorkQueue(FailureBackoff()), max_agents)
    signals = Signals(desired=desired, records=records, store=store, pool=pool)
    changes = ChangeWatch(
        desired=desired,
        lastgood=lastgood,
        records=records,
        store=store,
        keeper=Keeper(
            compose=compose,
            gateway=gateway,
            project=desired().compose,  # a restart applies a new one (desired.reloadable)
            directory=snapshots,
            clock=clock,
        ),
        reverter=reverter,
        declared=declared,
        metrics=metrics,
        clock=clock,
        dry_run=dry_run,
        swarm=swarm,
        verdicts=verdicts,
        rolled=None if stack is None else _rolled(stack, desired),
    )
    nodes = NodeWatch(store)
    return Remediation(records, lastgood, pool, reconciler, runner, signals, changes, nodes)


def _operations(stack: StackControl, desired: Callable[[], DesiredState]) -> Operations:
    """The updates Swarm paused of the stack's services, and the operations that made them,
    read from the manager."""
    return Operations(
        lambda service: stack.paused(desired().project, service),
        lambda: stack.updates(desired().project),
    )


def _rolled(
    stack: StackControl, desired: Callable[[], DesiredState]
) -> Callable[[str], SwarmPause | None]:
    """The rollback Swarm completed of a service of the stack, read from the manager."""
    return lambda service: stack.rolled_back(desired().project, service)


class Manager(StackControl, Protocol):
    """A swarm manager: the steps it carries out, and what it keeps of a stack
    (``SwarmEngine``; tests give a fake of it)."""

    def stack_view(self, project: str, deploy: str) -> StackView: ...


def _stack_view(swarm: Manager, compose: ComposeProject) -> Callable[[], StackView]:
    """What the manager keeps of the stack, read at each observation."""
    deploy = deploy_command(compose.name, compose.files)
    return lambda: swarm.stack_view(compose.name, deploy)


def assemble(
    settings: Settings,
    desired: DesiredState,
    *,
    gateway: EngineGateway | None = None,
    compose: Compose | None = None,
    hashes: HashSource | None = None,
    manager: Manager | None = None,
    registry: CollectorRegistry | None = None,
    reload_from: Callable[[], DesiredState] | None = None,
    clock: Clock,
) -> Controller:
    """One controller for ``desired``; the engine, Compose, the swarm manager (with
    ``--engine swarm``), the registry and where a reload reads the desired state from
    (``settings.load``) are the real ones unless given (tests give fakes of our own
    gateway, Compose and manager: a ``manager`` makes the project a stack)."""
    registry = registry if registry is not None else CollectorRegistry()
    engine = (
        SwarmEngine(node_engines=settings.node_engines)
        if gateway is None and settings.engine == "swarm"
        else None
    )
    gateway = gateway if gateway is not None else engine or DockerEngine()
    swarm: Manager | None = manager if manager is not None else engine
    compose_cli = compose if compose is not None else ComposeCli(desired.compose)
    declared = Declared(desired)  # what a reload swaps; the parts that decide read it
    request_pass: Wire[[], None] = Wire("request a pass")
    save: Wire[[bool], None] = Wire("save the state files")
    on_findings: Wire[[SyncResult], None] = Wire("log findings recorded")
    use: Wire[[DesiredState], list[str]] = Wire("put a reloaded desired state in force")
    metrics = Metrics(registry, desired.env)
    store = IssueStore(desired.env, clock, on_resolved=metrics.recovered)
    prober = Prober(gateway, desired.services, lambda service: request_pass(), clock)
    cache = ContainerCache(gateway, desired.project, wall=clock)  # fed by events
    model = ConfigHashes(
        hashes if hashes is not None else ComposeCli(desired.compose),
        (*desired.compose.files, *desired.compose.env_files),
    )
    model.warm()  # while the rest is built: a first step (a start) asks for the model
    observer = Observer(
        gateway,
        desired.project,
        clock,
        prober.view,
        model.for_containers,
        cache=cache,
        stack=None if swarm is None else _stack_view(swarm, desired.compose),
    )
    learning = Learning(
        detection=desired.detection, store=store, clock=clock, on_change=on_findings
    )
    trends = Trends(
        desired=declared.current,
        store=store,
        metrics=metrics,
        clock=clock,
        on_change=on_findings,
        errors=learning.error_counts,
    )
    logs = LogPipeline(
        gateway=gateway,
        store=store,
        settings=desired.detection,
        metrics=metrics,
        on_findings=on_findings,
        on_sightings=learning.sightings,
        desired=declared.current,
    )

    def changed(finished: bool) -> None:
        save(False)
        if finished:
            request_pass()

    remediation = build_remediation(
        desired=declared.current,
        store=store,
        observe=observer.observe,
        gateway=gateway,
        compose=compose_cli,
        declared=DeclaredModel(
            model.current,
            model.image_of,
            model.builds,
            lambda image: gateway.image(image) is not None,
        ),
        snapshots=settings.state_dir / "lastgood",
        metrics=metrics,
        rules=lambda: ThrottleRules.of(declared.current().remediation, not settings.once),
        clock=clock,
        max_agents=settings.max_agents,
        dry_run=settings.dry_run,
        blip=settings.blip_seconds,
        save_now=lambda: save(True),
        on_change=changed,
        settle_logs=logs.settle_containers,
        stack=swarm,
    )
    metrics.declare(desired.services, desired.detection.patterns)
    notifier = Notifier(
        desired.notify, desired.env, metrics.notified, metrics.notification_took, clock
    )
    scheduler = PassScheduler(
        lambda: controller.scheduled_pass(),
        settings.interval_active,
        settings.interval_quiet,
        model.changed_on_disk,
    )
    files = StateFiles(
        state_dir=settings.state_dir,
        env=desired.env,
        project=desired.project,
        dry_run=settings.dry_run,
        store=store,
        records=remediation.records,
        lastgood=remediation.lastgood,
        cursors=logs.reader.cursors,
        evidence=lambda issues: controller.evidence(issues),
        outlook=Outlook(trends.views, learning.summary, lambda: trends.rounds),
        clock=clock,
    )
    parts = Parts(
        gateway=gateway,
        registry=registry,
        metrics=metrics,
        store=store,
        records=remediation.records,
        remediation=remediation,
        prober=prober,
        cache=cache,
        observer=observer,
        logs=logs,
        notifier=notifier,
        scheduler=scheduler,
        files=files,
        saver=DebouncedSaver(lambda: save(False)),
        events=EventWatcher(
            gateway,
            desired.project,
            lambda *event: controller.on_event(*event),
            lambda up: controller.on_event_stream(up),
            cache.event,
        ),
        sampler=UsageSampler(
            gateway,
            desired.project,
            desired.predict,
            trends.on_round,
            trends.due,
            trends.disk_due,
            clock,
        ),
        trends=trends,
        learning=learning,
        foresight=ForesightFile(
            state_dir=settings.state_dir,
            env=desired.env,
            trends=trends,
            learning=learning,
            clock=clock,
        ),
        reloader=Reloader(
            load=reload_from if reload_from is not None else lambda: load(settings),
            current=declared.current,
            use=use,
            metrics=metrics,
            clock=clock,
        ),
    )
    controller = Controller(settings, declared, parts, clock)
    registry.register(
        StateCollector(
            desired.env,
            StateView(
                issues=store.issues,
                services=store.services,
                queue_depth=lambda: remediation.pool.queue.depth,
                workers_busy=lambda: remediation.pool.busy,
                workers_max=settings.max_agents,
                records=remediation.records.snapshot,
                rollback=remediation.lastgood.snapshot,
                clock=clock,
                trends=trends.views,
                learned=learning.learned_counts,
            ),
        )
    )
    request_pass.connect(controller.request_pass)
    save.connect(controller.save)
    on_findings.connect(controller.on_findings)
    use.connect(controller.use)
    return controller
