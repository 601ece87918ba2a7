"""The CI gate: ``controller --once`` converges the stack or says, with evidence, why not.

Modules: ``run`` (the loop and its verdict, one exit code per cause), ``progress`` (a
line per service state change while waiting, and the final table), ``junit`` (a JUnit
file for CI test reports) and ``summary`` (the report on a GitHub Actions job page).
The CLI calls ``run_gate`` and then the outputs; nothing below the CLI imports this.
"""
