"""A docker-autoheal-like poller: the baseline that bench/latency.py measures us against.

    .venv/bin/python bench/autoheal_baseline.py --project NAME [--interval 5]

What docker-autoheal does, on one compose project: every ``--interval`` seconds (a fixed
cadence, as autoheal's loop), list the project's containers (the ``docker ps -a`` API
call, by the compose project label) and restart any that is unhealthy or exited, with a
10 s stop timeout (autoheal's default). Each time it notices something it prints one line
before acting, so the benchmark can read when it noticed:

    2026-11-28T06:46:25.866182+00:00 notice unhealthy bench-lat-x-autoheal-sick-1 service=sick

Runs until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from datetime import UTC, datetime
from types import FrameType

import docker
from docker.errors import DockerException

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
STOP_TIMEOUT = 10  # autoheal's AUTOHEAL_DEFAULT_STOP_TIMEOUT


def now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def say(*words: str) -> None:
    print(now_text(), *words, flush=True)


def check_once(client: docker.DockerClient, project: str) -> None:
    """One autoheal round: notice and restart every unhealthy or exited container."""
    containers = client.containers.list(
        all=True, sparse=True, filters={"label": f"{PROJECT_LABEL}={project}"}
    )
    for container in containers:
        state = str(container.attrs.get("State", ""))
        status = str(container.attrs.get("Status", ""))
        if state == "exited":
            reason = "exited"
        elif state == "running" and "(unhealthy)" in status:
            reason = "unhealthy"
        else:
            continue
        names = container.attrs.get("Names") or [container.id]
        service = (container.attrs.get("Labels") or {}).get(SERVICE_LABEL, "?")
        say("notice", reason, str(names[0]).lstrip("/"), f"service={service}")
        try:
            client.api.restart(str(container.id), timeout=STOP_TIMEOUT)
            say("restarted", str(names[0]).lstrip("/"))
        except DockerException as err:
            say("restart-failed", str(names[0]).lstrip("/"), str(err).replace("\n", " "))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--project", required=True, help="the compose project to watch")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between checks")
    args = parser.parse_args()

    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    client = docker.from_env()
    say("started", f"project={args.project}", f"interval={args.interval:g}")
    tick = time.monotonic()
    while not stopping:
        try:
            check_once(client, args.project)
        except DockerException as err:
            say("error", str(err).replace("\n", " "))
        tick += args.interval
        while not stopping and time.monotonic() < tick:
            time.sleep(min(0.1, max(0.0, tick - time.monotonic())))
    say("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
