"""qdq_fold_lookups: chains of code tables become one table.

    Lookup(Lookup(x, T1), T2)        -> Lookup(x, T2[T1])
    Lookup(PairLookup(a, b, P), T)   -> PairLookup(a, b, T[P])   (QLinearBinary: P its table)
    PairLookup(Lookup(a, T1), b, P)  -> PairLookup(a, b, P[T1[i], j])    (and for b)
    PairLookup(x, x, P)              -> Lookup(x, P[i, i])

Tables map codes to codes, so composing them is exact. A QDQ transformer's erf-GELU,
x * 0.5 * (1 + erf(x / sqrt 2)) with a Q/DQ after every op, ends as a single 256-entry
lookup: the Div/Erf/Add lookups fold into the pair lookup of the Mul, whose two inputs are
then the same codes. An inner table is folded only into its one reader (its result is not a
graph output); tables are indexed by the input code's byte.
"""

from __future__ import annotations

import numpy as np

from ..ir import Graph, Node
from .qdq_common import SLIVER, Context, node
from .util import constant, single_consumer


def _binary_table(graph: Graph, n: Node) -> np.ndarray | None:
    """The pair table of a sliver:QLinearBinary (its numpy reference on every code pair)."""
    from ..ops.qfused import qlinear_binary_values  # ops import the registry: keep passes light

    consts = [constant(graph, i) for i in n.inputs]
    if any(consts[i] is None for i in (1, 2, 4, 5, 6, 7)):
        return None
    _, sa, za, _, sb, zb, sy, zy = consts
    ca = np.arange(256, dtype=np.uint8).view(za.dtype)
    cb = np.arange(256, dtype=np.uint8).view(zb.dtype)
    op = n.attrs.get("op", "")
    lo, hi = n.attrs.get("activation_min"), n.attrs.get("activation_max")
    return qlinear_binary_values(
        op.decode() if isinstance(op, bytes) else op,
        np.repeat(ca, 256), sa, za, np.tile(cb, 256), sb, zb, sy, zy,
        None if lo is None else int(lo), None if hi is None else int(hi),
    )  # fmt: skip


def _table(graph: Graph, n: Node) -> tuple[str, list[str], np.ndarray | None] | None:
    """("unary" | "pair", code inputs, table) of a table node; a QLinearBinary's table is None
    until a neighbour folds into it (its arithmetic kernel is faster than a pair gather)."""
    if n.domain != SLIVER:
        return None
    if n.op_type == "QLinearBinary":
        return "pair", [n.inputs[0], n.inputs[3]], None
    if n.op_type not in ("QLinearLookup", "QLinearPairLookup"):
        return None
    t = constant(graph, n.inputs[-1])
    if t is None:
        return None
    kind = "unary" if n.op_type == "QLinearLookup" else "pair"
    return kind, list(n.inputs[:-1]), t.reshape(-1)


def _bytes(t: np.ndarray) -> np.ndarray:
    return t.view(np.uint8).astype(np.intp)


def run(graph: Graph) -> bool:
    """Folds every table into the table that reads it alone."""
    ctx = Context(graph)
    folded: dict[str, tuple[str, list[str], np.ndarray]] = {}  # output -> folded form
    source: dict[str, Node] = {}  # output -> the node that computed it (before folding)
    dead: set[int] = set()
    changed: set[str] = set()
    for n in graph.nodes:
        form = _table(graph, n)
        if form is None:
            continue
        kind, ins, t = form
        out = n.outputs[0]

        def inner(x: str, reader: Node = n) -> tuple[str, list[str], np.ndarray] | None:
            """The folded table computing x, when x feeds ``reader`` alone."""
            if (
                x not in folded
                or not ctx.private(x)
                or single_consumer(ctx.consumers, x) is not reader
            ):
                return None
            k, i, table = folded[x]
            if table is None:  # a QLinearBinary: materialise its pair table now
                table = _binary_table(graph, source[x])
                if table is None:
                    return None
                folded[x] = (k, i, table)
            return folded[x]

        if t is None and any(inner(x) is not None and folded[x][0] == "unary" for x in set(ins)):
            t = _binary_table(graph, n)  # an input table folds in: this binary becomes a table
            if t is None:
                continue
        if t is None:
            folded[out] = (kind, ins, None)
            source[out] = n
            continue

        touched = False
        if kind == "pair" and ins[0] == ins[1]:
            kind, ins, t = "unary", [ins[0]], np.diagonal(t.reshape(256, 256)).copy()
            touched = True
        if kind == "pair":
            p = t.reshape(256, 256)
            for k in (0, 1):
                src = inner(ins[k])
                if src is not None and src[0] == "unary":
                    idx = _bytes(src[2])
                    p = p[idx, :] if k == 0 else p[:, idx]
                    dead.add(id(source[ins[k]]))
                    ins[k] = src[1][0]
                    touched = True
            t = p.reshape(-1)
            if ins[0] == ins[1]:
                kind, ins, t = "unary", [ins[0]], np.diagonal(p).copy()
        if kind == "unary":
            prev = ins[0]
            src = inner(prev)
            if src is not None:
                kind, ins, t = src[0], list(src[1]), t[_bytes(src[2])]
                dead.add(id(source[prev]))
                touched = True
        folded[out] = (kind, ins, np.ascontiguousarray(t))
        source[out] = n
        if touched:
            changed.add(out)
    if not changed:
        return False
    out_nodes = []
    for n in graph.nodes:
        if id(n) in dead:
            continue
        out = n.outputs[0] if n.outputs else ""
        if out in changed:
            kind, ins, t = folded[out]
            name = ctx.constant_input(t, f"{n.name}_folded")
            op = "QLinearLookup" if kind == "unary" else "QLinearPairLookup"
            n = node(graph, op, SLIVER, n.name, [*ins, name], [out])
        out_nodes.append(n)
    graph.nodes = out_nodes
    return True
