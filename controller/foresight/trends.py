"""Samples to trends to ``predicted`` issues: the resource side of seeing it coming.

Each round of the sampler (``observe.usage``) goes into the rings (``predict.rings``):
each running container's memory and pids, on disk rounds its writable layer and the
project's volumes (each kept with the first service, by name, that mounts it), and per
service two counts whose slope is a rate: Docker's restarts of its running containers and
the error-like records of its log (``errors``, from the precursor learner's sightings);
they have no limit, so they are trends, never forecasts. Then
every series of a current run is fitted (``predict.forecast.trend``); per service and
resource the worst container counts. A trend that reaches its limit within the service's
warning horizon opens or updates its ``predicted`` issue (critical within the critical
horizon); an open one stays while its limit is within the warning horizon and a quarter
(no flapping at the edge), and resolves when the trend turns, slows beyond that, or the
container's run ends. Histories of containers no longer running are dropped. Which
containers the next round samples (``due``) and whether it asks the disk usage
(``disk_due``) follow ``predict.cadence``: watched ones every round, quiet ones every
``quiet_interval``; the disk usage every round when a service declares a size to forecast
a writable layer or volume against, else every ``quiet_interval``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

from controller.issues.store import IssueStore, SyncResult
from controller.metrics import Metrics
from controller.model import (
    Clock,
    ContainerSnapshot,
    DesiredState,
    FindingKind,
    Forecast,
    Issue,
    IssueSource,
    Prediction,
    PreemptAction,
    ResourceKind,
    ResourceTrend,
    ServicePredict,
    Severity,
    predicted_pattern,
    resource_key,
)
from controller.observe.usage import Round
from controller.predict.cadence import due, watched
from controller.predict.forecast import CRITICAL, Series, Trend, forecast, trend
from controller.predict.measures import (
    Measure,
    container_measures,
    volume_measure,
    writable_measure,
)
from controller.predict.rings import Rings
from controller.predict.suggest import suggested_limit
from controller.predict.words import about, detail, sentence

HYSTERESIS = 1.25  # an open forecast stays while its limit is within this much more time
MEMORY, WRITABLE = str(ResourceKind.MEMORY), str(ResourceKind.WRITABLE)
RESTARTS, ERRORS = "restarts", "errors"  # counts whose slope is a rate


class Trends:
    def __init__(
        self,
        *,
        desired: Callable[[], DesiredState],
        store: IssueStore,
        metrics: Metrics,
        clock: Clock,
        on_change: Callable[[SyncResult], None],
        errors: Callable[[], Mapping[str, int]],
    ) -> None:
        self._declared = desired
        self._errors = errors
        self._store = store
        self._metrics = metrics
        self._clock = clock
        self._on_change = on_change
        self._lock = threading.Lock()
        self._rings = Rings()
        self._views: list[ResourceTrend] = []
        self.rounds = 0  # rounds taken: the document is written again after each
        self._sampled: dict[str, tuple[float, str]] = {}  # container -> (when, which run)
        self._watched: dict[str, bool] = {}  # container -> wants the fast cadence
        self._disk_at: float | None = None

    @property
    def _desired(self) -> DesiredState:
        """The desired state in force (a reload swaps it between passes)."""
        return self._declared()

    @property
    def _disk_limits(self) -> bool:
        return any(spec.predict.limits for spec in self._desired.services.values())

    # --- a round ------------------------------------------------------------------------

    def on_round(self, sampled: Round) -> None:
        """Take one round of samples, fit, and record what the forecasts say."""
        self._metrics.sampled(
            len(sampled.samples), sampled.gone, sampled.failed, sampled.cpu_seconds
        )
        with self._lock:
            self._record(sampled)
            found = [
                (key, service, series, trend(series, self._desired.predict, sampled.at))
                for key, service, series in self._rings.series()
            ]
            self._watched = {}
            settings = self._desired.predict
            for key, _, series, t in found:
                if series.resource == WRITABLE and len(series.samples) < 2:
                    continue  # sized on disk rounds only: its first says nothing yet
                self._watched[key] = self._watched.get(key, False) or watched(series, t, settings)
            worst = _worst((service, series, t) for _, service, series, t in found)
            self._views = [
                self._view(service, series, t)
                for (service, _), (series, t) in sorted(worst.items())
            ]
        result = self._store.sync_predictions(*self._decide(worst))
        if result.opened or result.reopened or result.escalated or result.recovered:
            self._on_change(result)

    def _record(self, sampled: Round) -> None:
        if sampled.disk is not None:
            self._disk_at = sampled.at
        desired = self._desired  # one read for the round (a reload may swap it)
        owners = _volume_owners(desired)
        running = {c.id for c in sampled.running}
        keep: list[str] = list(running)  # quiet ones not sampled this round too
        for one in sampled.samples:
            container, key = one.container, one.container.id
            self._sampled[key] = (sampled.at, container.started_at)
            measures = container_measures(one.usage)
            spec = desired.services.get(container.service)
            if sampled.disk is not None and key in sampled.disk.writable:
                declared = spec.predict.limits if spec is not None else {}
                measures[str(ResourceKind.WRITABLE)] = writable_measure(
                    sampled.disk.writable[key], declared
                )
            self._rings.add(
                key,
                service=container.service,
                name=container.name,
                run=container.started_at,
                at=one.at,  # when it was measured, not when the round began
                measures=measures,
            )
        for key in [k for k in self._sampled if k not in running]:
            del self._sampled[key]
        for volume in sampled.disk.volumes if sampled.disk is not None else ():
            owner = owners.get(volume.name)
            if owner is None:
                continue
            key = resource_key(ResourceKind.VOLUME, volume.name)
            declared = desired.services[owner].predict.limits
            self._rings.add(
                key,
                service=owner,
                name=volume.name,
                run="",
                at=sampled.at,
                measures={key: volume_measure(volume, declared)},
            )
        keep += [resource_key(ResourceKind.VOLUME, name) for name in owners]
        keep += self._rates(sampled)
        self._rings.forget(keep)

    def _rates(self, sampled: Round) -> list[str]:
        """Each declared service's restarts (of its running containers, sampled now or
        not) and error-like records so far, as counts."""
        restarts: dict[str, int] = dict.fromkeys(self._desired.services, 0)
        for container in sampled.running:
            if container.service in restarts:
                restarts[container.service] += container.restart_count
        errors = self._errors()
        keys = []
        for service, count in restarts.items():
            key = f"service/{service}"
            self._rings.add(
                key,
                service=service,
                name=service,
                run="",
                at=sampled.at,
                measures={
                    RESTARTS: Measure(count, 0, RESTARTS, "", ""),
                    ERRORS: Measure(errors.get(service, 0), 0, ERRORS, "", ""),
                },
            )
            keys.append(key)
        return keys

    def _decide(
        self, worst: Mapping[tuple[str, str], tuple[Series, Trend]]
    ) -> tuple[list[Prediction], dict[str, str]]:
        """The forecasts to record, and the open ones that end (fingerprint -> why)."""
        open_now = {
            i.fingerprint: i
            for i in self._store.active()
            if i.source is IssueSource.PREDICT and i.kind is FindingKind.PREDICTED
        }
        predictions: list[Prediction] = []
        for (service, resource), (series, found) in worst.items():
            spec = self._desired.services.get(service)
            if spec is None:
                continue
            fingerprint = f"predict:{service}:{resource}"
            horizons = spec.predict
            if fingerprint in open_now:
                horizons = replace(horizons, warning=horizons.warning * HYSTERESIS)
            made = forecast(series, found, horizons)
            if made is not None:
                predictions.append(self._prediction(service, made, spec.predict))
        predicted = {p.fingerprint for p in predictions}
        ended: dict[str, str] = {}
        for fingerprint, issue in open_now.items():
            if fingerprint in predicted:
                continue
            resource = fingerprint.split(":", 2)[2]
            entry = worst.get((issue.service, resource))
            ended[fingerprint] = _why_ended(issue, resource, entry)
        return predictions, ended

    def _prediction(self, service: str, made: Forecast, predict: ServicePredict) -> Prediction:
        critical = made.horizon == CRITICAL
        return Prediction(
            service=service,
            forecast=made,
            title=sentence(made, service),
            detail=detail(made),
            severity=Severity.CRITICAL if critical else Severity.MEDIUM,
            suggested=self._suggested(service, made, predict),
        )

    def _suggested(self, service: str, made: Forecast, predict: ServicePredict) -> str:
        pattern = predicted_pattern(made.resource)
        if any(rb.applies_to(service, pattern) for rb in self._desired.remediation.runbooks):
            return "runbook"
        return "restart" if predict.act is PreemptAction.RESTART else "none"

    def _view(self, service: str, series: Series, found: Trend) -> ResourceTrend:
        peak = self._rings.peak(service, series.resource)
        return ResourceTrend(
            service=service,
            resource=series.resource,
            container=series.container,
            unit=series.unit,
            usage=series.samples[-1][1],
            limit=series.limit,
            limit_source=series.limit_source,
            slope_per_second=found.fit.slope_per_second if found.fit else None,
            seconds_left=found.seconds_left if found.rising else None,
            trend=found.why,
            peak=peak,
            suggested_limit=suggested_limit(peak) if series.resource == MEMORY else None,
        )

    # --- the cadence ----------------------------------------------------------------------

    def due(self, container: ContainerSnapshot, now: float) -> bool:
        """Whether the next round samples ``container`` (a new run always)."""
        with self._lock:
            last = self._sampled.get(container.id)
            at = last[0] if last is not None and last[1] == container.started_at else None
            watching = self._watched.get(container.id, True)
        return due(at, watching, now, self._desired.predict)

    def disk_due(self, now: float) -> bool:
        """Whether the next round asks the engine's disk usage."""
        with self._lock:
            watching = self._disk_limits
            return due(self._disk_at, watching, now, self._desired.predict)

    # --- readers ------------------------------------------------------------------------

    def views(self) -> list[ResourceTrend]:
        """Every service's resources as the newest round left them (copies)."""
        with self._lock:
            return [v.model_copy() for v in self._views]

    def dump(self) -> dict[str, Any]:
        with self._lock:
            return self._rings.dump()

    def load(self, data: Mapping[str, Any]) -> None:
        with self._lock:
            self._rings.load(data)


