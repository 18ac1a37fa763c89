"""Elementwise float regions between DQs and a Q, and the code tables that replace them
(shared by qdq_lookup and qdq_binary).

An 8-bit code has 256 values, so anything elementwise computed from one code (or two) and
quantized again is a table of 256 (or 65536) codes. The table is computed by running the very
nodes it replaces (the DQs, the float ops, the Q) with sliver's own kernels on every code, so
the lookup equals the float path it replaces.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..ir import Graph, Node, Value
from .qdq_common import Context, dq_params, np_code, q_params
from .util import constant, dims

UNARY = frozenset({
    "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Erf", "Exp", "Log", "Sqrt", "Neg", "Abs",
    "Reciprocal", "Softplus", "Softsign", "Elu", "Selu", "Celu", "HardSigmoid", "HardSwish",
    "Gelu", "Mish", "ThresholdedRelu", "Sin", "Cos", "Atan", "Round", "Floor", "Ceil", "Sign",
    "Identity", "Clip",
})  # fmt: skip
BINARY = frozenset({"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "PRelu"})


def rank_of(graph: Graph, name: str) -> int | None:
    """The rank of ``name`` when known."""
    d = dims(graph, name)
    return len(d) if d is not None else None


def is_step(graph: Graph, n: Node, xs: set[str], rank: int | None) -> bool:
    """Whether ``n`` is elementwise in the values ``xs`` (it reads at least one), with only
    single-number float constants besides, which cannot raise the rank."""
    if n.domain != "" or len(n.outputs) != 1 or n.op_type not in UNARY | BINARY:
        return False
    if n.op_type in BINARY and len(n.inputs) != 2:
        return False
    if not xs & set(n.inputs):
        return False
    for i in n.inputs:
        if i in xs or not i:
            continue
        c = constant(graph, i)
        if c is None or c.size != 1 or c.dtype != np.float32:
            return False
        if c.ndim > 0 and (rank is None or c.ndim > rank):
            return False
    return True


def walk_to_q(ctx: Context, first: Node, rank: int | None) -> tuple[list[Node], Node] | None:
    """From ``first`` (already accepted), the single-reader chain of unary steps up to a
    per-tensor 8-bit Q: (chain including ``first``, the Q)."""
    chain, cur = [first], first
    while True:
        nxt = ctx.next_node(cur.outputs[0])
        if nxt is None:
            return None
        qp = q_params(ctx.graph, nxt)
        if qp is not None:
            return (chain, nxt) if qp.per_tensor else None
        if id(nxt) in ctx.claimed or not is_step(ctx.graph, nxt, {cur.outputs[0]}, rank):
            return None
        chain.append(nxt)
        cur = nxt


def float_path_table(
    graph: Graph, dqs: list[Node], chain: list[Node], q: Node, codes: list[np.ndarray]
) -> np.ndarray | None:
    """Runs DQ(codes[i]) for each DQ, the chain and the Q with sliver's kernels; returns the
    output codes (flat), or None when that fails."""
    from ..plan import compile_graph  # plan imports the ops registry; keep passes import-light

    py = q_params(graph, q)
    if py is None:
        return None
    rename: dict[str, str] = {}
    nodes, values = [], {}
    for k, dq in enumerate(dqs):
        px = dq_params(graph, dq)
        if px is None:
            return None
        values[f"codes{k}"] = Value(f"codes{k}", px.dtype, codes[k].shape)
        if dq.outputs[0] not in rename:
            rename[dq.outputs[0]] = f"d{k}"
            ins = [f"codes{k}", *dq.inputs[1:]]
            nodes.append(
                Node(dq.op_type, dq.domain, f"dq{k}", ins, [f"d{k}"], dict(dq.attrs), dq.opset)
            )
    for k, n in enumerate([*chain, q]):
        out = "out" if n is q else f"v{k}"
        ins = [rename.get(i, i) for i in n.inputs]
        nodes.append(Node(n.op_type, n.domain, f"n{k}", ins, [out], dict(n.attrs), n.opset))
        rename[n.outputs[0]] = out
    consts = {i for n in nodes for i in n.inputs if i and i in graph.initializers}
    for name in consts:
        values[name] = Value(name, graph.value(name).dtype, graph.value(name).shape)
    for n in nodes:
        values.setdefault(n.outputs[0], Value(n.outputs[0], 1, None))
    values["out"] = Value("out", py.dtype, None)
    inputs = [values[f"codes{k}"] for k in range(len(dqs))]
    mini = Graph(
        "table", nodes, inputs, [values["out"]], {c: graph.initializers[c] for c in consts},
        values, dict(graph.opsets), graph.ir_version,
    )  # fmt: skip
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            (res,) = compile_graph(mini).native.run(list(codes), [0])
    except Exception:
        return None
    res = np.asarray(res)
    if res.size != codes[0].size or res.dtype != np.dtype(np_code(py.dtype)):
        return None
    return res.reshape(-1)


def all_codes(code_type: int) -> np.ndarray:
    """The 256 codes of a type, in byte order (index i holds the code whose byte is i)."""
    return np.arange(256, dtype=np.uint8).view(np_code(code_type))
