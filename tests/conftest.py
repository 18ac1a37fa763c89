"""pytest wiring: fixtures shared with benchmarks live in helpers.py.

Hypothesis draws the same examples on every run (derandomize): a CI run is reproducible, and a
case it finds failing fails again on the next run instead of vanishing. To explore new inputs
locally: ``pytest --hypothesis-profile explore``.
"""

from helpers import zoo_dir, zoo_model  # noqa: F401
from hypothesis import settings

settings.register_profile("ci", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile("ci")
