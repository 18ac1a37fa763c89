"""Quantized operators: bit-exact against onnx.reference (ONNX ops) and onnxruntime (contrib ops).

Every op is run twice where it has both implementations: through its native kernel and through
the Python fallback (native kernels switched off), and both must match the oracle bit for bit.
Shapes, scales, zero points and values are drawn at random per seed, with the extreme codes
(0, 255, -128, 127) and extreme zero points forced in. The last section quantizes small float
models with onnxruntime.quantization (QDQ, QOperator, dynamic) and compares whole models.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import sliver
from helpers import run_scalar_isa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto as TP
from onnx import helper as oh
from onnx.reference import ReferenceEvaluator
from sliver.ops import registry

ort = pytest.importorskip("onnxruntime")

MS = "com.microsoft"
SEEDS = range(12)
NP_OF = {TP.UINT8: np.uint8, TP.INT8: np.int8, TP.INT32: np.int32, TP.FLOAT: np.float32}
TP_OF = {np.dtype(v): k for k, v in NP_OF.items()} | {np.dtype(bool): TP.BOOL}


# ---------------------------------------------------------------------------------------------
# Helpers.


def qrange(dt: type) -> tuple[int, int]:
    info = np.iinfo(dt)
    return int(info.min), int(info.max)


def rand_q(rng: np.random.Generator, dt: type, shape: tuple[int, ...]) -> np.ndarray:
    """Random codes with the extremes of the type planted in."""
    lo, hi = qrange(dt)
    x = rng.integers(lo, hi + 1, size=shape).astype(dt)
    flat = x.reshape(-1)
    if flat.size >= 4:
        flat[rng.choice(flat.size, 4, replace=False)] = np.array(
            [lo, hi, 0, lo if dt == np.uint8 else -1], dt
        )
    return x


def rand_zp(rng: np.random.Generator, dt: type) -> np.ndarray:
    lo, hi = qrange(dt)
    return np.array(rng.choice([lo, hi, 0, int(rng.integers(lo, hi + 1))]), dt)


def rand_scale(rng: np.random.Generator, lo: float = 1e-3, hi: float = 0.1) -> np.ndarray:
    return np.array(np.exp(rng.uniform(np.log(lo), np.log(hi))), np.float32)


def make_model(
    nodes: list,
    inputs: dict[str, np.ndarray],
    outputs: dict[str, type],
    inits: dict[str, np.ndarray] | None = None,
    opset: int = 21,
) -> onnx.ModelProto:
    """A model whose graph inputs are `inputs` (fed), initializers `inits` (constants) and
    outputs `outputs` (name -> numpy dtype)."""
    ins = [oh.make_tensor_value_info(k, TP_OF[v.dtype], v.shape) for k, v in inputs.items()]
    outs = [oh.make_tensor_value_info(o, TP_OF[np.dtype(t)], None) for o, t in outputs.items()]
    init = [onnx.numpy_helper.from_array(np.asarray(v), k) for k, v in (inits or {}).items()]
    g = oh.make_graph(nodes, "g", ins, outs, init)
    opsets = [oh.make_opsetid("", opset), oh.make_opsetid(MS, 1)]
    return oh.make_model(g, opset_imports=opsets, ir_version=10)


def run_ort(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return s.run(None, feeds)


def run_ref(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    return ReferenceEvaluator(model).run(None, feeds)


def run_sliver(
    model: onnx.ModelProto,
    feeds: dict[str, np.ndarray],
    native: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[list[np.ndarray], list[str]]:
    """Runs on sliver; native=False switches every native kernel off (Python fallbacks only)."""
    with monkeypatch.context() as m:
        if not native:
            m.setattr(registry, "native_kernel", lambda node, graph: None)
        s = sliver.InferenceSession(model.SerializeToString())
        impls = [impl for _, _, impl in s.profile_steps()]
        return s.run(None, feeds), impls


def assert_same(got: np.ndarray, want: np.ndarray, what: str) -> None:
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != {want.dtype}"
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    if not np.array_equal(got, want, equal_nan=want.dtype.kind == "f"):
        bad = np.argwhere(got != want)
        i = tuple(bad[0])
        raise AssertionError(
            f"{what}: {len(bad)} of {got.size} differ, first at {i}: {got[i]} vs {want[i]}"
        )


def check_both(
    model: onnx.ModelProto,
    feeds: dict[str, np.ndarray],
    want: list[np.ndarray],
    monkeypatch: pytest.MonkeyPatch,
    expect_native: bool | None = None,
) -> None:
    """Native and Python paths both equal `want` exactly."""
    for native in (True, False):
        got, impls = run_sliver(model, feeds, native, monkeypatch)
        if native and expect_native is not None:
            is_native = all(i not in ("python", "reference") for i in impls)
            assert is_native == expect_native, f"implementations {impls}"
        for k, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_same(g, w, f"output {k} ({'native' if native else 'python'})")


def random_broadcast_pair(rng: np.random.Generator) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Two shapes that broadcast, covering scalar, inner-run and outer broadcasting."""
    rank = int(rng.integers(1, 5))
    full = tuple(int(d) for d in rng.integers(1, 7, size=rank))
    kind = rng.integers(0, 5)
    if kind == 0:
        return full, full
    if kind == 1:
        return full, (1,)
    if kind == 2:
        return (1,), full
    a = tuple(d if rng.random() < 0.6 else 1 for d in full)
    b = tuple(d if rng.random() < 0.6 else 1 for d in full)
    b = b[int(rng.integers(0, rank)) :] or (1,)
    return (a, b) if kind == 3 else (b, a)


