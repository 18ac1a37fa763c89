"""sliver IR -> ONNX ModelProto (for optimized_model_filepath)."""

from __future__ import annotations

import onnx
from onnx import numpy_helper

from .ir import Graph, Value


def _value_info(v: Value) -> onnx.ValueInfoProto:
    shape = None if v.shape is None else list(v.shape)
    return onnx.helper.make_tensor_value_info(v.name, v.dtype, shape)


def to_model(graph: Graph) -> onnx.ModelProto:
    """Builds a valid ModelProto from the IR (sliver-internal fused ops use domain 'sliver')."""
    used = {i for n in graph.nodes for i in list(n.inputs) + n.implicit_inputs}
    used |= {o.name for o in graph.outputs}
    inits = [
        numpy_helper.from_array(a, name) for name, a in graph.initializers.items() if name in used
    ]
    # Intermediate types are kept: shape inference cannot see through sliver's fused ops.
    outs = {v.name for v in graph.outputs}
    known = [graph.values.get(o) for n in graph.nodes for o in n.outputs if o and o not in outs]
    infos = [_value_info(v) for v in known if v is not None and v.kind == "tensor" and v.dtype]
    g = onnx.helper.make_graph(
        [n.to_proto() for n in graph.nodes],
        graph.name or "sliver",
        [_value_info(v) for v in graph.inputs],
        [_value_info(v) for v in graph.outputs],
        initializer=inits,
        value_info=infos,
    )
    opsets = [onnx.helper.make_opsetid(d, v) for d, v in graph.opsets.items()]
    if any(n.domain == "sliver" for n in graph.nodes) and "sliver" not in graph.opsets:
        opsets.append(onnx.helper.make_opsetid("sliver", 1))
    model = onnx.helper.make_model(g, opset_imports=opsets, producer_name="sliver")
    model.ir_version = max(graph.ir_version, 7)
    return model


def save_graph(graph: Graph, path: str) -> None:
    """Writes the IR as an ONNX file."""
    onnx.save(to_model(graph), path)
