"""fuse_layernorm: LayerNormalization as exporters below opset 17 write it -> one node.

    m = ReduceMean(x, last axis)   d = Sub(x, m)   v = ReduceMean(Pow(d, 2) or Mul(d, d))
    y = Div(d, Sqrt(Add(v, eps)))  [* gamma]  [+ beta]

becomes ``LayerNormalization(x, gamma, beta, axis=-1, epsilon=eps)``: one pass over x instead of
nine ops and their intermediates (onnxruntime fuses the same chain). Only float32, the last
axis, keepdims and constant [D]-shaped gamma / beta (missing ones become 1 / 0) are matched; the
intermediates must have no other readers. The fused node is the ONNX op, which onnxruntime also
accepts below opset 17.
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto

from ..ir import Graph, Node
from .util import (
    NameMaker,
    constant,
    implicit_reads,
    output_names,
    scalar_value,
    set_constant,
    single_consumer,
)


def _reduces_last_axis(graph: Graph, node: Node, x: str) -> bool:
    """Whether node is ReduceMean(x) over the last axis only, keeping dims."""
    if node.op_type != "ReduceMean" or node.domain != "" or node.inputs[0] != x:
        return False
    if node.attrs.get("keepdims", 1) != 1 or node.attrs.get("noop_with_empty_axes", 0):
        return False
    axes = node.attrs.get("axes")
    if axes is None and len(node.inputs) > 1 and node.inputs[1]:
        a = constant(graph, node.inputs[1])
        axes = None if a is None else [int(v) for v in a.reshape(-1)]
    shape = graph.value(x).shape
    if axes is None or len(axes) != 1 or shape is None:
        return False
    return axes[0] in (-1, len(shape) - 1)


def _other(node: Node, x: str) -> str | None:
    """The other input of a binary node reading x once."""
    if len(node.inputs) != 2 or node.inputs.count(x) != 1:
        return None
    return node.inputs[1] if node.inputs[0] == x else node.inputs[0]


def _vector(graph: Graph, name: str | None, d: int) -> np.ndarray | None:
    """A float32 constant that is a [d] vector up to leading 1s, as [d]."""
    arr = None if name is None else constant(graph, name)
    if arr is None or arr.dtype != np.float32 or arr.size != d:
        return None
    if arr.ndim and arr.shape[-1] != d:
        return None
    return arr.reshape(d)


def run(graph: Graph) -> bool:
    """Replaces every decomposed layer normalization whose intermediates nothing else reads."""
    consumers = graph.consumers()
    outs = output_names(graph) | implicit_reads(graph)
    names = NameMaker(graph)
    removed: set[int] = set()

    def take(name: str, op: str) -> Node | None:
        node = single_consumer(consumers, name)
        if node is None or node.domain != "" or node.op_type != op or name in outs:
            return None
        return node

    for mean in list(graph.nodes):
        if mean.op_type != "ReduceMean" or mean.domain != "" or id(mean) in removed:
            continue
        x = mean.inputs[0]
        xv = graph.value(x)
        if xv.dtype != TensorProto.FLOAT or not xv.shape or not isinstance(xv.shape[-1], int):
            continue
        d = xv.shape[-1]
        if not _reduces_last_axis(graph, mean, x):
            continue
        sub = take(mean.outputs[0], "Sub")
        if sub is None or sub.inputs != [x, mean.outputs[0]]:
            continue
        diff = sub.outputs[0]
        users = list({id(u): u for u in consumers.get(diff, [])}.values())  # Mul(d, d) once
        if diff in outs or len(users) != 2:
            continue
        sq = next((u for u in users if u.op_type in ("Pow", "Mul") and u.domain == ""), None)
        div = next((u for u in users if u.op_type == "Div" and u.domain == ""), None)
        if sq is None or div is None or div.inputs != [diff, div.inputs[1]]:
            continue
        if sq.op_type == "Pow" and (
            sq.inputs[0] != diff or scalar_value(constant(graph, sq.inputs[1])) != 2.0
        ):
            continue
        if sq.op_type == "Mul" and sq.inputs != [diff, diff]:
            continue
        var = take(sq.outputs[0], "ReduceMean")
        if var is None or not _reduces_last_axis(graph, var, sq.outputs[0]):
            continue
        add_eps = take(var.outputs[0], "Add")
        eps_name = None if add_eps is None else _other(add_eps, var.outputs[0])
        eps = None if eps_name is None else scalar_value(constant(graph, eps_name))
        if eps is None or eps < 0:
            continue
        sqrt = take(add_eps.outputs[0], "Sqrt")
        if sqrt is None or take(sqrt.outputs[0], "Div") is not div:
            continue
        chain = [mean, sub, sq, var, add_eps, sqrt, div]
        last = div
        mul = take(div.outputs[0], "Mul")
        gamma = _vector(graph, _other(mul, div.outputs[0]), d) if mul else None
        if gamma is not None:
            chain.append(mul)
            last = mul
        add = take(last.outputs[0], "Add")
        beta = _vector(graph, _other(add, last.outputs[0]), d) if add else None
        if beta is not None:
            chain.append(add)
            last = add
        scale_name, bias_name = names(f"{mean.name}_ln_scale"), names(f"{mean.name}_ln_bias")
        one = np.ones(d, np.float32)
        set_constant(graph, scale_name, gamma if gamma is not None else one)
        set_constant(graph, bias_name, beta if beta is not None else 0 * one)
        fused = Node(
            "LayerNormalization",
            "",
            names(f"{mean.name}_layernorm"),
            [x, scale_name, bias_name],
            [last.outputs[0]],
            attrs={"axis": -1, "epsilon": float(eps)},
            opset=17,
        )
        dead = {id(n) for n in chain}
        graph.nodes = [
            fused if n is last else n for n in graph.nodes if id(n) not in dead or n is last
        ]
        removed |= dead
        consumers = graph.consumers()
    return bool(removed)
