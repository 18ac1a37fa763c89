"""fold_constants: a node whose inputs are all constants becomes initializers.

``f(c1, c2) -> f(c1, c2) computed once``. Matters for exporters that build weights
in the graph (the onnx wheel's light models make every weight with ConstantOfShape).
Skipped: random ops (each run must draw anew), nodes with subgraphs, non-ONNX domains,
QuantizeLinear/DequantizeLinear (the QDQ passes need to see DQ(weight) -> Conv), and
outputs over ``MAX_ELEMENTS`` (a folded constant lives as long as the session), unless
they are weights: a Conv/Gemm/MatMul packs a constant weight once, while a computed one
would be rebuilt and repacked on every run.
"""

from __future__ import annotations

import numpy as np

from ..ir import Graph
from .evaluate import evaluate_node
from .util import (
    dtype_code,
    has_subgraph,
    is_constant,
    output_names,
    remove_nodes,
    set_constant,
)

MAX_ELEMENTS = 1 << 24
MAX_WEIGHT_ELEMENTS = 1 << 28

WEIGHT_READERS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"})

NEVER_FOLD = frozenset({
    "RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike",
    "Bernoulli", "Multinomial",
    "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear",
})  # fmt: skip

# numpy kinds an initializer may hold (bool, ints, floats, complex, strings)
_TENSOR_KINDS = "biufcOUS"


def _known_size(graph: Graph, name: str) -> int | None:
    shape = graph.value(name).shape
    if shape is None or not all(isinstance(d, int) for d in shape):
        return None
    return int(np.prod(shape, dtype=np.int64))


def _weights(graph: Graph) -> set[str]:
    """Names read only as weights/biases (not input 0) of Conv/Gemm/MatMul nodes."""
    other: set[str] = set()
    weights: set[str] = set()
    for n in graph.nodes:
        is_reader = n.domain == "" and n.op_type in WEIGHT_READERS
        for k, i in enumerate(n.inputs):
            (weights if is_reader and k > 0 else other).add(i)
        other.update(n.implicit_inputs)
    return weights - other - output_names(graph)


def run(graph: Graph) -> bool:
    """Folds every foldable node, in order, so chains of constants fold in one call."""
    weights = _weights(graph)
    folded: dict[str, np.ndarray] = {}
    dead = []
    for node in graph.nodes:
        if node.domain != "" or node.op_type in NEVER_FOLD or has_subgraph(node):
            continue
        if not all(i == "" or i in folded or is_constant(graph, i) for i in node.inputs):
            continue
        outs = [o for o in node.outputs if o]
        if not outs or any(graph.value(o).kind != "tensor" for o in outs):
            continue
        limit = MAX_WEIGHT_ELEMENTS if all(o in weights for o in outs) else MAX_ELEMENTS
        if any((_known_size(graph, o) or 0) > limit for o in outs):
            continue
        feeds = {i: folded[i] if i in folded else graph.initializers[i] for i in node.inputs if i}
        res = evaluate_node(graph, node, feeds)
        if res is None or len(res) != len(outs):
            continue
        if any(r.size > limit or r.dtype.kind not in _TENSOR_KINDS for r in res):
            continue
        # A result whose dtype differs from the declared one would change the graph's types.
        declared = [graph.value(o).dtype for o in outs]
        if any(d not in (0, dtype_code(r)) for d, r in zip(declared, res, strict=True)):
            continue
        folded.update(zip(outs, res, strict=True))
        dead.append(node)
    if not dead:
        return False
    for name, arr in folded.items():
        set_constant(graph, name, arr)
    remove_nodes(graph, dead)
    return True
