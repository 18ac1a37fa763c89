"""qdq_concat: a Concat of dequantized tensors with differing parameters becomes the 8-bit op.

    Q(Concat(DQ(x_i, s_i, z_i)), sy, zy) -> com.microsoft:QLinearConcat(sy, zy, x_i, s_i, z_i, ...)

(With equal parameters everywhere, qdq_commute concatenates the codes directly.) Inputs
whose parameters equal the output's are copied; the others go through a 256-entry
requantization table, Q(DQ(c)) per code, which is exactly what the float path computes.
"""

from __future__ import annotations

from ..ir import Graph, Node
from .qdq_common import MS, Context, apply, node


def run(graph: Graph) -> bool:
    """Rewrites every DQ.. -> Concat -> Q whose inputs are all dequantized 8-bit codes."""
    ctx = Context(graph)
    place: dict[int, list[Node]] = {}
    dead: set[int] = set()
    for n in graph.nodes:
        if n.domain != "" or n.op_type != "Concat" or not n.inputs or "axis" not in n.attrs:
            continue
        dqs = [ctx.dq_of(i) for i in n.inputs]
        q = ctx.q_after(n.outputs[0])
        if q is None or any(d is None or d[1].dtype != q[1].dtype for d in dqs):
            continue
        if all(d[1].same_as(q[1]) for d in dqs):  # type: ignore[index]
            continue  # qdq_commute's
        py = q[1]
        inputs = [py.scale_name, ctx.zp_input(py, f"{n.name}_y_zp")]
        for k, d in enumerate(dqs):
            dq, p = d  # type: ignore[misc]
            inputs += [dq.inputs[0], p.scale_name, ctx.zp_input(p, f"{n.name}_x{k}_zp")]
        new = node(
            graph, "QLinearConcat", MS, n.name, inputs, [q[0].outputs[0]], axis=int(n.attrs["axis"])
        )
        dead.update({id(n), id(q[0])})
        ctx.claimed.update({id(n), id(q[0])})
        place[id(q[0])] = [new]
    return apply(graph, place, dead)
