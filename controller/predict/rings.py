"""The bounded history of every container's resources: a ring of samples per run.

Each container (and each volume of the project) keeps, per resource, its newest
``RING_SIZE`` samples of its current run: a restart begins a new run and a new history
(a leak starts afresh with its process). The highest value each service's resource ever
reached is kept beside them, for the suggested limit. ``dump`` and ``load`` are the
plain JSON the state file keeps, so a restarted controller forecasts from where it was.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from controller.predict.fit import Point
from controller.predict.forecast import Series
from controller.predict.measures import Measure

RING_SIZE = 360  # samples per resource and run: 3 h at the default 30 s


@dataclass
class History:
    """One container run's (or one volume's) samples, by resource."""

    service: str
    name: str  # the container's name, or the volume's compose name
    run: str  # which run (the container's start time; "" for a volume)
    samples: dict[str, deque[Point]] = field(default_factory=dict)
    measures: dict[str, Measure] = field(default_factory=dict)  # the newest, by resource


class Rings:
    def __init__(self, size: int = RING_SIZE) -> None:
        self._size = size
        self._histories: dict[str, History] = {}
        self._peaks: dict[tuple[str, str], float] = {}

    def add(
        self,
        key: str,
        *,
        service: str,
        name: str,
        run: str,
        at: float,
        measures: Mapping[str, Measure],
    ) -> None:
        """One sample of ``key`` (a container id, or ``volume/NAME``) at ``at``."""
        history = self._histories.get(key)
        if history is None or history.run != run:
            history = self._histories[key] = History(service, name, run)
        history.service, history.name = service, name
        for resource, measure in measures.items():
            ring = history.samples.setdefault(resource, deque(maxlen=self._size))
            if ring and ring[-1][0] >= at:
                continue  # a sample no newer than the last one (a clock set back)
            ring.append((at, float(measure.value)))
            history.measures[resource] = measure
            peak = (service, resource)
            self._peaks[peak] = max(self._peaks.get(peak, 0.0), float(measure.value))

    def forget(self, keep: Iterable[str]) -> None:
        """Drop the histories of containers and volumes that are gone."""
        kept = set(keep)
        for key in [k for k in self._histories if k not in kept]:
            del self._histories[key]

    def series(self) -> Iterator[tuple[str, str, Series]]:
        """Every (key, service, series) of the current runs."""
        for key, history in self._histories.items():
            for resource, ring in history.samples.items():
                measure = history.measures[resource]
                yield (
                    key,
                    history.service,
                    Series(
                        resource=resource,
                        container=history.name,
                        unit=measure.unit,
                        limit=measure.limit,
                        limit_source=measure.limit_source,
                        consequence=measure.consequence,
                        samples=tuple(ring),
                    ),
                )

    def peak(self, service: str, resource: str) -> float:
        """The highest value the service's resource reached (0 when never sampled)."""
        return self._peaks.get((service, resource), 0.0)

    # --- the state file -----------------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        return {
            "histories": {
                key: {
                    "service": h.service,
                    "name": h.name,
                    "run": h.run,
                    "resources": {
                        resource: {
                            "samples": [list(p) for p in ring],
                            "limit": h.measures[resource].limit,
                            "unit": h.measures[resource].unit,
                            "limit_source": h.measures[resource].limit_source,
                            "consequence": h.measures[resource].consequence,
                        }
                        for resource, ring in h.samples.items()
                    },
                }
                for key, h in sorted(self._histories.items())
            },
            "peaks": [[s, r, v] for (s, r), v in sorted(self._peaks.items())],
        }

    def load(self, data: Mapping[str, Any]) -> None:
        """Take back what ``dump`` wrote (raises KeyError, TypeError or ValueError on a
        document of another shape)."""
        for key, h in dict(data.get("histories") or {}).items():
            history = History(str(h["service"]), str(h["name"]), str(h["run"]))
            for resource, r in dict(h["resources"]).items():
                ring: deque[Point] = deque(maxlen=self._size)
                ring.extend((float(t), float(v)) for t, v in r["samples"])
                history.samples[str(resource)] = ring
                value = ring[-1][1] if ring else 0.0
                history.measures[str(resource)] = Measure(
                    value,
                    float(r["limit"]),
                    str(r["unit"]),
                    str(r["limit_source"]),
                    str(r["consequence"]),
                )
            self._histories[str(key)] = history
        for service, resource, value in data.get("peaks") or []:
            self._peaks[(str(service), str(resource))] = float(value)
