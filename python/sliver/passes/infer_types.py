"""Types for the values ONNX shape inference leaves untyped: everything below a com.microsoft
op, which onnx has no schemas for (QOperator models' QLinearAdd, QLinearGlobalAveragePool, ...,
and onnxruntime-saved graphs). Native kernels are chosen from static dtypes, so an untyped
value would send every op below it to the Python fallback.

``fill_types`` walks the graph once in order: the quantized contrib ops' outputs follow from
their operands (_contrib_result), ops whose output is typed like their first input
(_LIKE_INPUT) copy it, and standard ops are re-inferred one node at a time by ONNX.
"""

from __future__ import annotations

import onnx
from onnx import helper, numpy_helper

from ..ir import Graph, Node
from ..onnx_import import value_from_proto
from .qdq_common import MS
from .util import dims, dtype_of

# Output typed (and shaped) like the first input: contrib activations, and
# LayerNormalization in a model importing opset < 17 (which ONNX inference then rejects).
_LIKE_INPUT = {("", "LayerNormalization"), (MS, "Gelu"), (MS, "FastGelu")}

# com.microsoft ops with one output: (data inputs, index of the output zero point / type).
_MS_ELEMENTWISE = {
    "QLinearAdd": ((0, 3), 7),
    "QLinearMul": ((0, 3), 7),
    "QLinearLeakyRelu": ((0,), 4),
    "QLinearSigmoid": ((0,), 4),
}
_SMALL_CONSTANT = 64  # constants up to this size go to single-node inference as data


def _known(graph: Graph, name: str) -> bool:
    v = graph.value(name)
    return v.dtype != 0 and v.shape is not None


def _broadcast(shapes: list[tuple]) -> tuple | None:
    rank = max(len(s) for s in shapes)
    out = []
    for i in range(rank):
        ds = {s[i - rank + len(s)] for s in shapes if i - rank + len(s) >= 0} - {1}
        if len(ds) > 1:
            return None
        out.append(ds.pop() if ds else 1)
    return tuple(out)


def _contrib_result(graph: Graph, n: Node) -> tuple[int, tuple] | None:
    """(dtype, shape) of a com.microsoft quantized op's output, or None."""

    def dt(i: int, fallback: int) -> int:
        t = dtype_of(graph, n.inputs[i]) if i < len(n.inputs) and n.inputs[i] else 0
        return t or dtype_of(graph, n.inputs[fallback])

    if n.op_type in _MS_ELEMENTWISE:
        data, zp = _MS_ELEMENTWISE[n.op_type]
        shapes = [dims(graph, n.inputs[i]) for i in data if i < len(n.inputs)]
        if any(s is None for s in shapes):
            return None
        out = _broadcast(shapes)
        return None if out is None else (dt(zp, 0), out)
    x = dims(graph, n.inputs[0]) if n.inputs else None
    if n.op_type == "QLinearGlobalAveragePool" and x is not None and len(x) >= 3:
        cl = int(n.attrs.get("channels_last", 0))
        out = (x[0], *([1] * (len(x) - 2)), x[-1]) if cl else (x[0], x[1], *([1] * (len(x) - 2)))
        return dt(4, 0), out
    if n.op_type == "QLinearConcat" and len(n.inputs) >= 5:
        parts = [dims(graph, n.inputs[i]) for i in range(2, len(n.inputs), 3)]
        if any(p is None for p in parts) or len({len(p) for p in parts}) != 1:
            return None
        axis = int(n.attrs.get("axis", 0)) % len(parts[0])
        sizes = [p[axis] for p in parts]
        total = sum(sizes) if all(isinstance(d, int) for d in sizes) else None
        return dt(1, 2), tuple(total if i == axis else d for i, d in enumerate(parts[0]))
    return None


def _infer_one(graph: Graph, n: Node) -> list | None:
    """ONNX shape inference on node n alone, from what the graph knows of its inputs."""
    ins, inits = [], []
    for i in n.inputs:
        if not i:
            continue
        t = dtype_of(graph, i)
        if t == 0:
            return None
        arr = graph.initializers.get(i)
        if arr is not None and arr.size <= _SMALL_CONSTANT and arr.dtype != object:
            inits.append(numpy_helper.from_array(arr, i))
        else:
            ins.append(helper.make_tensor_value_info(i, t, dims(graph, i)))
    g = helper.make_graph([n.to_proto()], "one", ins, [], initializer=inits)
    opsets = [helper.make_opsetid(d, v) for d, v in graph.opsets.items()]
    try:
        m = onnx.shape_inference.infer_shapes(
            helper.make_model(g, opset_imports=opsets), strict_mode=False, data_prop=True
        )
    except Exception:  # inference is a help; the kernels check shapes at run time
        return None
    return [value_from_proto(vi) for vi in m.graph.value_info]


def fill_types(graph: Graph) -> None:
    """Gives outputs that import left untyped (below com.microsoft ops) a dtype and shape, in
    one pass in graph order: each node sees what the nodes before it were given."""
    for n in graph.nodes:
        outs = [o for o in n.outputs if o]
        if not outs or all(_known(graph, o) for o in outs):
            continue
        found = []
        if (n.domain, n.op_type) in _LIKE_INPUT and n.inputs and _known(graph, n.inputs[0]):
            v = graph.value(n.inputs[0])
            found = [(outs[0], v.dtype, v.shape)]
        elif n.domain == MS and len(outs) == 1:
            r = _contrib_result(graph, n)
            if r is not None:
                found = [(outs[0], r[0], r[1])]
        elif n.domain == "" and n.op_type not in ("If", "Loop", "Scan"):
            found = [(v.name, v.dtype, v.shape) for v in _infer_one(graph, n) or []]
        for name, dt, shape in found:
            if name in outs and not _known(graph, name) and dt:
                graph.values[name] = type(graph.value(name))(name, dt, shape)
