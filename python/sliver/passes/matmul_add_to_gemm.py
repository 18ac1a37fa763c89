"""matmul_add_to_gemm: ``Add(MatMul(A, B), bias) -> sliver:FusedMatMul(A, B, bias)``.

The bias must be a constant that only varies along the last axis (shape [N],
[1, .., 1, N] or a single number) and must not raise the result's rank; A may have
any rank (batched activations against 2-D weights are the common case). The
MatMul's result must feed only the Add, and its inputs must not come from
DequantizeLinear (QDQ patterns belong to the quantization passes).
"""

from __future__ import annotations

import numpy as np

from ..ir import Graph, Node
from . import fusion
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


def _bias_vector(graph: Graph, matmul: Node, add: Node) -> np.ndarray | None:
    """The Add's other operand as a [N] vector, or None when it is not such a bias."""
    y = matmul.outputs[0]
    other = add.inputs[1] if add.inputs[0] == y else add.inputs[0]
    bias = constant(graph, other)
    out_shape = graph.value(y).shape
    b_shape = graph.value(matmul.inputs[1]).shape
    if bias is None or out_shape is None or b_shape is None or len(b_shape) < 2:
        return None
    n = b_shape[-1]
    if not isinstance(n, int) or bias.ndim > len(out_shape):
        return None
    if graph.value(y).dtype != dtype_code(bias):
        return None
    if bias.size == 1:
        return np.full(n, bias.reshape(()), dtype=bias.dtype)
    if bias.shape[-1] == n and bias.size == n:
        return bias.reshape(n)
    return None


def run(graph: Graph) -> bool:
    """Rewrites each MatMul + constant-bias Add into one FusedMatMul."""
    consumers = graph.consumers()
    producers = graph.producers()
    outs = output_names(graph)
    implicit = implicit_reads(graph)
    names = NameMaker(graph)
    replace: dict[int, Node] = {}  # id(Add) -> FusedMatMul placed there
    dead: list[Node] = []
    for node in graph.nodes:
        if node.domain != "" or node.op_type != "MatMul":
            continue
        y = node.outputs[0]
        add = single_consumer(consumers, y)
        if add is None or add.domain != "" or add.op_type != "Add" or y in outs or y in implicit:
            continue
        if graph.value(y).dtype not in fusion.DTYPES or fusion.reads_dequantized(node, producers):
            continue
        bias = _bias_vector(graph, node, add)
        if bias is None:
            continue
        b_name = names(f"{node.name}_bias")
        set_constant(graph, b_name, bias)
        replace[id(add)] = fusion.make_fused(
            graph, node, [node.inputs[0], node.inputs[1], b_name], add.outputs[0]
        )
        dead.append(node)
    if not dead:
        return False
    graph.nodes = [replace.get(id(n), n) for n in graph.nodes]
    remove_nodes(graph, dead)
    return True
