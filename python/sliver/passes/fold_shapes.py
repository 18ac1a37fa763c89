"""fold_shapes: shape arithmetic on statically known shapes becomes constants.

``Shape(x)`` with x's dims all known -> int64 constant (``start``/``end`` honoured);
``Size(x)`` likewise; ``Gather``/``Slice`` of a Shape whose *selected* dims are known ->
constant even when other dims are symbolic (the common ``x.shape[-1]`` in exported
transformers). Dims come from ONNX shape inference (``graph.values``); graph inputs'
static dims are enforced on every feed, so they hold at run time.
"""

from __future__ import annotations

import numpy as np

from ..ir import Dim, Graph, Node
from .evaluate import evaluate_node
from .util import dims as value_dims
from .util import is_constant, remove_nodes, set_constant

Known = tuple[Dim, ...]


def _shape_dims(graph: Graph, node: Node) -> Known | None:
    """The dims a Shape node outputs (int where known), or None when the rank is unknown."""
    shape = value_dims(graph, node.inputs[0])
    if shape is None:
        return None
    rank = len(shape)
    start = int(node.attrs.get("start", 0))
    end = int(node.attrs.get("end", rank))
    start = min(max(start + rank if start < 0 else start, 0), rank)
    end = min(max(end + rank if end < 0 else end, 0), rank)
    return tuple(shape[start:end])


def _known(dims: Known) -> bool:
    return all(isinstance(d, int) for d in dims)


def _select(graph: Graph, node: Node, dims: Known) -> np.ndarray | None:
    """Gather/Slice of a partially known shape vector: run the op on positions 0..n-1,
    then read the dims at the positions it picked."""
    if any(i and i != node.inputs[0] and not is_constant(graph, i) for i in node.inputs):
        return None
    if node.op_type == "Gather" and int(node.attrs.get("axis", 0)) != 0:
        return None
    feeds = {i: graph.initializers[i] for i in node.inputs if i and i != node.inputs[0]}
    feeds[node.inputs[0]] = np.arange(len(dims), dtype=np.int64)
    res = evaluate_node(graph, node, feeds)
    if res is None or len(res) != 1:
        return None
    picked = res[0]
    if not all(isinstance(dims[int(p)], int) for p in picked.reshape(-1)):
        return None
    out = np.array([dims[int(p)] for p in picked.reshape(-1)], dtype=np.int64)
    return out.reshape(picked.shape)


def run(graph: Graph) -> bool:
    """Replaces Shape/Size nodes, and Gather/Slice of Shape, with constants where known."""
    shape_of: dict[str, Known] = {}
    folded: dict[str, np.ndarray] = {}
    dead: list[Node] = []
    for node in graph.nodes:
        if node.domain != "" or not node.inputs or not node.inputs[0]:
            continue
        if node.op_type == "Shape":
            dims = _shape_dims(graph, node)
            if dims is None:
                continue
            if _known(dims):
                folded[node.outputs[0]] = np.array(dims, dtype=np.int64)
                dead.append(node)
            else:
                shape_of[node.outputs[0]] = dims
        elif node.op_type == "Size":
            shape = value_dims(graph, node.inputs[0])
            if shape is not None and _known(shape):
                size = int(np.prod(shape, dtype=np.int64))
                folded[node.outputs[0]] = np.array(size, dtype=np.int64)
                dead.append(node)
        elif node.op_type in ("Gather", "Slice") and node.inputs[0] in shape_of:
            out = _select(graph, node, shape_of[node.inputs[0]])
            if out is not None:
                folded[node.outputs[0]] = out
                dead.append(node)
    if not dead:
        return False
    for name, arr in folded.items():
        set_constant(graph, name, arr)
    remove_nodes(graph, dead)
    return True
