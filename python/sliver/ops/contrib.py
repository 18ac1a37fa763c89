"""numpy implementations of the com.microsoft operators onnxruntime's tools emit.

``onnxruntime.quantization`` writes QOperator models with contrib ops (QLinearAdd,
QLinearConcat, QGemm, ...) and its transformer optimizer writes fused float ops
(FusedConv, Gelu, SkipLayerNormalization, ...). onnx's reference has none of them,
so these are the fallback for every node no native kernel accepts.

Exactness. The contrib ops have no spec beyond onnxruntime's CPU kernels, so those
are the oracle, including their float operation order: results agree bit for bit
with onnxruntime on x86-64 with AVX2 (the order differs per ISA in onnxruntime
itself; ours is the AVX2 one). Where onnxruntime fuses a multiply-add, ``_fma``
computes the single-rounding float32 result exactly (float64 product, then a
round-to-odd sum so the final float32 rounding is correct).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import NotImplementedOp
from ..ir import Graph, Node
from .registry import register_python_op

F32 = np.float32
Op = Callable[..., tuple]

_RANGES = {
    np.dtype(np.uint8): (0, 255),
    np.dtype(np.int8): (-128, 127),
    np.dtype(np.uint16): (0, 65535),
    np.dtype(np.int16): (-32768, 32767),
    np.dtype(np.int32): (-(2**31), 2**31 - 1),
}


# ---------------------------------------------------------------------------------------------
# Scalar parameters and the float32 arithmetic onnxruntime's kernels do.


def _scale(t: np.ndarray | None) -> np.float32:
    if t is None:
        raise ValueError("a required scale input is missing")
    return F32(np.asarray(t, dtype=np.float32).reshape(-1)[0])


def _zp(t: np.ndarray | None) -> int:
    return 0 if t is None else int(np.asarray(t).reshape(-1)[0])


def _qrange(dtype: np.dtype) -> tuple[int, int]:
    try:
        return _RANGES[np.dtype(dtype)]
    except KeyError:
        raise ValueError(f"unsupported quantized type {np.dtype(dtype)}") from None


def _fma(a: Any, b: Any, c: Any) -> np.ndarray:
    """float32 fused multiply-add, rounded once, elementwise with broadcasting."""
    p = np.asarray(a, np.float32).astype(np.float64) * np.asarray(b, np.float32).astype(np.float64)
    c64 = np.asarray(c, np.float32).astype(np.float64)
    s = p + c64  # p is exact (48-bit significand); s may round
    # TwoSum: s + e == p + c exactly.
    bp = s - c64
    e = (p - bp) + (c64 - (s - bp))
    # Round to odd: if inexact and s's last bit is even, step to the odd neighbour towards e.
    bits = s.view(np.int64)
    fix = (e != 0) & ((bits & 1) == 0)
    if np.any(fix):
        s = np.where(fix, np.nextafter(s, np.where(e > 0, np.inf, -np.inf)), s)
    return s.astype(np.float32)


def _round_to_q(v: np.ndarray, zp: int, dtype: np.dtype) -> np.ndarray:
    """MLAS requantize tail: clamp to [qmin - zp, qmax - zp] (NaN -> low), round even, + zp."""
    lo, hi = _qrange(dtype)
    v = np.asarray(v, np.float32)
    v = np.where(v > F32(lo - zp), v, F32(lo - zp))  # NaN -> lo, like MAXPS(NaN, lo)
    v = np.minimum(v, F32(hi - zp))
    return (np.rint(v).astype(np.int64) + zp).astype(dtype)


def _cvt_saturate(v: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """How MLAS's QLinearAdd/QLinearMul finish: cvtps2dq (round half to even; NaN and
    |v| >= 2^31 give INT_MIN), then saturating packs. There is no float clamp first, so a huge
    positive v ends at qmin."""
    lo, hi = _qrange(dtype)
    v = np.asarray(v, np.float32)
    ok = (v >= F32(-(2.0**31))) & (v < F32(2.0**31))
    r = np.where(ok, np.rint(np.where(ok, v, F32(0))), F32(lo))
    return np.clip(r, lo, hi).astype(dtype)


def quantize_mlas(x: np.ndarray, scale: np.float32, zp: int, dtype: np.dtype) -> np.ndarray:
    """MlasQuantizeLinear: saturate(round_half_even(x / scale) + zp), float32 division."""
    with np.errstate(all="ignore"):
        return _round_to_q(np.asarray(x, np.float32) / F32(scale), zp, dtype)


def _dequant_table(dtype: np.dtype, scale: np.float32, zp: int) -> np.ndarray:
    """scale * (q - zp) for every 8-bit code q, indexed by the code's byte value."""
    codes = np.arange(256, dtype=np.uint8).view(dtype).astype(np.int32)
    return (F32(scale) * (codes - zp).astype(np.float32)).astype(np.float32)


def _apply_table(x: np.ndarray, table: np.ndarray) -> np.ndarray:
    return table[np.asarray(x).view(np.uint8)]


