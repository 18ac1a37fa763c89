"""Native FP32 Conv / sliver:FusedConv against onnx.reference, over random geometry.

The reference runs in float64 (the same model with DOUBLE tensors), so the tolerance only has to
cover sliver's float32 rounding: a few units in the last place per multiply-add of the K-term
dot products, which Winograd F(2x2, 3x3) roughly doubles (its transforms add a handful of terms
before and after the products). Every path of the operator is pinned by a case that asserts it
was taken (im2col, Winograd, direct and packed 1x1, depthwise plane and row kernels); the random
cases then cover odd sizes, pads, strides, dilations, groups, 1-D convs and ragged tiles; the
portable kernels (SLIVER_ISA=scalar: GEMM panels of 8, scalar transforms and stencils) are
checked in a subprocess; and 1 and 2 threads must give identical bits.
"""

from __future__ import annotations

import math
import os
import textwrap
import zlib

import numpy as np
import onnx
import pytest
import sliver
from helpers import run_scalar_isa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

# Error bound per unit of sum(|w| * |x|) over a window: float32 rounding of a K-term dot
# product stays far below K * 2^-24 of that sum in practice; Winograd's transforms multiply it
# by a small constant. 2e-6 leaves room for both at the K (<= 500) drawn here.
SUM_ABS_REL_TOL = 2e-6
# Vector sigmoid/tanh/exp are within 6e-7 of exact (tests/test_native_ops.py), plus rounding.
ACT_REL_TOL = 1e-6
SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
ACTS = {
    "": lambda y: y,
    "Relu": lambda y: np.maximum(y, 0),
    "Clip": lambda y: np.clip(y, -0.5, 1.5),
    "LeakyRelu": lambda y: np.where(y >= 0, y, 0.1 * y),
    "Sigmoid": lambda y: 1 / (1 + np.exp(-y)),
    "HardSwish": lambda y: y * np.clip(y / 6 + 0.5, 0, 1),
}
ACT_PARAMS = {"Clip": [-0.5, 1.5], "LeakyRelu": [0.1]}


def conv_model(x_shape, w, b, attrs: dict, dtype: int, fused: dict | None = None, res=None):
    """One Conv (or sliver:FusedConv with `fused` attributes and an optional residual input)."""
    inputs = [helper.make_tensor_value_info("x", dtype, x_shape)]
    inits = [onnx.numpy_helper.from_array(w, "w")]
    names = ["x", "w"]
    if b is not None:
        inits.append(onnx.numpy_helper.from_array(b, "b"))
        names.append("b")
    if fused is not None and res is not None:
        if b is None:
            names.append("")
        inputs.append(helper.make_tensor_value_info("r", dtype, res.shape))
        names.append("r")
    op, domain = ("FusedConv", "sliver") if fused is not None else ("Conv", None)
    node = helper.make_node(op, names, ["y"], domain=domain, **attrs, **(fused or {}))
    graph = helper.make_graph([node], "g", inputs, [onnx.ValueInfoProto(name="y")], inits)
    opsets = [helper.make_opsetid("", 21)] + ([helper.make_opsetid("sliver", 1)] if fused else [])
    return helper.make_model(graph, opset_imports=opsets, ir_version=10)


def run_native(model: onnx.ModelProto, feeds: dict, threads: int = 1):
    """Runs with sliver, optimisations off, asserting that the conv ran natively."""
    opts = sliver.SessionOptions()
    opts.graph_optimization_level = sliver.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.intra_op_num_threads = threads
    sess = sliver.InferenceSession(model.SerializeToString(), opts)
    (impl,) = [impl for _, _, impl in sess.profile_steps()]
    assert impl not in ("reference", "python"), impl
    return sess.run(None, feeds)[0], impl


def reference(x, w, b, attrs: dict) -> tuple[np.ndarray, np.ndarray]:
    """Conv in float64 (onnx.reference), and the same conv of |x| and |w| (the error scale)."""

    def conv(xv, wv, bv):
        model = conv_model(list(xv.shape), wv, bv, attrs, TensorProto.DOUBLE)
        return ReferenceEvaluator(model).run(None, {"x": xv})[0]

    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    y = conv(x64, w64, None if b is None else b.astype(np.float64))
    scale = conv(np.abs(x64), np.abs(w64), None if b is None else np.abs(b.astype(np.float64)))
    return y, scale


