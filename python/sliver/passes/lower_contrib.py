"""lower_contrib: onnxruntime's fused transformer ops back to the ONNX ops they stand for.

A model saved after onnxruntime's graph optimizations (``optimized_model_filepath``, or
tools built on it) carries com.microsoft ops: SkipLayerNormalization, BiasGelu, FastGelu,
FusedMatMul, QuickGelu, the RMS norms of T5/LLaMA-style models. Rewritten as ONNX ops they run
on sliver's native kernels, and sliver's own passes fuse them again its way (a bias Add into
the MatMul before it, activations into epilogues).

    SkipLayerNormalization(x, skip, gamma[, beta][, bias]) -> LayerNormalization(x + skip [+ bias])
    BiasGelu(a, b)                                         -> com.microsoft:Gelu(a + b)
    FastGelu(x, bias)                                      -> com.microsoft:FastGelu(x + bias)
    FusedMatMul(a, b; alpha, transA, transB)               -> [Transpose] MatMul [* alpha]
    QuickGelu(x; alpha)                                    -> x * Sigmoid(alpha * x)
    SimplifiedLayerNormalization(x, gamma) (ONNX domain)   -> x / Sqrt(ReduceMean(x * x) + eps)
                                                              * gamma
    SkipSimplifiedLayerNormalization(x, skip, gamma[, bias]) -> the same of x + skip [+ bias]

Left alone (the Python fallback runs them): (Skip)(Simplified)LayerNormalization nodes whose
statistics outputs are read, FusedMatMul with transBatchA/B or an input of unknown rank.
"""

from __future__ import annotations

import numpy as np

from ..ir import Graph, Node, Value
from .infer_types import fill_types
from .util import NameMaker, set_constant

MS = "com.microsoft"


def _declare(graph: Graph, name: str, like: str, shape: tuple | None = None) -> str:
    """Types ``name`` like ``like`` (its shape too, unless given) if nothing typed it yet: the
    import's ONNX shape inference stops at contrib ops, which it has no schemas for."""
    if graph.value(name).dtype == 0:
        v = graph.value(like)
        graph.values[name] = Value(name, v.dtype, v.shape if shape is None else shape)
    return name


def _used(name: str, reads: set[str]) -> bool:
    return bool(name) and name in reads


def _skip_layer_norm(node: Node, graph: Graph, fresh: NameMaker, reads: set[str]) -> list[Node]:
    outs = node.outputs + [""] * (4 - len(node.outputs))
    if _used(outs[1], reads) or _used(outs[2], reads) or len(node.inputs) < 3:
        return []
    x, skip, gamma = node.inputs[:3]
    beta = node.inputs[3] if len(node.inputs) > 3 else ""
    bias = node.inputs[4] if len(node.inputs) > 4 else ""
    total = (
        outs[3] if _used(outs[3], reads) else _declare(graph, fresh(f"{node.name}_sum"), outs[0])
    )
    first = _declare(graph, fresh(f"{node.name}_x_skip"), outs[0]) if bias else total
    nodes = [Node("Add", "", fresh(f"{node.name}_add"), [x, skip], [first], opset=14)]
    if bias:
        nodes.append(Node("Add", "", fresh(f"{node.name}_bias"), [first, bias], [total], opset=14))
    _declare(graph, outs[0], x)
    eps = float(node.attrs.get("epsilon", 1e-12))
    ln_inputs = [total, gamma] + ([beta] if beta else [])
    nodes.append(
        Node(
            "LayerNormalization",
            "",
            fresh(f"{node.name}_ln"),
            ln_inputs,
            [outs[0]],
            attrs={"axis": -1, "epsilon": eps},
            opset=17,
        )
    )
    return nodes


