"""Remediation, level-triggered: a keyed queue, a worker pool, one reconcile per service.

- ``records``: every service's remediation record, and the only module that writes one.
- ``reconciler``: ``reconcile(service) -> results.Done | RequeueAfter | Failed``: decides.
- ``proving``: records what the proof of a step taken says; ``runner``: carries a step out.
- ``deference``: what is left to a person or to Docker's restart policy.
- ``pool``, ``queue``, ``failures``: the workers, the keyed queue, its failure backoff.
- ``signals``: what engine events and passes tell remediation.
- pure rules: ``verify`` (proven or not), ``plan`` (which rungs), ``blame`` (which log
  error explains a crash), ``throttle`` (backoff and budget), ``crashes`` (the crash
  pattern a fix must outlive), ``activity`` (what people do, read from the engine).
- ``strategies``: the ladders, and running one action.

docs/architecture.md draws how they fit and the life of an issue.
"""
