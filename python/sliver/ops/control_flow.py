"""If, Loop, Scan and SequenceMap: their subgraphs run as sliver plans.

Each subgraph (a branch or a body) is imported and compiled once, at session
creation, with the same importer and compiler as the main graph, so a body's
Conv or MatMul gets the native kernel it would get at top level. A body plan's
inputs are the subgraph's formal inputs followed by the outer-scope names it
reads; the node receives those outer values as its implicit inputs (appended
after its explicit ones, see ``Node.implicit_inputs``) and routes them in.
Running costs one crossing into the body plan per branch taken or iteration.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import onnx

from ..errors import InvalidArgument, InvalidGraph
from ..ir import Graph, Node, Value
from .registry import register_python_op


class Body:
    """A compiled subgraph, callable as body(formal_inputs, node_implicit_inputs) -> outputs."""

    def __init__(self, node: Node, graph: Graph, attr: str) -> None:
        # Imported here: plan.py imports ops, which imports this module.
        from ..onnx_import import graph_from_proto, subgraph_free_names
        from ..plan import compile_graph

        proto = node.attrs.get(attr)
        if not isinstance(proto, onnx.GraphProto):
            raise InvalidGraph(
                f"node {node.name!r} ({node.op_type}) has no graph attribute {attr!r}"
            )
        sub = graph_from_proto(proto, graph.opsets, outer=graph.values)
        formal = [sub.value(i.name) for i in proto.input]
        free = subgraph_free_names(proto)
        sub.inputs = formal + [sub.value(f) for f in free]
        sub.overridable = []  # type: ignore[attr-defined]
        self.name = f"{node.name}/{attr}"
        self.formal = formal
        self.outputs: list[Value] = list(sub.outputs)
        position = {n: i for i, n in enumerate(node.implicit_inputs)}
        missing = [f for f in free if f not in position]
        if missing:
            raise InvalidGraph(f"{self.name}: outer-scope names {missing} are not node inputs")
        self._outer = [position[f] for f in free]
        # Bodies get the session's rewrites too (fusions, folding); their threads come from the
        # enclosing run (the executor lends its pool to nested plans).
        level = getattr(graph, "optimization_level", None)
        if level is not None:
            from ..passes import run_pipeline

            sub.optimization_level = level  # type: ignore[attr-defined]
            sub = run_pipeline(sub, level)
        self._plan = compile_graph(sub)
        self._wanted = list(range(len(self.outputs)))

    def __call__(self, formal: Sequence[Any], implicit: Sequence[Any]) -> list[Any]:
        if len(formal) != len(self.formal):
            raise InvalidArgument(
                f"{self.name}: subgraph takes {len(self.formal)} inputs, got {len(formal)}"
            )
        feeds = list(formal) + [implicit[i] for i in self._outer]
        return list(self._plan.native.run(feeds, self._wanted))

    def empty_scan_output(self, index: int, axis: int) -> np.ndarray:
        """A zero-length stack of output ``index`` (for a loop that ran no iteration)."""
        v = self.outputs[index]
        dtype = onnx.helper.tensor_dtype_to_np_dtype(v.dtype) if v.dtype else np.float32
        dims = [d if isinstance(d, int) else 0 for d in (v.shape or ())]
        dims.insert(axis % (len(dims) + 1), 0)
        return np.zeros(dims, dtype=dtype)


def _scalar(x: Any, what: str) -> Any:
    a = np.asarray(x)
    if a.size != 1:
        raise InvalidArgument(f"{what} must hold one element, got shape {list(a.shape)}")
    return a.reshape(-1)[0]


def _own(outputs: Sequence[Any], inputs: Sequence[Any]) -> tuple:
    """Copies outputs that are one of the node's own inputs (those are read-only views)."""
    ids = {id(i) for i in inputs if i is not None}
    return tuple(o.copy() if isinstance(o, np.ndarray) and id(o) in ids else o for o in outputs)


