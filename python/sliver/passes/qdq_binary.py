"""qdq_binary: a binary elementwise op of two dequantized tensors, quantized again, becomes one
8-bit op that computes exactly what the float path does.

    Q(act(DQ(a) op DQ(b)), sc, zc) -> sliver:QLinearBinary(a, .., b, .., sc, zc, op=op)
        op in Add/Sub/Mul/Div/Max/Min, act nothing, Relu or Clip (a clamp of the codes, as in
        qdq_to_integer); the float steps run in the unfused nodes' float32 order
    Q(g(DQ(a) op DQ(b)), sc, zc)   -> sliver:QLinearPairLookup(a, b, T)    any other g
        T[byte(i) * 256 + byte(j)] = Q(g(DQ(i) op DQ(j)))
    Q(g(DQ(a) op DQ(c)), sc, zc)   -> sliver:QLinearLookup(a, T)    c one constant code

op is Add, Sub, Mul, Div, Max, Min, Pow or PRelu (numpy broadcasting, which the lookup keeps);
g is an optional chain of unary elementwise ops with single-number constants (Relu, Clip,
Mul 0.5, ...). Like qdq_lookup, the table comes from running the replaced nodes with sliver's
kernels on all code pairs (qdq_tables), so the rewrite is bit-exact with the float path it
replaces (IEEE add/mul/div round the same per element however they are vectorised), where
onnxruntime's QLinearAdd/QLinearMul formulas differ from that path at rounding ties.
"""

from __future__ import annotations

import math

import numpy as np

from ..ir import Graph, Node
from .fuse_epilogue import activation_params
from .qdq_common import SLIVER, Context, QParams, apply, code_range, node, q_params, quantize_value
from .qdq_tables import BINARY, all_codes, float_path_table, is_step, rank_of, walk_to_q
from .util import constant

ARITHMETIC = frozenset({"Add", "Sub", "Mul", "Div", "Max", "Min"})


def _single_code_side(graph: Graph, a: Node, b: Node, rank: int | None) -> int | None:
    """0 or 1 when that side's DQ reads one constant code (quantizers write scalar constants
    such as the 1 and 0.5 of a GELU this way) which cannot raise the result's rank."""
    for k, dq in enumerate((a, b)):
        c = constant(graph, dq.inputs[0])
        other = constant(graph, (b, a)[k].inputs[0])
        if c is not None and c.size == 1 and other is None:
            if c.ndim == 0 or (rank is not None and c.ndim <= rank):
                return k
    return None


def _clamp(graph: Graph, chain: list[Node], pc: QParams) -> dict[str, int] | None:
    """activation_min/max for a chain of nothing or one Relu/Clip, else None."""
    qmin, qmax = code_range(pc.dtype)
    if len(chain) == 1:
        return {}
    act = chain[1]
    if (
        len(chain) != 2
        or act.op_type not in ("Relu", "Clip")
        or act.inputs[0] != chain[0].outputs[0]
    ):
        return None
    params = activation_params(graph, act)
    if params is None:
        return None
    lo_f, hi_f = (0.0, math.inf) if act.op_type == "Relu" else (params[0], params[1])
    lo = qmin if lo_f == -math.inf else max(qmin, quantize_value(lo_f, pc))
    hi = qmax if hi_f == math.inf else min(qmax, quantize_value(hi_f, pc))
    return {"activation_min": min(lo, hi), "activation_max": hi}


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
        single = _single_code_side(graph, a[0], b[0], rank_of(graph, n.outputs[0]))
        if single is not None:  # x op c for one constant code c: a function of one code
            k = single
            codes = [all_codes(a[1].dtype), all_codes(b[1].dtype)]
            codes[k] = np.full(256, constant(graph, (a, b)[k][0].inputs[0]).reshape(()))
            table = float_path_table(graph, [a[0], b[0]], chain, q, codes)
            if table is None:
                continue
            name = ctx.constant_input(table, f"{q.name}_table")
            x = (a, b)[1 - k][0].inputs[0]
            new = node(graph, "QLinearLookup", SLIVER, n.name, [x, name], [q.outputs[0]])
            for m in [q, *chain]:
                ctx.claimed.add(id(m))
                dead.add(id(m))
            place[id(q)] = [new]
            continue
        pa, pb, pc = a[1], b[1], q_params(graph, q)
        clamp = _clamp(graph, chain, pc) if n.op_type in ARITHMETIC and pc is not None else None
        if clamp is not None:
            ins = [
                a[0].inputs[0], pa.scale_name, ctx.zp_input(pa, f"{n.name}_a_zp"),
                b[0].inputs[0], pb.scale_name, ctx.zp_input(pb, f"{n.name}_b_zp"),
                pc.scale_name, ctx.zp_input(pc, f"{n.name}_y_zp"),
            ]  # fmt: skip
            new = node(
                graph, "QLinearBinary", SLIVER, n.name, ins, [q.outputs[0]], op=n.op_type, **clamp
            )
            for m in [q, *chain]:
                ctx.claimed.add(id(m))
                dead.add(id(m))
            place[id(q)] = [new]
            continue
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