def check(x, w, b, attrs: dict, act: str = "", post: str = "", res=None, threads: int = 1) -> str:
    """sliver (Conv, or FusedConv when act/post/res) vs the float64 reference; returns the path.

    The tolerance grows with K past the 500 terms SUM_ABS_REL_TOL allows for."""
    fused = None
    if act or post or res is not None:
        fused = {"activation": act, "post_activation": post}
        if act in ACT_PARAMS:
            fused["activation_params"] = ACT_PARAMS[act]
        if post in ACT_PARAMS:
            fused["post_activation_params"] = ACT_PARAMS[post]
    model = conv_model(list(x.shape), w, b, attrs, TensorProto.FLOAT, fused, res)
    feeds = {"x": x} if res is None else {"x": x, "r": res}
    got, impl = run_native(model, feeds, threads)
    want, scale = reference(x, w, b, attrs)
    want = ACTS[act](want)
    if res is not None:
        want = want + res
        scale = scale + np.abs(res)
    want = ACTS[post](want)
    assert got.shape == want.shape, (got.shape, want.shape)
    # The activations are 1-Lipschitz here (sigmoid: 1/4), so the error bound carries through;
    # the activation and the residual add round once more, relative to the result.
    err = np.abs(got.astype(np.float64) - want)
    k_terms = w.shape[1] * math.prod(w.shape[2:])
    bound = SUM_ABS_REL_TOL * max(1.0, k_terms / 500) * scale + ACT_REL_TOL * np.abs(want) + 1e-30
    worst = np.unravel_index(np.argmax(err / bound), err.shape) if err.size else None
    assert err.size == 0 or np.all(err <= bound), (
        f"{impl}: |error| {err[worst]:.3g} > {bound[worst]:.3g} at {worst}, attrs {attrs}"
    )
    return impl


def rand(rng: np.random.Generator, shape) -> np.ndarray:
    return rng.uniform(-1, 1, size=shape).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Every path, pinned