@register_python_op("If")
def make_if(node: Node, graph: Graph) -> Callable[..., tuple]:
    """If: runs the then- or else-branch plan."""
    then_b, else_b = Body(node, graph, "then_branch"), Body(node, graph, "else_branch")
    for b in (then_b, else_b):
        if len(b.outputs) != len(node.outputs):
            raise InvalidGraph(
                f"{b.name} gives {len(b.outputs)} outputs, the If node has {len(node.outputs)}"
            )

    def run(cond: Any, *implicit: Any) -> tuple:
        branch = then_b if bool(_scalar(cond, f"node {node.name!r} (If): cond")) else else_b
        return tuple(branch([], implicit))

    return run


@register_python_op("Loop")
def make_loop(node: Node, graph: Graph) -> Callable[..., tuple]:
    """Loop: for/while over the body plan; scan outputs stacked on a new axis 0."""
    body = Body(node, graph, "body")
    n_explicit = len(node.inputs)
    n_carried = n_explicit - 2
    n_scan = len(node.outputs) - n_carried
    if (
        n_carried < 0
        or len(body.formal) != n_carried + 2
        or len(body.outputs) != n_carried + 1 + n_scan
    ):
        raise InvalidGraph(
            f"node {node.name!r} (Loop): body takes {len(body.formal)} inputs and gives "
            f"{len(body.outputs)} outputs, which does not fit {n_explicit} inputs and "
            f"{len(node.outputs)} outputs"
        )

    def run(*args: Any) -> tuple:
        trip, cond, *carried = args[:n_explicit]
        implicit = args[n_explicit:]
        max_trip = None if trip is None else int(_scalar(trip, f"node {node.name!r} (Loop): M"))
        # With no cond input the body's cond output is ignored (a plain for loop).
        use_cond = cond is not None
        keep_going = (
            True if cond is None else bool(_scalar(cond, f"node {node.name!r} (Loop): cond"))
        )
        scans: list[list[Any]] = [[] for _ in range(n_scan)]
        i = 0
        while keep_going and (max_trip is None or i < max_trip):
            outs = body([np.array(i, np.int64), np.array(keep_going), *carried], implicit)
            if use_cond:
                keep_going = bool(_scalar(outs[0], f"node {node.name!r} (Loop): body cond"))
            carried = outs[1 : 1 + n_carried]
            for j in range(n_scan):
                scans[j].append(outs[1 + n_carried + j])
            i += 1
        stacked = [
            np.stack(s) if s else body.empty_scan_output(1 + n_carried + j, 0)
            for j, s in enumerate(scans)
        ]
        return _own([*carried, *stacked], args)

    return run


def _stack(items: list[np.ndarray], axis: int, reverse: bool) -> np.ndarray:
    if reverse:
        items = items[::-1]
    return np.stack(items, axis=axis % (items[0].ndim + 1))


@register_python_op("Scan")
def make_scan(node: Node, graph: Graph) -> Callable[..., tuple]:
    """Scan: the body plan over slices of the scan inputs, threading state."""
    body = Body(node, graph, "body")
    n_scan_in = int(node.attrs["num_scan_inputs"])
    opset = graph.opsets.get("", node.opset)
    explicit = node.inputs[1:] if opset < 9 else node.inputs
    n_state = len(explicit) - n_scan_in
    n_scan_out = len(node.outputs) - n_state
    if n_state < 0 or len(body.formal) != len(explicit) or len(body.outputs) != len(node.outputs):
        raise InvalidGraph(
            f"node {node.name!r} (Scan): body takes {len(body.formal)} inputs and gives "
            f"{len(body.outputs)} outputs, for {len(explicit)} inputs and "
            f"{len(node.outputs)} outputs"
        )
    in_dirs = (
        node.attrs.get("scan_input_directions", node.attrs.get("directions")) or [0] * n_scan_in
    )
    in_axes = node.attrs.get("scan_input_axes") or [0] * n_scan_in
    out_dirs = node.attrs.get("scan_output_directions") or [0] * n_scan_out
    out_axes = node.attrs.get("scan_output_axes") or [0] * n_scan_out

    def scan(
        states: list[Any], xs: list[np.ndarray], length: int, implicit: Sequence[Any]
    ) -> tuple:
        ys: list[list[Any]] = [[] for _ in range(n_scan_out)]
        for t in range(length):
            slices = []
            for x, axis, rev in zip(xs, in_axes, in_dirs, strict=True):
                index = [slice(None)] * x.ndim
                index[axis % x.ndim] = length - 1 - t if rev else t
                slices.append(x[tuple(index)])
            outs = body([*states, *slices], implicit)
            states = outs[:n_state]
            for j in range(n_scan_out):
                ys[j].append(outs[n_state + j])
        stacked = [
            _stack(y, axis, bool(rev)) if y else body.empty_scan_output(n_state + j, axis)
            for j, (y, axis, rev) in enumerate(zip(ys, out_axes, out_dirs, strict=True))
        ]
        return states, stacked

    def seq_len(xs: list[np.ndarray], axes: Sequence[int]) -> int:
        lengths = {x.shape[a % x.ndim] for x, a in zip(xs, axes, strict=True)}
        if len(lengths) > 1:
            raise InvalidArgument(
                f"node {node.name!r} (Scan): scan inputs have different lengths "
                f"{[list(x.shape) for x in xs]} along axes {list(axes)}"
            )
        return lengths.pop() if lengths else 0

    def run(*args: Any) -> tuple:
        explicit_args = list(args[: len(node.inputs)])
        implicit = args[len(node.inputs) :]
        states = explicit_args[:n_state]
        xs = [np.asarray(x) for x in explicit_args[n_state:]]
        states, ys = scan(list(states), xs, seq_len(xs, in_axes), implicit)
        return _own([*states, *ys], args)

    if opset >= 9:
        return run
    return _batched_scan(node, body, n_state, n_scan_out, scan)