def _bias_then(node: Node, graph: Graph, op: str, fresh: NameMaker) -> list[Node]:
    """op(a + b): BiasGelu, and FastGelu with its bias input."""
    if len(node.inputs) < 2 or not node.inputs[1]:
        return []
    _declare(graph, node.outputs[0], node.inputs[0])
    total = _declare(graph, fresh(f"{node.name}_biased"), node.outputs[0])
    return [
        Node("Add", "", fresh(f"{node.name}_add"), node.inputs[:2], [total], opset=14),
        Node(op, MS, fresh(f"{node.name}_act"), [total], [node.outputs[0]], opset=1),
    ]


def _rms_norm(
    graph: Graph, fresh: NameMaker, base: str, x: str, gamma: str, y: str, eps: float, axis: int
) -> list[Node]:
    """y = x / sqrt(mean(x * x over the axes from ``axis``) + eps) * gamma, as ONNX ops; []
    when those axes are unknown (``axis`` other than -1 on an input of unknown rank)."""
    shape = graph.value(x).shape
    if shape is None and axis != -1:
        return []
    axes = [-1] if shape is None else list(range(axis % len(shape), len(shape)))
    reduced = None if shape is None else tuple(1 if i in axes else d for i, d in enumerate(shape))
    sq = _declare(graph, fresh(f"{base}_sq"), x)
    ms = _declare(graph, fresh(f"{base}_ms"), x, reduced)
    var = _declare(graph, fresh(f"{base}_var"), ms)
    rms = _declare(graph, fresh(f"{base}_rms"), ms)
    unit = _declare(graph, fresh(f"{base}_unit"), x)
    _declare(graph, y, x)
    e = fresh(f"{base}_eps")
    set_constant(graph, e, np.array(eps, np.float32))
    return [
        Node("Mul", "", fresh(f"{base}_square"), [x, x], [sq], opset=14),
        Node("ReduceMean", "", fresh(f"{base}_mean"), [sq], [ms], {"axes": axes}, opset=13),
        Node("Add", "", fresh(f"{base}_add_eps"), [ms, e], [var], opset=14),
        Node("Sqrt", "", fresh(f"{base}_sqrt"), [var], [rms], opset=13),
        Node("Div", "", fresh(f"{base}_div"), [x, rms], [unit], opset=14),
        Node("Mul", "", fresh(f"{base}_gamma"), [unit, gamma], [y], opset=14),
    ]


def _simplified_layer_norm(
    node: Node, graph: Graph, fresh: NameMaker, reads: set[str]
) -> list[Node]:
    if len(node.inputs) < 2 or any(_used(o, reads) for o in node.outputs[1:]):
        return []
    eps = float(node.attrs.get("epsilon", 1e-5))
    axis = int(node.attrs.get("axis", -1))
    x, gamma = node.inputs[:2]
    return _rms_norm(graph, fresh, node.name, x, gamma, node.outputs[0], eps, axis)


def _skip_simplified_layer_norm(
    node: Node, graph: Graph, fresh: NameMaker, reads: set[str]
) -> list[Node]:
    outs = node.outputs + [""] * (4 - len(node.outputs))
    if _used(outs[1], reads) or _used(outs[2], reads) or len(node.inputs) < 3:
        return []
    x, skip, gamma = node.inputs[:3]
    bias = node.inputs[3] if len(node.inputs) > 3 else ""
    total = (
        outs[3] if _used(outs[3], reads) else _declare(graph, fresh(f"{node.name}_sum"), outs[0])
    )
    _declare(graph, total, x)
    first = _declare(graph, fresh(f"{node.name}_x_skip"), x) if bias else total
    nodes = [Node("Add", "", fresh(f"{node.name}_add"), [x, skip], [first], opset=14)]
    if bias:
        nodes.append(Node("Add", "", fresh(f"{node.name}_bias"), [first, bias], [total], opset=14))
    eps = float(node.attrs.get("epsilon", 1e-12))
    rms = _rms_norm(graph, fresh, node.name, total, gamma, outs[0], eps, -1)
    return nodes + rms


