"""Forecast and learning settings: the file's ``predict`` sections to ``model`` values.

Sizes are bytes or a number with a unit (``256MiB``, ``1.5GiB``, ``512m``: binary
multiples, as Compose's ``mem_limit``); a service's ``limits`` may name its writable
layer and the named volumes it mounts; its critical horizon is within its warning one.
Every problem names its field.
"""

from __future__ import annotations

import re

from controller.desired.errors import Loc, Problems
from controller.desired.schema import (
    LearnDeclaration,
    PredictDeclaration,
    ServicePredictDeclaration,
    Size,
)
from controller.model import (
    LearnMode,
    LearnSettings,
    PredictSettings,
    PreemptAction,
    QuietWindow,
    ResourceKind,
    ServicePredict,
    resource_key,
)

_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)
_MULTIPLES = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
MAX_SIZE = 1 << 60


def parse_size(value: Size) -> int | None:
    """Bytes in ``value``, or None when it is not a size."""
    if isinstance(value, int):
        return value if 0 < value <= MAX_SIZE else None
    found = _SIZE.match(value)
    if found is None or (found.group(3).lower() == "i"):
        return None
    size = int(float(found.group(1)) * _MULTIPLES[found.group(2).lower()])
    return size if 0 < size <= MAX_SIZE else None


def predict_settings(declared: PredictDeclaration, problems: Problems) -> PredictSettings:
    if declared.quiet_sample_seconds < declared.sample_seconds:
        problems.add(
            ("predict", "quiet_sample_seconds"),
            f"{declared.quiet_sample_seconds:g} s is shorter than sample_seconds "
            f"({declared.sample_seconds:g} s): a quiet container is sampled less often",
        )
    return PredictSettings(
        enabled=declared.enabled,
        interval=declared.sample_seconds,
        quiet_interval=max(declared.quiet_sample_seconds, declared.sample_seconds),
        window=declared.window_seconds,
        min_history=declared.min_history_seconds,
        min_points=declared.min_points,
    )


def learn_settings(declared: LearnDeclaration) -> LearnSettings:
    return LearnSettings(
        mode=LearnMode(declared.mode),
        lookback=declared.lookback_seconds,
        min_incidents=declared.min_incidents,
    )


def service_predict(
    service: str,
    declared: ServicePredictDeclaration,
    volumes: tuple[str, ...],
    problems: Problems,
) -> ServicePredict:
    """One service's forecast settings; ``volumes`` are the named volumes it mounts."""
    where: Loc = ("services", service, "predict")
    if declared.critical_seconds > declared.warning_seconds:
        problems.add(
            (*where, "critical_seconds"),
            f"{declared.critical_seconds:g} s is beyond warning_seconds "
            f"({declared.warning_seconds:g} s): critical must come within warning",
        )
    window = None
    if declared.quiet_window is not None:
        window = _window(declared.quiet_window)
        if window is None:
            problems.add((*where, "quiet_window"), "not a window of the day: HH:MM-HH:MM, UTC")
    allowed = {str(ResourceKind.WRITABLE)} | {resource_key(ResourceKind.VOLUME, v) for v in volumes}
    limits: dict[str, int] = {}
    for key, value in declared.limits.items():
        if key not in allowed:
            known = ", ".join(sorted(allowed))
            problems.add((*where, "limits", key), f"not a resource of {service} (has: {known})")
            continue
        size = parse_size(value)
        if size is None:
            problems.add(
                (*where, "limits", key),
                f"not a size: {value!r} (bytes, or a number with KiB, MiB, GiB, TiB)",
            )
            continue
        limits[key] = size
    return ServicePredict(
        warning=declared.warning_seconds,
        critical=declared.critical_seconds,
        act=PreemptAction(declared.before_exhaustion),
        window=window,
        limits=limits,
    )


def _window(text: str) -> QuietWindow | None:
    start, end = text.split("-")
    minutes = []
    for part in (start, end):
        hours, mins = (int(x) for x in part.split(":"))
        if hours > 23:
            return None
        minutes.append(hours * 60 + mins)
    if minutes[0] == minutes[1]:
        return None
    return QuietWindow(minutes[0], minutes[1])
