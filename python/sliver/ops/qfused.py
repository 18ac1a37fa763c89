"""sliver's 8-bit fused ops, in numpy: the reference the native kernels (csrc/ops/qdq_fused.cc)
are tested against, and the fallback where they decline.

``sliver:QLinearConv``: ONNX QLinearConv (same inputs and attributes) plus
``activation_min``/``activation_max`` (int codes, default: the output type's range): the
requantized result is clamped to them, which is how a Relu/Clip between the float Conv and
its Q survives the rewrite (qdq_to_integer); ``channels_last`` (default 0): 1 when X and Y
are NHWC (the layout pass qdq_nhwc); ``nchw_input`` (default 0): 1 when, with channels_last,
X is still NCHW (only Y is NHWC).

``com.microsoft:NhwcMaxPool``: MaxPool on an NHWC image (onnxruntime's contrib op).

``sliver:QLinearMatMul``: inputs ``a, a_scale, a_zero_point, b, b_scale, b_zero_point,
y_scale, y_zero_point[, bias]`` as ONNX QLinearMatMul plus an optional int32 ``bias`` [N]
added to the integer sums; attributes ``transB`` (B given as [N, K], 2-D B only) and
``activation_min``/``activation_max``. b may be per column (scale/zero point of N values).

Both requantize in onnx.reference's order (requant.h, ``onnx_reference``):
``m = float32(float32(a_scale * b_scale[n]) / y_scale)``, ``d = float64(acc) * m + zy``,
clamp to the output range, round half to even.

``sliver:QLinearLookup(x, table)``: ``table[byte(x)]``, table a constant of 256 codes of the
output type indexed by the input code's byte (a uint8 code is its byte; int8 code c has byte
c & 255). ``sliver:QLinearPairLookup(a, b, table)``: ``table[byte(a) * 256 + byte(b)]`` with
numpy broadcasting of a and b, table a constant of 65536 codes.

``sliver:QLinearBinary(a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp)`` with attribute
``op`` (Add, Sub, Mul, Div, Max, Min) and ``activation_min``/``activation_max``: the float path
``Q(DQ(a) op DQ(b))`` computed in float32 in exactly the unfused nodes' order
(``DQ(x) = (float(x) - zx) * sx``, ``Q(v) = rne(clamp(v / sy, qmin - zy, qmax - zy)) + zy``),
then the codes clamped; numpy broadcasting.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..ir import Graph, Node
from . import reference
from .contrib import _qlinear_conv, _qrange
from .registry import register_python_op

Op = Callable[..., tuple]


def _clamp_attrs(node: Node, dtype: np.dtype) -> tuple[int, int]:
    lo, hi = _qrange(dtype)
    return int(node.attrs.get("activation_min", lo)), int(node.attrs.get("activation_max", hi))


OWN_ATTRS = ("activation_min", "activation_max", "channels_last", "nchw_input")


@register_python_op("sliver:QLinearConv")
def qlinear_conv(node: Node, graph: Graph) -> Op:
    """QLinearConv (on NCHW views of channels-last tensors), then the activation clamp."""
    attrs = {k: v for k, v in node.attrs.items() if k not in OWN_ATTRS}
    conv = _qlinear_conv(
        Node("QLinearConv", "", node.name, node.inputs, node.outputs, attrs), graph
    )
    channels_last = bool(node.attrs.get("channels_last", 0))
    nhwc_x = channels_last and not node.attrs.get("nchw_input", 0)

    def run(x, *args: np.ndarray) -> tuple:  # noqa: ANN001
        if nhwc_x:
            x = np.ascontiguousarray(np.moveaxis(np.asarray(x), -1, 1))
        (y,) = conv(x, *args)
        lo, hi = _clamp_attrs(node, y.dtype)
        y = np.clip(y, lo, hi).astype(y.dtype)
        return (np.ascontiguousarray(np.moveaxis(y, 1, -1)) if channels_last else y,)

    return run


@register_python_op("com.microsoft:NhwcMaxPool")
def nhwc_max_pool(node: Node, graph: Graph) -> Op:
    """MaxPool (onnx reference) on the NCHW view of a channels-last image."""
    pool = reference.make(
        Node("MaxPool", "", node.name, node.inputs, node.outputs[:1], dict(node.attrs), 12), graph
    )

    def run(x):  # noqa: ANN001, ANN202
        (y,) = pool(np.ascontiguousarray(np.moveaxis(np.asarray(x), -1, 1)))[:1]
        return (np.ascontiguousarray(np.moveaxis(y, 1, -1)),)

    return run


def requantize(
    acc: np.ndarray, multiplier: np.ndarray, zp: int, lo: int, hi: int, dtype: np.dtype
) -> np.ndarray:
    """int32 sums -> codes: float64(acc) * float64(multiplier) + zp, clamp, round half even."""
    d = acc.astype(np.float64) * multiplier.astype(np.float64)
    d = d + np.float64(zp)
    return np.rint(np.clip(d, lo, hi)).astype(dtype)


@register_python_op("sliver:QLinearMatMul")
def qlinear_matmul(node: Node, graph: Graph) -> Op:
    """(a - za) @ (b - zb) + bias in int32, requantized and clamped."""
    trans_b = bool(node.attrs.get("transB", 0))

    def run(a, sa, za, b, sb, zb, sy, zy, bias=None):  # noqa: ANN001, ANN202
        a, b = np.asarray(a), np.asarray(b)
        if trans_b:
            b = b.T
        zb_v = np.asarray(zb).astype(np.int64).reshape(-1)
        b64 = b.astype(np.int64) - (zb_v if zb_v.size > 1 else zb_v.reshape(()))
        acc = np.matmul(a.astype(np.int64) - np.int64(np.asarray(za).reshape(-1)[0]), b64)
        if bias is not None:
            acc = acc + np.asarray(bias, np.int64).reshape(-1)
        acc = acc.astype(np.int32)  # wraps like the int32 arithmetic it stands for
        sb_v = np.asarray(sb, np.float32).reshape(-1)
        ab = (np.float32(np.asarray(sa).reshape(-1)[0]) * sb_v).astype(np.float32)
        mult = (ab / np.float32(np.asarray(sy).reshape(-1)[0])).astype(np.float32)
        mult = mult if mult.size > 1 else mult.reshape(())
        dtype = np.asarray(zy).dtype
        lo, hi = _clamp_attrs(node, dtype)
        return (requantize(acc, mult, int(np.asarray(zy).reshape(-1)[0]), lo, hi, dtype),)

    return run


@register_python_op("sliver:QLinearLookup")
def qlinear_lookup(node: Node, graph: Graph) -> Op:
    """table[byte(x)]."""

    def run(x, table):  # noqa: ANN001, ANN202
        x, table = np.asarray(x), np.asarray(table).reshape(-1)
        if table.size != 256:
            raise ValueError(f"QLinearLookup: table has {table.size} entries, expected 256")
        return (table[x.view(np.uint8)],)

    return run


@register_python_op("sliver:QLinearPairLookup")
def qlinear_pair_lookup(node: Node, graph: Graph) -> Op:
    """table[byte(a) * 256 + byte(b)], broadcasting a against b."""

    def run(a, b, table):  # noqa: ANN001, ANN202
        table = np.asarray(table).reshape(-1)
        if table.size != 65536:
            raise ValueError(f"QLinearPairLookup: table has {table.size} entries, expected 65536")
        ia = np.asarray(a).view(np.uint8).astype(np.intp)
        ib = np.asarray(b).view(np.uint8).astype(np.intp)
        return (table[ia * 256 + ib],)

    return run


BINARY_OPS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "Add": np.add,
    "Sub": np.subtract,
    "Mul": np.multiply,
    "Div": np.divide,
    "Max": lambda a, b: np.where(a > b, a, b),
    "Min": lambda a, b: np.where(a < b, a, b),
}


def qlinear_binary_values(
    op: str,
    a: np.ndarray,
    sa: np.ndarray,
    za: np.ndarray,
    b: np.ndarray,
    sb: np.ndarray,
    zb: np.ndarray,
    sy: np.ndarray,
    zy: np.ndarray,
    lo: int | None = None,
    hi: int | None = None,
) -> np.ndarray:
    """sliver:QLinearBinary on arrays (module docstring); lo/hi default to the type range."""
    f32 = np.float32
    zy_arr = np.asarray(zy)
    qmin, qmax = _qrange(zy_arr.dtype)
    z = int(zy_arr.reshape(-1)[0])

    def dq(x, s, zp):  # noqa: ANN001, ANN202
        s, zp = f32(np.asarray(s).reshape(-1)[0]), f32(np.asarray(zp).reshape(-1)[0])
        return ((np.asarray(x).astype(f32) - zp) * s).astype(f32)

    with np.errstate(all="ignore"):
        v = BINARY_OPS[op](dq(a, sa, za), dq(b, sb, zb)).astype(f32)
        q = (v / f32(np.asarray(sy).reshape(-1)[0])).astype(f32)
    q = np.where(q > f32(qmin - z), q, f32(qmin - z))  # NaN -> low end
    q = np.minimum(q, f32(qmax - z))
    c = np.rint(q).astype(np.int64) + z
    c = np.clip(c, qmin if lo is None else lo, qmax if hi is None else hi)
    return c.astype(zy_arr.dtype)


@register_python_op("sliver:QLinearBinary")
def qlinear_binary(node: Node, graph: Graph) -> Op:
    """Q(DQ(a) op DQ(b)) in the float path's float32 order, then the activation clamp."""
    op = node.attrs.get("op", "")
    op = op.decode() if isinstance(op, bytes) else op
    if op not in BINARY_OPS:
        raise ValueError(f"sliver:QLinearBinary: unknown op {op!r}")

    def run(a, sa, za, b, sb, zb, sy, zy):  # noqa: ANN001, ANN202
        lo, hi = _clamp_attrs(node, np.asarray(zy).dtype)
        return (qlinear_binary_values(op, a, sa, za, b, sb, zb, sy, zy, lo, hi),)

    return run
