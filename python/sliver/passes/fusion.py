"""Building sliver's fused nodes (the contract is in ``ops/fused.py``)."""

from __future__ import annotations

from ..ir import Graph, Node
from ..ops.fused import FUSED_OP
from .util import FLOAT

# Element types the fusing passes rewrite (what the fused native kernels cover).
DTYPES = frozenset({FLOAT})

SLIVER = "sliver"


def is_anchor(node: Node) -> bool:
    """Conv/Gemm/MatMul, or a fused node built from one."""
    if node.domain == "":
        return node.op_type in FUSED_OP
    return node.domain == SLIVER and node.op_type in FUSED_OP.values()


def reads_dequantized(node: Node, producers: dict[str, Node]) -> bool:
    """Whether an input comes straight from DequantizeLinear: a QDQ pattern the
    quantization passes rewrite whole, so the float passes leave it alone."""
    return any(
        i in producers and producers[i].op_type == "DequantizeLinear" for i in node.inputs if i
    )


def make_fused(
    graph: Graph, anchor: Node, inputs: list[str], output: str, **epilogue: str | list[float]
) -> Node:
    """The fused node replacing ``anchor`` (ONNX op or fused op) with ``inputs``, writing
    ``output``; ``epilogue`` sets activation/post_activation attributes (empty params are
    left out: absent means [])."""
    op = anchor.op_type if anchor.domain == SLIVER else FUSED_OP[anchor.op_type]
    attrs = dict(anchor.attrs)
    attrs.setdefault("activation", "")
    attrs.setdefault("post_activation", "")
    for key, value in epilogue.items():
        if isinstance(value, list):
            if value:
                attrs[key] = [float(v) for v in value]
            else:
                attrs.pop(key, None)
        else:
            attrs[key] = value
    graph.opsets.setdefault(SLIVER, 1)
    return Node(op, SLIVER, anchor.name, list(inputs), [output], attrs, graph.opsets[SLIVER])
