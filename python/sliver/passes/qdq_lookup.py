"""qdq_lookup: an elementwise float function between DQ and Q becomes a 256-entry table.

    Q(f(DQ(x, sx, zx)), sy, zy) -> sliver:QLinearLookup(x, T)    T[byte(c)] = Q(f(DQ(c)))
    Q(DQ(x, sx, zx), sy, zy)    -> sliver:QLinearLookup(x, T)    (requantization, sx/zx != sy/zy)

f is a chain of elementwise ops (Sigmoid, Tanh, Erf, Gelu, LeakyRelu, Clip, ...) whose other
operands are single-number constants (Div by sqrt(d), Add 1, Mul 0.5, ...): each output
code is then a function of one input code. The table is computed by running the very nodes
being replaced (DQ, the chain, Q) with sliver's own kernels on all 256 codes, so a lookup
equals the float path it replaces; only kernels whose vector body and scalar tail round
differently can leave an ulp that moves a tie by one code.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..ir import Graph, Node, Value
from .qdq_common import SLIVER, Context, apply, dq_params, node, np_code, q_params
from .util import constant, dims

UNARY = frozenset({
    "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Erf", "Exp", "Log", "Sqrt", "Neg", "Abs",
    "Reciprocal", "Softplus", "Softsign", "Elu", "Selu", "Celu", "HardSigmoid", "HardSwish",
    "Gelu", "Mish", "ThresholdedRelu", "Sin", "Cos", "Atan", "Round", "Floor", "Ceil", "Sign",
    "Identity", "Clip",
})  # fmt: skip
BINARY = frozenset({"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "PRelu"})


def _step(ctx: Context, n: Node, x: str, rank: int | None) -> bool:
    """Whether ``n`` maps ``x`` elementwise with only single-number constants besides."""
    if n.domain != "" or len(n.outputs) != 1 or n.op_type not in UNARY | BINARY:
        return False
    if n.op_type in BINARY and len(n.inputs) != 2:
        return False
    if x not in n.inputs:
        return False
    for i in n.inputs:
        if i == x or not i:
            continue
        c = constant(ctx.graph, i)
        if c is None or c.size != 1 or c.dtype != np.float32:
            return False
        if c.ndim > 0 and (rank is None or c.ndim > rank):
            return False  # broadcasting would raise the rank
    return True


def table(graph: Graph, dq: Node, chain: list[Node], q: Node) -> np.ndarray | None:
    """Q(f(DQ(c))) for the 256 codes c (indexed by byte), run with sliver's kernels."""
    from ..plan import compile_graph  # plan imports the ops registry; keep passes import-light

    px = dq_params(graph, dq)
    py = q_params(graph, q)
    if px is None or py is None:
        return None
    codes = np.arange(256, dtype=np.uint8).view(np_code(px.dtype))
    inp = "codes"
    nodes = [Node(dq.op_type, dq.domain, "dq", [inp, *dq.inputs[1:]], ["v0"], dict(dq.attrs), dq.opset)]
    last = "v0"
    for k, n in enumerate(chain):
        ins = [last if i == (chain[k - 1].outputs[0] if k else dq.outputs[0]) else i for i in n.inputs]
        nodes.append(Node(n.op_type, n.domain, f"f{k}", ins, [f"v{k + 1}"], dict(n.attrs), n.opset))
        last = f"v{k + 1}"
    nodes.append(Node(q.op_type, q.domain, "q", [last, *q.inputs[1:]], ["out"], dict(q.attrs), q.opset))
    consts = {i for n in nodes for i in n.inputs if i and i in graph.initializers}
    values = {name: Value(name, graph.value(name).dtype, graph.value(name).shape) for name in consts}
    values[inp] = Value(inp, px.dtype, (256,))
    for k in range(len(chain) + 1):
        values[f"v{k}"] = Value(f"v{k}", 1, None)
    values["out"] = Value("out", py.dtype, None)
    mini = Graph("lookup", nodes, [values[inp]], [values["out"]],
                 {c: graph.initializers[c] for c in consts}, values, dict(graph.opsets),
                 graph.ir_version)
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            (res,) = compile_graph(mini).native.run([codes], [0])
    except Exception:
        return None
    res = np.asarray(res)
    if res.size != 256 or res.dtype != np.dtype(np_code(py.dtype)):
        return None
    return res.reshape(256)


def run(graph: Graph) -> bool:
    """Replaces every DQ -> elementwise chain -> Q (and DQ -> Q requantization) by a lookup."""
    ctx = Context(graph)
    place: dict[int, list[Node]] = {}
    dead: set[int] = set()
    for n in graph.nodes:
        if id(n) in ctx.claimed:
            continue
        if q_params(graph, n) is not None:  # DQ -> Q with other parameters
            dq = ctx.dq_of(n.inputs[0])
            qp = q_params(graph, n)
            if dq is None or qp is None or not qp.per_tensor or dq[1].same_as(qp):
                continue
            chain: list[Node] = []
            q = n
        else:
            if n.domain != "" or n.op_type not in UNARY | BINARY:
                continue
            dq = next((d for d in (ctx.dq_of(i) for i in n.inputs if i) if d is not None), None)
            if dq is None:
                continue
            x = dq[0].outputs[0]
            x_dims = dims(graph, x)
            rank = len(x_dims) if x_dims is not None else None
            if not _step(ctx, n, x, rank):
                continue
            chain, cur = [n], n
            found = None
            while found is None:
                nxt = ctx.next_node(cur.outputs[0])
                if nxt is None:
                    break
                qp = q_params(graph, nxt)
                if qp is not None:
                    found = nxt if qp.per_tensor else None
                    break
                if id(nxt) in ctx.claimed or not _step(ctx, nxt, cur.outputs[0], rank):
                    break
                chain.append(nxt)
                cur = nxt
            if found is None:
                continue
            q = found
        t = table(graph, dq[0], chain, q)
        if t is None:
            continue
        name = ctx.constant_input(t, f"{q.name}_table")
        new = node(graph, "QLinearLookup", SLIVER, q.name, [dq[0].inputs[0], name], [q.outputs[0]])
        for m in [q, *chain]:
            ctx.claimed.add(id(m))
            dead.add(id(m))
        place[id(q)] = [new]
    return apply(graph, place, dead)
