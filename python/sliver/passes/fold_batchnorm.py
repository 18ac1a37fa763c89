"""fold_batchnorm: an inference BatchNormalization after Conv/ConvTranspose/Gemm folds
into the producer's weights and bias.

With s = scale / sqrt(var + eps) per output channel:
``BN(conv(x, W) + b) = conv(x, W * s) + (b - mean) * s + bias``. Gemm's output
channel is axis 1 (N); its C must be per-column or absent. Only when every
parameter is constant and the producer's result feeds the BN alone; the new
weights get fresh names (the old ones may be shared with other nodes).
"""

from __future__ import annotations

import numpy as np

from ..ir import Graph, Node
from .util import (
    NameMaker,
    constant,
    implicit_reads,
    output_names,
    remove_nodes,
    set_constant,
    single_consumer,
)

PRODUCERS = ("Conv", "ConvTranspose", "Gemm")


def _bn_params(graph: Graph, bn: Node, used: set[str]) -> tuple[np.ndarray, np.ndarray] | None:
    """(s, shift) of an inference BN such that BN(y) = y * s + shift per channel."""
    if bn.domain != "" or len(bn.inputs) != 5:
        return None
    if int(bn.attrs.get("training_mode", 0)) or int(bn.attrs.get("spatial", 1)) != 1:
        return None
    if any(o and o in used for o in bn.outputs[1:]):
        return None
    params = [constant(graph, i) for i in bn.inputs[1:]]
    if any(p is None or p.ndim != 1 or p.dtype.kind != "f" for p in params):
        return None
    scale, bias, mean, var = (p.astype(np.float64) for p in params)  # type: ignore[union-attr]
    if not (scale.shape == bias.shape == mean.shape == var.shape):
        return None
    s = scale / np.sqrt(var + float(bn.attrs.get("epsilon", 1e-5)))
    return s, bias - mean * s


def scale_output_channels(node: Node, w: np.ndarray, s: np.ndarray) -> np.ndarray | None:
    """The producer's weight with output channel c multiplied by s[c] (float64)."""
    w64 = w.astype(np.float64)
    if node.op_type == "Conv":
        if w.ndim < 3 or w.shape[0] != s.size:
            return None
        return w64 * s.reshape((-1,) + (1,) * (w.ndim - 1))
    if node.op_type == "ConvTranspose":
        g = int(node.attrs.get("group", 1))
        if w.ndim < 3 or w.shape[0] % g or w.shape[1] * g != s.size:
            return None
        grouped = w64.reshape((g, w.shape[0] // g) + w.shape[1:])
        factor = s.reshape((g, 1, w.shape[1]) + (1,) * (w.ndim - 2))
        return (grouped * factor).reshape(w.shape)
    # Gemm: B is (K, N), or (N, K) with transB
    if w.ndim != 2:
        return None
    if int(node.attrs.get("transB", 0)):
        return w64 * s[:, None] if w.shape[0] == s.size else None
    return w64 * s[None, :] if w.shape[1] == s.size else None


def _old_bias(graph: Graph, node: Node, n: int) -> np.ndarray | None:
    """The producer's per-channel additive term as float64 [n] (zeros when absent)."""
    name = node.inputs[2] if len(node.inputs) > 2 else ""
    if not name:
        return np.zeros(n)
    b = constant(graph, name)
    if b is None:
        return None
    b = b.astype(np.float64)
    if node.op_type == "Gemm":
        # C broadcasts against (M, N): only a scalar or a per-column row folds.
        if b.size == 1:
            b = np.full(n, b.reshape(()))
        elif b.shape in ((n,), (1, n)):
            b = b.reshape(n)
        else:
            return None
        return b * float(node.attrs.get("beta", 1.0))
    return b if b.shape == (n,) else None


def run(graph: Graph) -> bool:
    """Folds every Conv/ConvTranspose/Gemm -> BatchNormalization pair it can."""
    consumers = graph.consumers()
    outs = output_names(graph)
    implicit = implicit_reads(graph)
    used = set(consumers) | outs
    names = NameMaker(graph)
    dead: list[Node] = []
    for node in graph.nodes:
        if node.domain != "" or node.op_type not in PRODUCERS or len(node.inputs) < 2:
            continue
        y = node.outputs[0]
        bn = single_consumer(consumers, y)
        if bn is None or bn.op_type != "BatchNormalization" or bn.inputs[0] != y:
            continue
        if y in outs or y in implicit:
            continue
        w = constant(graph, node.inputs[1])
        params = _bn_params(graph, bn, used)
        if w is None or w.dtype.kind != "f" or params is None:
            continue
        s, shift = params
        new_w = scale_output_channels(node, w, s)
        old_b = _old_bias(graph, node, s.size)
        if new_w is None or old_b is None:
            continue
        w_name = names(f"{node.inputs[1]}_bn")
        b_name = names(f"{node.name}_bn_bias")
        set_constant(graph, w_name, new_w.astype(w.dtype))
        set_constant(graph, b_name, (old_b * s + shift).astype(w.dtype))
        node.inputs = [node.inputs[0], w_name, b_name]
        if node.op_type == "Gemm":
            node.attrs["beta"] = 1.0
        node.outputs = [bn.outputs[0]] + node.outputs[1:]
        dead.append(bn)
    if not dead:
        return False
    remove_nodes(graph, dead)
    return True
