"""pytest wiring: fixtures shared with benchmarks live in helpers.py."""

from helpers import zoo_dir, zoo_model  # noqa: F401
