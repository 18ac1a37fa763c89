"""qdq_drop_pair: a QuantizeLinear undoing the DequantizeLinear before it disappears.

    Q(DQ(x, s, z), s, z) -> x

Exact for every code (see qdq_commute). Such pairs are left behind when the ops between
two quantizations were rewritten onto the codes, and some exporters write them outright.
Readers of Q's result read x instead; a Q whose result is a graph output (or read by a
subgraph) stays.
"""

from __future__ import annotations

from ..ir import Graph
from .qdq_common import Context, q_params
from .util import remove_nodes, rename_inputs


def run(graph: Graph) -> bool:
    """Bypasses every Q that re-quantizes a DQ with the same parameters."""
    ctx = Context(graph)
    mapping: dict[str, str] = {}
    dead = []
    for n in graph.nodes:
        pq = q_params(graph, n)
        if pq is None or not pq.per_tensor or not ctx.private(n.outputs[0]):
            continue
        dq = ctx.dq_of(n.inputs[0])
        if dq is None or not dq[1].same_as(pq):
            continue
        mapping[n.outputs[0]] = dq[0].inputs[0]
        dead.append(n)
    if not dead:
        return False
    rename_inputs(graph, mapping)
    remove_nodes(graph, dead)
    return True
