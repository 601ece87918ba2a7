"""Late-bound calls between the parts of one controller, for the composition root.

Some parts must call a part built after them (the log pipeline asks for a pass; the pass
runs on the scheduler that calls it). The root (``assembly``) hands such a part a
``Wire`` and connects it once everything exists. An unconnected wire raises when called:
a missing connection fails loudly at the first call, never does nothing quietly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


class WireNotConnected(RuntimeError):
    pass


class Wire(Generic[P, R]):
    def __init__(self, name: str) -> None:
        self.name = name
        self._target: Callable[P, R] | None = None

    def connect(self, target: Callable[P, R]) -> None:
        if self._target is not None:
            raise WireNotConnected(f"{self.name} is connected twice")
        self._target = target

    @property
    def connected(self) -> bool:
        return self._target is not None

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        if self._target is None:
            raise WireNotConnected(f"{self.name} was never connected")
        return self._target(*args, **kwargs)
