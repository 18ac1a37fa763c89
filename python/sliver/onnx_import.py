"""ONNX ModelProto -> sliver IR.

Everything protobuf-specific lives here: loading (with external data confined
to the model's folder), function inlining, shape inference, attribute decoding,
Constant nodes turned into initializers, and the outer-scope names each
subgraph reads (so control-flow nodes get them as explicit step inputs).
"""

from __future__ import annotations

import heapq
import os
import warnings
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from .errors import InvalidGraph, NotImplementedOp
from .ir import Dim, Graph, Node, Value

MIN_OPSET = 7
_ELEM_TYPES = set(onnx.TensorProto.DataType.values())
MAX_OPSET = onnx.defs.onnx_opset_version()


def load_model(
    path_or_bytes: str | bytes | os.PathLike | onnx.ModelProto,
) -> tuple[onnx.ModelProto, str | None]:
    """Reads a model and its external data; returns the proto and its folder (None for bytes)."""
    if isinstance(path_or_bytes, onnx.ModelProto):
        return path_or_bytes, None
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        try:
            model = onnx.load_model_from_string(bytes(path_or_bytes))
        except Exception as e:  # protobuf raises its own DecodeError
            raise InvalidGraph(f"cannot parse model bytes as ONNX: {e}") from None
        _check_external_data(model, None)
        return model, None
    path = os.fspath(path_or_bytes)
    if not os.path.isfile(path):
        raise InvalidGraph(f"model file not found: {path!r}")
    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as e:
        raise InvalidGraph(f"cannot parse {path!r} as ONNX: {e}") from None
    base = os.path.dirname(os.path.abspath(path))
    _check_external_data(model, base)
    try:
        onnx.external_data_helper.load_external_data_for_model(model, base)
    except Exception as e:
        raise InvalidGraph(f"cannot load external data of {path!r}: {e}") from None
    return model, base


def _all_tensors(model: onnx.ModelProto):
    """Every TensorProto in the model: initializers and tensor attributes, subgraphs included."""
    yield from onnx.external_data_helper._get_all_tensors(model)


def _check_external_data(model: onnx.ModelProto, base: str | None) -> None:
    """Refuses external data that is absent, or that points outside the model's own folder."""
    for t in _all_tensors(model):
        if not onnx.external_data_helper.uses_external_data(t):
            continue
        if base is None:
            raise InvalidGraph(
                f"tensor {t.name!r} uses external data, "
                "which needs the model to be loaded from a path"
            )
        info = {e.key: e.value for e in t.external_data}
        loc = info.get("location", "")
        full = os.path.realpath(os.path.join(base, loc))
        root = os.path.realpath(base)
        if os.path.isabs(loc) or os.path.commonpath([full, root]) != root:
            raise InvalidGraph(
                f"tensor {t.name!r}: external data location {loc!r} escapes the model's folder"
            )
        if not os.path.isfile(full):
            raise InvalidGraph(f"tensor {t.name!r}: external data file {loc!r} not found")


def check_opsets(model: onnx.ModelProto) -> dict[str, int]:
    """Validates the declared opsets; returns {domain: version} ('' for ONNX)."""
    opsets: dict[str, int] = {}
    for o in model.opset_import:
        dom = "" if o.domain in ("", "ai.onnx") else o.domain
        opsets[dom] = o.version
    if not model.opset_import:
        # IR < 3 models have no opset_import; ONNX then means opset 1.
        opsets[""] = 1
    v = opsets.get("", MIN_OPSET)
    if "" in opsets and not MIN_OPSET <= v <= MAX_OPSET:
        node = model.graph.node[0] if model.graph.node else None
        where = f" (first node {node.name!r}, op {node.op_type})" if node else ""
        raise NotImplementedOp(
            f"model declares ONNX opset {v}{where}; sliver supports opsets {MIN_OPSET}..{MAX_OPSET}"
        )
    return opsets


def _dims(t: onnx.TypeProto.Tensor) -> tuple[Dim, ...] | None:
    if not t.HasField("shape"):
        return None
    out: list[Dim] = []
    for d in t.shape.dim:
        if d.HasField("dim_value"):
            out.append(int(d.dim_value))
        elif d.HasField("dim_param"):
            out.append(d.dim_param)
        else:
            out.append(None)
    return tuple(out)


