"""qdq_lookup: an elementwise float function between DQ and Q becomes a 256-entry table.

    Q(f(DQ(x, sx, zx)), sy, zy) -> sliver:QLinearLookup(x, T)    T[byte(c)] = Q(f(DQ(c)))
    Q(DQ(x, sx, zx), sy, zy)    -> sliver:QLinearLookup(x, T)    (requantization, sx/zx != sy/zy)

f is a chain of elementwise ops (Sigmoid, Tanh, Erf, Gelu, LeakyRelu, Clip, x*x, ...) whose
other operands are single-number constants (Div by sqrt(d), Add 1, Mul 0.5, ...): each output
code is then a function of one input code. The table comes from running the replaced nodes
with sliver's own kernels on all 256 codes (qdq_tables), so a lookup equals the float path it
replaces; only kernels whose vector body and scalar tail round differently could leave an ulp
that moves a tie by one code.
"""

from __future__ import annotations

from ..ir import Graph, Node
from .qdq_common import SLIVER, Context, apply, node, q_params
from .qdq_tables import BINARY, UNARY, all_codes, float_path_table, is_step, rank_of, walk_to_q


def run(graph: Graph) -> bool:
    """Replaces every DQ -> elementwise chain -> Q (and DQ -> Q requantization) by a lookup."""
    ctx = Context(graph)
    place: dict[int, list[Node]] = {}
    dead: set[int] = set()
    for n in graph.nodes:
        if id(n) in ctx.claimed:
            continue
        qp = q_params(graph, n)
        if qp is not None:  # DQ -> Q with other parameters: a requantization
            dq = ctx.dq_of(n.inputs[0])
            if dq is None or not qp.per_tensor or dq[1].same_as(qp):
                continue
            chain: list[Node] = []
            q = n
        else:
            if n.domain != "" or n.op_type not in UNARY | BINARY:
                continue
            dqs = {d[0].outputs[0]: d for d in (ctx.dq_of(i) for i in n.inputs if i) if d}
            if len(dqs) != 1:
                continue  # two different dequantized inputs: qdq_binary's
            ((x, dq),) = dqs.items()
            rank = rank_of(graph, x)
            if not is_step(graph, n, {x}, rank):
                continue
            found = walk_to_q(ctx, n, rank)
            if found is None:
                continue
            chain, q = found
        table = float_path_table(graph, [dq[0]], chain, q, [all_codes(dq[1].dtype)])
        if table is None:
            continue
        name = ctx.constant_input(table, f"{q.name}_table")
        new = node(graph, "QLinearLookup", SLIVER, q.name, [dq[0].inputs[0], name], [q.outputs[0]])
        for m in [q, *chain]:
            ctx.claimed.add(id(m))
            dead.add(id(m))
        place[id(q)] = [new]
    return apply(graph, place, dead)
