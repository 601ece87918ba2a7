"""What deploy/compose.yaml hands the controller's container about the engine, checked.

The deploy file mounts the socket named by ``DOCKER_SOCKET`` (default
``/var/run/docker.sock``) and passes the host's ``DOCKER_HOST`` and that path in as
``HOST_DOCKER_HOST`` and ``HOST_DOCKER_SOCKET``. A person whose ``DOCKER_HOST`` names a
unix socket means that engine: when the socket mounted is another one, the controller
would fix a stack on an engine they did not mean (issue 20), so it refuses to start, in
one line that says what to set; a ``DOCKER_HOST`` that is no unix socket (tcp, ssh) is
refused the same way, since the deploy file mounts one. (Compose cannot cut ``unix://``
off a variable, nor refuse on a condition: its nested ``${X:?}`` always fires.)
"""

from __future__ import annotations

import os
from collections.abc import Mapping


def disagreement(environ: Mapping[str, str]) -> str | None:
    """One line when the host's ``DOCKER_HOST`` and the socket mounted disagree."""
    host = environ.get("HOST_DOCKER_HOST", "")
    mounted = environ.get("HOST_DOCKER_SOCKET", "")
    if not host or not mounted:
        return None
    if not host.startswith("unix://"):
        return (
            f"DOCKER_HOST on the host is {host}, but deploy/compose.yaml mounts the unix "
            f"socket {mounted}: unset DOCKER_HOST to manage that engine, or run the "
            "controller with DOCKER_HOST and no socket (docs/operations.md: another engine)"
        )
    wanted = host.removeprefix("unix://")
    if os.path.normpath(wanted) == os.path.normpath(mounted):
        return None
    return (
        f"DOCKER_HOST on the host is {host} but the socket mounted is {mounted} "
        f"(DOCKER_SOCKET): set DOCKER_SOCKET={wanted}, or unset DOCKER_HOST to manage the "
        f"engine at {mounted}"
    )