def _volume_owners(desired: DesiredState) -> dict[str, str]:
    """Each volume's service: the first, by name, that mounts it."""
    owners: dict[str, str] = {}
    for name in sorted(desired.services):
        for volume in desired.services[name].volumes:
            owners.setdefault(volume, name)
    return owners


def _worst(
    found: Iterable[tuple[str, Series, Trend]],
) -> dict[tuple[str, str], tuple[Series, Trend]]:
    """Per service and resource, the container soonest at its limit (else the fullest)."""
    worst: dict[tuple[str, str], tuple[Series, Trend]] = {}

    def rank(entry: tuple[Series, Trend]) -> tuple[float, float]:
        series, t = entry
        fill = series.samples[-1][1] / series.limit if series.limit else 0.0
        return (t.seconds_left, -fill)

    for service, series, t in found:
        key = (service, series.resource)
        if key not in worst or rank((series, t)) < rank(worst[key]):
            worst[key] = (series, t)
    return worst


def _why_ended(issue: Issue, resource: str, entry: tuple[Series, Trend] | None) -> str:
    service = issue.service
    if entry is None:
        return f"the run it was about ended: {service} has no running container sampled now"
    series, found = entry
    before = issue.forecast.samples[0][0] if issue.forecast and issue.forecast.samples else 0.0
    if series.container != issue.container or series.samples[0][0] > before:
        return f"the run it was about ended: {series.container} started afresh"
    if found.rising:
        return (
            f"the trend slowed: {resource} of {service} now reaches its limit in "
            f"{about(found.seconds_left)}, beyond the warning horizon"
        )
    return (
        f"the trend turned: {resource} of {service} is no longer rising toward its limit "
        f"({found.why})"
    )
