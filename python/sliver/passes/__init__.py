"""Graph rewrite passes.

Each pass is one small module with a ``run(graph) -> bool`` that returns whether
it changed anything; ``PIPELINE`` lists them in order with the lowest
optimization level that enables them, and ``run_pipeline`` repeats the list
until nothing changes.
"""

from __future__ import annotations

from collections.abc import Callable

from ..ir import Graph
from ..options import GraphOptimizationLevel

Pass = Callable[[Graph], bool]

PIPELINE: list[tuple[GraphOptimizationLevel, str, Pass]] = []

MAX_ROUNDS = 10


def run_pipeline(graph: Graph, level: GraphOptimizationLevel) -> Graph:
    """Applies every enabled pass until the graph stops changing."""
    if level == GraphOptimizationLevel.ORT_DISABLE_ALL:
        return graph
    for _ in range(MAX_ROUNDS):
        changed = False
        for min_level, _name, fn in PIPELINE:
            if level >= min_level:
                changed |= fn(graph)
        if not changed:
            break
    return graph
