"""Telling people when an issue changes: opened, needs a human, escalated, resolved.

Decoupled from the issue store on purpose: ``Notifier.observe`` is given the same list
of ``Issue`` models the JSON document is built from, each time it is saved, and works out
the transitions by comparing each issue with the last snapshot it saw (``transitions``).
Messages are grouped and rate-limited per service (``outbox``), written and redacted
(``message``), and delivered through Apprise (``sender``) on a thread of their own behind
a bounded queue, so a slow or failing endpoint never holds up a pass or a fix
(``notifier``).
"""

from controller.notify.notifier import Notifier

__all__ = ["Notifier"]