def value_from_proto(vi: onnx.ValueInfoProto) -> Value:
    """A Value from a ValueInfoProto (non-tensor types keep only their kind)."""
    tp = vi.type
    which = tp.WhichOneof("value")
    if which in ("tensor_type", "sparse_tensor_type"):
        t = getattr(tp, which)
        if t.elem_type and t.elem_type not in _ELEM_TYPES:
            raise InvalidGraph(f"value {vi.name!r} has unknown element type {t.elem_type}")
        return Value(vi.name, t.elem_type, _dims(t))
    kind = {"sequence_type": "sequence", "optional_type": "optional", "map_type": "map"}.get(
        which or "", "tensor"
    )
    return Value(vi.name, 0, None, kind)


def to_array(t: onnx.TensorProto, what: str = "tensor") -> np.ndarray:
    """A TensorProto as numpy; a tensor whose data does not fit its type or dims is InvalidGraph."""
    try:
        return numpy_helper.to_array(t)
    except Exception as e:
        raise InvalidGraph(f"{what} {t.name!r} cannot be decoded: {e}") from None


def decode_attribute(a: onnx.AttributeProto) -> Any:
    """An attribute's Python value; tensors become numpy arrays, graphs stay GraphProto."""
    if a.type == onnx.AttributeProto.TENSOR:
        return to_array(a.t, f"attribute {a.name!r}")
    if a.type == onnx.AttributeProto.TENSORS:
        return [to_array(t, f"attribute {a.name!r}") for t in a.tensors]
    if a.type == onnx.AttributeProto.SPARSE_TENSOR:
        return a.sparse_tensor
    v = onnx.helper.get_attribute_value(a)
    if a.type == onnx.AttributeProto.STRING:
        return v.decode("utf-8", errors="surrogateescape") if isinstance(v, bytes) else v
    if a.type == onnx.AttributeProto.STRINGS:
        return [s.decode("utf-8", errors="surrogateescape") for s in v]
    if a.type in (onnx.AttributeProto.INTS, onnx.AttributeProto.FLOATS, onnx.AttributeProto.GRAPHS):
        return list(v)
    return v


def constant_value(node: onnx.NodeProto) -> np.ndarray:
    """The tensor a Constant node produces."""
    for a in node.attribute:
        if a.name == "value":
            return to_array(a.t, f"Constant {node.name!r} value")
        if a.name == "sparse_value":
            return _sparse_to_dense(a.sparse_tensor)
        if a.name == "value_float":
            return np.array(a.f, dtype=np.float32)
        if a.name == "value_floats":
            return np.array(list(a.floats), dtype=np.float32)
        if a.name == "value_int":
            return np.array(a.i, dtype=np.int64)
        if a.name == "value_ints":
            return np.array(list(a.ints), dtype=np.int64)
        if a.name == "value_string":
            return np.array(a.s.decode("utf-8"), dtype=object)
        if a.name == "value_strings":
            return np.array([s.decode("utf-8") for s in a.strings], dtype=object)
    raise InvalidGraph(f"Constant node {node.name!r} has no value attribute")


def _sparse_to_dense(sp: onnx.SparseTensorProto) -> np.ndarray:
    values = to_array(sp.values, "sparse tensor values")
    idx = to_array(sp.indices, "sparse tensor indices").astype(np.int64)
    dims = tuple(sp.dims)
    dense = np.zeros(int(np.prod(dims)) if dims else 1, dtype=values.dtype)
    if idx.ndim == 2:
        idx = np.ravel_multi_index(idx.T, dims)
    dense[idx.reshape(-1)] = values.reshape(-1)
    return dense.reshape(dims)


