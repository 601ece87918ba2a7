"""Remediation: a keyed work queue, a bounded worker pool, the strategy ladder, verification.

- ``queue``: one queue keyed by service (in order per service, parallel across services).
- ``policy``: backoff and the attempt budget (retry policy lives here, not in strategies).
- ``strategies``: which actions fit which drift, and running one action.
- ``verify``: waiting until a fixed service is ready, against a deadline.
- ``remediator``: the worker body tying them together, and the pool of workers.
"""
