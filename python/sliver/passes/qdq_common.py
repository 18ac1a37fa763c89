"""What the QDQ passes share: reading Q/DQ parameters, walking to the Q that ends a float
region, the reference quantize, and building the replacement nodes.

A QDQ model marks every quantized tensor as ``QuantizeLinear(x_f, s, z) -> q`` and every
use of it as ``DequantizeLinear(q, s, z) -> x_f``; the float op between a DQ and the next Q
is what the passes replace by an op on ``q`` itself. Only 8-bit codes (uint8/int8) with
constant scales and zero points are rewritten: they are what the integer kernels take and
what every quantizer writes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx

from ..ir import Graph, Node, Value
from .util import NameMaker, constant, dtype_code, set_constant, single_consumer

UINT8 = onnx.TensorProto.UINT8
INT8 = onnx.TensorProto.INT8
INT32 = onnx.TensorProto.INT32
Q8_TYPES = frozenset({UINT8, INT8})
SLIVER = "sliver"
MS = "com.microsoft"


@dataclass(frozen=True)
class QParams:
    """A Q or DQ node's parameters: float32 scale and integer zero point (same size: 1 for
    per-tensor, C for per-axis along ``axis``), the code type, and the constants' names
    (``zp_name`` is "" when the node has no zero point input)."""

    scale: np.ndarray
    zero_point: np.ndarray
    dtype: int
    axis: int
    scale_name: str
    zp_name: str

    @property
    def per_tensor(self) -> bool:
        return self.scale.size == 1

    def same_as(self, other: QParams) -> bool:
        """Whether both describe the same per-tensor code <-> float mapping."""
        return (
            self.per_tensor
            and other.per_tensor
            and self.dtype == other.dtype
            and float(self.scale.reshape(-1)[0]) == float(other.scale.reshape(-1)[0])
            and int(self.zero_point.reshape(-1)[0]) == int(other.zero_point.reshape(-1)[0])
        )

    @property
    def s(self) -> float:
        """The per-tensor scale."""
        return float(self.scale.reshape(-1)[0])

    @property
    def z(self) -> int:
        """The per-tensor zero point."""
        return int(self.zero_point.reshape(-1)[0])


def _plain(node: Node, op: str) -> bool:
    if node.domain not in ("", "ai.onnx") or node.op_type != op:
        return False
    return int(node.attrs.get("block_size", 0)) == 0 and "precision" not in node.attrs


def _params(graph: Graph, node: Node, code_type: int) -> QParams | None:
    scale = constant(graph, node.inputs[1]) if len(node.inputs) > 1 else None
    if scale is None or scale.dtype != np.float32 or scale.ndim > 1 or scale.size == 0:
        return None
    if not np.all(np.isfinite(scale)) or not np.all(scale > 0):
        return None  # a zero or negative scale breaks monotonicity (and the kernels' math)
    zp_name = node.inputs[2] if len(node.inputs) > 2 else ""
    if zp_name:
        zp = constant(graph, zp_name)
        if zp is None or dtype_code(zp) != code_type or zp.size != scale.size:
            return None
    else:
        zp = np.zeros(scale.shape, np.int64)
    return QParams(
        scale.astype(np.float32),
        zp.astype(np.int64),
        code_type,
        int(node.attrs.get("axis", 1)),
        node.inputs[1],
        zp_name,
    )


def dq_params(graph: Graph, node: Node | None, allow: frozenset[int] = Q8_TYPES) -> QParams | None:
    """The parameters of a DequantizeLinear whose input codes have a type in ``allow``."""
    if node is None or not _plain(node, "DequantizeLinear") or len(node.inputs) < 2:
        return None
    x = node.inputs[0]
    code = dtype_code(graph.initializers[x]) if x in graph.initializers else graph.value(x).dtype
    if code == 0 and len(node.inputs) > 2 and node.inputs[2]:
        zp = constant(graph, node.inputs[2])
        code = dtype_code(zp) if zp is not None else 0
    if code not in allow:
        return None
    return _params(graph, node, code)


def q_params(graph: Graph, node: Node | None) -> QParams | None:
    """The parameters of an 8-bit QuantizeLinear (saturating, float32 input)."""
    if node is None or not _plain(node, "QuantizeLinear") or len(node.inputs) < 2:
        return None
    if len(node.inputs) > 2 and node.inputs[2]:
        zp = constant(graph, node.inputs[2])
        code = dtype_code(zp) if zp is not None else 0
    else:
        code = int(node.attrs.get("output_dtype", 0)) or UINT8
    if code not in Q8_TYPES or graph.value(node.inputs[0]).dtype not in (0, onnx.TensorProto.FLOAT):
        return None
    return _params(graph, node, code)


def code_range(code_type: int) -> tuple[int, int]:
    """[qmin, qmax] of an 8-bit code type."""
    return (0, 255) if code_type == UINT8 else (-128, 127)


def np_code(code_type: int) -> type:
    """The numpy type of an 8-bit code type."""
    return np.uint8 if code_type == UINT8 else np.int8


def quantize_value(v: float, p: QParams) -> int:
    """QuantizeLinear of one float with per-tensor ``p`` (float32 division, round half to
    even, saturate), as the spec and the native kernels compute it."""
    lo, hi = code_range(p.dtype)
    q = np.float32(v) / np.float32(p.s)
    if np.isnan(q):
        return lo
    return int(np.clip(np.rint(np.float64(q)) + p.z, lo, hi))


class Context:
    """A snapshot of the graph for matching: producers, consumers, graph outputs, and the
    nodes already claimed by a rewrite in this pass (each node joins one rewrite at most)."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.producers = graph.producers()
        self.consumers = graph.consumers()
        self.outputs = {v.name for v in graph.outputs}
        self.implicit = {i for n in graph.nodes for i in n.implicit_inputs}
        self.claimed: set[int] = set()
        self.names = NameMaker(graph)

    def private(self, name: str) -> bool:
        """Whether ``name`` is an intermediate a rewrite may drop: no graph output, no
        subgraph read."""
        return name not in self.outputs and name not in self.implicit

    def next_node(self, name: str) -> Node | None:
        """The single unclaimed node reading ``name`` when ``name`` is private to it."""
        node = single_consumer(self.consumers, name)
        if node is None or id(node) in self.claimed or not self.private(name):
            return None
        return node

    def dq_of(self, name: str) -> tuple[Node, QParams] | None:
        """The per-tensor 8-bit DequantizeLinear producing ``name``."""
        node = self.producers.get(name)
        p = dq_params(self.graph, node)
        if node is None or p is None or not p.per_tensor:
            return None
        return node, p

    def q_after(self, name: str) -> tuple[Node, QParams] | None:
        """The per-tensor 8-bit QuantizeLinear that alone reads private ``name``."""
        node = self.next_node(name)
        p = q_params(self.graph, node)
        if node is None or p is None or not p.per_tensor:
            return None
        return node, p

    def constant_input(self, arr: np.ndarray, base: str) -> str:
        """Stores ``arr`` as a new constant and returns its name."""
        new = self.names(base)
        set_constant(self.graph, new, arr)
        return new

    def zp_input(self, p: QParams, base: str) -> str:
        """The name of ``p``'s zero point, creating a constant 0 of its type when absent."""
        if p.zp_name:
            return p.zp_name
        return self.constant_input(np.zeros((), np_code(p.dtype)), base)

    def add_value(self, name: str, dtype: int, shape: tuple | None) -> None:
        """Records a new intermediate's dtype and shape."""
        self.graph.values[name] = Value(name, dtype, shape)


def node(
    graph: Graph,
    op_type: str,
    domain: str,
    name: str,
    inputs: list[str],
    outputs: list[str],
    **attrs: object,
) -> Node:
    """A new node with the graph's opset for ``domain`` (registered when new)."""
    default = 1 if domain else 13
    version = graph.opsets.setdefault(domain, default)
    return Node(op_type, domain, name, list(inputs), list(outputs), dict(attrs), version)


def apply(graph: Graph, place: dict[int, list[Node]], dead: set[int]) -> bool:
    """Puts each list of new nodes where the node with that id was (it is removed) and
    drops the ``dead`` nodes; returns whether anything changed."""
    if not place and not dead:
        return False
    out: list[Node] = []
    for n in graph.nodes:
        if id(n) in place:
            out.extend(place[id(n)])
        elif id(n) not in dead:
            out.append(n)
    graph.nodes = out
    return True
