"""Shared test helpers and fixtures (the repo's model zoo, built once per session)."""

from __future__ import annotations

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
