"""How the controller was asked to run (the CLI's flags), and loading its desired state."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from controller.desired import load_desired
from controller.model import DesiredState
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


def load(settings: Settings) -> DesiredState:
    """The declared state of ``settings.env`` (raises ``DesiredStateError``)."""
    return load_desired(
        settings.env, settings.desired_dir, lambda project: ComposeCli(project).config()
    )