def subgraph_free_names(g: onnx.GraphProto) -> list[str]:
    """Names a subgraph (recursively) reads from enclosing scopes, in first-use order."""
    defined = {i.name for i in g.input} | {t.name for t in g.initializer}
    defined |= {t.values.name for t in g.sparse_initializer}
    free: list[str] = []
    for n in g.node:
        reads = list(n.input)
        for a in n.attribute:
            for sub in [a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs):
                reads += subgraph_free_names(sub)
        for r in reads:
            if r and r not in defined and r not in free:
                free.append(r)
        defined.update(o for o in n.output if o)
    for o in g.output:
        if o.name not in defined and o.name not in free:
            free.append(o.name)
    return free


def _infer(model: onnx.ModelProto) -> onnx.ModelProto:
    try:
        return onnx.shape_inference.infer_shapes(
            model, check_type=False, strict_mode=False, data_prop=True
        )
    except Exception as e:  # inference is a help, not a requirement; kernels check at run time
        warnings.warn(
            f"sliver: ONNX shape inference failed ({e}); continuing without it", stacklevel=3
        )
        return model


def graph_from_proto(
    g: onnx.GraphProto, opsets: dict[str, int], outer: dict[str, Value] | None = None
) -> Graph:
    """Converts a (shape-inferred) GraphProto into IR."""
    values: dict[str, Value] = dict(outer or {})
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        values[vi.name] = value_from_proto(vi)
    inits: dict[str, np.ndarray] = {}
    for t in g.initializer:
        inits[t.name] = to_array(t, "initializer")
    for sp in g.sparse_initializer:
        inits[sp.values.name] = _sparse_to_dense(sp)
    for name, arr in inits.items():
        if name not in values or values[name].dtype == 0:
            values[name] = Value(
                name,
                onnx.helper.np_dtype_to_tensor_dtype(arr.dtype)
                if arr.dtype != object
                else onnx.TensorProto.STRING,
                arr.shape,
            )
    nodes: list[Node] = []
    seen: set[str] = set()
    for i, n in enumerate(g.node):
        _check_text(n)
        name = n.name or f"{n.op_type}_{i}"
        if n.op_type == "Constant" and n.domain in ("", "ai.onnx"):
            inits[n.output[0]] = constant_value(n)
            continue
        domain = "" if n.domain in ("", "ai.onnx") else n.domain
        attrs = {a.name: decode_attribute(a) for a in n.attribute}
        implicit: list[str] = []
        for a in n.attribute:
            for sub in [a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs):
                for f in subgraph_free_names(sub):
                    if f not in implicit:
                        implicit.append(f)
        if domain not in opsets:
            raise NotImplementedOp(
                f"node {name!r} ({n.op_type}) uses domain {domain!r}, "
                "which the model does not import"
            )
        _check_arity(n, name, domain, opsets[domain])
        seen.update(n.output)
        nodes.append(
            Node(
                n.op_type,
                domain,
                name,
                list(n.input),
                list(n.output),
                attrs,
                opsets[domain],
                implicit,
            )
        )
    nodes = order_nodes(nodes, {i.name for i in g.input} | set(inits), strict=outer is None)
    produced = {o for n in nodes for o in n.outputs if o} | {i.name for i in g.input} | set(inits)
    for o in g.output:
        if outer is None and o.name not in produced:
            raise InvalidGraph(f"graph output {o.name!r} is not produced by any node")
    graph_inputs = [values[i.name] for i in g.input if i.name not in inits]
    # IR<4 style: initializers listed as inputs are defaults the caller may override.
    overridable = [values[i.name] for i in g.input if i.name in inits]
    graph = Graph(
        name=g.name,
        nodes=nodes,
        inputs=graph_inputs,
        outputs=[values[o.name] for o in g.output],
        initializers=inits,
        values=values,
        opsets=opsets,
    )
    graph.overridable = overridable  # type: ignore[attr-defined]
    return graph


def _check_text(n: onnx.NodeProto) -> None:
    """Names protobuf could not decode as UTF-8 arrive as bytes: refuse them here."""
    names = [n.op_type, n.domain, n.name, *n.input, *n.output, *(a.name for a in n.attribute)]
    bad = [v for v in names if not isinstance(v, str)]
    if bad:
        raise InvalidGraph(f"node {n.name!r} has names that are not valid UTF-8: {bad[:4]}")


