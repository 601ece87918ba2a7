"""Shared by every test. Hypothesis runs derandomized: the same examples on every run, so
a CI run is reproducible and never red by chance. ``HYPOTHESIS_PROFILE=explore`` searches
afresh (a counterexample found that way becomes an ``@example`` of its test)."""

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
