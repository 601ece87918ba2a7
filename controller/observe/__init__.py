"""The engine side: what runs, read through one gateway; compose actions through one CLI seam.

- ``gateway``: the ``EngineGateway`` protocol every other module talks to, and our error tree.
- ``engine``: the one module that imports the docker SDK.
- ``compose_cli``: runs ``docker compose`` with an argv list (never a shell);
  ``compose_model``: the config hash compose would give each service now.
- ``informer``: the project's containers, kept current by events (list once, then watch).
- ``events``: the engine's event stream, each event a hint.
- ``observer``: one ``ObservedState`` of the project; ``probes``: declared probes.
- ``logwire``, ``lines``, ``logs``: following every container's log, a read at a time.
- ``swarm``: a swarm stack's tasks behind the same gateway (read only), through a manager;
  ``swarmtasks``: what a task becomes (pure).
"""
