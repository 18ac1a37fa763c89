"""qdq_commute: ops that move or select values run on the 8-bit codes themselves.

    Q(op(DQ(x, s, z)), s, z) -> op(x)      op moves/selects elements: Reshape, Flatten,
                                           Transpose, Squeeze, Unsqueeze, Slice, Gather
                                           (data), Expand, Tile, Resize (nearest), Identity
    Q(MaxPool(DQ(x)), s, z)  -> MaxPool(x) DQ is increasing (s > 0): max commutes with it
    Q(Concat(DQ(x_i)), s, z) -> Concat(x_i)            every input with the output's s, z
    Q(Pad(DQ(x), c), s, z)   -> Pad(x, Q(c))           constant mode; other modes copy

Exact: Q(DQ(q)) == q for every code when both use the same s, z (|q - z| <= 255 survives
float32's (q - z) * s / s with an error far below the 0.5 that rounding forgives), and each
op only copies, selects or compares values, or fills in a constant that Q maps the same way.
The DQ stays for its other readers (remove_dead drops it when none is left).
"""

from __future__ import annotations

import numpy as np

from ..ir import Graph, Node
from .qdq_common import Context, QParams, apply, node, np_code, quantize_value
from .util import constant, scalar_value

# op -> indices of the inputs that carry data (the rest are shapes, indices, axes, ...)
DATA_INPUTS: dict[str, tuple[int, ...] | None] = {
    "Reshape": (0,),
    "Flatten": (0,),
    "Transpose": (0,),
    "Squeeze": (0,),
    "Unsqueeze": (0,),
    "Slice": (0,),
    "Gather": (0,),
    "Expand": (0,),
    "Tile": (0,),
    "Identity": (0,),
    "Resize": (0,),
    "MaxPool": (0,),
    "Pad": (0,),
    "Concat": None,  # all inputs
}


def _eligible(graph: Graph, n: Node) -> bool:
    if n.domain != "" or n.op_type not in DATA_INPUTS:
        return False
    if n.op_type == "Resize" and n.attrs.get("mode", "nearest") not in ("nearest", b"nearest"):
        return False
    if n.op_type == "MaxPool" and len([o for o in n.outputs if o]) != 1:
        return False  # Indices output
    return len(n.outputs) >= 1 and bool(n.outputs[0])


def _pad_inputs(ctx: Context, n: Node, px: QParams) -> tuple[list[str], dict] | None:
    """The Pad's inputs/attrs with its constant value mapped to a code."""
    mode = n.attrs.get("mode", "constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    inputs, attrs = list(n.inputs), dict(n.attrs)
    if mode != "constant":
        return inputs, attrs
    if n.opset < 11:
        attrs["value"] = float(quantize_value(float(n.attrs.get("value", 0.0)), px))
        return inputs, attrs
    value = 0.0
    if len(inputs) > 2 and inputs[2]:
        v = scalar_value(constant(ctx.graph, inputs[2]))
        if v is None:
            return None
        value = v
    code = quantize_value(value, px)
    c = ctx.constant_input(np.array(code, dtype=np_code(px.dtype)), f"{n.name}_pad_code")
    while len(inputs) < 3:
        inputs.append("")
    inputs[2] = c
    return inputs, attrs


def run(graph: Graph) -> bool:
    """Moves every eligible op between a DQ/Q pair with equal parameters onto the codes."""
    ctx = Context(graph)
    place: dict[int, list[Node]] = {}
    dead: set[int] = set()
    for n in graph.nodes:
        if id(n) in ctx.claimed or not _eligible(graph, n):
            continue
        idx = DATA_INPUTS[n.op_type]
        data = range(len(n.inputs)) if idx is None else [i for i in idx if i < len(n.inputs)]
        dqs = [ctx.dq_of(n.inputs[i]) for i in data]
        if not dqs or any(d is None for d in dqs):
            continue
        q = ctx.q_after(n.outputs[0])
        if q is None or any(not d[1].same_as(q[1]) for d in dqs):  # type: ignore[index]
            continue
        px = q[1]
        inputs, attrs = list(n.inputs), dict(n.attrs)
        if n.op_type == "Pad":
            got = _pad_inputs(ctx, n, px)
            if got is None:
                continue
            inputs, attrs = got
        for i, d in zip(data, dqs, strict=True):
            inputs[i] = d[0].inputs[0]  # type: ignore[index]
        new = node(graph, n.op_type, "", n.name, inputs, [q[0].outputs[0]], **attrs)
        new.opset = n.opset
        ctx.claimed.update({id(n), id(q[0])})
        dead.update({id(n), id(q[0])})
        place[id(q[0])] = [new]
    return apply(graph, place, dead)
