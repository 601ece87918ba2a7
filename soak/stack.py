"""The soak stack: eight services of a realistic app, built only from the local images,
and the desired state the controller is given for it.

- db: real PostgreSQL 15 (cc-pg15, examples/demo/db/start.sh), healthcheck pg_isready;
  the dependency; the runbook runs createdb in it.
- migrate: a one-shot job (desired ``state: completed``) creating the schema.
- api: a Python HTTP API (psycopg2), a healthcheck on /health (which asks the db) and a
  declared http probe on /ready.
- worker: a Python loop writing to the db, with a memory limit (OOM, the runbook's
  missing database).
- reporter: Python on ``network_mode: none``, printing "0 errors", "error_rate=0.0" ...:
  harmless words that must never be an issue.
- edge: busybox httpd on the host network, whose namespace agent joins.
- agent: busybox on ``network_mode: service:edge``, checking edge on 127.0.0.1.
- ticker: busybox under ``restart: unless-stopped`` (Docker's own restart policy).

Every service uses ``network_mode: host`` (loopback ports from a free-port picker),
``none`` or ``service:edge``: never a bridge network (docs in /work/shared/TESTING.md).
``service:edge`` with edge on the host network works on this engine (Docker 20.10,
Compose 2.40): agent reaches edge's 127.0.0.1 port, also across a restart and a SIGKILL
of edge (checked by hand when this was written).

The compose file is written per run (a fresh project name, ports and control
directories); ``restart`` is a parameter so the baseline of Docker's restart policy runs
the same stack with ``on-failure``.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.e2e.conftest import ROOT, Stack

APPS = Path(__file__).resolve().parent / "apps"
DEMO_DB = ROOT / "examples" / "demo" / "db"

SERVICES = ("db", "migrate", "api", "worker", "reporter", "edge", "agent", "ticker")
# what each service needs (compose depends_on, and agent's network_mode: service:edge)
DEPENDS = {
    "migrate": ("db",),
    "api": ("db", "migrate"),
    "worker": ("db", "migrate"),
    "agent": ("edge",),
}
HEALTHCHECKED = frozenset({"db", "api", "reporter", "edge"})
JOBS = frozenset({"migrate"})
POLICY = {"ticker": "unless-stopped"}  # services whose own restart policy the stack sets
RUNBOOK = "create-missing-database"
DB_NAME, DB_USER, DB_PASSWORD = "app", "app", "soak-secret"


def dependents(service: str) -> tuple[str, ...]:
    """Services that need ``service``, directly or not."""
    found: list[str] = []
    frontier = [service]
    while frontier:
        current = frontier.pop(0)
        for other, needs in DEPENDS.items():
            if current in needs and other not in found:
                found.append(other)
                frontier.append(other)
    return tuple(found)


def dependencies(service: str) -> tuple[str, ...]:
    """Services ``service`` needs, directly or not."""
    found: list[str] = []
    frontier = list(DEPENDS.get(service, ()))
    while frontier:
        current = frontier.pop(0)
        if current not in found:
            found.append(current)
            frontier.extend(DEPENDS.get(current, ()))
    return tuple(found)


@dataclass(frozen=True)
class Ports:
    db: int
    api: int
    edge: int

    def environment(self) -> dict[str, str]:
        return {
            "DB_PORT": str(self.db),
            "API_PORT": str(self.api),
            "EDGE_PORT": str(self.edge),
            "DB_NAME": DB_NAME,
            "DB_USER": DB_USER,
            "DB_PASSWORD": DB_PASSWORD,
        }


def compose_model(
    ctl: Path, restart: str = "no", tags: dict[str, int] | None = None
) -> dict[str, Any]:
    """The compose file as data. ``restart`` applies to every long-running service but
    the ticker (always ``unless-stopped``) and the job; ``tags`` is each service's config
    generation (a person's new config bumps it: a changed environment variable)."""
    tags = tags or {}
    pyenv = {
        "PYTHONUNBUFFERED": "1",
        "DB_PORT": "${DB_PORT}",
        "DB_NAME": "${DB_NAME}",
        "DB_USER": "${DB_USER}",
        "DB_PASSWORD": "${DB_PASSWORD}",
    }

    def mounts(service: str) -> list[str]:
        return [f"{APPS}:/apps:ro", f"{ctl / service}:/ctl"]

    def py(service: str, **extra: Any) -> dict[str, Any]:
        env = {**pyenv, "CONFIG_GENERATION": str(tags.get(service, 1))}
        env.update(extra.pop("environment", {}))
        return {
            "image": "cc-pg15:1",
            "network_mode": "host",
            "user": "65534:65534",
            "command": ["python3", "/apps/app.py", service],
            "environment": env,
            "volumes": mounts(service),
            "restart": restart,
            **extra,
        }

    def box(service: str, **extra: Any) -> dict[str, Any]:
        return {
            "image": "cc-busybox:1",
            "command": ["sh", f"/apps/{service}.sh"],
            "environment": {"CONFIG_GENERATION": str(tags.get(service, 1))},
            "volumes": mounts(service),
            "restart": restart,
            **extra,
        }

    def check(test: list[str], interval: str, start: str) -> dict[str, Any]:
        return {
            "test": test,
            "interval": interval,
            "timeout": "10s",  # generous: a loaded 2-core machine is slow, not broken
            "retries": 3,
            "start_period": start,
        }

    healthy = {"condition": "service_healthy"}
    done = {"condition": "service_completed_successfully"}
    services: dict[str, Any] = {
        "db": {
            "image": "cc-pg15:1",
            "network_mode": "host",
            "user": "postgres",
            "command": ["bash", "/demo/db/start.sh"],
            "environment": {
                "DB_PORT": "${DB_PORT}",
                "DB_NAME": "${DB_NAME}",
                "DB_USER": "${DB_USER}",
                "DB_PASSWORD": "${DB_PASSWORD}",
                "CONFIG_GENERATION": str(tags.get("db", 1)),
            },
            "volumes": [f"{DEMO_DB}:/demo/db:ro", "pgdata:/var/lib/postgresql"],
            "restart": restart,
            "healthcheck": check(
                ["CMD", "pg_isready", "-q", "-h", "127.0.0.1", "-p", "${DB_PORT}"], "2s", "30s"
            ),
        },
        "migrate": {**py("migrate"), "restart": "no", "depends_on": {"db": healthy}},
        "api": py(
            "api",
            environment={"API_PORT": "${API_PORT}"},
            depends_on={"db": healthy, "migrate": done},
            healthcheck=check(
                [
                    # bash's /dev/tcp: a check that costs no Python start, so a busy
                    # machine does not time it out
                    "CMD",
                    "bash",
                    "-c",
                    # the whole answer is read: a client that hangs up early makes
                    # the server log "Connection reset by peer"
                    "exec 3<>/dev/tcp/127.0.0.1/${API_PORT} && "
                    "printf 'GET /health HTTP/1.0\\r\\n\\r\\n' >&3 && "
                    'read -r proto code rest <&3 && cat <&3 >/dev/null && [ "$$code" = 200 ]',
                ],
                "2s",
                "30s",
            ),
        ),
        "worker": py(
            "worker",
            depends_on={"db": healthy, "migrate": done},
            mem_limit="192m",
            memswap_limit="192m",
        ),
        "reporter": {
            **py("reporter"),
            "network_mode": "none",
            "healthcheck": check(["CMD", "test", "-f", "/tmp/alive"], "5s", "10s"),
        },
        "edge": box(
            "edge",
            network_mode="host",
            environment={
                "EDGE_PORT": "${EDGE_PORT}",
                "CONFIG_GENERATION": str(tags.get("edge", 1)),
            },
            healthcheck=check(
                [
                    "CMD-SHELL",
                    "test ! -f /ctl/sick && wget -q -O /dev/null http://127.0.0.1:${EDGE_PORT}/",
                ],
                "2s",
                "20s",
            ),
        ),
        "agent": box(
            "agent",
            network_mode="service:edge",
            environment={
                "EDGE_PORT": "${EDGE_PORT}",
                "CONFIG_GENERATION": str(tags.get("agent", 1)),
            },
            depends_on=["edge"],
        ),
        "ticker": {**box("ticker", network_mode="none"), "restart": POLICY["ticker"]},
    }
    return {"name": "soak", "services": services, "volumes": {"pgdata": {}}}


def desired_model(
    project: str, compose_file: Path, ports: Ports, notify_port: int | None
) -> dict[str, Any]:
    """The desired state: the documented defaults (budget, backoff, detection), the
    runbook of desired_state/dev.yaml for a missing database, a declared probe on the api,
    the job, and notifications to a json:// receiver on loopback."""
    model: dict[str, Any] = {
        "project": project,
        "compose_files": [str(compose_file)],
        "environment": ports.environment(),
        "remediation": {
            "runbooks": [
                {
                    "name": RUNBOOK,
                    "when": {"pattern": "pg-database-missing", "services": ["api", "worker"]},
                    "capture_pattern": "[a-z_][a-z0-9_]{0,62}",
                    "exec": {
                        "service": "db",
                        "argv": [
                            "createdb",
                            "-h",
                            "/tmp",
                            "-p",
                            "${DB_PORT}",
                            "-U",
                            "postgres",
                            "-O",
                            DB_USER,
                            "{database}",
                        ],
                    },
                }
            ]
        },
        "services": {
            "db": {"healthy": True},
            "migrate": {"state": "completed"},
            "api": {
                "healthy": True,
                "probes": [
                    {
                        "http": {"url": "http://127.0.0.1:${API_PORT}/ready", "status": 200},
                        "period_seconds": 2,
                        "failure_threshold": 3,
                        # a slow start (up to 15 s in the catalog) is not a failing probe
                        "initial_delay_seconds": 20,
                    }
                ],
            },
            "worker": {},
            "reporter": {"healthy": True},
            "edge": {"healthy": True},
            "agent": {},
            "ticker": {},
        },
    }
    if notify_port is not None:
        model["notify"] = {"urls": [f"json://127.0.0.1:{notify_port}/hook"]}
    return model


def write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


class SoakStack(Stack):
    """One run's copy of the stack: its compose project (``soak-...``), ports, control
    directories (``ctl/<service>``, mounted at /ctl) and desired state (env ``soak``).
    The compose, engine and controller helpers are the e2e tests' ``Stack``."""

    def __init__(
        self,
        root: Path,
        ports: Ports,
        *,
        label: str = "ours",
        restart: str = "no",
        notify_port: int | None = None,
    ) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.ctl = root / "ctl"
        for service in SERVICES:
            (self.ctl / service).mkdir(parents=True, exist_ok=True)
            os.chmod(self.ctl / service, 0o777)  # the apps run as nobody and remove files
        self.restart = restart
        self.tags = dict.fromkeys(SERVICES, 1)
        compose_file = root / "compose.yaml"
        write_atomically(compose_file, yaml.safe_dump(compose_model(self.ctl, restart, self.tags)))
        super().__init__(root, compose_file, ports.environment())
        self.ports = ports
        self.label = label
        self.project = f"soak-{label}-{uuid.uuid4().hex[:8]}"
        self.env = "soak"
        self.desired_file.unlink()
        self.desired_file = self.desired_dir / f"{self.env}.yaml"
        desired = desired_model(self.project, compose_file, ports, notify_port)
        self.desired_file.write_text(yaml.safe_dump(desired, sort_keys=False))

    def new_config(self, service: str) -> int:
        """A person's edit of the compose file: ``service``'s config generation goes up
        (a changed environment variable). Returns the new generation."""
        self.tags[service] += 1
        text = yaml.safe_dump(compose_model(self.ctl, self.restart, self.tags))
        write_atomically(self.compose_file, text)
        return self.tags[service]

    @property
    def issues_file(self) -> Path:
        return self.state_dir / f"docker_issues_{self.env}.json"
