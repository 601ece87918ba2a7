"""compose-controller: a Kubernetes-style reconciliation controller for Docker Compose.

The loop, stage by stage (docs/architecture.md draws it, with the import rules and the
life of an issue):
``desired`` loads what should run, ``observe`` reads what does run, ``reconcile`` diffs
the two (pure), ``issues`` remembers and reports every difference, ``remediate`` fixes
them with a bounded pool of workers, ``runtime`` wires the stages to a scheduler,
``http`` serves metrics and probes, ``gate`` is the CI gate, ``cli`` parses flags and
maps results to exit codes.
"""

__version__ = "0.1.0"