def _quick_gelu(node: Node, graph: Graph, fresh: NameMaker) -> list[Node]:
    """x * sigmoid(alpha * x)."""
    x, y = node.inputs[0], node.outputs[0]
    alpha = float(node.attrs.get("alpha", 1.702))
    _declare(graph, y, x)
    gate = _declare(graph, fresh(f"{node.name}_gate"), x)
    nodes = []
    scaled = x
    if alpha != 1.0:
        scaled = _declare(graph, fresh(f"{node.name}_scaled"), x)
        a = fresh(f"{node.name}_alpha")
        set_constant(graph, a, np.array(alpha, np.float32))
        nodes.append(Node("Mul", "", fresh(f"{node.name}_scale"), [x, a], [scaled], opset=14))
    nodes.append(Node("Sigmoid", "", fresh(f"{node.name}_sigmoid"), [scaled], [gate], opset=13))
    nodes.append(Node("Mul", "", fresh(f"{node.name}_mul"), [x, gate], [y], opset=14))
    return nodes


def _fused_matmul(node: Node, graph: Graph, fresh: NameMaker) -> list[Node]:
    a = node.attrs
    if a.get("transBatchA", 0) or a.get("transBatchB", 0) or len(node.inputs) != 2:
        return []
    nodes: list[Node] = []
    ins = list(node.inputs)
    for i, flag in enumerate(("transA", "transB")):
        if not a.get(flag, 0):
            continue
        shape = graph.value(ins[i]).shape
        if shape is None or len(shape) < 2:
            return []
        perm = list(range(len(shape)))
        perm[-2], perm[-1] = perm[-1], perm[-2]
        shape_t = tuple(shape[p] for p in perm)
        t = _declare(graph, fresh(f"{node.name}_t{i}"), ins[i], shape_t)
        tr = Node("Transpose", "", fresh(f"{node.name}_tr{i}"), [ins[i]], [t], {"perm": perm}, 13)
        nodes.append(tr)
        ins[i] = t
    alpha = float(a.get("alpha", 1.0))
    y = node.outputs[0]
    if alpha == 1.0:
        nodes.append(Node("MatMul", "", fresh(f"{node.name}_mm"), ins, [y], opset=13))
        return nodes
    product = _declare(graph, fresh(f"{node.name}_product"), y)
    scale = fresh(f"{node.name}_alpha")
    set_constant(graph, scale, np.array(alpha, np.float32))
    nodes.append(Node("MatMul", "", fresh(f"{node.name}_mm"), ins, [product], opset=13))
    nodes.append(Node("Mul", "", fresh(f"{node.name}_scale"), [product, scale], [y], opset=14))
    return nodes


def run(graph: Graph) -> bool:
    """Replaces every covered contrib node with its ONNX equivalent."""
    fresh = NameMaker(graph)
    reads = {i for n in graph.nodes for i in n.inputs + n.implicit_inputs}
    reads |= {v.name for v in graph.outputs}
    new_nodes: list[Node] = []
    changed = False
    for node in graph.nodes:
        rewritten: list[Node] = []
        if node.domain == MS:
            if node.op_type == "SkipLayerNormalization":
                rewritten = _skip_layer_norm(node, graph, fresh, reads)
            elif node.op_type == "BiasGelu":
                rewritten = _bias_then(node, graph, "Gelu", fresh)
            elif node.op_type == "FastGelu":
                rewritten = _bias_then(node, graph, "FastGelu", fresh)
            elif node.op_type == "FusedMatMul":
                rewritten = _fused_matmul(node, graph, fresh)
            elif node.op_type == "SkipSimplifiedLayerNormalization":
                rewritten = _skip_simplified_layer_norm(node, graph, fresh, reads)
            elif node.op_type == "QuickGelu":
                rewritten = _quick_gelu(node, graph, fresh)
        elif node.domain in ("", "ai.onnx") and node.op_type == "SimplifiedLayerNormalization":
            rewritten = _simplified_layer_norm(node, graph, fresh, reads)
        if rewritten:
            new_nodes.extend(rewritten)
            changed = True
        else:
            new_nodes.append(node)
    graph.nodes = new_nodes
    if changed:
        fill_types(graph)  # what the rewritten nodes feed, now that they are ONNX ops
    return changed
