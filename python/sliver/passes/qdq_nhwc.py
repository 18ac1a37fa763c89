"""qdq_nhwc: integer conv stacks run channels-last, with transposes only at their borders.

    QLinearConv(x)                    -> sliver:QLinearConv(x', channels_last=1)
    MaxPool(x) (8-bit)                -> com.microsoft:NhwcMaxPool(x')
    QLinearGlobalAveragePool(x)       -> QLinearGlobalAveragePool(x', channels_last=1)
    QLinearAdd/QLinearMul(a, b), sliver:QLinearBinary(a, b), sliver:QLinearLookup(x),
    sliver:QLinearPairLookup(a, b),
    QLinearConcat(axis=1)
                                      -> the same op on NHWC tensors (Concat: axis 3)

x' is the NHWC form of the NCHW tensor x. The region starts at every integer 2-D conv the
channels-last kernel handles (dense, or depthwise with multiplier 1) and grows forward over
the ops above whose data inputs come from it. A value entering the region from outside gets
one Transpose to NHWC, a value leaving it (read outside, or a graph output) one Transpose back
(a Reshape where the move is trivial: one channel, or a 1x1 image). Inside, every tensor is
NHWC: the conv kernels gather contiguous channel rows and write the GEMM's [pixels, OC]
result in place, with no per-op layout shuffles (q8_conv_nhwc.h).

A conv that enters the region from outside and is its input's only reader reads the NCHW
tensor itself (``nchw_input=1``: the kernel transposes into a scratch copy, cheaper than a
graph Transpose and one tensor fewer).

Pure data movement: results are bit for bit those of the NCHW graph. Every data value the
region touches must have a known rank of 4. ONNX shape inference does not know the
com.microsoft ops of QOperator models (QLinearAdd, QLinearGlobalAveragePool, ...), so
everything after the first of them would be shapeless; ``fill_types`` (infer_types.py) first
derives their outputs' types and shapes and re-infers the standard ops below them one node at a
time. Nodes already channels-last (an earlier round) are recognised and never converted twice.
"""

from __future__ import annotations

import numpy as np

from ..ir import Graph, Node
from .infer_types import fill_types
from .qdq_common import MS, Q8_TYPES, SLIVER, Context, node
from .util import constant, dtype_of

