"""The desired state in force: one reference, read by every part that decides.

The composition root (``assembly``) hands each part that reads the declaration this
holder's ``current`` (a ``Callable[[], DesiredState]``), never the state itself; a reload
(``runtime.reload``) swaps the reference whole, between two passes (``Controller.use``).
A reader gets one frozen ``DesiredState``: never half of an old one and half of a new.
The issue store, the records and the queue are not rebuilt: they outlive a reload.
"""

from __future__ import annotations

import threading

from controller.model import DesiredState


class Declared:
    def __init__(self, desired: DesiredState) -> None:
        self._desired = desired
        self._lock = threading.Lock()

    def current(self) -> DesiredState:
        return self._desired  # one reference read: atomic

    def swap(self, desired: DesiredState) -> DesiredState:
        """Put ``desired`` in force; the one it replaces."""
        with self._lock:
            old, self._desired = self._desired, desired
        return old
