"""fuse_dynamic_quant: dynamic quantization's MatMulInteger chain becomes one integer GEMM
with float output.

onnxruntime's ``quantize_dynamic`` writes, per MatMul (x float, W int8 constant):

    xq, xs, xz = DynamicQuantizeLinear(x)
    y = Cast(MatMulInteger(xq, W, xz, wz), to=float) * (xs * ws)  [+ bias]

    -> y = com.microsoft:MatMulIntegerToFloat(xq, W, xs, ws, xz, wz [, bias])
    -> y = com.microsoft:DynamicQuantizeMatMul(x, W, ws, wz [, bias])   when nothing else
                                                                         reads xq, xs, xz

Bit-exact: both compute float32(acc) * float32(xs * ws[n]) (+ bias[n]) in float32, the
order the unfused nodes use, on the exact int32 sums; DynamicQuantizeMatMul quantizes x with
DynamicQuantizeLinear's formula. ws and bias are float32 constants of 1 or N values, W is a
constant 2-D 8-bit matrix, wz a constant of its type (1 or N values).
"""

from __future__ import annotations

import numpy as np
import onnx

from ..ir import Graph, Node
from .qdq_common import MS, Q8_TYPES, Context, apply, node
from .util import constant, dtype_code, single_consumer

FLOAT = onnx.TensorProto.FLOAT


def _const_f32(graph: Graph, name: str, n: int) -> bool:
    c = constant(graph, name)
    return c is not None and c.dtype == np.float32 and c.size in (1, n) and c.ndim <= 1


def _other(n: Node, name: str) -> str | None:
    """The other input of a binary node that reads ``name`` once."""
    if len(n.inputs) != 2 or n.inputs.count(name) != 1:
        return None
    return n.inputs[1] if n.inputs[0] == name else n.inputs[0]


class _Match:
    def __init__(self, ctx: Context, mmi: Node) -> None:
        self.ctx, self.mmi = ctx, mmi
        self.ok = self._match()

    def _match(self) -> bool:
        ctx, g, mmi = self.ctx, self.ctx.graph, self.mmi
        if mmi.domain != "" or len(mmi.inputs) < 3 or not mmi.inputs[2]:
            return False
        dql = ctx.producers.get(mmi.inputs[0])
        if dql is None or dql.op_type != "DynamicQuantizeLinear" or dql.domain != "":
            return False
        if dql.outputs[0] != mmi.inputs[0] or dql.outputs[2] != mmi.inputs[2]:
            return False
        w = constant(g, mmi.inputs[1])
        if w is None or w.ndim != 2 or dtype_code(w) not in Q8_TYPES:
            return False
        n = int(w.shape[1])
        wz = mmi.inputs[3] if len(mmi.inputs) > 3 else ""
        if wz:
            z = constant(g, wz)
            if z is None or dtype_code(z) != dtype_code(w) or z.size not in (1, n) or z.ndim > 1:
                return False
        cast = ctx.next_node(mmi.outputs[0])
        if cast is None or cast.op_type != "Cast" or int(cast.attrs.get("to", 0)) != FLOAT:
            return False
        mul = ctx.next_node(cast.outputs[0])
        if mul is None or mul.op_type != "Mul" or mul.domain != "":
            return False
        s = _other(mul, cast.outputs[0])
        smul = ctx.producers.get(s) if s else None
        if (
            smul is None
            or smul.op_type != "Mul"
            or smul.domain != ""
            or ctx.next_node(s) is not mul
        ):
            return False
        ws = _other(smul, dql.outputs[1])
        if ws is None or not _const_f32(g, ws, n):
            return False
        out, bias, absorbed = mul.outputs[0], "", [cast, mul]
        add = ctx.next_node(out)
        if add is not None and add.op_type == "Add" and add.domain == "":
            b = _other(add, out)
            if b is not None and _const_f32(g, b, n):
                bias, out = b, add.outputs[0]
                absorbed.append(add)
        self.dql, self.w_zp, self.ws, self.bias, self.out = dql, wz, ws, bias, out
        self.absorbed = absorbed
        self.scale_mul = smul
        return True


def run(graph: Graph) -> bool:
    """Fuses every DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul [-> Add] chain."""
    ctx = Context(graph)
    matches = []
    for n in graph.nodes:
        if n.op_type == "MatMulInteger" and id(n) not in ctx.claimed:
            m = _Match(ctx, n)
            if m.ok:
                matches.append(m)
                ctx.claimed.update(id(x) for x in [n, *m.absorbed])
    if not matches:
        return False
    # A DynamicQuantizeLinear read by one fused MatMul only (and its scale Mul) folds in too.
    readers: dict[int, int] = {}
    for m in matches:
        readers[id(m.dql)] = readers.get(id(m.dql), 0) + 1
    place: dict[int, list[Node]] = {}
    dead: set[int] = set()
    for m in matches:
        dql, mmi = m.dql, m.mmi
        expect = (mmi, m.scale_mul, mmi)
        alone = readers[id(dql)] == 1 and all(
            ctx.private(o) and single_consumer(ctx.consumers, o) is e
            for o, e in zip(dql.outputs, expect, strict=False)
        )
        w_zp = [m.w_zp] if m.w_zp else [""]
        if alone:
            inputs = [dql.inputs[0], mmi.inputs[1], m.ws, *w_zp, m.bias]
            op = "DynamicQuantizeMatMul"
            dead.add(id(dql))
        else:
            inputs = [
                mmi.inputs[0],
                mmi.inputs[1],
                dql.outputs[1],
                m.ws,
                dql.outputs[2],
                *w_zp,
                m.bias,
            ]
            op = "MatMulIntegerToFloat"
        while inputs and not inputs[-1]:
            inputs.pop()
        new = node(graph, op, MS, mmi.name, inputs, [m.out])
        dead.update(id(x) for x in [mmi, *m.absorbed, m.scale_mul])
        place[id(m.absorbed[-1])] = [new]
    return apply(graph, place, dead)