TO_NHWC = [0, 2, 3, 1]
TO_NCHW = [0, 3, 1, 2]
POOL_ATTRS = ("auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "strides")


def _rank4(graph: Graph, name: str) -> bool:
    shape = graph.value(name).shape
    return shape is not None and len(shape) == 4


def _is_conv(n: Node) -> bool:
    return n.op_type == "QLinearConv" and n.domain in ("", SLIVER)


def _anchor(graph: Graph, n: Node) -> bool:
    """An NCHW integer 2-D conv the channels-last kernel handles."""
    if not _is_conv(n) or int(n.attrs.get("channels_last", 0)):
        return False
    w = constant(graph, n.inputs[3]) if len(n.inputs) > 3 else None
    if w is None or w.ndim != 4 or not _rank4(graph, n.inputs[0]):
        return False
    group = int(n.attrs.get("group", 1))
    return group == 1 or (w.shape[1] == 1 and w.shape[0] == group)


def _data_inputs(n: Node) -> list[int]:
    """Indices of the inputs that carry image data (the rest: scales, zero points, tables)."""
    if n.op_type in ("QLinearAdd", "QLinearMul", "QLinearBinary"):
        return [0, 3]
    if n.op_type == "QLinearPairLookup":
        return [0, 1]
    if n.op_type == "QLinearConcat":
        return list(range(2, len(n.inputs), 3))
    return [0]


def _follower(graph: Graph, n: Node) -> bool:
    """An op that may join the region (before its channels-last rewrite)."""
    key = (n.domain, n.op_type)
    if key == ("", "MaxPool"):
        ok = dtype_of(graph, n.inputs[0]) in Q8_TYPES and len([o for o in n.outputs if o]) == 1
        ok = ok and int(n.attrs.get("storage_order", 0)) == 0
        return ok and len(n.attrs.get("kernel_shape", [])) == 2
    if key == (MS, "QLinearGlobalAveragePool"):
        return not int(n.attrs.get("channels_last", 0))
    if key in ((MS, "QLinearAdd"), (MS, "QLinearMul"), (SLIVER, "QLinearBinary")):
        return (
            len(n.inputs) >= 4 and graph.value(n.inputs[0]).shape == graph.value(n.inputs[3]).shape
        )
    if key == (SLIVER, "QLinearLookup"):
        return True
    if key == (SLIVER, "QLinearPairLookup"):
        return graph.value(n.inputs[0]).shape == graph.value(n.inputs[1]).shape
    if key == (MS, "QLinearConcat"):
        return int(n.attrs.get("axis", 0)) in (1, -3)
    return False


def _nhwc_produced(graph: Graph) -> set[str]:
    """Values an earlier run of this pass left channels-last."""
    out: set[str] = set()
    for n in graph.nodes:
        cl = int(n.attrs.get("channels_last", 0)) and (
            _is_conv(n) or n.op_type == "QLinearGlobalAveragePool"
        )
        if cl or (n.domain, n.op_type) == (MS, "NhwcMaxPool"):
            out.add(n.outputs[0])
        elif _follower(graph, n) and n.op_type != "MaxPool":
            if any(n.inputs[i] in out for i in _data_inputs(n) if i < len(n.inputs)):
                out.add(n.outputs[0])
    return out


def _perm(shape: tuple | None, perm: list[int]) -> tuple | None:
    return None if shape is None else tuple(shape[p] for p in perm)


def _sole_reader(ctx: Context, x: str, n: Node) -> bool:
    """Whether n is the only live reader of x, which is no graph output (a rewrite earlier in
    this round may have left a dead DequantizeLinear on x for remove_dead)."""

    def live(c: Node) -> bool:
        return any(o in ctx.outputs or ctx.consumers.get(o) for o in c.outputs if o)

    readers = [c for c in ctx.consumers.get(x, []) if c is n or live(c)]
    return x not in ctx.outputs and len(readers) == 1 and readers[0] is n


def _rewritten(n: Node) -> Node:
    """n's channels-last form, reading and writing the same names (renamed later)."""
    attrs = dict(n.attrs)
    if _is_conv(n):
        attrs["channels_last"] = 1
        return Node("QLinearConv", SLIVER, n.name, list(n.inputs), list(n.outputs), attrs, 1)
    if n.op_type == "MaxPool":
        attrs = {k: v for k, v in attrs.items() if k in POOL_ATTRS}
        return Node("NhwcMaxPool", MS, n.name, list(n.inputs), list(n.outputs), attrs, 1)
    if n.op_type == "QLinearGlobalAveragePool":
        attrs["channels_last"] = 1
    if n.op_type == "QLinearConcat":
        attrs["axis"] = 3
    return Node(n.op_type, n.domain, n.name, list(n.inputs), list(n.outputs), attrs, n.opset)


class _Layout:
    def __init__(self, graph: Graph) -> None:
        self.g = graph
        self.ctx = Context(graph)
        self.nhwc: dict[str, str] = {}  # NCHW name -> its NHWC twin
        self.before: dict[int, list[Node]] = {}
        self.after: dict[int, list[Node]] = {}

    def move(self, x: str, perm: list[int], out: str) -> Node:
        """Transpose x by perm into out (a Reshape when no element changes place)."""
        g = self.g
        shape = g.value(x).shape
        new_shape = _perm(shape, perm)
        self.ctx.add_value(out, dtype_of(g, x), new_shape)
        if shape is not None and all(isinstance(d, int) for d in shape[1:]):
            c, hw = (shape[1], shape[2:]) if perm == TO_NHWC else (shape[3], shape[1:3])
            if c == 1 or tuple(hw) == (1, 1):
                target = self.ctx.constant_input(
                    np.array([0, *new_shape[1:]], np.int64), f"{out}_shape"
                )
                return node(g, "Reshape", "", f"{out}_reshape", [x, target], [out])
        return node(g, "Transpose", "", f"{out}_transpose", [x], [out], perm=perm)

    def twin(self, x: str, consumer: Node) -> str:
        """The NHWC name of outside value x, transposing it before ``consumer`` on first use."""
        if x not in self.nhwc:
            prod = self.ctx.producers.get(x)
            if (
                prod is not None
                and prod.op_type == "Transpose"
                and list(prod.attrs.get("perm", [])) == TO_NCHW
            ):
                self.nhwc[x] = prod.inputs[0]  # undo a transpose an earlier round put there
            else:
                out = self.ctx.names(f"{x}_nhwc")
                self.before.setdefault(id(consumer), []).append(self.move(x, TO_NHWC, out))
                self.nhwc[x] = out
        return self.nhwc[x]


def run(graph: Graph) -> bool:
    """Moves every integer conv region to channels-last."""
    fill_types(graph)
    lay = _Layout(graph)
    ctx = lay.ctx
    done = _nhwc_produced(graph)
    region: list[Node] = []
    members: set[int] = set()
    produced: set[str] = set()
    for n in graph.nodes:
        if any(i in done for i in n.inputs):
            continue
        joins = _anchor(graph, n)
        if not joins and _follower(graph, n):
            data = [n.inputs[i] for i in _data_inputs(n) if i < len(n.inputs)]
            joins = any(d in produced for d in data) and all(_rank4(graph, d) for d in data)
        if joins and _rank4(graph, n.outputs[0]):
            region.append(n)
            members.add(id(n))
            produced.add(n.outputs[0])
    if not region:
        return False
    replace: dict[int, Node] = {}
    for n in region:
        new = _rewritten(n)
        for i in _data_inputs(n):
            if i < len(n.inputs) and n.inputs[i]:
                x = n.inputs[i]
                if x in produced:
                    new.inputs[i] = lay.nhwc[x]
                elif _is_conv(n) and x not in lay.nhwc and _sole_reader(ctx, x, n):
                    new.attrs["nchw_input"] = 1  # the kernel reads x as it is
                else:
                    new.inputs[i] = lay.twin(x, n)
        y = n.outputs[0]
        y_nhwc = ctx.names(f"{y}_nhwc")
        ctx.add_value(y_nhwc, dtype_of(graph, y), _perm(graph.value(y).shape, TO_NHWC))
        new.outputs[0] = y_nhwc
        lay.nhwc[y] = y_nhwc
        outside = [c for c in ctx.consumers.get(y, []) if id(c) not in members]
        if outside or not ctx.private(y):
            lay.after.setdefault(id(n), []).append(lay.move(y_nhwc, TO_NCHW, y))
        replace[id(n)] = new
    out: list[Node] = []
    for n in graph.nodes:
        out.extend(lay.before.get(id(n), []))
        out.append(replace.get(id(n), n))
        out.extend(lay.after.get(id(n), []))
    graph.nodes = out
    return True
