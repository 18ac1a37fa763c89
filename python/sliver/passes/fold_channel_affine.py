"""fold_channel_affine: a per-channel constant Mul or Add after Conv/ConvTranspose or an
inference BatchNormalization folds into its weights or parameters.

    conv(x, W, b) * m -> conv(x, W * m, b * m)      m varies along the channel axis only
    conv(x, W, b) + a -> conv(x, W, b + a)
    BN(x; scale, bias) * m -> BN(x; scale * m, bias * m),   BN(..) + a -> BN(..; bias + a)

Caffe2 exports write BN's affine part this way (BatchNormalization, then Mul and Add by
unsqueezed vectors). The constant must not raise the result's rank; new parameters get
fresh names (the old ones may be shared).
"""

from __future__ import annotations

import numpy as np

from ..ir import Graph, Node
from .fold_batchnorm import scale_output_channels
from .util import (
    NameMaker,
    constant,
    dtype_code,
    implicit_reads,
    output_names,
    remove_nodes,
    set_constant,
    single_consumer,
)

ANCHORS = ("Conv", "ConvTranspose", "BatchNormalization")


def _rank(graph: Graph, node: Node) -> int | None:
    if node.op_type == "BatchNormalization":
        shape = graph.value(node.outputs[0]).shape
        return None if shape is None else len(shape)
    w = constant(graph, node.inputs[1])
    return None if w is None else w.ndim


def _channels(graph: Graph, node: Node) -> int | None:
    if node.op_type == "BatchNormalization":
        scale = constant(graph, node.inputs[1])
        return None if scale is None else scale.size
    w = constant(graph, node.inputs[1])
    if w is None:
        return None
    return w.shape[0] if node.op_type == "Conv" else w.shape[1] * int(node.attrs.get("group", 1))


def channel_vector(c: np.ndarray | None, rank: int, channels: int) -> np.ndarray | None:
    """``c`` as a [channels] vector when it broadcasts along axis 1 of a rank-``rank``
    tensor only (and does not raise the rank), else None."""
    if c is None or c.dtype.kind != "f" or c.ndim > rank or rank < 2:
        return None
    if c.size == 1:
        return np.full(channels, c.reshape(()), dtype=c.dtype)
    full = (1,) * (rank - c.ndim) + c.shape
    if full[1] != channels or any(d != 1 for i, d in enumerate(full) if i != 1):
        return None
    return c.reshape(channels)


def _anchor_ok(graph: Graph, node: Node, used: set[str]) -> bool:
    if node.domain != "" or node.op_type not in ANCHORS or len(node.inputs) < 2:
        return False
    if node.op_type == "BatchNormalization":
        return (
            len(node.inputs) == 5
            and not int(node.attrs.get("training_mode", 0))
            and int(node.attrs.get("spatial", 1)) == 1
            and not any(o and o in used for o in node.outputs[1:])
            and all(constant(graph, i) is not None for i in node.inputs[1:])
        )
    w = constant(graph, node.inputs[1])
    bias = node.inputs[2] if len(node.inputs) > 2 else ""
    return w is not None and w.dtype.kind == "f" and (not bias or constant(graph, bias) is not None)


def _fold(graph: Graph, node: Node, op: str, v: np.ndarray, names: NameMaker) -> bool:
    """Rewrites ``node``'s parameters for ``y * v`` (op Mul) or ``y + v`` (op Add)."""
    if node.op_type == "BatchNormalization":
        scale, bias = constant(graph, node.inputs[1]), constant(graph, node.inputs[2])
        assert scale is not None and bias is not None
        if scale.dtype != v.dtype or bias.dtype != v.dtype:
            return False
        inputs = list(node.inputs)
        if op == "Mul":
            inputs[1] = names(f"{node.inputs[1]}_mul")
            set_constant(graph, inputs[1], scale * v)
        inputs[2] = names(f"{node.inputs[2]}_{op.lower()}")
        set_constant(graph, inputs[2], bias * v if op == "Mul" else bias + v)
        node.inputs = inputs
        return True
    w = constant(graph, node.inputs[1])
    assert w is not None
    if w.dtype != v.dtype:
        return False
    bias_name = node.inputs[2] if len(node.inputs) > 2 else ""
    b = constant(graph, bias_name) if bias_name else np.zeros(v.size, dtype=w.dtype)
    if b is None or b.shape != (v.size,):
        return False
    w_name = node.inputs[1]
    if op == "Mul":
        new_w = scale_output_channels(node, w, v.astype(np.float64))
        if new_w is None:
            return False
        w_name = names(f"{node.inputs[1]}_mul")
        set_constant(graph, w_name, new_w.astype(w.dtype))
    b_name = names(f"{node.name}_bias_{op.lower()}")
    set_constant(graph, b_name, (b * v if op == "Mul" else b + v).astype(w.dtype))
    node.inputs = [node.inputs[0], w_name, b_name]
    return True


def run(graph: Graph) -> bool:
    """Folds one Mul/Add per anchor per call (the pipeline repeats until stable)."""
    consumers = graph.consumers()
    outs = output_names(graph)
    implicit = implicit_reads(graph)
    used = set(consumers) | outs
    names = NameMaker(graph)
    dead: list[Node] = []
    for node in graph.nodes:
        if not _anchor_ok(graph, node, used):
            continue
        y = node.outputs[0]
        nxt = single_consumer(consumers, y)
        if nxt is None or nxt.domain != "" or nxt.op_type not in ("Mul", "Add"):
            continue
        if y in outs or y in implicit:
            continue
        other = nxt.inputs[1] if nxt.inputs[0] == y else nxt.inputs[0]
        rank, channels = _rank(graph, node), _channels(graph, node)
        if rank is None or channels is None:
            continue
        v = channel_vector(constant(graph, other), rank, channels)
        if v is None or dtype_code(v) != graph.value(y).dtype:
            continue
        if not _fold(graph, node, nxt.op_type, v, names):
            continue
        node.outputs = [nxt.outputs[0]] + node.outputs[1:]
        dead.append(nxt)
    if not dead:
        return False
    remove_nodes(graph, dead)
    return True
