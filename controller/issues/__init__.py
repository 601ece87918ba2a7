"""The issue store: every drift and finding becomes one deduplicated issue with a state.

- ``store``: dedupe by fingerprint, counts, first/last seen, the state machine.
- ``findings``: what a log finding does to its issue; ``readiness``: how long each
  service has been ready (the evidence behind "recovered" and "converged").
- ``present``: what the controller intends for an issue, derived from the service's
  remediation record when a document is built.
- ``document``: the JSON document ``docker_issues_<env>.json`` (its shape: docs/issues-file.md).
- ``report``: the Markdown report ``docker_issues_report_<env>.md``.
- ``files``: atomic writes (write, fsync, rename) so a crash never leaves a torn file;
  ``saver``: saves at most every 0.5 s, at once when asked.
"""
