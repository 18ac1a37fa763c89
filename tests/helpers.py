"""Shared test helpers and fixtures (the repo's model zoo, built once per session)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest


@pytest.fixture(scope="session")
def zoo_dir(tmp_path_factory: pytest.TempPathFactory):
    """A folder the zoo models are built into on first use (model_zoo.build_all caches by name)."""
    return tmp_path_factory.mktemp("zoo")


@pytest.fixture(scope="session")
def zoo_model(zoo_dir):
    """zoo_model(name) -> path of that registry model, built on first request."""
    from sliver.tools import model_zoo

    cache: dict = {}
    built: dict[str, str] = {}

    def get(name: str) -> str:
        if name not in built:
            built[name] = str(model_zoo.build_one(name, zoo_dir, model_zoo.DEFAULT_SEED, cache))
        return built[name]

    return get


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two arrays as flat float64 vectors (1.0 for two zero vectors)."""
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 and nb == 0:
        return 1.0
    return float(a @ b / (na * nb))


def run_scalar_isa(code: str, timeout: int = 600) -> None:
    """Runs ``code`` in a fresh interpreter with SLIVER_ISA=scalar (dispatch picks the portable
    twins, which a process cannot switch to once it has dispatched) and checks that it exited
    cleanly after printing "scalar ok"."""
    env = dict(os.environ, SLIVER_ISA="scalar")
    r = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=timeout
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "scalar ok" in r.stdout
