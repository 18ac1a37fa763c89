"""Small graph queries and edits shared by the rewrite passes.

Passes walk a snapshot (``producers``/``consumers`` maps, the node list) to
decide what to change, then apply the changes; nothing here iterates the node
list while changing it.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import onnx

from ..ir import Dim, Graph, Node, Value

FLOAT = onnx.TensorProto.FLOAT


def overridable_names(graph: Graph) -> set[str]:
    """Initializers a caller may feed (listed as graph inputs too)."""
    return {v.name for v in getattr(graph, "overridable", [])}


def is_constant(graph: Graph, name: str) -> bool:
    """Whether ``name`` is a constant the passes may read and fold.

    An initializer that is also a graph input may be fed by the caller, so it is not
    constant; except in IR < 4 models, where every initializer had to be listed as an
    input and onnxruntime treats them as constants (the onnx wheel's light models).
    """
    if name not in graph.initializers:
        return False
    return graph.ir_version < 4 or name not in overridable_names(graph)


def constant(graph: Graph, name: str) -> np.ndarray | None:
    """The constant value of ``name``, or None when it is not a constant."""
    return graph.initializers[name] if name and is_constant(graph, name) else None


def output_names(graph: Graph) -> set[str]:
    """The graph's output names."""
    return {v.name for v in graph.outputs}


def implicit_reads(graph: Graph) -> set[str]:
    """Names that subgraphs read from this scope: they appear inside GraphProto attributes,
    so renaming them would break the subgraph."""
    return {i for n in graph.nodes for i in n.implicit_inputs}


def has_subgraph(node: Node) -> bool:
    """Whether the node carries graph-valued attributes (If, Loop, Scan, ...)."""
    for v in node.attrs.values():
        if isinstance(v, onnx.GraphProto):
            return True
        if isinstance(v, list) and v and isinstance(v[0], onnx.GraphProto):
            return True
    return False


def dims(graph: Graph, name: str) -> tuple[Dim, ...] | None:
    """``name``'s shape as far as it is sure at run time: a constant's exact shape, the
    inferred shape of a node result or graph input, None for a feedable initializer."""
    if name in graph.initializers:
        return tuple(graph.initializers[name].shape) if is_constant(graph, name) else None
    return graph.value(name).shape


def static_shape(graph: Graph, name: str) -> tuple[int, ...] | None:
    """The shape of ``name`` when every dimension is a known integer, else None."""
    shape = dims(graph, name)
    if shape is None or not all(isinstance(d, int) for d in shape):
        return None
    return tuple(shape)


def same_shape(graph: Graph, a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` provably have the same shape (equal ints or equal symbols)."""
    sa, sb = dims(graph, a), dims(graph, b)
    if sa is None or sb is None or len(sa) != len(sb):
        return False
    return all(x is not None and x == y for x, y in zip(sa, sb, strict=True))


def dtype_of(graph: Graph, name: str) -> int:
    """ONNX dtype code of ``name`` (0 when unknown)."""
    if name in graph.initializers:
        return dtype_code(graph.initializers[name])
    return graph.value(name).dtype


def dtype_code(arr: np.ndarray) -> int:
    """ONNX dtype code of a numpy array (0 when ONNX has none)."""
    if arr.dtype.kind in "OUS":
        return onnx.TensorProto.STRING
    try:
        return onnx.helper.np_dtype_to_tensor_dtype(arr.dtype)
    except Exception:
        return 0


def all_names(graph: Graph) -> set[str]:
    """Every name in use in this graph's scope."""
    names = set(graph.values) | set(graph.initializers)
    names |= {v.name for v in graph.inputs} | {v.name for v in graph.outputs}
    for n in graph.nodes:
        names.update(n.inputs)
        names.update(n.outputs)
        names.update(n.implicit_inputs)
    return names


class NameMaker:
    """Fresh value/node names that collide with nothing in the graph (deterministic)."""

    def __init__(self, graph: Graph) -> None:
        self._taken = all_names(graph) | {n.name for n in graph.nodes}

    def __call__(self, base: str) -> str:
        name, k = base, 0
        while name in self._taken:
            k += 1
            name = f"{base}_{k}"
        self._taken.add(name)
        return name


def set_constant(graph: Graph, name: str, arr: np.ndarray) -> None:
    """Stores ``arr`` as initializer ``name`` and records its dtype and exact shape."""
    graph.initializers[name] = arr
    graph.values[name] = Value(name, dtype_code(arr), tuple(int(d) for d in arr.shape))


def remove_nodes(graph: Graph, dead: Iterable[Node]) -> None:
    """Drops the given nodes (by identity), keeping the others' order."""
    ids = {id(n) for n in dead}
    graph.nodes = [n for n in graph.nodes if id(n) not in ids]


def rename_inputs(graph: Graph, mapping: dict[str, str]) -> None:
    """Rewrites explicit node inputs through ``mapping`` (chains resolved)."""

    def resolve(name: str) -> str:
        seen = set()
        while name in mapping and name not in seen:
            seen.add(name)
            name = mapping[name]
        return name

    for n in graph.nodes:
        n.inputs = [resolve(i) if i else i for i in n.inputs]


def single_consumer(consumers: dict[str, list[Node]], name: str) -> Node | None:
    """The one node reading ``name`` (once), or None."""
    users = consumers.get(name, [])
    if len(users) != 1:
        return None
    node = users[0]
    if sum(1 for i in node.inputs if i == name) != 1 or name in node.implicit_inputs:
        return None
    return node


def scalar_value(arr: np.ndarray | None) -> float | None:
    """A constant's value when it holds one number (any shape of size 1)."""
    if arr is None or arr.size != 1 or arr.dtype.kind not in "fiu":
        return None
    return float(arr.reshape(()))