PATHS = [
    # (path, c, m, group, size, kernel, strides, pads, dilations)
    ("conv_winograd", 16, 16, 1, (13, 21), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)),
    ("conv_winograd", 9, 24, 1, (40, 7), (3, 3), (1, 1), (0, 2, 1, 0), (1, 1)),
    ("conv_winograd", 16, 20, 2, (9, 35), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)),
    # Few tiles, many channels: the 16 GEMMs with the tiles on the rows (15 and 16 tiles).
    (
        "conv_winograd f32_wino2x2_3x3 tiles-on-rows",
        128,
        137,
        1,
        (5, 11),
        (3, 3),
        (1, 1),
        (1, 1, 1, 1),
        (1, 1),
    ),
    (
        "conv_winograd f32_wino2x2_3x3 tiles-on-rows",
        2 * 130,
        2 * 128,
        2,
        (7, 8),
        (3, 3),
        (1, 1),
        (0, 1, 2, 1),
        (1, 1),
    ),
    ("conv_im2col", 3, 16, 1, (33, 17), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)),
    ("conv_im2col", 8, 13, 1, (19, 32), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1)),
    ("conv_im2col", 6, 10, 1, (20, 16), (5, 3), (1, 2), (2, 0, 1, 1), (2, 1)),
    ("conv_im2col", 12, 50, 1, (16, 8), (1, 1), (1, 1), (0, 0, 0, 0), (1, 1)),
    ("conv_im2col", 8, 8, 1, (17, 9), (1, 1), (3, 2), (0, 0, 0, 0), (1, 1)),
    ("conv_1x1", 24, 40, 1, (9, 11), (1, 1), (1, 1), (0, 0, 0, 0), (1, 1)),
    # Few output pixels and large weights: the GEMM with the pixels on its rows (few enough for
    # the scalar kernel's 8-pixel panels too; 7x7 outputs are in test_few_pixels_random).
    ("conv_few_pixels", 64, 520, 1, (3, 3), (1, 1), (1, 1), (0, 0, 0, 0), (1, 1)),
    ("conv_few_pixels", 40, 100, 1, (5, 6), (3, 3), (2, 2), (1, 1, 1, 0), (1, 1)),
    ("conv_few_pixels", 2 * 120, 2 * 280, 2, (1, 1), (1, 1), (1, 1), (0, 0, 0, 0), (1, 1)),
    ("conv_depthwise f32_dwconv2d_3x3s1", 8, 8, 8, (61, 67), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)),
    ("conv_depthwise f32_dwconv2d_3x3s2", 8, 8, 8, (96, 41), (3, 3), (2, 2), (1, 0, 1, 2), (1, 1)),
    # Small planes: 8 channels per vector (a partial block of 1 channel after the 8s).
    ("conv_depthwise f32_dwconv_c8_3x3s1", 9, 9, 9, (13, 37), (3, 3), (1, 1), (1, 1, 1, 0), (1, 1)),
    ("conv_depthwise f32_dwconv_c8_3x3s1", 5, 5, 5, (7, 7), (3, 3), (1, 1), (0, 1, 2, 0), (1, 1)),
    ("conv_depthwise f32_dwconv_c8_3x3s2", 9, 9, 9, (16, 33), (3, 3), (2, 2), (1, 0, 1, 2), (1, 1)),
    ("conv_depthwise f32_dwconv_c8_3x3s2", 8, 8, 8, (9, 4), (3, 3), (2, 2), (2, 2, 0, 1), (1, 1)),
    ("conv_depthwise f32_dwconv2d_3x3s2", 3, 3, 3, (30, 133), (3, 3), (2, 2), (0, 1, 2, 1), (1, 1)),
    ("conv_depthwise f32_dwconv2d_5x5s1", 4, 4, 4, (11, 19), (5, 5), (1, 1), (2, 2, 2, 2), (1, 1)),
    ("conv_depthwise f32_dwconv2d_5x5s1", 3, 3, 3, (10, 75), (5, 5), (1, 1), (1, 2, 3, 4), (1, 1)),
    ("conv_depthwise f32_dwconv2d_5x5s2", 3, 3, 3, (11, 121), (5, 5), (2, 2), (4, 3, 0, 1), (1, 1)),
    ("conv_depthwise f32_dwconv2d_5x5s2", 4, 4, 4, (18, 7), (5, 5), (2, 2), (2, 1, 0, 2), (1, 1)),
    ("conv_depthwise f32_dwconv_", 6, 6, 6, (12, 12), (3, 3), (3, 3), (1, 1, 1, 1), (1, 1)),
    ("conv_depthwise f32_dwconv_", 6, 6, 6, (12, 12), (3, 3), (1, 1), (2, 2, 2, 2), (2, 2)),
]


