"""qdq_binary: Add/Mul of two dequantized tensors, quantized again, become one 8-bit op.

    Q(DQ(a) + DQ(b), sc, zc)        -> com.microsoft:QLinearAdd(a, sa, za, b, sb, zb, sc, zc)
    Q(DQ(a) * DQ(b), sc, zc)        -> com.microsoft:QLinearMul(...)
    Q(act(DQ(a) op DQ(b)), sc, zc)  -> sliver:QLinearLookup(QLinear<op>(...), clamp table)
                                       act = Relu | Clip(lo, hi): clamp to [Q(lo), Q(hi)]

a, b and the result share one 8-bit type (the contrib ops' contract), per-tensor
parameters; numpy broadcasting as in Add/Mul. The native kernels are 64 KiB tables of
onnxruntime's float formula per code pair (ops/qlinear_eltwise.cc), so results are
onnxruntime's; against the float path they differ by at most 1 code, at rounding ties.
"""

from __future__ import annotations

import math

import numpy as np

from ..ir import Graph, Node
from .fuse_epilogue import activation_params
from .qdq_common import MS, SLIVER, Context, apply, code_range, node, np_code, quantize_value

OPS = {"Add": "QLinearAdd", "Mul": "QLinearMul"}


def clamp_table(code_type: int, lo: int, hi: int) -> np.ndarray:
    """The lookup table (indexed by the code's byte) of clamp(code, lo, hi)."""
    codes = np.arange(256, dtype=np.uint8).view(np_code(code_type)).astype(np.int64)
    return np.clip(codes, lo, hi).astype(np_code(code_type))


def run(graph: Graph) -> bool:
    """Rewrites every DQ/DQ -> Add|Mul [-> Relu|Clip] -> Q it can."""
    ctx = Context(graph)
    place: dict[int, list[Node]] = {}
    dead: set[int] = set()
    for n in graph.nodes:
        if n.domain != "" or n.op_type not in OPS or id(n) in ctx.claimed:
            continue
        if len(n.inputs) != 2 or len(n.outputs) != 1:
            continue
        a, b = ctx.dq_of(n.inputs[0]), ctx.dq_of(n.inputs[1])
        if a is None or b is None or a[1].dtype != b[1].dtype:
            continue
        y, absorbed, bounds = n.outputs[0], [], (-math.inf, math.inf)
        act = ctx.next_node(y)
        if act is not None and act.domain == "" and act.op_type in ("Relu", "Clip"):
            params = activation_params(graph, act)
            if params is None or act.inputs[0] != y:
                continue
            bounds = (0.0, math.inf) if act.op_type == "Relu" else (params[0], params[1])
            absorbed, y = [act], act.outputs[0]
        q = ctx.q_after(y)
        if q is None or q[1].dtype != a[1].dtype:
            continue
        pa, pb, pc = a[1], b[1], q[1]
        qmin, qmax = code_range(pc.dtype)
        lo = qmin if bounds[0] == -math.inf else max(qmin, quantize_value(bounds[0], pc))
        hi = qmax if bounds[1] == math.inf else min(qmax, quantize_value(bounds[1], pc))
        inputs = [
            a[0].inputs[0], pa.scale_name, ctx.zp_input(pa, f"{n.name}_a_zp"),
            b[0].inputs[0], pb.scale_name, ctx.zp_input(pb, f"{n.name}_b_zp"),
            pc.scale_name, ctx.zp_input(pc, f"{n.name}_c_zp"),
        ]  # fmt: skip
        out = q[0].outputs[0]
        new: list[Node] = []
        if (lo, hi) != (qmin, qmax):
            raw = ctx.names(f"{n.name}_unclamped")
            ctx.add_value(raw, pc.dtype, graph.value(out).shape)
            table = ctx.constant_input(clamp_table(pc.dtype, min(lo, hi), hi), f"{n.name}_clamp")
            new.append(node(graph, OPS[n.op_type], MS, n.name, inputs, [raw]))
            new.append(node(graph, "QLinearLookup", SLIVER, f"{n.name}_clamp", [raw, table], [out]))
        else:
            new.append(node(graph, OPS[n.op_type], MS, n.name, inputs, [out]))
        for m in [n, q[0], *absorbed]:
            ctx.claimed.add(id(m))
            dead.add(id(m))
        place[id(q[0])] = new
    return apply(graph, place, dead)