def _check_arity(n: onnx.NodeProto, name: str, domain: str, version: int) -> None:
    """Input/output counts against the op's schema (ops onnx does not know are left alone)."""
    try:
        schema = onnx.defs.get_schema(n.op_type, version, domain)
    except Exception:  # SchemaError, or a name protobuf could not decode as text
        return
    n_in, n_out = len(n.input), len(n.output)
    if not (schema.min_input <= n_in <= schema.max_input) or not (
        schema.min_output <= n_out <= schema.max_output
    ):
        raise InvalidGraph(
            f"node {name!r} ({n.op_type}, opset {version}) has {n_in} inputs and {n_out} "
            f"outputs; the op takes {schema.min_input}..{schema.max_input} inputs and "
            f"{schema.min_output}..{schema.max_output} outputs"
        )


def order_nodes(nodes: list[Node], available: set[str], strict: bool = True) -> list[Node]:
    """Nodes in a topological order (the given order where it already is one).

    ONNX asks for sorted nodes but onnxruntime accepts any order, so sliver sorts too.
    Raises InvalidGraph for a value produced twice, a cycle, or (``strict``: not a
    subgraph, whose free names come from outside) a read of a value nothing provides.
    """
    producer: dict[str, int] = {}
    for idx, n in enumerate(nodes):
        for o in n.outputs:
            if not o:
                continue
            if o in producer or o in available:
                first = (
                    f"node {nodes[producer[o]].name!r}"
                    if o in producer
                    else "a graph input or initializer"
                )
                raise InvalidGraph(
                    f"value {o!r} is produced by node {n.name!r} ({n.op_type}) and by {first}"
                )
            producer[o] = idx
    deps: list[set[int]] = []
    for n in nodes:
        d = set()
        for i in list(n.inputs) + n.implicit_inputs:
            if not i:
                continue
            if i in producer:
                d.add(producer[i])
            elif strict and i not in available:
                raise InvalidGraph(
                    f"node {n.name!r} ({n.op_type}) reads {i!r}, which is no graph input, "
                    f"initializer or node output"
                )
        deps.append(d)
    if all(all(j < idx for j in d) for idx, d in enumerate(deps)):
        return nodes
    users: dict[int, list[int]] = {}
    for idx, d in enumerate(deps):
        for j in d:
            users.setdefault(j, []).append(idx)
    waiting = [len(d) for d in deps]
    ready = [idx for idx, w in enumerate(waiting) if w == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        idx = heapq.heappop(ready)
        order.append(idx)
        for u in users.get(idx, []):
            waiting[u] -= 1
            if waiting[u] == 0:
                heapq.heappush(ready, u)
    if len(order) != len(nodes):
        stuck = [nodes[i].name for i, w in enumerate(waiting) if w > 0]
        raise InvalidGraph(f"the graph has a cycle through nodes {stuck[:8]}")
    return [nodes[i] for i in order]


def import_model(path_or_bytes: str | bytes | os.PathLike | onnx.ModelProto) -> Graph:
    """Loads, validates and converts a model to IR. Errors name the node, op, domain, opset."""
    model, _ = load_model(path_or_bytes)
    opsets = check_opsets(model)
    if model.functions:
        try:
            model = onnx.inliner.inline_local_functions(model)
        except Exception as e:
            raise InvalidGraph(f"cannot inline the model's local functions: {e}") from None
    model = _infer(model)
    graph = graph_from_proto(model.graph, opsets)
    if model.ir_version < 4:
        # Before IR 4 every initializer was also listed as an input; onnxruntime treats them as
        # constants, not as defaults the caller may override.
        graph.overridable = []  # type: ignore[attr-defined]
    graph.ir_version = model.ir_version
    graph.producer_name = model.producer_name
    graph.metadata = {p.key: p.value for p in model.metadata_props}
    graph.model_meta = {  # type: ignore[attr-defined]
        "producer_name": model.producer_name,
        "graph_name": model.graph.name,
        "domain": model.domain,
        "description": model.doc_string,
        "graph_description": model.graph.doc_string,
        "version": model.model_version,
        "custom_metadata_map": dict(graph.metadata),
    }
    return graph
