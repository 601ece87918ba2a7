"""How forecasts and trends read for a person: sizes, durations, the sentence.

"at this rate web reaches its 256 MiB limit in about 14 min (OOM kill)".
"""

from __future__ import annotations

from controller.model import Forecast

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def size(value: float) -> str:
    """Bytes the way ``docker stats`` shows them: 256 MiB, 1.5 GiB, 900 KiB."""
    amount, unit = float(value), 0
    while abs(amount) >= 1024 and unit < len(_UNITS) - 1:
        amount /= 1024
        unit += 1
    text = f"{amount:.1f}".removesuffix(".0") if amount < 10 and unit else f"{amount:.0f}"
    return f"{text} {_UNITS[unit]}"


def amount(value: float, unit: str) -> str:
    """A value of a resource: a size for bytes, a count for pids."""
    return size(value) if unit == "bytes" else f"{value:.0f} {unit}"


def rate(per_second: float, unit: str) -> str:
    """A slope: ``0.2 MiB/s``, ``0.5 MiB/min``, ``3 pids/min``."""
    if unit != "bytes":
        return f"{per_second * 60:.2g} {unit}/min"
    mib = per_second / (1024 * 1024)
    if abs(mib) >= 0.01:
        return f"{mib:.2g} MiB/s"
    if abs(mib * 60) >= 0.01:
        return f"{mib * 60:.2g} MiB/min"
    return f"{per_second * 60 / 1024:.2g} KiB/min"


def about(seconds: float) -> str:
    """A duration said roughly: ``about 40 s``, ``about 14 min``, ``about 3 h``."""
    if seconds < 90:
        return f"about {max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"about {round(seconds / 60)} min"
    if seconds < 48 * 3600:
        return f"about {round(seconds / 3600)} h"
    return f"about {round(seconds / 86400)} days"


def _what(forecast: Forecast, service: str) -> str:
    resource = forecast.resource
    if resource.startswith("volume/"):
        return f"the volume {resource.removeprefix('volume/')} of {service} fills"
    if resource == "writable-layer":
        return f"the writable layer of {service} reaches"
    return f"{service} reaches"


def sentence(forecast: Forecast, service: str) -> str:
    """The forecast as its issue's title says it."""
    limit = amount(forecast.limit, forecast.unit)
    if forecast.limit_source == "the host's memory":
        whose = f"the host's {limit} of memory"
    elif forecast.limit_source == "declared":
        whose = f"its declared {limit}"
    else:
        whose = f"its {limit} {forecast.resource} limit"
    return (
        f"at this rate {_what(forecast, service)} {whose} in "
        f"{about(forecast.seconds_left)} ({forecast.consequence})"
    )


def detail(forecast: Forecast) -> str:
    """What the forecast rests on, in one line."""
    fit = forecast.fit
    return (
        f"{forecast.container}: {amount(forecast.usage, forecast.unit)} of "
        f"{amount(forecast.limit, forecast.unit)} ({forecast.limit_source}), rising "
        f"{rate(fit.slope_per_second, forecast.unit)} (Theil-Sen on the {fit.method} over "
        f"{about(fit.span_seconds).removeprefix('about ')}, Kendall tau {fit.tau:.2f}); "
        "within the "
        f"{forecast.horizon} horizon"
    )
