"""The issue store: every drift and finding becomes one deduplicated issue with a state.

- ``store``: dedupe by fingerprint, counts, first/last seen, the state machine.
- ``document``: the JSON document ``docker_issues_<env>.json`` (its shape is in the README).
- ``report``: the Markdown report ``docker_issues_report_<env>.md``.
- ``files``: atomic writes (write, fsync, rename) so a crash never leaves a torn file.
"""
