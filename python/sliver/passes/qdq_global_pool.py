"""qdq_global_pool: a dequantized GlobalAveragePool, quantized again, becomes the 8-bit op.

    Q(GlobalAveragePool(DQ(x, sx, zx)), sy, zy)
        -> com.microsoft:QLinearGlobalAveragePool(x, sx, zx, sy, zy, channels_last=0)

x and y share one 8-bit type, per-tensor parameters. The kernel sums codes exactly in int32
and requantizes once (onnxruntime's formula); the float path sums dequantized floats, so the
two differ by at most 1 code, at rounding ties.
"""

from __future__ import annotations

from ..ir import Graph, Node
from .qdq_common import MS, Context, apply, node


def run(graph: Graph) -> bool:
    """Rewrites every DQ -> GlobalAveragePool -> Q."""
    ctx = Context(graph)
    place: dict[int, list[Node]] = {}
    dead: set[int] = set()
    for n in graph.nodes:
        if n.domain != "" or n.op_type != "GlobalAveragePool" or len(n.inputs) != 1:
            continue
        dq = ctx.dq_of(n.inputs[0])
        q = ctx.q_after(n.outputs[0])
        if dq is None or q is None or dq[1].dtype != q[1].dtype:
            continue
        px, py = dq[1], q[1]
        inputs = [
            dq[0].inputs[0], px.scale_name, ctx.zp_input(px, f"{n.name}_x_zp"),
            py.scale_name, ctx.zp_input(py, f"{n.name}_y_zp"),
        ]  # fmt: skip
        new = node(
            graph,
            "QLinearGlobalAveragePool",
            MS,
            n.name,
            inputs,
            [q[0].outputs[0]],
            channels_last=0,
        )
        dead.update({id(n), id(q[0])})
        ctx.claimed.update({id(n), id(q[0])})
        place[id(q[0])] = [new]
    return apply(graph, place, dead)
