"""fuse_epilogue: Conv/Gemm/MatMul and what follows them elementwise become one fused node.

    act(op(x))              -> Fused<op>(activation=act)
    op(x) + r               -> Fused<op>(residual=r)       r has op(x)'s full shape
                                                           (Add, or Sum of two)
    post(act(op(x)) + r)    -> Fused<op>(activation=act, residual=r, post_activation=post)
    x*0.5*(1+erf(x/sqrt2))  -> the activation "Gelu" (the erf form exporters write)
    x*0.5*(1+tanh(..))      -> "Gelu" with activation_params [1] (the tanh form)

Each absorbed intermediate must be read by the next step alone and be no graph output.
Anchors reading DequantizeLinear outputs are left to the QDQ passes. The fused node
takes the place of the last node it absorbs: every value it reads
(the residual included) is computed by then. Fused ops and their semantics: ops/fused.py.
"""

from __future__ import annotations

import math

from ..ir import Graph, Node
from ..ops.fused import ACTIVATIONS, POST_ACTIVATIONS, RESIDUAL_INDEX
from .fusion import DTYPES, is_anchor, make_fused, reads_dequantized
from .gelu_patterns import match_erf_gelu, match_tanh_gelu
from .util import (
    constant,
    dtype_of,
    implicit_reads,
    output_names,
    same_shape,
    scalar_value,
    single_consumer,
)


def activation_params(graph: Graph, node: Node) -> list[float] | None:
    """The fused-op params for an ONNX activation node, or None when it cannot fuse."""
    op = node.op_type
    if node.domain != "" or op not in ACTIVATIONS or len(node.outputs) != 1:
        return None
    if op in ("Relu", "Sigmoid", "Tanh", "HardSwish"):
        return []
    if op == "LeakyRelu":
        return [float(node.attrs.get("alpha", 0.01))]
    if op == "HardSigmoid":
        return [float(node.attrs.get("alpha", 0.2)), float(node.attrs.get("beta", 0.5))]
    if op == "Gelu":
        return [] if node.attrs.get("approximate", "none") == "none" else None
    # Clip: attributes before opset 11, optional constant inputs since.
    if node.opset < 11:
        return [float(node.attrs.get("min", -math.inf)), float(node.attrs.get("max", math.inf))]
    bounds = []
    for k, default in ((1, -math.inf), (2, math.inf)):
        name = node.inputs[k] if len(node.inputs) > k else ""
        v = scalar_value(constant(graph, name)) if name else default
        if v is None:
            return None
        bounds.append(v)
    return bounds


class _Chain:
    """What one anchor absorbs: walks forward from its result while steps match."""

    def __init__(self, graph: Graph, anchor: Node, ctx: _Context) -> None:
        self.graph, self.anchor, self.ctx = graph, anchor, ctx
        attrs = anchor.attrs
        self.activation = attrs.get("activation", "")
        self.params = list(attrs.get("activation_params", []))
        self.post = attrs.get("post_activation", "")
        self.post_params = list(attrs.get("post_activation_params", []))
        k = RESIDUAL_INDEX.get(anchor.op_type, 3)
        self.residual = anchor.inputs[k] if anchor.domain and len(anchor.inputs) > k else ""
        self.absorbed: list[Node] = []
        self.out = anchor.outputs[0]

    def _free(self, name: str) -> bool:
        return name not in self.ctx.outs and name not in self.ctx.implicit

    def _take(self, name: str) -> Node | None:
        node = single_consumer(self.ctx.consumers, name)
        if node is None or node.domain != "" or id(node) in self.ctx.claimed:
            return None
        if not self._free(name) or reads_dequantized(node, self.ctx.producers):
            return None
        return node

    def step(self) -> bool:
        """Absorbs the next node(s) if they fit; returns whether it did."""
        if not self._free(self.out):
            return False
        plain = not self.activation and not self.residual and not self.post
        if plain:
            for match, params in ((match_erf_gelu, []), (match_tanh_gelu, [1.0])):
                gelu = self._gelu(match)
                if gelu is not None:
                    self._absorb(gelu)
                    self.activation, self.params = "Gelu", params
                    return True
        node = self._take(self.out)
        if node is None:
            return False
        is_add = node.op_type == "Add" or node.op_type == "Sum" and len(node.inputs) == 2
        if node.inputs[0] != self.out and not is_add:
            return False
        if plain:
            params = activation_params(self.graph, node)
            if params is not None:
                self._absorb([node])
                self.activation, self.params = node.op_type, params
                return True
        if is_add and not self.residual and not self.post:
            other = node.inputs[1] if node.inputs[0] == self.out else node.inputs[0]
            g = self.graph
            if (
                other != self.out
                and dtype_of(g, other) == dtype_of(g, self.out)
                and same_shape(g, other, self.out)
                and same_shape(g, node.outputs[0], self.out)
            ):
                self._absorb([node])
                self.residual = other
                return True
        if self.residual and not self.post and node.op_type in POST_ACTIVATIONS:
            params = activation_params(self.graph, node)
            if params is not None:
                self._absorb([node])
                self.post, self.post_params = node.op_type, params
                return True
        return False

    def _absorb(self, nodes: list[Node]) -> None:
        self.absorbed += nodes
        self.ctx.claimed.update(id(n) for n in nodes)
        self.out = nodes[-1].outputs[0]

    def _gelu(self, match) -> list[Node] | None:  # noqa: ANN001 - a gelu_patterns matcher
        """A GELU form (gelu_patterns) on x = self.out."""
        users = self.ctx.consumers.get(self.out, [])
        if any(id(u) in self.ctx.claimed for u in users):
            return None
        return match(self.graph, self.out, users, self._take)

    def fused(self) -> Node:
        """The node replacing the anchor and everything absorbed."""
        inputs = list(self.anchor.inputs)
        k = RESIDUAL_INDEX.get(self.anchor.op_type, 3)
        if self.residual:
            inputs = (inputs + [""] * k)[:k] + [self.residual]
        return make_fused(
            self.graph,
            self.anchor,
            inputs,
            self.out,
            activation=self.activation,
            activation_params=self.params,
            post_activation=self.post,
            post_activation_params=self.post_params,
        )


class _Context:
    def __init__(self, graph: Graph) -> None:
        self.consumers = graph.consumers()
        self.producers = graph.producers()
        self.outs = output_names(graph)
        self.implicit = implicit_reads(graph)
        self.claimed: set[int] = set()


def run(graph: Graph) -> bool:
    """Fuses every anchor's epilogue chain."""
    ctx = _Context(graph)
    place: dict[int, Node] = {}  # id(last absorbed node) -> fused node
    gone: set[int] = set()
    for node in graph.nodes:
        if not is_anchor(node) or id(node) in ctx.claimed:
            continue
        if graph.value(node.outputs[0]).dtype not in DTYPES:
            continue
        if reads_dequantized(node, ctx.producers):
            continue
        chain = _Chain(graph, node, ctx)
        while chain.step():
            pass
        if not chain.absorbed:
            continue
        ctx.claimed.add(id(node))
        place[id(chain.absorbed[-1])] = chain.fused()
        gone.update(id(n) for n in chain.absorbed)
        gone.add(id(node))
    if not place:
        return False
    graph.nodes = [place.get(id(n), n) for n in graph.nodes if id(n) not in gone or id(n) in place]
    return True
