"""The memory limit Kubernetes' Vertical Pod Autoscaler would set.

VPA raises a limit after an OOM kill to ``max(usage + 100 MiB, usage * 1.2)``, the usage
being what the container used when it was killed (its limit). The same formula on the
peak working set seen gives a limit with that headroom for a service not yet killed.
"""

from __future__ import annotations

import math

MIB = 1024 * 1024
HEADROOM = 100 * MIB
FACTOR = 1.2
FORMULA = "max(usage + 100 MiB, usage x 1.2), as Kubernetes' VPA"


def suggested_limit(usage: float) -> int:
    """The VPA formula on ``usage`` (bytes), rounded up to a whole MiB."""
    wanted = max(usage + HEADROOM, usage * FACTOR)
    return math.ceil(wanted / MIB) * MIB
