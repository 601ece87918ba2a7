"""The engine side: what runs, read through one gateway; compose actions through one CLI seam.

- ``gateway``: the ``EngineGateway`` protocol every other module talks to, and our error tree.
- ``engine``: the one module that imports the docker SDK.
- ``compose_cli``: runs ``docker compose`` with an argv list (never a shell).
- ``observer``: turns the gateway's container list into an ``ObservedState``.
"""
