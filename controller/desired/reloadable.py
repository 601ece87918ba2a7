"""What a reload may change: the parts of a desired state that only a restart applies.

A reload swaps the whole desired state between two passes, and every part that decides
reads it as it is then: the services and their settings, remediation, rollback. A few
parts are built once, at start, around what they were given: the compose project (which
files, which project: ``docker compose`` is addressed through it, the config hashes are
read from its files), the detection settings (the pattern library is compiled once), the
notification targets, the forecast settings (the sampler's cadence) and the declared
probes (a thread each). A reload that changes one of those is refused, named, and the
running desired state kept: nothing ever runs half of one file and half of another.
"""

from __future__ import annotations

from controller.model import DesiredState

# the sections of the file a restart applies, as the desired state names them
RESTART_ONLY = {
    "compose": "project, compose_files, env_files, profiles or environment",
    "detection": "detection",
    "notify": "notify",
    "predict": "predict",
}


def restart_only_changes(running: DesiredState, new: DesiredState) -> list[str]:
    """The fields ``new`` changes that only a restart applies (empty: it may be reloaded)."""
    changed = [
        words
        for name, words in RESTART_ONLY.items()
        if getattr(running, name) != getattr(new, name)
    ]
    probed = {n for n, s in (*running.services.items(), *new.services.items()) if s.probes}
    for name in sorted(probed):
        before, after = running.services.get(name), new.services.get(name)
        if (before.probes if before else ()) != (after.probes if after else ()):
            changed.append(f"services.{name}.probes")
    return changed