# ---------------------------------------------------------------------------------------------
# QuantizeLinear / DequantizeLinear / DynamicQuantizeLinear vs onnx.reference.


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("dt", [np.uint8, np.int8])
def test_quantize_linear(seed: int, dt: type, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(seed)
    shape = tuple(int(d) for d in rng.integers(1, 6, size=int(rng.integers(1, 5))))
    per_axis = seed % 2 == 1 and len(shape) >= 2
    axis = int(rng.integers(-len(shape), len(shape))) if per_axis else 1
    n = shape[axis] if per_axis else 1
    scale = np.exp(rng.uniform(-6, 1, size=n)).astype(np.float32).reshape((n,) if per_axis else ())
    zp = np.array([rand_zp(rng, dt) for _ in range(n)], dt).reshape(scale.shape)
    x = (rng.standard_normal(shape) * 3).astype(np.float32)
    x.reshape(-1)[0] = 1e6  # saturation (the reference casts to int32 first: stay below 2^31)
    if x.size > 2:
        x.reshape(-1)[1] = -1e6
        x.reshape(-1)[2] = np.float32(scale.reshape(-1)[0]) * np.float32(2.5)  # a tie
    node = oh.make_node("QuantizeLinear", ["x", "s", "z"], ["y"], axis=axis)
    model = make_model([node], {"x": x}, {"y": dt}, {"s": scale, "z": zp})
    check_both(model, {"x": x}, run_ref(model, {"x": x}), monkeypatch, expect_native=True)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("dt", [np.uint8, np.int8])
def test_quantize_linear_long_rows(seed: int, dt: type, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows of 16 or more run on the vector kernel (int8 as uint8 with zp + 128): every .5 tie,
    saturation both ways, extreme zero points, per-tensor and per-channel, odd row tails."""
    rng = np.random.default_rng(seed)
    c, inner = int(rng.integers(1, 5)), int(rng.integers(16, 90))
    per_axis = seed % 2 == 1
    n = c if per_axis else 1
    scale = np.exp(rng.uniform(-6, 1, size=n)).astype(np.float32).reshape((n,) if per_axis else ())
    lo, hi = qrange(dt)
    zp = rng.choice([lo, hi, 0, int(rng.integers(lo, hi + 1))], size=n).astype(dt)
    zp = zp.reshape(scale.shape)
    s = np.broadcast_to(scale.reshape(-1, 1) if per_axis else scale, (c, inner))
    k = rng.integers(-400, 400, size=(c, inner)).astype(np.float32)
    x = ((k + rng.choice([0.5, 0.25, 0.0], size=(c, inner))) * s).astype(np.float32)[None]
    node = oh.make_node("QuantizeLinear", ["x", "s", "z"], ["y"], axis=1)
    model = make_model([node], {"x": x}, {"y": dt}, {"s": scale, "z": zp})
    check_both(model, {"x": x}, run_ref(model, {"x": x}), monkeypatch, expect_native=True)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("dt", [np.uint8, np.int8, np.int32])
def test_dequantize_linear(seed: int, dt: type, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(seed)
    shape = tuple(int(d) for d in rng.integers(1, 6, size=int(rng.integers(1, 5))))
    per_axis = seed % 2 == 1 and len(shape) >= 2 and dt != np.int32
    axis = int(rng.integers(-len(shape), len(shape))) if per_axis else 1
    n = shape[axis] if per_axis else 1
    scale = np.exp(rng.uniform(-6, 1, size=n)).astype(np.float32).reshape((n,) if per_axis else ())
    if dt == np.int32:
        x = rng.integers(-(2**20), 2**20, size=shape).astype(dt)
        zp = np.zeros(scale.shape, dt)
    else:
        x = rand_q(rng, dt, shape)
        zp = np.array([rand_zp(rng, dt) for _ in range(n)], dt).reshape(scale.shape)
    node = oh.make_node("DequantizeLinear", ["x", "s", "z"], ["y"], axis=axis)
    model = make_model([node], {"x": x}, {"y": np.float32}, {"s": scale, "z": zp})
    check_both(model, {"x": x}, run_ref(model, {"x": x}), monkeypatch, expect_native=True)


@pytest.mark.parametrize("seed", SEEDS)
def test_dynamic_quantize_linear(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(seed)
    shape = tuple(int(d) for d in rng.integers(1, 40, size=int(rng.integers(1, 4))))
    x = (rng.standard_normal(shape) * rng.uniform(0.01, 10) + rng.uniform(-3, 3)).astype(np.float32)
    if seed == 0:
        x[...] = 0  # max == min
    if seed == 1:
        x = np.abs(x)  # all positive: min clamps to 0
    node = oh.make_node("DynamicQuantizeLinear", ["x"], ["y", "ys", "yz"])
    model = make_model([node], {"x": x}, {"y": np.uint8, "ys": np.float32, "yz": np.uint8})
    want = run_ref(model, {"x": x})
    check_both(model, {"x": x}, want, monkeypatch, expect_native=True)
    got_ort = run_ort(model, {"x": x})
    if not x.any():  # documented difference: onnxruntime's scale is 1, the reference's 1/255
        got_ort[1] = want[1]
    for g, w in zip(got_ort, want, strict=True):
        assert_same(g, w, "onnxruntime agrees with the reference")


# ---------------------------------------------------------------------------------------------
# QLinearMatMul / MatMulInteger / QLinearConv / ConvInteger vs onnx.reference.


def _mm_shapes(rng: np.random.Generator) -> tuple[tuple[int, ...], tuple[int, ...]]:
    m, k, n = (int(d) for d in rng.integers(1, 50, size=3))
    batch = tuple(int(d) for d in rng.integers(1, 4, size=int(rng.integers(0, 3))))
    b_batch = batch[-1:] if batch and rng.random() < 0.3 else ()
    return batch + (m, k), b_batch + (k, n)


@pytest.mark.parametrize("seed", range(16))
def test_qlinear_matmul(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(seed)
    at, bt = (np.uint8, np.int8) if seed % 3 else (np.int8, np.uint8)
    yt = np.uint8 if seed % 2 else np.int8
    sa, sb = _mm_shapes(rng)
    a, b = rand_q(rng, at, sa), rand_q(rng, bt, sb)
    n = sb[-1]
    per_col = seed % 4 == 1 and len(sb) == 2
    bs = np.exp(rng.uniform(-6, -2, size=n)).astype(np.float32) if per_col else rand_scale(rng)
    bz = np.array([rand_zp(rng, bt) for _ in range(n)], bt) if per_col else rand_zp(rng, bt)
    inits = {
        "as": rand_scale(rng),
        "az": rand_zp(rng, at),
        "b": b,
        "bs": bs,
        "bz": bz,
        "ys": rand_scale(rng, 0.05, 2.0),
        "yz": rand_zp(rng, yt),
    }
    node = oh.make_node("QLinearMatMul", ["a", "as", "az", "b", "bs", "bz", "ys", "yz"], ["y"])
    model = make_model([node], {"a": a}, {"y": yt}, inits)
    check_both(model, {"a": a}, run_ref(model, {"a": a}), monkeypatch, expect_native=True)


@pytest.mark.parametrize("seed", range(16))
def test_matmul_integer(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(seed)
    at, bt = [(np.uint8, np.int8), (np.uint8, np.uint8), (np.int8, np.int8), (np.int8, np.uint8)][
        seed % 4
    ]
    sa, sb = _mm_shapes(rng)
    a, b = rand_q(rng, at, sa), rand_q(rng, bt, sb)
    n = sb[-1]
    per_col = seed % 3 == 1 and len(sb) == 2
    bz = np.array([rand_zp(rng, bt) for _ in range(n)], bt) if per_col else rand_zp(rng, bt)
    const_b = seed % 5 != 4
    feeds = {"a": a} if const_b else {"a": a, "b": b}
    inits = {"az": rand_zp(rng, at), "bz": bz} | ({"b": b} if const_b else {})
    node = oh.make_node("MatMulInteger", ["a", "b", "az", "bz"], ["y"])
    model = make_model([node], feeds, {"y": np.int32}, inits)
    check_both(model, feeds, run_ref(model, feeds), monkeypatch, expect_native=True)


def _conv_case(rng: np.random.Generator, seed: int) -> tuple[dict, tuple, tuple, int]:
    """Random conv attributes and shapes: 1-D/2-D, groups, depthwise, strides, dilations, pads."""
    spatial = 1 if seed % 5 == 3 else 2
    kind = seed % 4  # 0 dense, 1 grouped, 2 depthwise, 3 depthwise with multiplier
    group = {
        0: 1,
        1: int(rng.integers(2, 4)),
        2: int(rng.integers(2, 6)),
        3: int(rng.integers(2, 4)),
    }[kind]
    cg = 1 if kind >= 2 else int(rng.integers(1, 5))
    ocg = 2 if kind == 3 else (1 if kind == 2 else int(rng.integers(1, 6)))
    ks = [int(d) for d in rng.integers(1, 4, size=spatial)]
    size = [int(d) for d in rng.integers(4, 12, size=spatial)]
    attrs = {
        "group": group,
        "kernel_shape": ks,
        "strides": [int(d) for d in rng.integers(1, 3, size=spatial)],
        "dilations": [int(d) for d in rng.integers(1, 3, size=spatial)],
    }
    if seed % 6 == 5:
        attrs["auto_pad"] = "SAME_UPPER" if seed % 12 == 5 else "SAME_LOWER"
        attrs.pop("dilations")
    else:
        attrs["pads"] = [int(d) for d in rng.integers(0, 3, size=2 * spatial)]
    x_shape = (int(rng.integers(1, 3)), group * cg, *size)
    w_shape = (group * ocg, cg, *ks)
    return attrs, x_shape, w_shape, group * ocg


@pytest.mark.parametrize("seed", range(24))
def test_qlinear_conv(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(seed)
    xt, wt = (np.uint8, np.int8) if seed % 3 else (np.int8, np.int8)
    yt = xt if seed % 2 else (np.int8 if xt == np.uint8 else np.uint8)
    attrs, xs, ws, oc = _conv_case(rng, seed)
    x, w = rand_q(rng, xt, xs), rand_q(rng, wt, ws)
    per_ch = seed % 3 != 2
    w_scale = np.exp(rng.uniform(-6, -2, size=oc)).astype(np.float32) if per_ch else rand_scale(rng)
    # onnx.reference reads per-channel zero points only as [OC]; int8 weights are symmetric.
    w_zp = np.zeros(oc, wt) if per_ch else rand_zp(rng, wt)
    inits = {
        "xs": rand_scale(rng),
        "xz": rand_zp(rng, xt),
        "w": w,
        "ws": w_scale,
        "wz": w_zp,
        "ys": rand_scale(rng, 0.02, 0.5),
        "yz": rand_zp(rng, yt),
    }
    names = ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"]
    if seed % 4 != 1:
        inits["bias"] = rng.integers(-20000, 20000, size=oc).astype(np.int32)
        names.append("bias")
    node = oh.make_node("QLinearConv", names, ["y"], **attrs)
    model = make_model([node], {"x": x}, {"y": yt}, inits)
    if x.ndim == 3:
        # onnx.reference's QLinearConv assumes 2-D for per-channel scales: the oracle is the
        # same conv with a height of 1.
        attrs2 = {
            k: ([1] + v if k in ("kernel_shape", "strides", "dilations") else v)
            for k, v in attrs.items()
        }
        if "pads" in attrs2:
            attrs2["pads"] = [0, attrs["pads"][0], 0, attrs["pads"][1]]
        inits2 = dict(inits, w=w[:, :, None, :])
        m2 = make_model(
            [oh.make_node("QLinearConv", names, ["y"], **attrs2)],
            {"x": x[:, :, None, :]},
            {"y": yt},
            inits2,
        )
        want = [run_ref(m2, {"x": x[:, :, None, :]})[0][:, :, 0, :]]
    else:
        want = run_ref(model, {"x": x})
    check_both(model, {"x": x}, want, monkeypatch, expect_native=True)


@pytest.mark.parametrize("seed", range(16))
def test_conv_integer(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(seed)
    xt, wt = [(np.uint8, np.int8), (np.uint8, np.uint8), (np.int8, np.int8)][seed % 3]
    attrs, xs, ws, oc = _conv_case(rng, seed)
    x, w = rand_q(rng, xt, xs), rand_q(rng, wt, ws)
    inits = {"w": w, "xz": rand_zp(rng, xt), "wz": rand_zp(rng, wt)}
    node = oh.make_node("ConvInteger", ["x", "w", "xz", "wz"], ["y"], **attrs)
    model = make_model([node], {"x": x}, {"y": np.int32}, inits)
    check_both(model, {"x": x}, run_ref(model, {"x": x}), monkeypatch, expect_native=True)


# ---------------------------------------------------------------------------------------------
# Channels-last 8-bit conv (sliver:QLinearConv channels_last=1: igemm and depthwise kernels) vs
# an independent numpy oracle: exact int64 sums wrapped to int32, then requant.h's reference
# order. Inputs end at a guard page, so a kernel reading past X crashes the test.


def fenced(x: np.ndarray) -> np.ndarray:
    """A copy of x whose last byte is followed by an unreadable page."""
    import ctypes
    import mmap

    page = mmap.PAGESIZE
    n = max(x.nbytes, 1)
    size = (n + page - 1) // page * page + page
    buf = mmap.mmap(-1, size, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    base = ctypes.addressof(ctypes.c_char.from_buffer(buf))
    libc = ctypes.CDLL(None)
    assert libc.mprotect(ctypes.c_void_p(base + size - page), page, 0) == 0  # PROT_NONE
    start = size - page - x.nbytes
    y = np.frombuffer(buf, x.dtype, count=x.size, offset=start).reshape(x.shape)
    y[...] = x
    fenced.keep.append(buf)  # the mapping must outlive every session that reads it
    return y


fenced.keep = []


def _ref_qconv_nhwc(x, c, attrs) -> np.ndarray:  # noqa: ANN001
    """y[N, OH, OW, OC] for x[N, H, W, C] from first principles (c: the case's constants)."""
    w, group = c["w"].astype(np.int64), attrs["group"]
    oc, cg, kh, kw = w.shape
    sh, sw = attrs["strides"]
    dh, dw = attrs["dilations"]
    pt, pl, pb, pr = attrs["pads"]
    xi = x.astype(np.int64) - int(c["xz"])
    n, h, wd, ch = xi.shape
    xp = np.zeros((n, h + pt + pb, wd + pl + pr, ch), np.int64)
    xp[:, pt : pt + h, pl : pl + wd, :] = xi
    oh_ = (h + pt + pb - (kh - 1) * dh - 1) // sh + 1
    ow_ = (wd + pl + pr - (kw - 1) * dw - 1) // sw + 1
    wz = np.broadcast_to(c["wz"].astype(np.int64), (oc,))
    wc = w - wz[:, None, None, None]
    acc = np.zeros((n, oh_, ow_, oc), np.int64)
    for ky in range(kh):
        for kx in range(kw):
            win = xp[
                :,
                ky * dh : ky * dh + (oh_ - 1) * sh + 1 : sh,
                kx * dw : kx * dw + (ow_ - 1) * sw + 1 : sw,
                :,
            ]
            if group == 1:
                acc += win @ wc[:, :, ky, kx].T
            else:
                acc += win * wc[:, 0, ky, kx]
    acc += c.get("bias", np.zeros(oc, np.int32)).astype(np.int64)
    acc = ((acc + 2**31) % 2**32 - 2**31).astype(np.int32)  # int32 wrap, like the reference
    ws = np.broadcast_to(c["ws"], (oc,)).astype(np.float32)
    m = (np.float32(c["xs"]) * ws).astype(np.float32) / np.float32(c["ys"])
    d = acc.astype(np.float64) * m.astype(np.float32).astype(np.float64)
    d = d + float(c["yz"])
    yt = c["yz"].dtype
    lo, hi = attrs.get("activation_min", qrange(yt)[0]), attrs.get("activation_max", qrange(yt)[1])
    return np.rint(np.clip(d, lo, hi)).astype(yt)


def draw_requant_extremes(draw, rng: np.random.Generator, c: dict, oc: int) -> None:  # noqa: ANN001
    """Draws into conv case ``c`` the requantization extremes: tiny multipliers (~1e-12, where
    the one-rounding forms are not exact), multipliers > 1 (results saturate, int32 range
    matters), and biases up to the int32 range."""
    scales = draw(st.sampled_from(["normal", "normal", "tiny", "huge"]))
    if scales == "tiny":
        c["ys"] = np.float32(1e6)
    elif scales == "huge":
        c["ws"] = np.float32(rng.uniform(0.5, 3, size=oc))
        c["ys"] = np.float32(0.01)
    bias = draw(st.sampled_from(["none", "small", "huge"]))
    if bias != "none":
        lim = 20000 if bias == "small" else 2**31 - 1
        c["bias"] = rng.integers(-lim, lim, size=oc, dtype=np.int64).astype(np.int32)


@st.composite
def nhwc_conv_cases(draw):  # noqa: ANN001, ANN201
    """Shapes with ragged channel counts (K tails, column tails), borders, strides, dilations,
    every code/zero-point type, huge biases and extreme scales (the full requant form)."""
    dwise = draw(st.booleans())
    ch = draw(st.integers(1, 40))
    oc = ch if dwise else draw(st.sampled_from([1, 3, 8, 15, 16, 17, 24, 33, 40]))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    pads = [draw(st.integers(0, 2)) for _ in range(4)]
    h = draw(st.integers(max(1, (kh - 1) * dh + 1 - pads[0] - pads[2]), 9))
    w = draw(st.integers(max(1, (kw - 1) * dw + 1 - pads[1] - pads[3]), 9))
    batch = draw(st.integers(1, 2))
    xt, wt, yt = (draw(st.sampled_from([np.uint8, np.int8])) for _ in range(3))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    c = {
        "w": rand_q(rng, wt, (oc, 1 if dwise else ch, kh, kw)),
        "xz": rand_zp(rng, xt),
        "wz": np.array([rand_zp(rng, wt) for _ in range(oc)], wt)
        if draw(st.booleans())
        else rand_zp(rng, wt),
        "yz": rand_zp(rng, yt),
        "xs": rand_scale(rng),
        "ws": np.exp(rng.uniform(-7, -2, size=oc)).astype(np.float32),
        "ys": rand_scale(rng, 0.02, 0.5),
    }
    draw_requant_extremes(draw, rng, c, oc)
    attrs = {
        "group": ch if dwise else 1,
        "kernel_shape": [kh, kw],
        "strides": [sh, sw],
        "dilations": [dh, dw],
        "pads": pads,
    }
    lo, hi = qrange(yt)
    if draw(st.booleans()):
        attrs["activation_min"] = int(rng.integers(lo, hi + 1))
        attrs["activation_max"] = int(rng.integers(attrs["activation_min"], hi + 1))
    x = rand_q(rng, xt, (batch, h, w, ch))
    return x, c, attrs, draw(st.booleans())


def _nhwc_conv_model(x, c, attrs, nchw_input):  # noqa: ANN001, ANN202
    names = ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"] + (["bias"] if "bias" in c else [])
    node = oh.make_node(
        "QLinearConv",
        names,
        ["y"],
        domain="sliver",
        channels_last=1,
        nchw_input=int(nchw_input),
        **attrs,
    )
    xin = np.ascontiguousarray(x.transpose(0, 3, 1, 2)) if nchw_input else x
    ins = [oh.make_tensor_value_info("x", TP_OF[x.dtype], xin.shape)]
    outs = [oh.make_tensor_value_info("y", TP_OF[c["yz"].dtype], None)]
    inits = [onnx.numpy_helper.from_array(np.asarray(c[k]), k) for k in names[1:]]
    g = oh.make_graph([node], "g", ins, outs, inits)
    opsets = [oh.make_opsetid("", 21), oh.make_opsetid("sliver", 1)]
    return oh.make_model(g, opset_imports=opsets, ir_version=10), xin


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=nhwc_conv_cases())
def test_nhwc_qlinear_conv(case, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    x, c, attrs, nchw_input = case
    model, xin = _nhwc_conv_model(x, c, attrs, nchw_input)
    want = _ref_qconv_nhwc(x, c, attrs)
    s = sliver.InferenceSession(model.SerializeToString())
    assert all(impl.startswith("native") for _, _, impl in s.profile_steps())
    (got,) = s.run(None, {"x": fenced(xin)})
    assert_same(got, want, f"native {attrs} x{x.shape}")
    (py,), _ = run_sliver(model, {"x": xin}, False, monkeypatch)
    assert_same(py, want, "python twin")


def test_nhwc_qlinear_conv_scalar_kernels() -> None:
    """SLIVER_ISA=scalar: the portable igemm/depthwise twins agree with the oracle too."""
    import os
    import textwrap

    code = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        import test_quant_ops as t
        from hypothesis import given, settings, HealthCheck
        import sliver

        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
        @given(case=t.nhwc_conv_cases())
        def check(case):
            x, c, attrs, nchw = case
            model, xin = t._nhwc_conv_model(x, c, attrs, nchw)
            s = sliver.InferenceSession(model.SerializeToString())
            t.assert_same(s.run(None, {{"x": t.fenced(xin)}})[0], t._ref_qconv_nhwc(x, c, attrs),
                          "scalar")

        check()
        print("scalar ok", sliver.cpu_info())
        """
    )
    run_scalar_isa(code)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    dt=st.sampled_from([np.uint8, np.int8]),
    ch=st.integers(1, 40),
    k=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    s=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    d=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    seed=st.integers(0, 2**31),
)
def test_nhwc_max_pool(dt, ch, k, s, d, seed) -> None:  # noqa: ANN001
    """com.microsoft:NhwcMaxPool (16-channel blocks + tail) vs a numpy max over windows."""
    rng = np.random.default_rng(seed)
    pads = [int(rng.integers(0, k[i % 2])) for i in range(4)]
    hw = [int(rng.integers((k[i] - 1) * d[i] + 1, 10)) for i in range(2)]
    x = rand_q(rng, dt, (int(rng.integers(1, 3)), *hw, ch))
    attrs = {"kernel_shape": list(k), "strides": list(s), "dilations": list(d), "pads": pads}
    node = oh.make_node("NhwcMaxPool", ["x"], ["y"], domain=MS, **attrs)
    model = make_model([node], {"x": x}, {"y": dt})
    xp = np.full((x.shape[0], hw[0] + pads[0] + pads[2], hw[1] + pads[1] + pads[3], ch), -999)
    xp[:, pads[0] : pads[0] + hw[0], pads[1] : pads[1] + hw[1]] = x
    out = [(xp.shape[1 + i] - (k[i] - 1) * d[i] - 1) // s[i] + 1 for i in range(2)]
    want = np.full((x.shape[0], *out, ch), -999)
    for ky in range(k[0]):
        for kx in range(k[1]):
            win = xp[:, ky * d[0] :: s[0], kx * d[1] :: s[1]][:, : out[0], : out[1]]
            want = np.maximum(want, win)
    want = want.astype(dt)
    s_ = sliver.InferenceSession(model.SerializeToString())
    assert_same(s_.run(None, {"x": fenced(x)})[0], want, f"NhwcMaxPool {attrs}")


@pytest.mark.parametrize("seed", range(4))
def test_qoperator_stack_runs_channels_last(seed: int) -> None:
    """QOperator: QLinearConv -> com.microsoft QLinearAdd (residual) -> QLinearConv -> GAP ->
    Flatten. ONNX shape inference leaves everything after the contrib op untyped; qdq_nhwc must
    still move the whole stack to channels-last (no Transpose inside, no Python fallback) and
    match the NCHW graph bit for bit."""
    rng = np.random.default_rng(seed)
    xt = np.uint8 if seed % 2 == 0 else np.int8
    c = 8 + 4 * seed

    def conv(name: str, x: str, cin: int, **attrs: object) -> tuple[list, dict]:
        p = {
            f"{name}_w": rand_q(rng, np.int8, (c, cin, 3, 3)),
            f"{name}_ws": np.exp(rng.uniform(-6, -3, size=c)).astype(np.float32),
            f"{name}_wz": np.zeros(c, np.int8),
            f"{name}_ys": rand_scale(rng, 0.02, 0.2),
            f"{name}_yz": rand_zp(rng, xt),
            f"{name}_b": rng.integers(-3000, 3000, size=c).astype(np.int32),
        }
        ins = [x, "xs", "xz", f"{name}_w", f"{name}_ws", f"{name}_wz", f"{name}_ys"]
        ins += [f"{name}_yz", f"{name}_b"]
        return [oh.make_node("QLinearConv", ins, [name], pads=[1] * 4, **attrs)], p

    inits = {"xs": rand_scale(rng), "xz": rand_zp(rng, xt), "ys": rand_scale(rng)}
    n0, p0 = conv("c0", "x", 3)
    n1, p1 = conv("c1", "c0", c)
    # the second conv reads c0 with the scale and zero point c0 was quantized with
    n1[0].input[1], n1[0].input[2] = "c0_ys", "c0_yz"
    add = oh.make_node(
        "QLinearAdd",
        ["c0", "c0_ys", "c0_yz", "c1", "c1_ys", "c1_yz", "ys", "xz"],
        ["a"],
        domain=MS,
    )
    gap = oh.make_node("QLinearGlobalAveragePool", ["a", "ys", "xz", "ys", "xz"], ["g"], domain=MS)
    flat = oh.make_node("Flatten", ["g"], ["y"], axis=1)
    x = rand_q(rng, xt, (1, 3, 9, 11))
    model = make_model(n0 + n1 + [add, gap, flat], {"x": x}, {"y": xt}, inits | p0 | p1)
    so = sliver.SessionOptions()
    s = sliver.InferenceSession(model.SerializeToString(), so)
    steps = s.profile_steps()
    assert "Transpose" not in [op for _, op, _ in steps], steps
    assert all(impl not in ("python", "reference") for _, _, impl in steps), steps
    assert sum("nhwc" in impl for _, _, impl in steps) == 2, steps
    so.graph_optimization_level = sliver.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    want = sliver.InferenceSession(model.SerializeToString(), so).run(None, {"x": x})[0]
    assert_same(s.run(None, {"x": x})[0], want, "channels-last vs NCHW")


# ---------------------------------------------------------------------------------------------
# com.microsoft elementwise ops vs onnxruntime.


@pytest.mark.parametrize("seed", range(24))
@pytest.mark.parametrize("op", ["QLinearAdd", "QLinearMul"])
def test_qlinear_binary(op: str, seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(seed)
    dt = np.uint8 if seed % 2 == 0 else np.int8
    sa, sb = random_broadcast_pair(rng)
    a, b = rand_q(rng, dt, sa), rand_q(rng, dt, sb)
    p = {
        "as": rand_scale(rng),
        "az": rand_zp(rng, dt),
        "bs": rand_scale(rng),
        "bz": rand_zp(rng, dt),
        "cs": rand_scale(rng, 1e-3, 0.3),
        "cz": rand_zp(rng, dt),
    }
    node = oh.make_node(op, ["a", "as", "az", "b", "bs", "bz", "cs", "cz"], ["c"], domain=MS)
    feeds = {"a": a, "b": b}
    model = make_model([node], feeds, {"c": dt}, p)
    check_both(model, feeds, run_ort(model, feeds), monkeypatch, expect_native=True)


def test_qlinear_add_all_code_pairs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every (a, b) code pair, for vector-vector, scalar-A and scalar-B runs."""
    rng = np.random.default_rng(7)
    a = np.repeat(np.arange(256), 256).astype(np.uint8).reshape(256, 256)
    b = np.tile(np.arange(256), 256).astype(np.uint8).reshape(256, 256)
    for op in ("QLinearAdd", "QLinearMul"):
        for fa, fb in ((a, b), (a[:, :1], b), (a, b[:1, :].T)):
            p = {
                "as": rand_scale(rng),
                "az": rand_zp(rng, np.uint8),
                "bs": rand_scale(rng),
                "bz": rand_zp(rng, np.uint8),
                "cs": rand_scale(rng),
                "cz": rand_zp(rng, np.uint8),
            }
            node = oh.make_node(
                op, ["a", "as", "az", "b", "bs", "bz", "cs", "cz"], ["c"], domain=MS
            )
            feeds = {"a": np.ascontiguousarray(fa), "b": np.ascontiguousarray(fb)}
            model = make_model([node], feeds, {"c": np.uint8}, p)
            check_both(model, feeds, run_ort(model, feeds), monkeypatch, expect_native=True)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("op", ["QLinearLeakyRelu", "QLinearSigmoid"])
def test_qlinear_lookup_ops(op: str, seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(seed)
    dt = np.uint8 if seed % 2 == 0 else np.int8
    x = np.arange(256, dtype=np.uint8).view(dt).reshape(4, 64)  # every code
    p = {
        "xs": rand_scale(rng, 1e-3, 0.5),
        "xz": rand_zp(rng, dt),
        "ys": rand_scale(rng, 1e-3, 0.05 if op == "QLinearSigmoid" else 0.5),
        "yz": rand_zp(rng, dt),
    }
    attrs = {"alpha": float(rng.uniform(0.01, 0.5))} if op == "QLinearLeakyRelu" else {}
    node = oh.make_node(op, ["x", "xs", "xz", "ys", "yz"], ["y"], domain=MS, **attrs)
    model = make_model([node], {"x": x}, {"y": dt}, p)
    check_both(model, {"x": x}, run_ort(model, {"x": x}), monkeypatch, expect_native=True)


@pytest.mark.parametrize("seed", SEEDS)
def test_qlinear_where(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(seed)
    dt = np.uint8 if seed % 2 == 0 else np.int8
    shape = (3, 5)
    cond = rng.random(shape) < 0.5
    x, y = rand_q(rng, dt, shape), rand_q(rng, dt, shape)
    p = {
        "xs": rand_scale(rng),
        "xz": rand_zp(rng, dt),
        "ys": rand_scale(rng),
        "yz": rand_zp(rng, dt),
        "zs": rand_scale(rng),
        "zz": rand_zp(rng, dt),
    }
    node = oh.make_node(
        "QLinearWhere", ["c", "x", "xs", "xz", "y", "ys", "yz", "zs", "zz"], ["z"], domain=MS
    )
    feeds = {"c": cond, "x": x, "y": y}
    model = make_model([node], feeds, {"z": dt}, p)
    check_both(model, feeds, run_ort(model, feeds), monkeypatch, expect_native=False)


# ---------------------------------------------------------------------------------------------
# Pooling, concat, softmax vs onnxruntime.


@pytest.mark.parametrize("seed", SEEDS)
def test_qlinear_global_average_pool(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(seed)
    dt = np.uint8 if seed % 2 == 0 else np.int8
    channels_last = seed % 3 == 2
    shape = tuple(int(d) for d in rng.integers(1, 9, size=int(rng.integers(3, 5))))
    x = rand_q(rng, dt, shape)
    xs = rand_scale(rng)
    p = {
        "xs": xs,
        "xz": rand_zp(rng, dt),
        "ys": np.float32(xs * rng.uniform(0.3, 3)),
        "yz": rand_zp(rng, dt),
    }
    node = oh.make_node(
        "QLinearGlobalAveragePool",
        ["x", "xs", "xz", "ys", "yz"],
        ["y"],
        domain=MS,
        channels_last=int(channels_last),
    )
    model = make_model([node], {"x": x}, {"y": dt}, p)
    check_both(model, {"x": x}, run_ort(model, {"x": x}), monkeypatch, expect_native=True)


@pytest.mark.parametrize("seed", range(28))
def test_qlinear_average_pool(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(seed)
    dt = np.uint8 if seed % 2 == 0 else np.int8
    nd = int(rng.integers(1, 4))
    spatial = [int(d) for d in rng.integers(3, 9, size=nd)]
    kernel = [int(rng.integers(1, s + 1)) for s in spatial]
    if seed % 5 == 4:
        kernel = list(spatial)  # onnxruntime's global-pool shortcut
    strides = [int(d) for d in rng.integers(1, 3, size=nd)]
    pads = [int(rng.integers(0, k)) for k in kernel] * 2 if seed % 5 != 4 else [0] * 2 * nd
    attrs = {
        "kernel_shape": kernel,
        "strides": strides,
        "pads": pads,
        "count_include_pad": int(seed % 3 == 0),
        "ceil_mode": int(seed % 4 == 1),
    }
    if seed % 7 == 6:  # onnxruntime computes SAME pads; a full-size kernel is then padded
        attrs.pop("pads")
        attrs.pop("ceil_mode")
        attrs["auto_pad"] = "SAME_UPPER" if seed % 2 else "SAME_LOWER"
        attrs["kernel_shape"] = kernel = list(spatial) if seed % 3 else kernel
    channels_last = seed % 6 == 5
    shape = [int(rng.integers(1, 3)), int(rng.integers(1, 4))] + spatial
    if channels_last:
        attrs["channels_last"] = 1
        shape = [shape[0]] + spatial + [shape[1]]
    x = rand_q(rng, dt, tuple(shape))
    p = {
        "xs": rand_scale(rng),
        "xz": rand_zp(rng, dt),
        "ys": rand_scale(rng),
        "yz": rand_zp(rng, dt),
    }
    node = oh.make_node(
        "QLinearAveragePool", ["x", "xs", "xz", "ys", "yz"], ["y"], domain=MS, **attrs
    )
    model = make_model([node], {"x": x}, {"y": dt}, p)
    check_both(model, {"x": x}, run_ort(model, {"x": x}), monkeypatch, expect_native=True)


@pytest.mark.parametrize("seed", SEEDS)
def test_qlinear_concat(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(seed)
    dt = np.uint8 if seed % 2 == 0 else np.int8
    rank = int(rng.integers(1, 5))
    base = [int(d) for d in rng.integers(1, 5, size=rank)]
    axis = int(rng.integers(-rank, rank))
    n = int(rng.integers(1, 4))
    ys, yz = rand_scale(rng), rand_zp(rng, dt)
    names, inits, feeds = ["ys", "yz"], {"ys": ys, "yz": yz}, {}
    for i in range(n):
        shape = list(base)
        shape[axis] = int(rng.integers(1, 4))
        feeds[f"x{i}"] = rand_q(rng, dt, tuple(shape))
        same = rng.random() < 0.3
        inits[f"s{i}"] = ys if same else rand_scale(rng)
        inits[f"z{i}"] = yz if same else rand_zp(rng, dt)
        names += [f"x{i}", f"s{i}", f"z{i}"]
    node = oh.make_node("QLinearConcat", names, ["y"], domain=MS, axis=axis)
    model = make_model([node], feeds, {"y": dt}, inits)
    check_both(model, feeds, run_ort(model, feeds), monkeypatch, expect_native=True)


@pytest.mark.parametrize("seed", SEEDS)
def test_qlinear_softmax(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(seed)
    dt = np.uint8 if seed % 2 == 0 else np.int8
    rank = int(rng.integers(2, 4))
    shape = tuple(int(d) for d in rng.integers(1, 9, size=rank))
    opset = 13 if seed % 3 else 12
    axis = int(rng.integers(-rank, rank))
    x = rand_q(rng, dt, shape)
    yz = np.array(0 if dt == np.uint8 else -128, dt)
    p = {
        "xs": rand_scale(rng, 0.01, 0.2),
        "xz": rand_zp(rng, dt),
        "ys": np.float32(1 / 256),
        "yz": yz,
    }
    node = oh.make_node(
        "QLinearSoftmax", ["x", "xs", "xz", "ys", "yz"], ["y"], domain=MS, axis=axis, opset=opset
    )
    model = make_model([node], {"x": x}, {"y": dt}, p)
    check_both(model, {"x": x}, run_ort(model, {"x": x}), monkeypatch, expect_native=True)


# ---------------------------------------------------------------------------------------------
# Integer GEMMs with float or requantized output vs onnxruntime.


def _b_type(seed: int) -> type:
    return np.int8 if seed % 3 else np.uint8


def _exact_weights(rng: np.random.Generator, dt: type, shape: tuple[int, ...]) -> np.ndarray:
    """Weights onnxruntime's u8 x s8 AVX2 kernel computes exactly (its vpmaddubsw pair sums
    saturate for large weights; that is onnxruntime's inexactness, not ours)."""
    if dt == np.int8:
        return rng.integers(-64, 64, size=shape).astype(dt)
    return rand_q(rng, dt, shape)


@pytest.mark.parametrize("seed", SEEDS)
def test_qgemm(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(seed)
    bt = _b_type(seed)
    m, k, n = (int(d) for d in rng.integers(1, 40, size=3))
    trans_a, trans_b = int(seed % 2), int(seed % 4 < 2)
    a = rand_q(rng, np.uint8, (k, m) if trans_a else (m, k))
    b = _exact_weights(rng, bt, (n, k) if trans_b else (k, n))
    per_col = seed % 3 == 1
    bs = np.exp(rng.uniform(-6, -2, size=n)).astype(np.float32) if per_col else rand_scale(rng)
    bz = np.zeros(n, bt) if per_col else np.array(0, bt)
    inits = {"as": rand_scale(rng), "az": rand_zp(rng, np.uint8), "b": b, "bs": bs, "bz": bz}
    names = ["a", "as", "az", "b", "bs", "bz"]
    if seed % 4 != 3:
        inits["c"] = rng.integers(-5000, 5000, size=n).astype(np.int32)
        names.append("c")
    else:
        names.append("")
    quantized = seed % 2 == 0
    if quantized:
        inits["ys"] = rand_scale(rng, 0.05, 1.0)
        inits["yz"] = rand_zp(rng, np.uint8)
        names += ["ys", "yz"]
    attrs = {"transA": trans_a, "transB": trans_b, "alpha": float(rng.choice([1.0, 0.5]))}
    node = oh.make_node("QGemm", names, ["y"], domain=MS, **attrs)
    model = make_model([node], {"a": a}, {"y": np.uint8 if quantized else np.float32}, inits)
    check_both(model, {"a": a}, run_ort(model, {"a": a}), monkeypatch, expect_native=True)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("op", ["MatMulIntegerToFloat", "DynamicQuantizeMatMul"])
def test_matmul_to_float(op: str, seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(seed)
    bt = _b_type(seed)
    batch = tuple(int(d) for d in rng.integers(1, 4, size=int(rng.integers(0, 3))))
    m, k, n = (int(d) for d in rng.integers(1, 40, size=3))
    b = _exact_weights(rng, bt, (k, n))
    bias = rng.standard_normal(n).astype(np.float32) if seed % 2 else None
    if op == "DynamicQuantizeMatMul":
        a = (rng.standard_normal(batch + (m, k)) * 2 + 0.5).astype(np.float32)
        inits = {"b": b, "bs": rand_scale(rng), "bz": np.array(0, bt)}
        names = ["a", "b", "bs", "bz"]
    else:
        a = rand_q(rng, np.uint8, batch + (m, k))
        inits = {
            "b": b,
            "as": rand_scale(rng),
            "bs": rand_scale(rng),
            "az": rand_zp(rng, np.uint8),
            "bz": np.array(0, bt),
        }
        names = ["a", "b", "as", "bs", "az", "bz"]
    if bias is not None:
        inits["bias"] = bias
        names.append("bias")
    node = oh.make_node(op, names, ["y"], domain=MS)
    model = make_model([node], {"a": a}, {"y": np.float32}, inits)
    check_both(model, {"a": a}, run_ort(model, {"a": a}), monkeypatch, expect_native=True)


# ---------------------------------------------------------------------------------------------
# Whole models quantized by onnxruntime.quantization: sliver vs onnxruntime.


def _float_cnn(rng: np.random.Generator) -> onnx.ModelProto:
    """Conv, depthwise conv, LeakyRelu, residual Add, Concat, AveragePool, Mul, Sigmoid,
    GlobalAveragePool, Gemm and MatMul: every op the quantizer has a QOperator form for."""

    def w(name: str, *shape: int, s: float = 0.3) -> onnx.TensorProto:
        return onnx.numpy_helper.from_array(
            (rng.standard_normal(shape) * s).astype(np.float32), name
        )

    inits = [
        w("w1", 8, 3, 3, 3),
        w("b1", 8, s=0.1),
        w("w2", 8, 1, 3, 3),
        w("b2", 8, s=0.1),
        w("w3", 8, 8, 1, 1),
        w("b3", 8, s=0.1),
        w("wg", 16, 10),
        w("bg", 10, s=0.1),
        w("wm", 10, 6),
    ]
    n = oh.make_node
    nodes = [
        n("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        n("Relu", ["c1"], ["a"]),
        n("Conv", ["a", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1], group=8),
        n("LeakyRelu", ["c2"], ["b"], alpha=0.1),
        n("Add", ["a", "b"], ["c"]),
        n("Conv", ["c", "w3", "b3"], ["d0"]),
        n("Sigmoid", ["d0"], ["d"]),
        n("Concat", ["c", "d"], ["e"], axis=1),
        n("AveragePool", ["e"], ["f"], kernel_shape=[2, 2], strides=[2, 2]),
        n("Mul", ["f", "f"], ["g"]),
        n("GlobalAveragePool", ["g"], ["h0"]),
        n("Flatten", ["h0"], ["h"]),
        n("Gemm", ["h", "wg", "bg"], ["i"]),
        n("MatMul", ["i", "wm"], ["y"]),
    ]
    g = oh.make_graph(
        nodes,
        "cnn",
        [oh.make_tensor_value_info("x", TP.FLOAT, [1, 3, 16, 16])],
        [oh.make_tensor_value_info("y", TP.FLOAT, [1, 6])],
        inits,
    )
    return oh.make_model(g, opset_imports=[oh.make_opsetid("", 17)], ir_version=9)


def _float_mlp(rng: np.random.Generator) -> onnx.ModelProto:
    """MatMul + bias + Relu + MatMul + Conv: what quantize_dynamic turns into integer ops."""
    inits = [
        onnx.numpy_helper.from_array((rng.standard_normal(s) * 0.2).astype(np.float32), k)
        for k, s in (("w1", (32, 48)), ("b1", (48,)), ("w2", (48, 16)), ("wc", (4, 2, 3, 3)))
    ]
    n = oh.make_node
    nodes = [
        n("MatMul", ["x", "w1"], ["m1"]),
        n("Add", ["m1", "b1"], ["a1"]),
        n("Relu", ["a1"], ["r1"]),
        n("MatMul", ["r1", "w2"], ["m2"]),
        n("Reshape", ["m2", "shape"], ["img"]),
        n("Conv", ["img", "wc"], ["y"], pads=[1, 1, 1, 1]),
    ]
    inits.append(onnx.numpy_helper.from_array(np.array([2, 2, 4, 10], np.int64), "shape"))
    g = oh.make_graph(
        nodes,
        "mlp",
        [oh.make_tensor_value_info("x", TP.FLOAT, [2, 5, 32])],
        [oh.make_tensor_value_info("y", TP.FLOAT, None)],
        inits,
    )
    return oh.make_model(g, opset_imports=[oh.make_opsetid("", 17)], ir_version=9)


class _RandomReader:
    """A CalibrationDataReader over a few random inputs."""

    def __init__(self, rng: np.random.Generator, shape: tuple[int, ...], n: int = 8) -> None:
        self._data = iter([{"x": rng.standard_normal(shape).astype(np.float32)} for _ in range(n)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._data, None)


def _output_lsb(model: onnx.ModelProto) -> float:
    """The scale of the DequantizeLinear that produces the model output (1 LSB of the output)."""
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    out = model.graph.output[0].name
    for node in model.graph.node:
        if out in node.output and node.op_type == "DequantizeLinear":
            return float(np.max(inits[node.input[1]]))
    return 0.0


def _compare_models(model: onnx.ModelProto, x: np.ndarray, lsbs: float) -> None:
    want = run_ort(model, {"x": x})[0]
    s = sliver.InferenceSession(model.SerializeToString())
    got = s.run(None, {"x": x})[0]
    assert got.shape == want.shape and got.dtype == want.dtype
    cos = float(
        np.dot(got.ravel(), want.ravel()) / (np.linalg.norm(got) * np.linalg.norm(want) + 1e-30)
    )
    assert cos >= 0.999, f"cosine {cos}"
    lsb = _output_lsb(model)
    tol = lsbs * lsb if lsb else 1e-4 * (1 + np.abs(want).max())
    diff = float(np.abs(got - want).max())
    assert diff <= tol + 1e-7, f"max |diff| {diff} > {lsbs} LSB ({tol}); steps {s.profile_steps()}"


@pytest.mark.parametrize("fmt", ["QDQ", "QOperator"])
@pytest.mark.parametrize(
    "act,wt,per_channel",
    [("QUInt8", "QInt8", False), ("QInt8", "QInt8", True), ("QUInt8", "QUInt8", True)],
)
def test_quantize_static_model(fmt: str, act: str, wt: str, per_channel: bool, tmp_path) -> None:  # noqa: ANN001
    from onnxruntime import quantization as oq

    rng = np.random.default_rng(3)
    src, dst = tmp_path / "f.onnx", tmp_path / "q.onnx"
    onnx.save(_float_cnn(rng), src)
    oq.quantize_static(
        str(src),
        str(dst),
        _RandomReader(rng, (1, 3, 16, 16)),
        quant_format=getattr(oq.QuantFormat, fmt),
        per_channel=per_channel,
        activation_type=getattr(oq.QuantType, act),
        weight_type=getattr(oq.QuantType, wt),
    )
    model = onnx.load(dst)
    for seed in range(3):
        x = np.random.default_rng(seed).standard_normal((1, 3, 16, 16)).astype(np.float32)
        _compare_models(model, x, lsbs=4)


@pytest.mark.parametrize("wt,per_channel", [("QInt8", False), ("QUInt8", False), ("QInt8", True)])
def test_quantize_dynamic_model(wt: str, per_channel: bool, tmp_path) -> None:  # noqa: ANN001
    from onnxruntime import quantization as oq

    rng = np.random.default_rng(5)
    src, dst = tmp_path / "f.onnx", tmp_path / "q.onnx"
    onnx.save(_float_mlp(rng), src)
    oq.quantize_dynamic(
        str(src),
        str(dst),
        weight_type=getattr(oq.QuantType, wt),
        per_channel=per_channel,
        op_types_to_quantize=["MatMul", "Conv"],
    )
    model = onnx.load(dst)
    for seed in range(3):
        x = np.random.default_rng(seed).standard_normal((2, 5, 32)).astype(np.float32)
        if wt == "QUInt8":
            _compare_models(model, x, lsbs=0)
        # onnxruntime's u8 x s8 AVX2 GEMM saturates int16 pair sums, so with int8 weights it is
        # not exact; onnx.reference is (the integer part is exact, the float ops are the same).
        got = sliver.InferenceSession(model.SerializeToString()).run(None, {"x": x})[0]
        want = run_ref(model, {"x": x})[0]
        assert np.abs(got - want).max() <= 1e-5 * (1 + np.abs(want).max())
