"""How the controller was asked to run (the CLI's flags), and loading its desired state."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from controller.desired import load_desired, load_zero_config, zero_config_applies
from controller.model import ComposeProject, DesiredState
from controller.observe.compose_cli import ComposeCli


@dataclass(frozen=True, slots=True)
class Settings:
    env: str
    desired_dir: Path = Path("desired_state")
    state_dir: Path = Path(".")
    max_agents: int = 3
    interval_active: float = 5.0
    interval_quiet: float = 50.0
    dry_run: bool = False
    once: bool = False
    shutdown_timeout: float = 30.0
    blip_seconds: float = 0.0  # a drift younger than this is left to heal on its own
    # zero-config: Compose's -f and -p; desired_dir given as a flag (or its variable)
    compose_files: tuple[Path, ...] = ()
    project_name: str | None = None
    desired_dir_given: bool = False
    engine: str = "compose"  # compose | swarm: the project is a swarm stack of that name
    node_engines: Mapping[str, str] = field(default_factory=dict)  # swarm node -> its engine


def _compose_model(project: ComposeProject) -> dict[str, object]:
    return ComposeCli(project).declared()


def load(settings: Settings) -> DesiredState:
    """The declared state of ``settings.env`` (raises ``DesiredStateError``): its
    desired-state file, or without one the compose project of the current directory; on
    a swarm, as the stack runs it (``on_swarm``)."""
    if zero_config_applies(settings.desired_dir, settings.env, settings.desired_dir_given):
        found = load_zero_config(
            settings.env, Path.cwd(), settings.compose_files, settings.project_name, _compose_model
        )
    else:
        found = load_desired(
            settings.env,
            settings.desired_dir,
            _compose_model,
            files=settings.compose_files,
            project_name=settings.project_name,
        )
    return on_swarm(found) if settings.engine == "swarm" else found


def on_swarm(desired: DesiredState) -> DesiredState:
    """The same declaration for a stack: what brings a task back is Swarm's restart policy
    (``deploy.restart_policy``), which Compose's ``restart`` does not set there."""
    services = {
        name: replace(spec, restart=spec.swarm_restart) for name, spec in desired.services.items()
    }
    return replace(desired, services=services)
