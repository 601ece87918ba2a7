"""Remediation, level-triggered: a keyed queue, a worker pool, one reconcile per service.

- ``queue``: the work queue keyed by service, with delayed and rate-limited adds.
- ``limiter``: backoff and budget per service, in one place, persisted.
- ``policy``: the pure rules of backoff, budget and stability the limiter applies.
- ``reconciler``: ``reconcile(service) -> Done | RequeueAfter | Failed``.
- ``verify``, ``plan``, ``blame``: pure decisions (proven or not; which steps; which log
  error explains a crash).
- ``activity``: what people are doing, read from the engine.
- ``strategies``: the ladders and running one action.
- ``remediator``: the worker pool, and what passes and events tell it.

docs/architecture.md draws how they fit and the life of an issue.
"""
