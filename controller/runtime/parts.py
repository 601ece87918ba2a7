"""What one controller is made of, as the composition root (``assembly``) built it.

Two plain bundles, so that the running controller is handed its parts instead of
building them: ``Remediation`` (the records, the rollback records, the worker pool
around the reconciler, the step runner, what passes and events tell them, the change
watch) and ``Parts`` (everything else a pass and the life cycle use, the foresight among
them, and the reload of the desired state).
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry

from controller.foresight.learning import Learning
from controller.foresight.statefile import ForesightFile
from controller.foresight.trends import Trends
from controller.issues.saver import DebouncedSaver
from controller.issues.store import IssueStore
from controller.logflow import LogPipeline
from controller.metrics import Metrics
from controller.notify import Notifier
from controller.observe.events import EventWatcher
from controller.observe.gateway import EngineGateway
from controller.observe.informer import ContainerCache
from controller.observe.observer import Observer
from controller.observe.probes import Prober
from controller.observe.usage import UsageSampler
from controller.remediate.changes import ChangeWatch
from controller.remediate.lastgood import LastGood
from controller.remediate.nodes import NodeWatch
from controller.remediate.pool import WorkerPool
from controller.remediate.reconciler import Reconciler
from controller.remediate.records import Records
from controller.remediate.runner import StepRunner
from controller.remediate.signals import Signals
from controller.runtime.reload import Reloader
from controller.runtime.statefiles import StateFiles
from controller.scheduling import PassScheduler


@dataclass(frozen=True, slots=True)
class Remediation:
    records: Records  # every service's remediation state: its only copy
    lastgood: LastGood  # every service's rollback state: its only copy
    pool: WorkerPool
    reconciler: Reconciler
    runner: StepRunner
    signals: Signals
    changes: ChangeWatch  # what each pass does about changes, verdicts, snapshots
    nodes: NodeWatch  # what each pass does about swarm nodes whose tasks keep failing


@dataclass(frozen=True, slots=True)
class Parts:
    gateway: EngineGateway
    registry: CollectorRegistry
    metrics: Metrics
    store: IssueStore
    records: Records
    remediation: Remediation
    prober: Prober
    cache: ContainerCache
    observer: Observer
    logs: LogPipeline
    notifier: Notifier
    scheduler: PassScheduler
    files: StateFiles
    saver: DebouncedSaver
    events: EventWatcher
    sampler: UsageSampler  # resources of every running container, at a cadence
    trends: Trends  # samples to trends to predicted issues
    learning: Learning  # sightings and incidents to learned precursors
    foresight: ForesightFile  # both kept across restarts
    reloader: Reloader  # the desired state reloaded: SIGHUP, POST /-/reload, its files