@pytest.mark.parametrize("case", PATHS, ids=[f"{p[0]}-{i}" for i, p in enumerate(PATHS)])
@pytest.mark.parametrize("epilogue", ["plain", "relu", "fused"])
def test_each_path(case, epilogue: str) -> None:
    path, c, m, group, size, kernel, strides, pads, dils = case
    rng = np.random.default_rng(zlib.crc32(repr((case, epilogue)).encode()))
    x = rand(rng, [2, c, *size])
    w = rand(rng, [m, c // group, *kernel])
    b = rand(rng, [m])
    attrs = {"group": group, "strides": list(strides), "pads": list(pads), "dilations": list(dils)}
    act, post, res = "", "", None
    if epilogue == "relu":
        act = "Relu"
    elif epilogue == "fused":
        want, _ = reference(x, w, b, attrs)
        act, post, res = "HardSwish", "Clip", rand(rng, want.shape)
    impl = check(x, w, b, attrs, act, post, res)
    assert path in impl.replace("_avx2", "").replace("_scalar", ""), (path, impl)


# ---------------------------------------------------------------------------------------------
# Random geometry


@st.composite
def conv_case(draw):
    nsp = draw(st.sampled_from([1, 2, 2, 2]))
    kind = draw(st.sampled_from(["dense", "dense", "wino", "group", "dw", "pointwise"]))
    k = [draw(st.sampled_from([1, 2, 3, 3, 5])) for _ in range(nsp)]
    s = [draw(st.sampled_from([1, 1, 2, 3])) for _ in range(nsp)]
    d = [draw(st.sampled_from([1, 1, 1, 2])) for _ in range(nsp)]
    if kind == "wino":
        k, s, d = [3] * nsp, [1] * nsp, [1] * nsp
    if kind == "pointwise":
        k = [1] * nsp
    group = 1
    cg = draw(st.integers(1, 12))
    mg = draw(st.integers(1, 12))
    if kind == "wino":
        cg, mg = draw(st.integers(8, 20)), draw(st.integers(8, 20))
    elif kind == "pointwise":
        mg = draw(st.sampled_from([5, 47, 48, 60]))
    elif kind == "group":
        group = draw(st.integers(2, 4))
    elif kind == "dw":
        group, cg, mg = draw(st.integers(1, 9)), 1, 1
    # Depthwise planes reach the plane kernels' row passes (outputs 48+ wide).
    top = 140 if kind == "dw" else 40
    size = [draw(st.integers((ki - 1) * di + 1, top)) for ki, di in zip(k, d, strict=True)]
    auto_pad = draw(st.sampled_from(["NOTSET"] * 4 + ["VALID", "SAME_UPPER", "SAME_LOWER"]))
    attrs = {
        "group": group,
        "strides": s,
        "dilations": d,
        "auto_pad": auto_pad,
        "kernel_shape": k,
    }
    if auto_pad == "NOTSET":
        attrs["pads"] = [draw(st.integers(0, ki - 1)) for ki in k + k]
    n = draw(st.integers(1, 2))
    act = draw(st.sampled_from(["", "", "Relu", "Clip", "LeakyRelu", "Sigmoid"]))
    residual = draw(st.booleans())
    bias = draw(st.booleans())
    return n, group * cg, group * mg, cg, size, attrs, act, residual, bias


@given(seed=st.integers(0, 2**31 - 1), case=conv_case())
@SETTINGS
def test_random_geometry(seed: int, case) -> None:
    n, c, m, cg, size, attrs, act, residual, bias = case
    rng = np.random.default_rng(seed)
    x = rand(rng, [n, c, *size])
    w = rand(rng, [m, cg, *attrs["kernel_shape"]])
    b = rand(rng, [m]) if bias else None
    res = None
    if residual:
        want, _ = reference(x, w, b, attrs)
        res = rand(rng, want.shape)
    check(x, w, b, attrs, act, "Relu" if residual else "", res)


@given(seed=st.integers(0, 2**31 - 1), case=conv_case())
@settings(max_examples=25, deadline=None, derandomize=True)
def test_threads_give_identical_bits(seed: int, case) -> None:
    """Work is split over pixels, tiles and rows, never over a dot product: 1 and 2 threads agree
    bit for bit."""
    n, c, m, cg, size, attrs, *_ = case
    rng = np.random.default_rng(seed)
    x = rand(rng, [n, c, *size])
    w = rand(rng, [m, cg, *attrs["kernel_shape"]])
    model = conv_model(list(x.shape), w, rand(rng, [m]), attrs, TensorProto.FLOAT)
    one, _ = run_native(model, {"x": x}, threads=1)
    two, _ = run_native(model, {"x": x}, threads=2)
    np.testing.assert_array_equal(one, two)


def test_larger_layers() -> None:
    """CNN-sized layers (several Winograd blocks, K blocking past 320, many panels per thread)."""
    rng = np.random.default_rng(7)
    for c, m, size, kernel, strides, pads in [
        (32, 40, (30, 34), (3, 3), (1, 1), (1, 1, 1, 1)),
        (48, 24, (12, 12), (3, 3), (2, 2), (1, 1, 1, 1)),
        (40, 64, (16, 16), (1, 1), (1, 1), (0, 0, 0, 0)),
        (3, 16, (64, 64), (3, 3), (1, 1), (1, 1, 1, 1)),
        (520, 140, (13, 15), (3, 3), (1, 1), (1, 1, 1, 1)),  # Winograd tiles on rows, 2 K blocks
    ]:
        x = rand(rng, [1, c, *size])
        w = rand(rng, [m, c, *kernel])
        attrs = {"strides": list(strides), "pads": list(pads)}
        for threads in (1, 2):
            check(x, w, rand(rng, [m]), attrs, "Relu", threads=threads)


def test_winograd_tiles_on_rows_threads() -> None:
    """Winograd with the tiles on the GEMMs' rows: 2 threads split the output channels (one
    block of tiles), 1 and 2 threads give identical bits, both match the reference."""
    rng = np.random.default_rng(17)
    x = rand(rng, [1, 160, 9, 11])
    w = rand(rng, [136, 160, 3, 3])
    b = rand(rng, [136])
    attrs = {"pads": [1, 1, 1, 1]}
    assert "tiles-on-rows" in check(x, w, b, attrs, "Relu", threads=2)
    model = conv_model(list(x.shape), w, b, attrs, TensorProto.FLOAT)
    one, _ = run_native(model, {"x": x}, threads=1)
    two, _ = run_native(model, {"x": x}, threads=2)
    np.testing.assert_array_equal(one, two)


def test_k_and_n_blocks() -> None:
    """im2col K blocks of whole channels (2 and 3 blocks, the last one shorter) and several N
    blocks per image, with every epilogue input, on 1 and 2 threads (identical bits)."""
    rng = np.random.default_rng(13)
    for c, m, size, kernel, strides, pads, dils in [
        (50, 20, (33, 40), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1)),  # K = 450: 2 blocks
        (61, 14, (30, 30), (3, 3), (1, 2), (2, 0, 0, 1), (2, 1)),  # K = 549: 3 blocks
        (37, 50, (18, 21), (2, 5), (3, 1), (0, 2, 1, 2), (1, 1)),  # K = 370, tiles of 5 and 4
    ]:
        x = rand(rng, [2, c, *size])
        w = rand(rng, [m, c, *kernel])
        b = rand(rng, [m])
        attrs = {"strides": list(strides), "pads": list(pads), "dilations": list(dils)}
        want, _ = reference(x, w, b, attrs)
        res = rand(rng, want.shape)
        assert "conv_im2col" in check(x, w, b, attrs, "LeakyRelu", "Relu", res)
        model = conv_model(list(x.shape), w, b, attrs, TensorProto.FLOAT)
        one, _ = run_native(model, {"x": x}, threads=1)
        two, _ = run_native(model, {"x": x}, threads=2)
        np.testing.assert_array_equal(one, two)


# Output sizes (pixels per image) where the few-pixel GEMM clearly beats padded 16-pixel panels.
FEW_PIXEL_OUTPUTS = [(1, 1), (1, 3), (2, 2), (3, 3), (2, 5), (3, 6), (4, 5), (5, 5), (7, 7)]


@st.composite
def few_pixel_case(draw):
    kernel = [draw(st.sampled_from([1, 2, 3, 5])) for _ in range(2)]
    strides = [draw(st.integers(1, 3)) for _ in range(2)]
    dils = [draw(st.sampled_from([1, 1, 2])) for _ in range(2)]
    out = draw(st.sampled_from(FEW_PIXEL_OUTPUTS))
    pads = [draw(st.integers(0, k - 1)) for k in kernel + kernel]
    size = []
    for i in range(2):  # the input that gives `out` outputs with these pads
        span = (kernel[i] - 1) * dils[i] + 1
        extent = (out[i] - 1) * strides[i] + span
        if extent - pads[i] - pads[2 + i] < 1:
            pads[i] = pads[2 + i] = 0
        size.append(extent - pads[i] - pads[2 + i])
    group = draw(st.sampled_from([1, 1, 2]))
    taps = kernel[0] * kernel[1]
    cg = draw(st.integers(max(1, 64 // taps), max(2, 480 // taps)))
    mg = -(-(32 * 1024) // (cg * taps)) + draw(st.integers(0, 40))  # the weights clear 128 KiB
    attrs = {"group": group, "strides": strides, "dilations": dils, "pads": pads}
    n = draw(st.integers(1, 2))
    act = draw(st.sampled_from(["", "Relu", "Sigmoid"]))
    return n, group * cg, group * mg, cg, size, kernel, attrs, act, draw(st.booleans())


@given(seed=st.integers(0, 2**31 - 1), case=few_pixel_case())
@settings(max_examples=20, deadline=None, derandomize=True)
def test_few_pixels_random(seed: int, case) -> None:
    """The pixels-on-rows GEMM over strides, dilations, pads, groups, tile heights (1 to 6 rows)
    and a ragged last panel of output channels; 1 and 2 threads agree bit for bit."""
    n, c, m, cg, size, kernel, attrs, act, residual = case
    rng = np.random.default_rng(seed)
    x = rand(rng, [n, c, *size])
    w = rand(rng, [m, cg, *kernel]) / np.float32(10)
    b = rand(rng, [m])
    res = None
    if residual:
        want, _ = reference(x, w, b, attrs)
        res = rand(rng, want.shape)
    impl = check(x, w, b, attrs, act, "Relu" if residual else "", res)
    assert "conv_few_pixels" in impl, impl
    model = conv_model(list(x.shape), w, b, attrs, TensorProto.FLOAT)
    one, _ = run_native(model, {"x": x}, threads=1)
    two, _ = run_native(model, {"x": x}, threads=2)
    np.testing.assert_array_equal(one, two)


@given(
    seed=st.integers(0, 2**31 - 1),
    out=st.sampled_from(FEW_PIXEL_OUTPUTS),
    n=st.integers(1, 2),
    group=st.sampled_from([1, 1, 2]),
    cg=st.integers(64, 700),
    extra=st.integers(0, 40),
)
@settings(max_examples=15, deadline=None, derandomize=True)
def test_few_pixels_pointwise(seed, out, n, group, cg, extra) -> None:
    """Pointwise convs (1x1, stride 1, no padding) on few pixels pack A^T straight from the
    input planes, short row tiles zero padded, the last tile of the last channel read inside
    the input; several K blocks, images and groups."""
    rng = np.random.default_rng(seed)
    mg = -(-(32 * 1024) // cg) + extra
    x = rand(rng, [n, group * cg, *out])
    w = rand(rng, [group * mg, cg, 1, 1]) / np.float32(10)
    b = rand(rng, [group * mg])
    attrs = {"group": group}
    assert "conv_few_pixels" in check(x, w, b, attrs, "Relu")
    model = conv_model(list(x.shape), w, b, attrs, TensorProto.FLOAT)
    one, _ = run_native(model, {"x": x}, threads=1)
    two, _ = run_native(model, {"x": x}, threads=2)
    np.testing.assert_array_equal(one, two)


# The AVX-512 plane kernels' flat pass (f32_dwconv2d_flat): stride 1 with the output the input's
# size, stride 2 with the input twice the output, on planes of 10x10 / 12x12 outputs and up.
AVX512 = sliver.cpu_info()["dispatch"]["avx512f"]


@st.composite
def flat_dw_case(draw):
    k = draw(st.sampled_from([3, 5]))
    s = draw(st.sampled_from([1, 2]))
    out = [draw(st.integers(10 if s == 1 else 12, 70 if s == 1 else 32)) for _ in range(2)]
    out[draw(st.integers(0, 1))] = draw(st.integers(1, 40))  # some planes 1-9 wide too
    if s == 1:
        pads = [draw(st.integers(0, k - 1)) for _ in range(2)]
        pads += [k - 1 - p for p in pads]  # out = in
    else:
        # out = floor((2 out + pb + pe - k) / 2) + 1: pb + pe in {k - 2, k - 1}
        pads = [draw(st.integers(0, k - 1)) for _ in range(2)]
        pads += [max(0, draw(st.integers(k - 2, k - 1)) - p) for p in pads]
        if any(pb + pe not in (k - 2, k - 1) for pb, pe in zip(pads[:2], pads[2:], strict=True)):
            pads = [k // 2 - 1 + (k % 2)] * 2 + [k // 2 - 1] * 2  # sums k - 2 (k odd)
    c = draw(st.integers(1, 20))
    n = draw(st.integers(1, 2))
    act = draw(st.sampled_from(["", "Relu", "Clip", "Sigmoid"]))
    return n, c, k, s, [s * o for o in out], pads, act, draw(st.booleans())


@given(seed=st.integers(0, 2**31 - 1), case=flat_dw_case())
@settings(max_examples=60, deadline=None, derandomize=True)
def test_depthwise_flat(seed: int, case) -> None:
    """Depthwise geometries of the flat pass: column edges on every vector (planes 1-70 wide, so
    vectors span several rows), top and bottom rows, pads on either side, stride-2 parity
    planes, every clamp; where AVX-512 is usable the flat kernel must be the one that ran."""
    n, c, k, s, size, pads, act, residual = case
    rng = np.random.default_rng(seed)
    x = rand(rng, [n, c, *size])
    w = rand(rng, [c, 1, k, k])
    b = rand(rng, [c])
    attrs = {"group": c, "strides": [s, s], "pads": pads}
    want, _ = reference(x, w, b, attrs)
    if s == 2:
        assert list(want.shape[2:]) == [v // 2 for v in size], (want.shape, size, pads)
    res = rand(rng, want.shape) if residual else None
    impl = check(x, w, b, attrs, act, "Relu" if residual else "", res)
    out_pixels = want.shape[2] * want.shape[3]
    flat = out_pixels >= 100 if s == 1 else 144 <= out_pixels <= 1024
    if AVX512 and flat:
        assert impl.startswith(f"conv_depthwise f32_dwconv2d_{k}x{k}s{s}_avx512"), impl


def test_depthwise_weights_as_input() -> None:
    """Depthwise weights that are not constants reach the channel-blocked kernel too (laid out
    per run instead of once at load), on both sides of an 8-channel block."""
    rng = np.random.default_rng(12)
    x, w, b = rand(rng, [2, 11, 9, 10]), rand(rng, [11, 1, 3, 3]), rand(rng, [11])
    attrs = {"group": 11, "strides": [2, 2], "pads": [1, 0, 1, 2]}
    model = conv_model(list(x.shape), w, b, attrs, TensorProto.FLOAT)
    (w_init,) = [t for t in model.graph.initializer if t.name == "w"]
    model.graph.initializer.remove(w_init)
    model.graph.input.append(helper.make_tensor_value_info("w", TensorProto.FLOAT, list(w.shape)))
    got, impl = run_native(model, {"x": x, "w": w})
    assert "f32_dwconv_c8" in impl, impl
    want, scale = reference(x, w, b, attrs)
    assert np.all(np.abs(got - want) <= SUM_ABS_REL_TOL * scale + 1e-30), impl


def test_special_values() -> None:
    """NaN and infinity propagate through every path as through the direct sum."""
    rng = np.random.default_rng(11)
    for c, m, group, kernel, strides in [
        (16, 16, 1, 3, 1),  # Winograd
        (128, 128, 1, 3, 1),  # Winograd, tiles on the rows
        (4, 8, 1, 3, 2),  # im2col
        (8, 8, 8, 3, 1),  # depthwise plane kernel
    ]:
        x = rand(rng, [1, c, 12, 12])
        x[0, 0, 5, 6] = np.nan
        x[0, c - 1, 2, 3] = np.inf
        w = rand(rng, [m, c // group, kernel, kernel])
        attrs = {"group": group, "strides": [strides] * 2, "pads": [1] * 4}
        model = conv_model(list(x.shape), w, None, attrs, TensorProto.FLOAT)
        got, impl = run_native(model, {"x": x})
        want = ReferenceEvaluator(model).run(None, {"x": x})[0]
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=impl)
        ok = np.isfinite(want)
        np.testing.assert_allclose(got[ok], want[ok], rtol=1e-4, atol=1e-4, err_msg=impl)


def test_scalar_kernels_in_subprocess() -> None:
    """SLIVER_ISA=scalar selects the portable twins (GEMM panels of 8, scalar Winograd
    transforms and depthwise stencils); every path must still agree with the reference."""
    code = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        import test_f32_conv as t
        for case in t.PATHS:
            for epilogue in ("plain", "fused"):
                t.test_each_path(case, epilogue)
        t.test_larger_layers()
        print("scalar ok", __import__("sliver").cpu_info())
        """
    )
    run_scalar_isa(code)


def test_error_bound_is_not_vacuous() -> None:
    """The tolerance catches a real mistake: one weight off by 1e-3 of its size."""
    rng = np.random.default_rng(5)
    x, w = rand(rng, [1, 16, 10, 10]), rand(rng, [16, 16, 3, 3])
    attrs = {"pads": [1, 1, 1, 1]}
    model = conv_model(list(x.shape), w * np.float32(1.001), None, attrs, TensorProto.FLOAT)
    got, _ = run_native(model, {"x": x})
    want, scale = reference(x, w, None, attrs)
    assert not np.all(np.abs(got - want) <= SUM_ABS_REL_TOL * scale)
    assert math.isfinite(float(np.max(np.abs(got - want))))
