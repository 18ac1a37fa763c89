"""Python ops for ONNX ops that onnx's reference implementation lacks or gets wrong."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..errors import InvalidArgument
from ..ir import Graph, Node
from .registry import register_python_op


def scatter_elements(
    data: np.ndarray, indices: np.ndarray, updates: np.ndarray, axis: int
) -> np.ndarray:
    """out = data, then out[.., indices[i, j, ..], ..] = updates[i, j, ..] along ``axis``."""
    axis = axis % max(data.ndim, 1)
    if indices.shape != updates.shape or indices.ndim != data.ndim:
        raise InvalidArgument(
            f"indices {list(indices.shape)} and updates {list(updates.shape)} must have the same "
            f"shape, of the rank of data {list(data.shape)}"
        )
    idx = indices.astype(np.int64)
    n = data.shape[axis]
    if idx.size and (idx.min() < -n or idx.max() >= n):
        raise InvalidArgument(f"index out of range [-{n}, {n - 1}] on axis {axis}")
    idx = np.where(idx < 0, idx + n, idx)
    # Every other axis indexes itself: position (i, j, ..) of indices writes to row i, column j...
    where = list(np.indices(idx.shape, sparse=True))
    where[axis] = idx
    out = data.copy()
    out[tuple(where)] = updates
    return out


@register_python_op("Scatter")
def make_scatter(node: Node, graph: Graph) -> Callable[..., tuple]:
    """Scatter (opsets 9-10, removed in 11): the same as ScatterElements without reduction."""
    axis = int(node.attrs.get("axis", 0))

    def run(data: np.ndarray, indices: np.ndarray, updates: np.ndarray) -> tuple:
        try:
            return (scatter_elements(data, indices, updates, axis),)
        except InvalidArgument as e:
            raise InvalidArgument(f"node {node.name!r} (Scatter): {e}") from None

    return run


@register_python_op("Optional")
def make_optional(node: Node, graph: Graph) -> Callable[..., tuple]:
    """Optional: the value itself, or None when empty.

    onnx's reference wraps the value in a list, which OptionalHasElement and the
    test data then read as a sequence (and an empty optional as non-empty).
    """

    def run(x: object = None) -> tuple:
        return (x,)

    return run


def _reference(node: Node, graph: Graph) -> Callable[..., tuple]:
    from . import reference

    return reference.make(node, graph)


def _coerced_2d(fn: Callable[[np.ndarray], np.ndarray], axis: int) -> Callable[..., tuple]:
    """Opsets < 13: the input is read as 2-D [prod(dims[:axis]), prod(dims[axis:])]."""

    def run(x: np.ndarray) -> tuple:
        a = axis % x.ndim if x.ndim else 0
        rows = int(np.prod(x.shape[:a], dtype=np.int64))
        flat = x.reshape(rows, -1) if x.size else x.reshape(rows, 0)
        return (fn(flat).reshape(x.shape),)

    return run


def _softmax(x: np.ndarray) -> np.ndarray:
    if not x.size:
        return x.copy()
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).astype(x.dtype)


def _log_softmax(x: np.ndarray) -> np.ndarray:
    if not x.size:
        return x.copy()
    t = x - x.max(axis=-1, keepdims=True)
    return (t - np.log(np.exp(t).sum(axis=-1, keepdims=True))).astype(x.dtype)


def _hardmax(x: np.ndarray) -> np.ndarray:
    out = np.zeros_like(x)
    if x.size:
        np.put_along_axis(out, x.argmax(axis=-1)[:, None], 1, axis=-1)
    return out


def _softmax_family(fn: Callable[[np.ndarray], np.ndarray]) -> Callable:
    def factory(node: Node, graph: Graph) -> Callable[..., tuple]:
        """Opset < 13: axis defaults to 1 and the input is coerced to 2-D."""
        if graph.opsets.get(node.domain, node.opset) >= 13:
            return _reference(node, graph)
        return _coerced_2d(fn, int(node.attrs.get("axis", 1)))

    return factory


# onnx's reference implements only opset 13's form of these (ignores the 2-D coercion).
register_python_op("Softmax")(_softmax_family(_softmax))
register_python_op("LogSoftmax")(_softmax_family(_log_softmax))
register_python_op("Hardmax")(_softmax_family(_hardmax))


@register_python_op("BatchNormalization")
def make_batch_norm(node: Node, graph: Graph) -> Callable[..., tuple]:
    """Opsets 7-13 with one output: inference with the given statistics.

    onnx's reference recomputes batch statistics whenever ``momentum`` is set, which the
    schema default always makes it; onnxruntime (and the spec) use mean/var as given.
    """
    n_out = len([o for o in node.outputs if o])
    if graph.opsets.get(node.domain, node.opset) >= 14 or n_out != 1:
        return _reference(node, graph)
    eps = float(node.attrs.get("epsilon", 1e-5))

    def run(
        x: np.ndarray, scale: np.ndarray, bias: np.ndarray, mean: np.ndarray, var: np.ndarray
    ) -> tuple:
        shape = (-1,) + (1,) * max(x.ndim - 2, 0)
        inv = 1 / np.sqrt(var.reshape(shape).astype(np.float64) + eps)
        y = (x - mean.reshape(shape)) * (scale.reshape(shape) * inv) + bias.reshape(shape)
        return (y.astype(x.dtype),)

    return run


def lrn(x: np.ndarray, alpha: float, beta: float, bias: float, size: int) -> np.ndarray:
    """Local response normalization across channels (axis 1) of an N x C x ... tensor."""
    work = x.astype(np.promote_types(x.dtype, np.float32))
    lo, hi = (size - 1) // 2, size // 2  # window [c - lo, c + hi], as in the spec
    pad = [(0, 0), (lo, hi)] + [(0, 0)] * (x.ndim - 2)
    sq = np.pad(work * work, pad)
    channels = x.shape[1]
    square_sum = sum(sq[:, k : k + channels] for k in range(size))
    return (work / (bias + (alpha / size) * square_sum) ** beta).astype(x.dtype)


@register_python_op("LRN")
def make_lrn(node: Node, graph: Graph) -> Callable[..., tuple]:
    """LRN (onnx's reference sums over the wrong axis when batch != channels)."""
    alpha = float(node.attrs.get("alpha", 1e-4))
    beta = float(node.attrs.get("beta", 0.75))
    bias = float(node.attrs.get("bias", 1.0))
    size = int(node.attrs["size"])

    def run(x: np.ndarray) -> tuple:
        if x.ndim < 3:
            raise InvalidArgument(f"node {node.name!r} (LRN): input rank {x.ndim} < 3")
        return (lrn(x, alpha, beta, bias, size),)

    return run


def _reference_as(
    node: Node, graph: Graph, op_type: str, opset: int, attrs: dict, n_inputs: int
) -> Callable[..., tuple]:
    """onnx's reference op for a rewritten node: ``op_type`` at ``opset`` with ``attrs``."""
    from ..ir import Graph as IRGraph

    inputs = [f"{node.name}/in{i}" for i in range(n_inputs)]
    twin = Node(op_type, "", node.name, inputs, list(node.outputs), attrs, opset)
    scope = IRGraph(graph.name, [], [], [], {}, {}, {**graph.opsets, "": opset})
    return _reference(twin, scope)


def _nearest_v10(x: np.ndarray, scales: np.ndarray) -> np.ndarray:
    # Output i reads input i / scale, rounded down when enlarging and up when shrinking
    # (onnxruntime's rule for these opsets; there was no nearest_mode attribute yet).
    out = x
    for axis, scale in enumerate(scales):
        n = int(np.floor(x.shape[axis] * np.float32(scale)))
        pos = np.arange(n, dtype=np.float32) / np.float32(scale)
        idx = np.ceil(pos) if scale < 1 else np.floor(pos)
        out = np.take(out, np.clip(idx.astype(np.int64), 0, x.shape[axis] - 1), axis=axis)
    return out


def _resize_v10(node: Node, graph: Graph) -> Callable[..., tuple]:
    """Upsample (7, 9) and Resize-10: scales only, asymmetric coordinates.

    onnx's reference lacks Upsample's linear mode and reads Resize-10's scales as roi;
    linear runs as Resize-13 with asymmetric coordinates, nearest as the rule above.
    """
    mode = str(node.attrs.get("mode", "nearest"))
    if mode not in ("nearest", "linear", "bilinear"):
        raise InvalidArgument(f"node {node.name!r} ({node.op_type}): unknown mode {mode!r}")
    attrs = {"mode": "linear", "coordinate_transformation_mode": "asymmetric"}
    linear = _reference_as(node, graph, "Resize", 13, attrs, 3)
    fixed = node.attrs.get("scales")  # Upsample-7 keeps scales in an attribute

    def run(x: np.ndarray, scales: np.ndarray | None = None) -> tuple:
        s = np.asarray(fixed if scales is None else scales, dtype=np.float32)
        if s.shape != (x.ndim,) or not (s > 0).all():
            raise InvalidArgument(
                f"node {node.name!r} ({node.op_type}): scales {s.tolist()} do not fit a "
                f"rank-{x.ndim} input"
            )
        if mode == "nearest":
            return (_nearest_v10(x, s),)
        return linear(x, None, s)

    return run


@register_python_op("Upsample")
def make_upsample(node: Node, graph: Graph) -> Callable[..., tuple]:
    """Upsample (opsets 7-9; removed in 10)."""
    return _resize_v10(node, graph)


@register_python_op("Resize")
def make_resize(node: Node, graph: Graph) -> Callable[..., tuple]:
    """Resize-10 rewritten as Resize-13; later opsets run on the reference as they are."""
    if graph.opsets.get(node.domain, node.opset) >= 11:
        return _reference(node, graph)
    return _resize_v10(node, graph)


@register_python_op("RoiAlign")
def make_roi_align(node: Node, graph: Graph) -> Callable[..., tuple]:
    """RoiAlign before opset 16 had no half-pixel offset ("output_half_pixel")."""
    if graph.opsets.get(node.domain, node.opset) >= 16:
        return _reference(node, graph)
    attrs = {**node.attrs, "coordinate_transformation_mode": "output_half_pixel"}
    return _reference_as(node, graph, "RoiAlign", 16, attrs, 3)


@register_python_op("GlobalMaxPool")
def make_global_max_pool(node: Node, graph: Graph) -> Callable[..., tuple]:
    """GlobalMaxPool over every axis after N, C (onnx's reference assumes rank 4)."""

    def run(x: np.ndarray) -> tuple:
        if x.ndim < 3:
            raise InvalidArgument(f"node {node.name!r} (GlobalMaxPool): input rank {x.ndim} < 3")
        return (x.max(axis=tuple(range(2, x.ndim)), keepdims=True),)

    return run


def _pool_geometry(
    spatial: tuple[int, ...],
    kernel: list[int],
    strides: list[int],
    dilations: list[int],
    pads: list[int],
    auto_pad: str,
    ceil_mode: bool,
) -> tuple[list[int], list[int]]:
    """(output sizes, leading pads) of a pooling window, as the ONNX pooling ops define them."""
    nd = len(kernel)
    extent = [(k - 1) * d + 1 for k, d in zip(kernel, dilations, strict=True)]
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        out = [-(-n // s) for n, s in zip(spatial, strides, strict=True)]
        total = [
            max(0, (o - 1) * s + e - n)
            for o, s, e, n in zip(out, strides, extent, spatial, strict=True)
        ]
        head = [t // 2 if auto_pad == "SAME_UPPER" else t - t // 2 for t in total]
        return out, head
    if auto_pad == "VALID":
        return [-(-(n - e + 1) // s) for n, e, s in zip(spatial, extent, strides, strict=True)], [
            0
        ] * nd
    out, head = [], list(pads[:nd])
    for i in range(nd):
        span = spatial[i] + pads[i] + pads[i + nd] - extent[i]
        o = (-(-span // strides[i]) if ceil_mode else span // strides[i]) + 1
        if ceil_mode and (o - 1) * strides[i] >= spatial[i] + pads[i]:
            o -= 1  # the last window would start inside the trailing padding
        out.append(o)
    return out, head


def max_pool_with_indices(
    x: np.ndarray,
    kernel: list[int],
    strides: list[int],
    dilations: list[int],
    pads: list[int],
    auto_pad: str = "NOTSET",
    ceil_mode: bool = False,
    storage_order: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """MaxPool's (values, flat int64 indices into x); the first maximum of a window wins."""
    nd = len(kernel)
    spatial = x.shape[2:]
    out, head = _pool_geometry(spatial, kernel, strides, dilations, pads, auto_pad, ceil_mode)
    gather, valid, flat = [], np.ones((1,) * (2 * nd), bool), 0
    # Column-major (storage_order 1) numbers the first spatial axis fastest.
    order = range(nd) if storage_order else range(nd - 1, -1, -1)
    step, steps = 1, [0] * nd
    for i in order:
        steps[i], step = step, step * spatial[i]
    for i in range(nd):
        coords = (np.arange(out[i]) * strides[i] - head[i])[:, None] + np.arange(
            kernel[i]
        ) * dilations[i]
        shape = [1] * (2 * nd)
        shape[2 * i], shape[2 * i + 1] = out[i], kernel[i]
        inside = ((coords >= 0) & (coords < spatial[i])).reshape(shape)
        coords = np.clip(coords, 0, spatial[i] - 1).reshape(shape)
        gather.append(coords)
        valid = valid & inside
        flat = flat + coords * steps[i]
    vals = x[(slice(None), slice(None), *gather)]
    lowest = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
    vals = np.where(valid, vals, np.array(lowest).astype(x.dtype))
    # (N, C, o1, k1, o2, k2, ..) -> (N, C, o1, o2, .., k1 * k2 * ..)
    perm = [0, 1] + [2 + 2 * i for i in range(nd)] + [3 + 2 * i for i in range(nd)]
    vals = vals.transpose(perm).reshape(*x.shape[:2], *out, -1)
    flat = np.broadcast_to(flat, valid.shape).transpose([p - 2 for p in perm[2:]]).reshape(*out, -1)
    best = vals.argmax(axis=-1)
    values = np.take_along_axis(vals, best[..., None], axis=-1)[..., 0]
    where = np.take_along_axis(np.broadcast_to(flat, vals.shape), best[..., None], axis=-1)[..., 0]
    plane = int(np.prod(spatial, dtype=np.int64))
    offset = np.arange(x.shape[0] * x.shape[1], dtype=np.int64).reshape(x.shape[:2] + (1,) * nd)
    return values, (where + offset * plane).astype(np.int64)


@register_python_op("MaxPool")
def make_max_pool(node: Node, graph: Graph) -> Callable[..., tuple]:
    """MaxPool with its Indices output (onnx's reference gets those wrong); else the reference."""
    if len([o for o in node.outputs if o]) < 2 or len(node.outputs) < 2:
        return _reference(node, graph)
    kernel = list(node.attrs["kernel_shape"])
    nd = len(kernel)
    a = node.attrs
    params = dict(
        kernel=kernel,
        strides=list(a.get("strides") or [1] * nd),
        dilations=list(a.get("dilations") or [1] * nd),
        pads=list(a.get("pads") or [0] * (2 * nd)),
        auto_pad=str(a.get("auto_pad", "NOTSET")),
        ceil_mode=bool(a.get("ceil_mode", 0)),
        storage_order=int(a.get("storage_order", 0)),
    )

    def run(x: np.ndarray) -> tuple:
        if x.ndim != nd + 2:
            raise InvalidArgument(
                f"node {node.name!r} (MaxPool): input shape {list(x.shape)} does not fit "
                f"kernel_shape {kernel}"
            )
        return max_pool_with_indices(x, **params)

    return run
