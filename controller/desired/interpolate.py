"""``${VAR}`` and ``{capture}`` in the argv (and URLs) a desired state declares.

``${VAR}`` is filled when the file is loaded, from the desired state's ``environment`` or
the controller's own; an unknown one is an error naming the field. ``{capture}`` must be a
named capture of the runbook's pattern and is filled at run time, after validation
(``remediate.strategies.fill_argv``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from controller.desired.errors import DesiredStateError

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_CAPTURE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def interpolate(
    path: Path,
    where: str,
    argv: list[str],
    environment: Mapping[str, str],
    groups: set[str],
    runbook: str = "",
) -> list[str]:
    """``${VAR}`` from the declared environment now; ``{capture}`` checked, filled later."""
    label = f"runbook {runbook}: " if runbook else ""
    out = []
    for i, arg in enumerate(argv):

        def variable(match: re.Match[str], i: int = i) -> str:
            name = match.group(1)
            if name in environment:
                return environment[name]
            if name in os.environ:
                return os.environ[name]
            raise DesiredStateError(path, f"{where}.{i}", f"{label}${{{name}}} is not set")

        arg = _VARIABLE.sub(variable, arg)
        for capture in _CAPTURE.findall(arg):
            if capture not in groups:
                raise DesiredStateError(
                    path,
                    f"{where}.{i}",
                    f"{label}{{{capture}}} is not a named capture of the pattern",
                )
        out.append(arg)
    return out
