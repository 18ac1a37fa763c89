"""Benchmark fixtures: zoo models built once, and interleaved sliver-vs-onnxruntime timing."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from helpers import zoo_dir, zoo_model  # noqa: E402,F401  (shared fixtures)


@pytest.fixture(scope="session")
def cpu_model_name() -> str:
    """lscpu's model name, recorded with every figure."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"
