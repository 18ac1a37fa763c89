"""Graph rewrite passes.

Each pass is one small module with a ``run(graph) -> bool`` that returns whether
it changed anything; ``PIPELINE`` lists them in order with the lowest
optimization level that enables them, and ``run_pipeline`` repeats the list
until nothing changes. With ``SLIVER_VERIFY_PASSES=1`` (or ``verify=True``) the
graph's invariants are checked after every pass that changed it.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from ..ir import Graph
from ..options import GraphOptimizationLevel
from . import (
    fold_batchnorm,
    fold_channel_affine,
    fold_constants,
    fold_shapes,
    fuse_dynamic_quant,
    fuse_epilogue,
    fuse_gelu,
    fuse_layernorm,
    lower_contrib,
    matmul_add_to_gemm,
    qdq_binary,
    qdq_commute,
    qdq_concat,
    qdq_drop_pair,
    qdq_fold_lookups,
    qdq_global_pool,
    qdq_lookup,
    qdq_nhwc,
    qdq_to_integer,
    remove_dead,
    remove_identity,
)
from .verify import verify as verify_graph

Pass = Callable[[Graph], bool]

BASIC = GraphOptimizationLevel.ORT_ENABLE_BASIC
EXTENDED = GraphOptimizationLevel.ORT_ENABLE_EXTENDED
LAYOUT = GraphOptimizationLevel.ORT_ENABLE_LAYOUT

PIPELINE: list[tuple[GraphOptimizationLevel, str, Pass]] = [
    (BASIC, "lower_contrib", lower_contrib.run),
    (BASIC, "remove_identity", remove_identity.run),
    (BASIC, "fold_shapes", fold_shapes.run),
    (BASIC, "fold_constants", fold_constants.run),
    (BASIC, "remove_dead", remove_dead.run),
    (BASIC, "fold_batchnorm", fold_batchnorm.run),
    (BASIC, "fold_channel_affine", fold_channel_affine.run),
    (BASIC, "matmul_add_to_gemm", matmul_add_to_gemm.run),
    # Quantized graphs onto integer kernels (onnxruntime fuses QDQ at its extended level too).
    (EXTENDED, "fuse_dynamic_quant", fuse_dynamic_quant.run),
    (EXTENDED, "qdq_to_integer", qdq_to_integer.run),
    (EXTENDED, "qdq_commute", qdq_commute.run),
    (EXTENDED, "qdq_concat", qdq_concat.run),
    (EXTENDED, "qdq_binary", qdq_binary.run),
    (EXTENDED, "qdq_global_pool", qdq_global_pool.run),
    (EXTENDED, "qdq_lookup", qdq_lookup.run),
    (EXTENDED, "qdq_drop_pair", qdq_drop_pair.run),
    (EXTENDED, "qdq_fold_lookups", qdq_fold_lookups.run),
    (EXTENDED, "fuse_epilogue", fuse_epilogue.run),
    (EXTENDED, "fuse_gelu", fuse_gelu.run),
    (EXTENDED, "fuse_layernorm", fuse_layernorm.run),
    (LAYOUT, "qdq_nhwc", qdq_nhwc.run),
]

MAX_ROUNDS = 10


def run_pipeline(graph: Graph, level: GraphOptimizationLevel, verify: bool | None = None) -> Graph:
    """Applies every enabled pass until the graph stops changing."""
    if level == GraphOptimizationLevel.ORT_DISABLE_ALL:
        return graph
    if verify is None:
        verify = os.environ.get("SLIVER_VERIFY_PASSES", "") not in ("", "0")
    if verify:
        verify_graph(graph, "import")
    for _ in range(MAX_ROUNDS):
        changed = False
        for min_level, name, fn in PIPELINE:
            if level >= min_level and fn(graph):
                changed = True
                if verify:
                    verify_graph(graph, name)
        if not changed:
            break
    return graph
