"""What is coming, kept and fed: samples to trends to ``predicted`` issues (``trends``),
log sightings and incidents to learned precursors and their warnings (``learning``), and
the file both are kept in across restarts (``statefile``). The rules are pure and live in
``controller.predict``; docs/architecture.md draws where this sits in the loop.
"""
