"""The soak and chaos harness with ground truth (issue 18): a realistic stack lives with
the controller for minutes or an hour while a seeded injector causes real faults and
journals what a correct controller does about each; a scorer holds every verdict of the
controller (its issues file and /status, its log, Prometheus' alerts on the shipped
rules, the notifications it sent) against that journal.

Why a top-level package and not ``bench/soak/``: it is a package of a dozen modules with
its own unit tests and mypy's strict check (``bench/`` holds single-file scripts run by
path), it runs as ``python -m soak`` from the repository, and it reuses the e2e tests'
helpers (``tests.e2e.conftest.Stack``, ``free_ports``, ``tests.e2e.test_prometheus.
Prometheus``, ``tests.receiver.Receiver``) and bench/latency.py's poller and statistics.
It is not shipped (setuptools packages only ``controller``) and the controller never
imports it.

Modules: ``stack`` (the services and the desired state), ``apps/`` (their programs),
``catalog`` (faults and expectations), ``schedule`` (the seeded plan), ``inject`` (doing
a fault, waiting for its outcome), ``engine`` (the engine's view), ``journal`` (the
fault log), ``recorder`` (the controller's issues file, the notifications, the alerts),
``evidence`` (a run read back), ``score`` (the matching rules), ``report`` (the table),
``baseline`` (autoheal and Docker's restart policy), ``run`` (one run, torn down
whatever happens), ``__main__`` (the command).
"""
