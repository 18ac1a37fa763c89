"""The long-tail fallback: onnx's reference implementation of one node.

Each node gets its own instance of the reference op class, built once at
session creation; at run time it is called with numpy inputs and returns
numpy outputs. Nodes with subgraphs receive the outer-scope values they read
as extra inputs, passed on as the reference op's ``context``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
from onnx.reference import ReferenceEvaluator
from onnx.reference.op_run import RuntimeContextError
from onnx.reference.ops import load_op

from ..ir import Graph, Node

_EXTRA_DOMAINS = ("ai.onnx.ml", "ai.onnx.preview.training", "ai.onnx.preview", "experimental")


def _load_class(node: Node, graph: Graph, proto: onnx.NodeProto) -> type:
    version = graph.opsets.get(node.domain, node.opset)
    if node.domain == "":
        try:
            return load_op("", node.op_type, version, evaluator_cls=ReferenceEvaluator)
        except RuntimeContextError:
            pass
        except Exception as e:
            # onnx keeps implementations only from the version where an op last changed in a way
            # the reference cares about (e.g. DequantizeLinear from 19); older opsets of such ops
            # are special cases of the newer semantics, so the newest class serves them.
            if "No implementation for operator" not in str(e):
                raise
            return load_op("", node.op_type, None, evaluator_cls=ReferenceEvaluator)
        try:
            return load_op("", node.op_type, version, evaluator_cls=ReferenceEvaluator)
        except RuntimeContextError:
            types = []
            for i in node.inputs:
                v = graph.value(i)
                dims = (
                    None
                    if v.shape is None
                    else [d if isinstance(d, int) else None for d in v.shape]
                )
                types.append(onnx.helper.make_tensor_type_proto(v.dtype, dims))
            return load_op(
                "",
                node.op_type,
                version,
                node=proto,
                input_types=types,
                evaluator_cls=ReferenceEvaluator,
            )
    if node.domain in _EXTRA_DOMAINS:
        module = {
            "ai.onnx.ml": "onnx.reference.ops.aionnxml",
            "ai.onnx.preview.training": "onnx.reference.ops.aionnx_preview_training",
            "ai.onnx.preview": "onnx.reference.ops.aionnx_preview",
            "experimental": "onnx.reference.ops.experimental",
        }[node.domain]
        import importlib

        return importlib.import_module(module).load_op(node.domain, node.op_type, version)
    raise NotImplementedError(f"no reference implementation for domain {node.domain!r}")


def available(node: Node, graph: Graph) -> bool:
    """Whether onnx's reference implementations cover this node."""
    try:
        _load_class(node, graph, node.to_proto())
        return True
    except Exception:
        return False


def _as_output(v: Any) -> Any:
    if isinstance(v, (np.generic, int, float, bool)):
        return np.asarray(v)
    return v


def make(node: Node, graph: Graph) -> Callable[..., tuple]:
    """A callable f(*inputs, *implicit_inputs) -> outputs running the reference op."""
    proto = node.to_proto()
    cls = _load_class(node, graph, proto)
    run_params = {
        "log": lambda *a: None,
        "opsets": dict(graph.opsets),
        "verbose": 0,
        "new_ops": {},
        "existing_functions": {},
        "evaluator_cls": ReferenceEvaluator,
    }
    inst = cls(proto, run_params)
    n_explicit = len(node.inputs)
    implicit = list(node.implicit_inputs)

    if inst.need_context():

        def run_with_context(*args: Any) -> tuple:
            context = dict(zip(implicit, args[n_explicit:], strict=True))
            outs = inst.run(*args[:n_explicit], context=context)
            return tuple(_as_output(o) for o in outs)

        return run_with_context

    def run(*args: Any) -> tuple:
        outs = inst.run(*args[:n_explicit])
        return tuple(_as_output(o) for o in outs)

    return run
