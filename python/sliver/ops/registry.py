"""Chooses how each node runs: native kernel, sliver Python op, or onnx reference."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import _C
from ..errors import InvalidGraph, NotImplementedOp
from ..ir import Graph, Node
from . import reference

# Python implementations sliver owns (ops onnx's reference lacks or gets wrong):
# key "Op" or "domain:Op" -> factory(node, graph) -> callable(*inputs) -> outputs.
PYTHON_OPS: dict[str, Callable[[Node, Graph], Callable[..., tuple]]] = {}


def register_python_op(key: str) -> Callable:
    """Decorator: registers a Python op factory under ``key``."""

    def deco(factory: Callable[[Node, Graph], Callable[..., tuple]]) -> Callable:
        PYTHON_OPS[key] = factory
        return factory

    return deco


def _static_shape(graph: Graph, name: str) -> list[int] | None:
    v = graph.value(name)
    if v.shape is None:
        return None
    return [d if isinstance(d, int) else -1 for d in v.shape]


def _native_attrs(node: Node) -> dict[str, Any]:
    # Graph-valued attributes never reach native code.
    return {
        k: v
        for k, v in node.attrs.items()
        if isinstance(v, (int, float, str, bytes, list, tuple, np.ndarray))
        and not (isinstance(v, list) and v and not isinstance(v[0], (int, float, str, bytes)))
    }


def session_config(graph: Graph) -> dict[str, str]:
    """The ``sliver.*`` session config entries kernels see (``KernelInit::config``).

    The session attaches its SessionOptions config to the graph as ``session_config``; graphs
    compiled on their own (control-flow bodies, tests) have none, so every setting is default.
    """
    config = getattr(graph, "session_config", None) or {}
    return {str(k): str(v) for k, v in config.items() if str(k).startswith("sliver.")}


def native_kernel(node: Node, graph: Graph) -> Any | None:
    """The native kernel for ``node``, or None when no native kernel accepts it."""
    if any(
        not isinstance(v, (int, float, str, bytes, list, tuple, np.ndarray))
        for v in node.attrs.values()
    ):
        return None
    consts = [graph.initializers.get(i) if i else None for i in node.inputs]
    try:
        return _C.create_kernel(
            node.op_type,
            node.domain,
            node.name,
            node.opset,
            _native_attrs(node),
            [graph.value(i).dtype if i else 0 for i in node.inputs],
            [_static_shape(graph, i) if i else None for i in node.inputs],
            [c if isinstance(c, np.ndarray) and c.dtype != object else None for c in consts],
            [graph.value(o).dtype if o else 0 for o in node.outputs],
            [_static_shape(graph, o) if o else None for o in node.outputs],
            session_config(graph),
        )
    except _C.NativeError as e:
        shapes = [graph.value(i).shape for i in node.inputs]
        raise InvalidGraph(
            f"node {node.name!r} ({node.op_type}) with input shapes {shapes}: {e}"
        ) from None


def python_impl_available(node: Node, graph: Graph) -> bool:
    """Whether some Python implementation (sliver's or onnx reference) covers ``node``."""
    return node.key in PYTHON_OPS or reference.available(node, graph)


def build_kernel(node: Node, graph: Graph, allow_native: bool = True) -> tuple[Any, str]:
    """Returns (kernel handle, implementation name) for ``node``.

    Raises NotImplementedOp naming node, op, domain and opset when nothing can run it.
    """
    if allow_native:
        k = native_kernel(node, graph)
        if k is not None:
            return k, k.describe() or "native"
    if node.key in PYTHON_OPS:
        return _C.python_kernel(PYTHON_OPS[node.key](node, graph)), "python"
    try:
        fn = reference.make(node, graph)
    except Exception as e:
        raise NotImplementedOp(
            f"node {node.name!r}: op {node.op_type!r} (domain {node.domain or 'ai.onnx'!r}, "
            f"opset {graph.opsets.get(node.domain, node.opset)}) is not supported: {e}"
        ) from None
    return _C.python_kernel(fn), "reference"
