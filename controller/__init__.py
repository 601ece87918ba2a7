"""compose-controller: a Kubernetes-style reconciliation controller for Docker Compose.

The loop, stage by stage (ARCHITECTURE.md draws it):
``desired`` loads what should run, ``observe`` reads what does run, ``reconcile`` diffs
the two (pure), ``issues`` remembers and reports every difference, ``remediate`` fixes
them with a bounded pool of workers, ``runtime`` wires the stages to a scheduler,
``http`` serves metrics and probes, ``cli`` parses flags and maps results to exit codes.
"""

__version__ = "0.1.0"
