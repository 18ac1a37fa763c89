"""remove_identity: nodes that provably copy their input are bypassed.

``Identity(x) -> x``; ``Dropout(x) -> x`` in inference (mask unused, training_mode not
true); ``Reshape(x, s) -> x`` when the constant target equals x's static shape;
``Transpose(x, perm=identity) -> x``; ``Cast(x, to=dtype(x)) -> x``; ``Sum(x) -> x``
(and Mean/Max/Min of one operand).

Bypassing renames a value. Readers of the output read the input instead; when the
output is a graph output, the input's producer writes the output name instead (only
if the input is an ordinary node result, read by no subgraph). Otherwise the node stays.
"""

from __future__ import annotations

from ..ir import Graph, Node
from .util import (
    constant,
    dtype_of,
    implicit_reads,
    output_names,
    remove_nodes,
    rename_inputs,
    static_shape,
)


def _reshape_target(graph: Graph, node: Node, in_shape: tuple[int, ...]) -> tuple[int, ...] | None:
    target = constant(graph, node.inputs[1]) if len(node.inputs) > 1 else None
    if target is None or target.ndim != 1:
        return None
    allowzero = int(node.attrs.get("allowzero", 0))
    dims = [int(d) for d in target]
    out = [
        in_shape[i] if d == 0 and not allowzero and i < len(in_shape) else d
        for i, d in enumerate(dims)
    ]
    if out.count(-1) > 1:
        return None
    if -1 in out:
        known = 1
        for d in out:
            known *= d if d != -1 else 1
        total = 1
        for d in in_shape:
            total *= d
        if known == 0 or total % known:
            return None
        out[out.index(-1)] = total // known
    return tuple(out)


def is_noop(graph: Graph, node: Node, used: set[str]) -> bool:
    """Whether ``node`` returns its first input unchanged (and nothing else anyone reads)."""
    if node.domain != "" or not node.inputs or not node.inputs[0] or not node.outputs:
        return False
    x = node.inputs[0]
    op = node.op_type
    if op == "Identity":
        return True
    if op in ("Sum", "Mean", "Max", "Min"):
        return len(node.inputs) == 1  # a variadic op of one operand is its operand
    if op == "Dropout":
        if any(o and o in used for o in node.outputs[1:]):
            return False
        if len(node.inputs) > 2 and node.inputs[2]:
            mode = constant(graph, node.inputs[2])
            return mode is not None and mode.size == 1 and not bool(mode.reshape(()))
        return True
    if op == "Cast":
        src = dtype_of(graph, x)
        return src != 0 and src == int(node.attrs.get("to", -1))
    if op == "Transpose":
        perm = node.attrs.get("perm")
        if perm is None:
            shape = graph.value(x).shape
            return shape is not None and len(shape) <= 1
        return list(perm) == list(range(len(perm)))
    if op == "Reshape":
        in_shape = static_shape(graph, x)
        return in_shape is not None and _reshape_target(graph, node, in_shape) == in_shape
    return False


def run(graph: Graph) -> bool:
    """Bypasses every no-op node it safely can."""
    outs = output_names(graph)
    implicit = implicit_reads(graph)
    used = {i for n in graph.nodes for i in n.inputs} | implicit | outs
    producers = graph.producers()
    graph_inputs = {v.name for v in graph.inputs} | set(graph.initializers)

    alias: dict[str, str] = {}  # removed output -> the value readers use instead
    rename: dict[str, str] = {}  # producer's output -> graph output name it now writes
    dead: list[Node] = []
    for node in graph.nodes:
        if not is_noop(graph, node, used):
            continue
        x, y = node.inputs[0], node.outputs[0]
        if y in implicit:
            continue
        if y not in outs:
            alias[y] = x
            dead.append(node)
            continue
        # y is a graph output: the producer of x must write y instead.
        src = x
        while src in alias:
            src = alias[src]
        if (
            src in outs
            or src in implicit
            or src in graph_inputs
            or src not in producers
            or src in rename
        ):
            continue
        rename[src] = y
        dead.append(node)
    if not dead:
        return False
    remove_nodes(graph, dead)
    rename_inputs(graph, alias)
    if rename:
        for n in graph.nodes:
            n.outputs = [rename.get(o, o) for o in n.outputs]
            n.inputs = [rename.get(i, i) for i in n.inputs]
    return True