def _lookup_op(
    x_dtype: np.dtype,
    xs: np.float32,
    xz: int,
    ys: np.float32,
    yz: int,
    fn: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    """onnxruntime's QLinearLookupBase table: quantize(fn(dequantize(code))) for all codes."""
    deq = _dequant_table(x_dtype, xs, xz)
    return quantize_mlas(fn(deq), ys, yz, x_dtype)


def _attr(node: Node, name: str, default: Any) -> Any:
    return node.attrs.get(name, default)


# ---------------------------------------------------------------------------------------------
# Elementwise: QLinearAdd, QLinearMul, QLinearLeakyRelu, QLinearSigmoid, QLinearWhere.


def _scalar_operand_is_a(a: np.ndarray, b: np.ndarray) -> str:
    """Which of onnxruntime's broadcast paths runs: 'a' (A constant along the innermost run),
    'b' (B constant there) or 'vv' (both advance)."""
    if a.size == 1:
        return "a"
    if b.size == 1:
        return "b"
    out = np.broadcast_shapes(a.shape, b.shape)
    ra, rb = (1,) * (len(out) - a.ndim) + a.shape, (1,) * (len(out) - b.ndim) + b.shape
    for o, da, db in zip(reversed(out), reversed(ra), reversed(rb), strict=True):
        if o == 1:
            continue
        if da == 1:
            return "a"
        if db == 1:
            return "b"
        return "vv"
    return "a"


def qlinear_add_values(
    a: np.ndarray,
    sa: np.float32,
    za: int,
    b: np.ndarray,
    sb: np.float32,
    zb: int,
    sc: np.float32,
    zc: int,
) -> np.ndarray:
    """QLinearAdd as onnxruntime's AVX2 kernel computes it.

    v = zc - (ra*za + rb*zb) + ra*a + rb*b with ra = sa/sc, rb = sb/sc, in float32 with the
    kernel's fused multiply-adds: fixed = zc - fma(ra, za, rb*zb); then fma(a, ra, fma(b, rb,
    fixed)), except when A is the operand held constant along a run: MLAS has only a scalar-B
    kernel, so onnxruntime swaps the operands, and the A term is folded first into a fixed part
    with the roles swapped: fma(b, rb, fma(a, ra, zc - fma(rb, zb, ra*za))).
    """
    ra, rb = F32(F32(sa) / F32(sc)), F32(F32(sb) / F32(sc))
    af, bf = a.astype(np.float32), b.astype(np.float32)
    if _scalar_operand_is_a(a, b) == "a":
        fixed = F32(F32(zc) - _fma(rb, F32(zb), F32(ra * F32(za))))
        v = _fma(bf, rb, _fma(af, ra, fixed))
    else:
        fixed = F32(F32(zc) - _fma(ra, F32(za), F32(rb * F32(zb))))
        v = _fma(af, ra, _fma(bf, rb, fixed))
    return _cvt_saturate(v, a.dtype)  # zc is already in `fixed`


def qlinear_mul_values(
    a: np.ndarray,
    sa: np.float32,
    za: int,
    b: np.ndarray,
    sb: np.float32,
    zb: int,
    sc: np.float32,
    zc: int,
) -> np.ndarray:
    """QLinearMul as MLAS computes it: round((a - za)(b - zb) * (sa*sb/sc) + zc), float32,
    multiply then add (no fusion), converted and saturated like qlinear_add_values."""
    ratio = F32(F32(F32(sa) * F32(sb)) / F32(sc))
    prod = (a.astype(np.int32) - za) * (b.astype(np.int32) - zb)
    v = (prod.astype(np.float32) * ratio).astype(np.float32) + F32(zc)
    return _cvt_saturate(v, a.dtype)


def _binary_factory(values: Callable[..., np.ndarray]) -> Callable[[Node, Graph], Op]:
    def factory(node: Node, graph: Graph) -> Op:
        def run(a, sa, za, b, sb, zb, sc, zc=None):  # noqa: ANN001, ANN202
            a, b = np.asarray(a), np.asarray(b)
            if a.dtype != b.dtype:
                raise ValueError(f"{node.op_type}: A is {a.dtype} but B is {b.dtype}")
            return (values(a, _scale(sa), _zp(za), b, _scale(sb), _zp(zb), _scale(sc), _zp(zc)),)

        return run

    return factory


register_python_op("com.microsoft:QLinearAdd")(_binary_factory(qlinear_add_values))
register_python_op("com.microsoft:QLinearMul")(_binary_factory(qlinear_mul_values))


# MLAS's logistic: Eigen's rational approximation, evaluated with FMA on AVX2.
_LOGISTIC_ALPHA = [
    F32(c)
    for c in (
        4.37031012579801e-11,
        1.15627324459942e-07,
        6.08574864600143e-05,
        8.51377133304701e-03,
        2.48287947061529e-01,
    )
]
_LOGISTIC_BETA = [
    F32(c)
    for c in (
        6.10247389755681e-13,
        5.76102136993427e-09,
        6.29106785017040e-06,
        1.70198817374094e-03,
        1.16817656904453e-01,
        9.93151921023180e-01,
    )
]


def logistic_mlas(x: np.ndarray) -> np.ndarray:
    """MlasComputeLogistic (the FMA3 kernel): p(x)/q(x) + 0.5 clamped to [0, 1]."""
    x = np.minimum(np.maximum(np.asarray(x, np.float32), F32(-18.0)), F32(18.0))
    x2 = (x * x).astype(np.float32)
    p = _fma(x2, _LOGISTIC_ALPHA[0], _LOGISTIC_ALPHA[1])
    for c in _LOGISTIC_ALPHA[2:]:
        p = _fma(p, x2, c)
    p = (p * x).astype(np.float32)
    q = _fma(x2, _LOGISTIC_BETA[0], _LOGISTIC_BETA[1])
    for c in _LOGISTIC_BETA[2:]:
        q = _fma(q, x2, c)
    y = (p / q).astype(np.float32) + F32(0.5)
    return np.minimum(np.maximum(y, F32(0.0)), F32(1.0)).astype(np.float32)


def _unary_lookup_factory(fn_of_node: Callable[[Node], Callable[[np.ndarray], np.ndarray]]):
    def factory(node: Node, graph: Graph) -> Op:
        fn = fn_of_node(node)

        def run(x, xs, xz=None, ys=None, yz=None):  # noqa: ANN001, ANN202
            x = np.asarray(x)
            table = _lookup_op(x.dtype, _scale(xs), _zp(xz), _scale(ys), _zp(yz), fn)
            return (_apply_table(x, table),)

        return run

    return factory


def _leaky(node: Node) -> Callable[[np.ndarray], np.ndarray]:
    alpha = F32(_attr(node, "alpha", 0.01))
    return lambda v: np.where(v >= 0, v, (alpha * v).astype(np.float32)).astype(np.float32)


register_python_op("com.microsoft:QLinearLeakyRelu")(_unary_lookup_factory(_leaky))
register_python_op("com.microsoft:QLinearSigmoid")(
    _unary_lookup_factory(lambda node: logistic_mlas)
)


def _requant_table(dtype: np.dtype, xs: np.float32, xz: int, ys: np.float32, yz: int) -> np.ndarray:
    return _lookup_op(dtype, xs, xz, ys, yz, lambda v: v)


@register_python_op("com.microsoft:QLinearWhere")
def _qlinear_where(node: Node, graph: Graph) -> Op:
    def run(cond, x, xs, xz, y, ys, yz, zs, zz):  # noqa: ANN001, ANN202
        x, y = np.asarray(x), np.asarray(y)
        zsv, zzv = _scale(zs), _zp(zz)
        xq = _apply_table(x, _requant_table(x.dtype, _scale(xs), _zp(xz), zsv, zzv))
        yq = _apply_table(y, _requant_table(y.dtype, _scale(ys), _zp(yz), zsv, zzv))
        return (np.where(np.asarray(cond, bool), xq, yq),)

    return run


# ---------------------------------------------------------------------------------------------
# Pooling, concat, softmax.


def _global_avg_pool_values(
    x: np.ndarray, xs: np.float32, xz: int, ys: np.float32, yz: int, channels_last: bool
) -> np.ndarray:
    """MLAS QLinearGlobalAveragePool: exact int32 sum, then requantize with
    scale = xs / (ys * image_size): round(float(sum - xz * n) * scale) + yz, saturated."""
    spatial = tuple(range(1, x.ndim - 1)) if channels_last else tuple(range(2, x.ndim))
    n = int(np.prod([x.shape[d] for d in spatial]))
    acc = x.astype(np.int64).sum(axis=spatial, keepdims=True) - xz * n
    scale = F32(F32(xs) / F32(F32(ys) * F32(n)))
    return _round_to_q(
        (acc.astype(np.int32).astype(np.float32) * scale).astype(np.float32), yz, x.dtype
    )


@register_python_op("com.microsoft:QLinearGlobalAveragePool")
def _qlinear_global_avg_pool(node: Node, graph: Graph) -> Op:
    channels_last = bool(_attr(node, "channels_last", 0))

    def run(x, xs, xz, ys, yz):  # noqa: ANN001, ANN202
        x = np.asarray(x)
        if x.ndim < 3:
            raise ValueError(f"QLinearGlobalAveragePool: input rank {x.ndim} < 3")
        return (
            _global_avg_pool_values(x, _scale(xs), _zp(xz), _scale(ys), _zp(yz), channels_last),
        )

    return run


def _pool_geometry(
    spatial: tuple[int, ...],
    kernel: list[int],
    strides: list[int],
    pads: list[int],
    auto_pad: str,
    ceil_mode: bool,
) -> tuple[list[int], list[int], bool]:
    """Output spatial dims, begin pads and whether any padding applies (onnxruntime's
    PoolAttributes::SetOutputSize)."""
    nd = len(spatial)
    out, begins, padded = [], [], False
    for i in range(nd):
        size, k, s = spatial[i], kernel[i], strides[i]
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            o = (size + s - 1) // s
            total = max(0, (o - 1) * s + k - size)
            b = total // 2 if auto_pad == "SAME_UPPER" else total - total // 2
            out.append(o)
            begins.append(b)
            padded = padded or total != 0
            continue
        if auto_pad == "VALID":
            pb, pe = 0, 0
        else:
            pb, pe = pads[i], pads[i + nd]
        padded = padded or pb != 0 or pe != 0
        span = size + pb + pe - k
        if ceil_mode:
            o = -(-span // s) + 1
            if (o - 1) * s >= size + pb:  # the last window must start inside the input or left pad
                o -= 1
        else:
            o = span // s + 1
        out.append(o)
        begins.append(pb)
    return out, begins, padded


@register_python_op("com.microsoft:QLinearAveragePool")
def _qlinear_avg_pool(node: Node, graph: Graph) -> Op:
    kernel = list(_attr(node, "kernel_shape", []))
    nd = len(kernel)
    strides = list(_attr(node, "strides", [1] * nd)) or [1] * nd
    pads = list(_attr(node, "pads", [0] * 2 * nd)) or [0] * 2 * nd
    auto_pad = _attr(node, "auto_pad", "NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    ceil_mode = bool(_attr(node, "ceil_mode", 0))
    include_pad = bool(_attr(node, "count_include_pad", 0))
    channels_last = bool(_attr(node, "channels_last", 0))

    def run(x, xs, xz=None, ys=None, yz=None):  # noqa: ANN001, ANN202
        x = np.asarray(x)
        if channels_last:
            x = np.moveaxis(x, -1, 1)
        if x.ndim != nd + 2 or not 1 <= nd <= 3:
            raise ValueError(f"QLinearAveragePool: input shape {x.shape} vs kernel {kernel}")
        xsv, xzv, ysv, yzv = _scale(xs), _zp(xz), _scale(ys), _zp(yz)
        spatial = x.shape[2:]
        out, begins, padded = _pool_geometry(spatial, kernel, strides, pads, auto_pad, ceil_mode)
        if list(spatial) == kernel and not padded:  # onnxruntime's global-pool shortcut
            y = _global_avg_pool_values(x, xsv, xzv, ysv, yzv, False)
            return (np.moveaxis(y, 1, -1) if channels_last else y,)
        xf = _apply_table(x, _dequant_table(x.dtype, xsv, xzv))
        acc = np.zeros(x.shape[:2] + tuple(out), np.float32)
        # Per dim: window start/end clamped to the input, as onnxruntime does.
        starts = [np.arange(out[i]) * strides[i] - begins[i] for i in range(nd)]
        ends = [np.minimum(starts[i] + kernel[i], spatial[i]) for i in range(nd)]
        cstarts = [np.maximum(starts[i], 0) for i in range(nd)]
        lens = [ends[i] - cstarts[i] for i in range(nd)]
        if include_pad:
            count = np.full(tuple(out), float(np.prod(kernel)), np.float32)
        else:
            count = np.ones(tuple(out), np.int64)
            for i in range(nd):
                count = count * lens[i].reshape([-1 if j == i else 1 for j in range(nd)])
            count = count.astype(np.float32)
        # Sum in the kernel's order (outer dim first), skipping out-of-window taps.
        for tap in np.ndindex(*kernel):
            idx, valid = [], np.ones(tuple(out), bool)
            for i in range(nd):
                pos = cstarts[i] + tap[i]
                ok = pos < ends[i]
                shape = [-1 if j == i else 1 for j in range(nd)]
                valid = valid & ok.reshape(shape)
                idx.append(np.minimum(pos, spatial[i] - 1).reshape(shape))
            vals = xf[(slice(None), slice(None), *idx)]
            acc = np.where(valid, (acc + vals).astype(np.float32), acc)
        y = (acc / count).astype(np.float32)
        with np.errstate(all="ignore"):
            v = ((y / ysv).astype(np.float32) + F32(yzv)).astype(np.float32)
        lo, hi = _qrange(x.dtype)
        q = np.clip(np.rint(np.nan_to_num(v, nan=0.0)), lo, hi).astype(x.dtype)
        return (np.moveaxis(q, 1, -1) if channels_last else q,)

    return run


@register_python_op("com.microsoft:QLinearConcat")
def _qlinear_concat(node: Node, graph: Graph) -> Op:
    axis = int(_attr(node, "axis", 0))

    def run(ys, yz, *triples):  # noqa: ANN001, ANN202
        if len(triples) % 3:
            raise ValueError("QLinearConcat: inputs must be (tensor, scale, zero_point) triples")
        ysv, yzv = _scale(ys), _zp(yz)
        parts = []
        for i in range(0, len(triples), 3):
            x = np.asarray(triples[i])
            xs, xz = _scale(triples[i + 1]), _zp(triples[i + 2])
            if xs == ysv and xz == yzv:
                parts.append(x)
            else:
                parts.append(_apply_table(x, _requant_table(x.dtype, xs, xz, ysv, yzv)))
        return (np.concatenate(parts, axis=axis),)

    return run


def _libm_logf() -> Callable[[float], float] | None:
    """The C library's ``logf`` (what onnxruntime's softmax table calls), or None."""
    try:
        name = ctypes.util.find_library("m") or ("msvcrt" if os.name == "nt" else None)
        fn = ctypes.CDLL(name).logf if name else None
    except (OSError, AttributeError):
        return None
    if fn is not None:
        fn.restype, fn.argtypes = ctypes.c_float, [ctypes.c_float]
    return fn


_LOGF = _libm_logf()


def _logf(x: np.float32) -> float:
    """float32 natural log of a float32, from the C library when it loads (else the float64 log
    rounded to float32, which differs from glibc's logf in about one input in 10^4)."""
    return float(_LOGF(float(x))) if _LOGF is not None else float(F32(math.log(float(x))))


def softmax_exp_table(x_scale: float, d: int, signed: bool) -> np.ndarray:
    """onnxruntime's QLinearSoftmax table: 256 float32 exponentials indexed by byte code.

    Entry i (code i, or i - 128 for int8) is exp((i - 255 + shift) * x_scale) computed in float64,
    where shift * x_scale = max(0, logf(FLT_MAX / d) - 5) lifts the largest entry as high as a
    float sum of d of them allows (with e^5 to spare): a row's maximum indexes entry 255.
    """
    xs = float(F32(x_scale))
    head = _logf(F32(np.finfo(F32).max) / F32(d)) - 5.0
    shift = (head if head > 0.0 else 0.0) / xs  # max(0, NaN) is 0, as std::max(0.0, v) gives
    table = np.zeros(256, F32)
    for i in range(256):
        table[(i - 128) & 0xFF if signed else i] = F32(math.exp((i - 255.0 + shift) * xs))
    return table


def softmax_y_inverse(y_scale: float) -> float:
    """The integer onnxruntime scales probabilities by: floor(1 / y_scale) in float32 (the
    float64 quotient when that overflows)."""
    with np.errstate(all="ignore"):
        v = float(np.floor(F32(1.0) / F32(y_scale)))
    return v if math.isfinite(v) else math.floor(1.0 / float(F32(y_scale)))


@register_python_op("com.microsoft:QLinearSoftmax")
def _qlinear_softmax(node: Node, graph: Graph) -> Op:
    """onnxruntime's QLinearSoftmax (1.32, x86-64), bit for bit.

    With a row r of x along the reduced axis (opset 13: that axis; older: every axis from it on)
    and e = table[code distance to max(r)]: y = clamp(round_half_even(float64(e) * y_inv /
    float64(sum32(e))) + y_zero_point), sum32 adding left to right in float32. x_zero_point does
    not matter (softmax ignores a shift). csrc/ops/qlinear_softmax.cc is the native twin.
    """
    opset = int(_attr(node, "opset", 13))
    axis_attr = int(_attr(node, "axis", -1))  # the schema's default, for every opset

    def run(x, xs, xz=None, ys=None, yz=None):  # noqa: ANN001, ANN202
        x = np.asarray(x)
        if x.dtype not in (np.uint8, np.int8):
            raise ValueError(f"QLinearSoftmax: x must be uint8 or int8, got {x.dtype}")
        if x.ndim == 0:
            raise ValueError("QLinearSoftmax: x must have rank >= 1")
        signed = x.dtype == np.int8
        axis = axis_attr
        if not -x.ndim <= axis < x.ndim:
            raise ValueError(f"QLinearSoftmax: axis {axis} is out of range for rank {x.ndim}")
        axis %= x.ndim
        if opset >= 13:
            xt = np.moveaxis(x, axis, -1)
            d = xt.shape[-1]
        else:
            xt = x
            d = int(np.prod(x.shape[axis:]))
        if x.size == 0:
            return (np.empty_like(x),)
        rows = xt.reshape(-1, d)
        table = softmax_exp_table(float(_scale(xs)), d, signed)
        top = rows.max(axis=1, keepdims=True).astype(np.int32)
        if signed:
            idx = ((127 - top) + rows.astype(np.int32)) & 0xFF
        else:
            idx = rows.astype(np.int32) + (255 - top)
        e = table[idx]
        vsum = np.cumsum(e, axis=1, dtype=F32)[:, -1:]  # left to right, float32
        lo, hi = _qrange(x.dtype)
        z = _zp(yz)
        with np.errstate(all="ignore"):
            q = e.astype(np.float64) * softmax_y_inverse(_scale(ys)) / vsum.astype(np.float64)
        # Clamping to the integer bounds before rounding equals rounding then saturating.
        q = np.where(q > lo - z, q, float(lo - z))  # NaN -> low end
        q = np.minimum(q, float(hi - z))
        out = (np.rint(q) + z).astype(x.dtype).reshape(xt.shape)
        return (np.moveaxis(out, -1, axis) if opset >= 13 else out,)

    return run


# ---------------------------------------------------------------------------------------------
# Integer GEMMs with float or requantized output.


def _int_matmul(a: np.ndarray, za: Any, b: np.ndarray, zb: Any) -> np.ndarray:
    """Exact int32 (a - za) @ (b - zb); zb may be per column (shape [N])."""
    a64 = a.astype(np.int64) - np.asarray(za, np.int64)
    b64 = b.astype(np.int64) - np.asarray(zb, np.int64)
    return np.matmul(a64, b64).astype(np.int32)


def _per_column(t: np.ndarray | None, default: Any, dtype: Any) -> np.ndarray:
    if t is None:
        return np.asarray(default, dtype)
    v = np.asarray(t).astype(dtype).reshape(-1)
    return v.reshape(()) if v.size == 1 else v


@register_python_op("com.microsoft:QGemm")
def _qgemm(node: Node, graph: Graph) -> Op:
    alpha = F32(_attr(node, "alpha", 1.0))
    trans_a, trans_b = bool(_attr(node, "transA", 0)), bool(_attr(node, "transB", 0))

    def run(a, sa, za, b, sb, zb, c=None, ys=None, yz=None):  # noqa: ANN001, ANN202
        a, b = np.asarray(a), np.asarray(b)
        a = a.T if trans_a else a
        b = b.T if trans_b else b
        acc = _int_matmul(a, _zp(za), b, _per_column(zb, 0, np.int64))
        if c is not None:
            acc = (acc.astype(np.int64) + np.asarray(c, np.int64)).astype(np.int32)
        scales = (alpha * _scale(sa)).astype(np.float32) * _per_column(sb, 1, np.float32)
        scales = np.asarray(scales, np.float32)
        if ys is not None:
            scales = (scales / _scale(ys)).astype(np.float32)
        if yz is None:
            return ((acc.astype(np.float32) * scales).astype(np.float32),)
        yzv = np.asarray(yz)
        return (
            _round_to_q((acc.astype(np.float32) * scales).astype(np.float32), _zp(yzv), yzv.dtype),
        )

    return run


def _int_to_float(acc: np.ndarray, multiplier: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    y = (acc.astype(np.float32) * multiplier).astype(np.float32)
    return y if bias is None else (y + np.asarray(bias, np.float32)).astype(np.float32)


def dynamic_quant_params(x: np.ndarray) -> tuple[np.float32, int]:
    """onnxruntime's per-tensor u8 parameters for dynamic quantization (DynamicQuantizeLinear)."""
    lo = min(F32(np.min(x)) if x.size else F32(0), F32(0))
    hi = max(F32(np.max(x)) if x.size else F32(0), F32(0))
    scale = F32(1.0) if hi == lo else F32(F32(hi - lo) / F32(255))
    zp = F32(F32(0) - F32(lo / scale))
    return scale, int(np.rint(min(max(zp, F32(0)), F32(255))))


@register_python_op("com.microsoft:DynamicQuantizeMatMul")
def _dynamic_quantize_matmul(node: Node, graph: Graph) -> Op:
    def run(a, b, sb, zb=None, bias=None):  # noqa: ANN001, ANN202
        a, b = np.asarray(a, np.float32), np.asarray(b)
        sa, za = dynamic_quant_params(a)
        aq = quantize_mlas(a, sa, za, np.dtype(np.uint8))
        acc = _int_matmul(aq, za, b, _per_column(zb, 0, np.int64))
        mult = (sa * _per_column(sb, 1, np.float32)).astype(np.float32)
        return (_int_to_float(acc, mult, bias),)

    return run


@register_python_op("com.microsoft:MatMulIntegerToFloat")
def _matmul_integer_to_float(node: Node, graph: Graph) -> Op:
    def run(a, b, sa, sb, za=None, zb=None, bias=None):  # noqa: ANN001, ANN202
        a, b = np.asarray(a), np.asarray(b)
        acc = _int_matmul(a, _zp(za), b, _per_column(zb, 0, np.int64))
        mult = (_scale(sa) * _per_column(sb, 1, np.float32)).astype(np.float32)
        return (_int_to_float(acc, mult, bias),)

    return run


# ---------------------------------------------------------------------------------------------
# com.microsoft QuantizeLinear / DequantizeLinear (also 16-bit types).


def _axis_shape(t: np.ndarray, ndim: int, axis: int) -> np.ndarray:
    t = np.asarray(t)
    if t.size == 1 or ndim == 0:
        return t.reshape(())
    shape = [1] * ndim
    shape[axis % ndim] = t.size
    return t.reshape(shape)


@register_python_op("com.microsoft:QuantizeLinear")
def _ms_quantize(node: Node, graph: Graph) -> Op:
    axis = int(_attr(node, "axis", 1))

    def run(x, ys, yz=None):  # noqa: ANN001, ANN202
        x = np.asarray(x, np.float32)
        dtype = np.asarray(yz).dtype if yz is not None else np.dtype(np.uint8)
        s = _axis_shape(np.asarray(ys, np.float32), x.ndim, axis)
        z = _axis_shape(np.asarray(yz if yz is not None else 0).astype(np.int64), x.ndim, axis)
        lo, hi = _qrange(dtype)
        with np.errstate(all="ignore"):
            v = (x / s).astype(np.float32)
        v = np.where(v > (lo - z), v, lo - z)
        v = np.minimum(v, hi - z)
        return ((np.rint(v).astype(np.int64) + z).astype(dtype),)

    return run


@register_python_op("com.microsoft:DequantizeLinear")
def _ms_dequantize(node: Node, graph: Graph) -> Op:
    axis = int(_attr(node, "axis", 1))

    def run(x, xs, xz=None):  # noqa: ANN001, ANN202
        x = np.asarray(x)
        s = _axis_shape(np.asarray(xs, np.float32), x.ndim, axis)
        z = _axis_shape(np.asarray(xz if xz is not None else 0).astype(np.int64), x.ndim, axis)
        return (((x.astype(np.int64) - z).astype(np.float32) * s).astype(np.float32),)

    return run


# ---------------------------------------------------------------------------------------------
# ONNX ops whose onnx.reference implementation is wrong for some inputs.


@register_python_op("QLinearConv")
def _qlinear_conv(node: Node, graph: Graph) -> Op:
    """onnx.reference's QLinearConv with per-channel scales for any rank (the reference
    reshapes per-channel w_scale for 2-D convs only); same float order otherwise."""
    from onnx.reference.ops.op_conv import _conv_implementation

    attrs = {
        k: _attr(node, k, None)
        for k in ("auto_pad", "dilations", "group", "kernel_shape", "pads", "strides")
    }
    attrs["auto_pad"] = attrs["auto_pad"] or "NOTSET"
    attrs["group"] = attrs["group"] or 1

    def run(x, xs, xz, w, ws, wz, ys, yz=None, b=None):  # noqa: ANN001, ANN202
        x, w = np.asarray(x), np.asarray(w)
        per_channel = (1, w.shape[0]) + (1,) * (w.ndim - 2)
        xi = x.astype(np.int32) - (np.asarray(xz).astype(np.int32) if xz is not None else 0)
        wi = w.astype(np.int32)
        if wz is not None:
            wz = np.asarray(wz).astype(np.int32)
            wi = wi - (wz.reshape((-1,) + (1,) * (w.ndim - 1)) if wz.size > 1 else wz.reshape(()))
        res = _conv_implementation(
            xi,
            wi,
            b,
            attrs["auto_pad"],
            attrs["dilations"],
            attrs["group"],
            attrs["kernel_shape"],
            attrs["pads"],
            attrs["strides"],
        ).astype(np.int32)
        ws = np.asarray(ws, np.float32)
        ws = ws.reshape(per_channel) if ws.size > 1 else ws.reshape(())
        r = res * (
            np.asarray(xs, np.float32).reshape(()) * ws / np.asarray(ys, np.float32).reshape(())
        )
        dtype = np.asarray(yz).dtype if yz is not None else x.dtype
        if yz is not None:
            r += np.asarray(yz).reshape(())
        lo, hi = _qrange(dtype)
        return (np.round(np.clip(r, lo, hi)).astype(dtype),)

    return run


# ---------------------------------------------------------------------------------------------
# Fused float ops from onnxruntime's transformer optimizer.


def _erf(x: np.ndarray) -> np.ndarray:
    import math

    return np.vectorize(math.erf, otypes=[np.float64])(x)


def _gelu(x: np.ndarray) -> np.ndarray:
    x64 = x.astype(np.float64)
    return (0.5 * x64 * (1.0 + _erf(x64 / np.sqrt(2.0)))).astype(x.dtype)


def _fast_gelu(x: np.ndarray) -> np.ndarray:
    x64 = x.astype(np.float64)
    return (0.5 * x64 * (1.0 + np.tanh(0.7978845608028654 * (x64 + 0.044715 * x64**3)))).astype(
        x.dtype
    )


@register_python_op("com.microsoft:Gelu")
def _ms_gelu(node: Node, graph: Graph) -> Op:
    return lambda x: (_gelu(np.asarray(x)),)


@register_python_op("com.microsoft:BiasGelu")
def _ms_bias_gelu(node: Node, graph: Graph) -> Op:
    return lambda x, bias: (_gelu((np.asarray(x) + np.asarray(bias)).astype(np.asarray(x).dtype)),)


@register_python_op("com.microsoft:FastGelu")
def _ms_fast_gelu(node: Node, graph: Graph) -> Op:
    def run(x, bias=None):  # noqa: ANN001, ANN202
        x = np.asarray(x)
        if bias is not None:
            x = (x + np.asarray(bias)).astype(x.dtype)
        return (_fast_gelu(x),)

    return run


def _layer_norm(x: np.ndarray, gamma: Any, beta: Any, eps: float, axis: int) -> tuple:
    axes = tuple(range(axis % x.ndim, x.ndim))
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=axes, keepdims=True)
    var = ((x64 - mean) ** 2).mean(axis=axes, keepdims=True)
    inv = 1.0 / np.sqrt(var + eps)
    y = (x64 - mean) * inv * np.asarray(gamma, np.float64)
    if beta is not None:
        y = y + np.asarray(beta, np.float64)
    return y.astype(x.dtype), mean.astype(np.float32), inv.astype(np.float32)


@register_python_op("com.microsoft:LayerNormalization")
def _ms_layer_norm(node: Node, graph: Graph) -> Op:
    eps = float(_attr(node, "epsilon", 1e-5))
    axis = int(_attr(node, "axis", -1))
    return lambda x, gamma, beta=None: _layer_norm(np.asarray(x), gamma, beta, eps, axis)


@register_python_op("com.microsoft:FusedMatMul")
def _ms_fused_matmul(node: Node, graph: Graph) -> Op:
    """alpha * op(A) @ op(B); passes/lower_contrib rewrites the common forms into ONNX ops."""
    alpha = float(_attr(node, "alpha", 1.0))
    trans = [int(_attr(node, k, 0)) for k in ("transA", "transB")]
    if any(int(_attr(node, k, 0)) for k in ("transBatchA", "transBatchB")):
        raise NotImplementedOp(
            f"node {node.name!r}: op 'FusedMatMul' (domain 'com.microsoft') with transBatchA or "
            "transBatchB is not supported"
        )

    def run(a, b):  # noqa: ANN001, ANN202
        a, b = np.asarray(a), np.asarray(b)
        if trans[0] and a.ndim >= 2:
            a = np.swapaxes(a, -1, -2)
        if trans[1] and b.ndim >= 2:
            b = np.swapaxes(b, -1, -2)
        return ((np.matmul(a, b) * np.float32(alpha)).astype(a.dtype),)

    return run


@register_python_op("com.microsoft:QuickGelu")
def _ms_quick_gelu(node: Node, graph: Graph) -> Op:
    """x * sigmoid(alpha * x) (CLIP-style models after onnxruntime's fusions)."""
    alpha = float(_attr(node, "alpha", 1.702))

    def run(x):  # noqa: ANN001, ANN202
        x = np.asarray(x)
        x64 = x.astype(np.float64)
        return ((x64 / (1.0 + np.exp(-alpha * x64))).astype(x.dtype),)

    return run


def _rms_norm(x: np.ndarray, gamma: Any, eps: float, axis: int) -> tuple:
    """RMS normalization over the axes from ``axis`` on: (y, inverse root mean square)."""
    axes = tuple(range(axis % x.ndim, x.ndim))
    x64 = x.astype(np.float64)
    inv = 1.0 / np.sqrt((x64 * x64).mean(axis=axes, keepdims=True) + eps)
    y = x64 * inv * np.asarray(gamma, np.float64)
    return y.astype(x.dtype), inv.astype(np.float32)


@register_python_op("SimplifiedLayerNormalization")  # onnxruntime's, in the ONNX domain
def _simplified_layer_norm(node: Node, graph: Graph) -> Op:
    eps = float(_attr(node, "epsilon", 1e-5))
    axis = int(_attr(node, "axis", -1))
    return lambda x, gamma: _rms_norm(np.asarray(x), gamma, eps, axis)


@register_python_op("com.microsoft:SkipSimplifiedLayerNormalization")
def _ms_skip_simplified_layer_norm(node: Node, graph: Graph) -> Op:
    """RMS normalization of x + skip (+ bias); outputs (y, mean, inv_std_var, sum), of which
    onnxruntime never computes the mean: a model reading it is refused."""
    if len(node.outputs) > 1 and node.outputs[1]:
        raise NotImplementedOp(
            f"node {node.name!r}: op 'SkipSimplifiedLayerNormalization' (domain "
            "'com.microsoft') with its mean output read is not supported (it has no mean)"
        )
    eps = float(_attr(node, "epsilon", 1e-12))

    def run(x, skip, gamma, bias=None):  # noqa: ANN001, ANN202
        x = np.asarray(x)
        s = x.astype(np.float64) + np.asarray(skip, np.float64)
        if bias is not None:
            s = s + np.asarray(bias, np.float64)
        s = s.astype(x.dtype)
        y, inv = _rms_norm(s, gamma, eps, -1)
        return (y, np.zeros(0, np.float32), inv, s)

    return run


@register_python_op("com.microsoft:SkipLayerNormalization")
def _ms_skip_layer_norm(node: Node, graph: Graph) -> Op:
    eps = float(_attr(node, "epsilon", 1e-12))

    def run(x, skip, gamma, beta=None, bias=None):  # noqa: ANN001, ANN202
        x = np.asarray(x)
        s = x.astype(np.float64) + np.asarray(skip, np.float64)
        if bias is not None:
            s = s + np.asarray(bias, np.float64)
        s = s.astype(x.dtype)
        y, mean, inv = _layer_norm(s, gamma, beta, eps, -1)
        return (y, mean, inv, s)

    return run


_ACTIVATIONS: dict[str, Callable[[np.ndarray, list[float]], np.ndarray]] = {
    "": lambda x, p: x,
    "Relu": lambda x, p: np.maximum(x, 0).astype(x.dtype),
    "Tanh": lambda x, p: np.tanh(x).astype(x.dtype),
    "Sigmoid": lambda x, p: (1.0 / (1.0 + np.exp(-x.astype(np.float64)))).astype(x.dtype),
    "LeakyRelu": lambda x, p: np.where(x >= 0, x, x * (p[0] if p else 0.01)).astype(x.dtype),
    "Clip": lambda x, p: np.clip(x, p[0], p[1]).astype(x.dtype),
    "HardSigmoid": lambda x, p: np.clip(
        x * (p[0] if p else 0.2) + (p[1] if len(p) > 1 else 0.5), 0, 1
    ).astype(x.dtype),
}


def _activation(node: Node) -> Callable[[np.ndarray], np.ndarray]:
    name = _attr(node, "activation", "")
    name = name.decode() if isinstance(name, bytes) else name
    params = list(_attr(node, "activation_params", []))
    if name not in _ACTIVATIONS:
        raise ValueError(f"{node.op_type}: unsupported activation {name!r}")
    fn = _ACTIVATIONS[name]
    return lambda x: fn(x, params)


def _reference_op(node: Node, graph: Graph, op_type: str, drop: tuple[str, ...]) -> Op:
    """The onnx reference op ``op_type`` for this node minus the fused attributes."""
    import copy

    from . import reference

    inner = copy.copy(node)
    inner.op_type, inner.domain = op_type, ""
    inner.attrs = {k: v for k, v in node.attrs.items() if k not in drop}
    return reference.make(inner, graph)


_FUSED = ("activation", "activation_params")


@register_python_op("com.microsoft:FusedConv")
def _fused_conv(node: Node, graph: Graph) -> Op:
    conv = _reference_op(node, graph, "Conv", _FUSED)
    act = _activation(node)

    def run(x, w, b=None, z=None):  # noqa: ANN001, ANN202
        y = conv(x, w, b) if b is not None else conv(x, w)
        y = np.asarray(y[0])
        if z is not None:
            y = (y + np.asarray(z)).astype(y.dtype)
        return (act(y),)

    return run


@register_python_op("com.microsoft:FusedGemm")
def _fused_gemm(node: Node, graph: Graph) -> Op:
    gemm = _reference_op(
        node, graph, "Gemm", _FUSED + ("activation_alpha", "activation_beta", "activation_gamma")
    )
    name = _attr(node, "activation", "")
    name = name.decode() if isinstance(name, bytes) else name
    params = [float(_attr(node, "activation_alpha", 0.01 if name == "LeakyRelu" else 0.2))]
    params.append(float(_attr(node, "activation_beta", 0.5)))
    fn = _ACTIVATIONS.get(name)
    if fn is None:
        raise ValueError(f"FusedGemm: unsupported activation {name!r}")

    def run(*args):  # noqa: ANN002, ANN202
        y = np.asarray(gemm(*args)[0])
        return (fn(y, params),)

    return run
