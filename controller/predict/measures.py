"""What one sample says of each resource: its value, its limit and what the limit means.

A container's memory is its working set against its limit, or against the host's memory
when it has none (then the kernel's OOM killer picks a victim); its pids count against
its pids limit (none: a trend only). The engine gives no limit for a writable layer or a
volume: their sizes are held against the sizes the service declares for them, what their
disk (or quota) can hold (none declared: a trend only).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from controller.model import ContainerUsage, ResourceKind, VolumeUsage, resource_key

BYTES, PIDS = "bytes", "pids"


@dataclass(frozen=True, slots=True)
class Measure:
    value: float
    limit: float  # 0: none known
    unit: str
    limit_source: str
    consequence: str


def container_measures(usage: ContainerUsage) -> dict[str, Measure]:
    """The memory and pids of one stats sample."""
    if usage.memory_limited:
        memory = Measure(usage.memory, usage.memory_limit, BYTES, "its limit", "OOM kill")
    else:
        memory = Measure(
            usage.memory,
            usage.memory_limit,
            BYTES,
            "the host's memory",
            "the kernel's OOM killer picks a process",
        )
    pids = Measure(
        usage.pids,
        usage.pids_limit,
        PIDS,
        "its pids limit",
        "fork fails: no new process or thread",
    )
    return {str(ResourceKind.MEMORY): memory, str(ResourceKind.PIDS): pids}


def writable_measure(size: int, declared: Mapping[str, int]) -> Measure:
    """A writable layer's size, against the size the service declares for it."""
    limit = declared.get(str(ResourceKind.WRITABLE), 0)
    return Measure(size, limit, BYTES, "declared", "no space left on device")


def volume_measure(volume: VolumeUsage, declared: Mapping[str, int]) -> Measure:
    """A volume's size against the size declared for it."""
    key = resource_key(ResourceKind.VOLUME, volume.name)
    return Measure(volume.size, declared.get(key, 0), BYTES, "declared", "no space left on device")