def _batched_scan(
    node: Node, body: Body, n_state: int, n_scan_out: int, scan: Callable[..., tuple]
) -> Callable[..., tuple]:
    """Opset-8 Scan: a batch axis first on every input, optional per-batch sequence lengths."""

    def run(lens: Any, *args: Any) -> tuple:
        n = len(node.inputs) - 1
        explicit_args, implicit = list(args[:n]), args[n:]
        states_in = [np.asarray(s) for s in explicit_args[:n_state]]
        xs = [np.asarray(x) for x in explicit_args[n_state:]]
        batch = (states_in + xs)[0].shape[0]
        max_len = xs[0].shape[1] if xs else 0
        lengths = (
            [max_len] * batch if lens is None else [int(v) for v in np.asarray(lens).reshape(-1)]
        )
        if len(lengths) != batch or any(not 0 <= v <= max_len for v in lengths):
            raise InvalidArgument(
                f"node {node.name!r} (Scan): sequence_lens {lengths} do not fit batch {batch} "
                f"and scan length {max_len}"
            )
        final: list[list[Any]] = [[] for _ in range(n_state)]
        scans: list[list[np.ndarray]] = [[] for _ in range(n_scan_out)]
        for b, length in enumerate(lengths):
            states, ys = scan(
                [s[b] for s in states_in], [x[b, :length] for x in xs], length, implicit
            )
            for i, s in enumerate(states):
                final[i].append(s)
            for j, y in enumerate(ys):
                # Steps past a batch entry's length are zero-filled.
                pad = np.zeros((max_len - y.shape[0], *y.shape[1:]), dtype=y.dtype)
                scans[j].append(np.concatenate([y, pad]))
        outs = [np.stack(f) for f in final] + [np.stack(s) for s in scans]
        return tuple(outs)

    return run


@register_python_op("SequenceMap")
def make_sequence_map(node: Node, graph: Graph) -> Callable[..., tuple]:
    """SequenceMap: the body plan once per element; sequence inputs are walked in step."""
    body = Body(node, graph, "body")
    n = len(node.inputs)

    def run(*args: Any) -> tuple:
        inputs, implicit = args[:n], args[n:]
        length = len(inputs[0])
        for x in inputs:
            if isinstance(x, list) and len(x) != length:
                raise InvalidArgument(
                    f"node {node.name!r} (SequenceMap): input sequences have lengths "
                    f"{[len(s) for s in inputs if isinstance(s, list)]}"
                )
        results: list[list[Any]] = [[] for _ in node.outputs]
        for k in range(length):
            outs = body([x[k] if isinstance(x, list) else x for x in inputs], implicit)
            for r, o in zip(results, outs, strict=True):
                r.append(o)
        return tuple(results)

    return run
