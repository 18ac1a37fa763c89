"""qdq_binary: a binary elementwise op of two dequantized tensors, quantized again, becomes a
lookup in a 65536-entry table of code pairs.

    Q(g(DQ(a, sa, za) op DQ(b, sb, zb)), sc, zc) -> sliver:QLinearPairLookup(a, b, T)
        T[byte(i) * 256 + byte(j)] = Q(g(DQ(i) op DQ(j)))

op is Add, Sub, Mul, Div, Max, Min, Pow or PRelu (numpy broadcasting, which the lookup keeps);
g is an optional chain of unary elementwise ops with single-number constants (Relu, Clip,
Mul 0.5, ...). Like qdq_lookup, the table comes from running the replaced nodes with sliver's
kernels on all code pairs (qdq_tables), so the rewrite is bit-exact with the float path it
replaces (IEEE add/mul/div round the same per element however they are vectorised), where
onnxruntime's QLinearAdd/QLinearMul formulas differ from that path at rounding ties.
"""

from __future__ import annotations

import numpy as np

from ..ir import Graph, Node
from .qdq_common import SLIVER, Context, apply, node
from .qdq_tables import BINARY, all_codes, float_path_table, is_step, rank_of, walk_to_q


def run(graph: Graph) -> bool:
    """Rewrites every DQ, DQ -> binary op [-> unary chain] -> Q it can."""
    ctx = Context(graph)
    place: dict[int, list[Node]] = {}
    dead: set[int] = set()
    for n in graph.nodes:
        if n.domain != "" or n.op_type not in BINARY or id(n) in ctx.claimed:
            continue
        if len(n.inputs) != 2 or n.inputs[0] == n.inputs[1]:
            continue  # x op x is a function of one code: qdq_lookup's
        a, b = ctx.dq_of(n.inputs[0]), ctx.dq_of(n.inputs[1])
        if a is None or b is None:
            continue
        xs = {n.inputs[0], n.inputs[1]}
        rank = rank_of(graph, n.outputs[0])
        if not is_step(graph, n, xs, rank):
            continue
        found = walk_to_q(ctx, n, rank)
        if found is None:
            continue
        chain, q = found
        ca, cb = all_codes(a[1].dtype), all_codes(b[1].dtype)
        codes = [np.repeat(ca, 256), np.tile(cb, 256)]  # pair (i, j) at i * 256 + j
        table = float_path_table(graph, [a[0], b[0]], chain, q, codes)
        if table is None:
            continue
        name = ctx.constant_input(table, f"{q.name}_pairs")
        ins = [a[0].inputs[0], b[0].inputs[0], name]
        new = node(graph, "QLinearPairLookup", SLIVER, n.name, ins, [q.outputs[0]])
        for m in [q, *chain]:
            ctx.claimed.add(id(m))
            dead.add(id(m))
        place[id(q)] = [new]
    return apply(graph, place, dead)
