"""Dense channels-last 8-bit convs on the widened-image kernels (q8_conv_nhwc.h, q8_wconv.h).

The kernel reads each window row's KW * C values as int16 pairs from a padded image of x - x_zp,
so what can go wrong is geometry: odd runs (KW * C odd: one value read past the run against a
zero weight), segments split by dilation, windows at every border and stride, first layers on
1-4 channels read straight from NCHW, the last window of the last image (the scratch slack),
column tails (OC not a multiple of 16 or 8), and the tile of 6 pixels crossing output rows and
images. Every case is checked bit for bit against the independent numpy oracle of
test_quant_ops (exact int64 sums, int32 wrap, requant.h's reference order), with X ending at
an unreadable page.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import sliver
import test_quant_ops as tq
from helpers import run_scalar_isa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import helper as oh

VNNI = "vnni" in sliver.cpu_info()["kernels"]["q8_gemm"]


@st.composite
def small_c_cases(draw, max_c: int = 4):  # noqa: ANN001, ANN201
    """Dense convs on few channels (first layers) with every border, stride and code type."""
    ch = draw(st.integers(1, max_c))
    oc = draw(st.sampled_from([1, 5, 8, 9, 16, 17, 24, 32, 40]))
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    sh, sw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    dh, dw = draw(st.sampled_from([1, 1, 2])), draw(st.sampled_from([1, 1, 2]))
    pads = [draw(st.integers(0, 2)) for _ in range(4)]
    h = draw(st.integers(max(1, (kh - 1) * dh + 1 - pads[0] - pads[2]), 13))
    w = draw(st.integers(max(1, (kw - 1) * dw + 1 - pads[1] - pads[3]), 13))
    batch = draw(st.integers(1, 2))
    xt, wt, yt = (draw(st.sampled_from([np.uint8, np.int8])) for _ in range(3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    per_channel = draw(st.booleans())
    c = {
        "w": tq.rand_q(rng, wt, (oc, ch, kh, kw)),
        "xz": tq.rand_zp(rng, xt),
        "wz": np.array([tq.rand_zp(rng, wt) for _ in range(oc)], wt)
        if per_channel
        else tq.rand_zp(rng, wt),
        "yz": tq.rand_zp(rng, yt),
        "xs": tq.rand_scale(rng),
        "ws": np.exp(rng.uniform(-7, -2, size=oc)).astype(np.float32)
        if per_channel
        else tq.rand_scale(rng, 1e-3, 0.1),
        "ys": tq.rand_scale(rng, 0.005, 0.2),
    }
    if draw(st.booleans()):
        c["bias"] = rng.integers(-20000, 20000, size=oc).astype(np.int32)
    attrs = {
        "group": 1,
        "kernel_shape": [kh, kw],
        "strides": [sh, sw],
        "dilations": [dh, dw],
        "pads": pads,
    }
    if draw(st.booleans()):  # a fused Relu
        attrs["activation_min"] = int(c["yz"])
    x = tq.rand_q(rng, xt, (batch, h, w, ch))
    return x, c, attrs, draw(st.booleans())


def _run(x, c, attrs, nchw_input, threads: int = 1) -> np.ndarray:  # noqa: ANN001
    model, xin = tq._nhwc_conv_model(x, c, attrs, nchw_input)
    so = sliver.SessionOptions()
    so.intra_op_num_threads = threads
    s = sliver.InferenceSession(model.SerializeToString(), so)
    impls = [impl for _, _, impl in s.profile_steps()]
    # with VNNI the exact GEMM takes convs of K >= 16, 64 reading NCHW (q8_conv_nhwc.h, gemm_wins)
    k = int(np.prod(c["w"].shape[1:]))
    path = (
        "q8 gemm" if VNNI and k >= (64 if nchw_input else 16) and attrs["group"] == 1 else "wconv"
    )
    assert len(impls) == 1 and path in impls[0], impls
    return s.run(None, {"x": tq.fenced(xin)})[0]


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=small_c_cases())
def test_small_channel_conv(case) -> None:  # noqa: ANN001
    """C = 1-4: the first-layer shapes, NHWC or NCHW input."""
    x, c, attrs, nchw = case
    tq.assert_same(_run(x, c, attrs, nchw), tq._ref_qconv_nhwc(x, c, attrs), f"{attrs} x{x.shape}")


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=small_c_cases(max_c=37))
def test_wide_channel_conv(case) -> None:  # noqa: ANN001
    """C up to 37: long and odd segments, several pairs per segment."""
    x, c, attrs, nchw = case
    tq.assert_same(_run(x, c, attrs, nchw), tq._ref_qconv_nhwc(x, c, attrs), f"{attrs} x{x.shape}")


@pytest.mark.parametrize("seed", range(4))
def test_first_layer_two_threads(seed: int) -> None:
    """An image big enough that the widening and the tiles are split over two threads."""
    rng = np.random.default_rng(seed)
    xt, wt = (np.uint8, np.int8) if seed % 2 else (np.int8, np.int8)
    ch, oc = 1 + seed % 3, 16 * (1 + seed % 2)
    stride = 1 + seed // 2
    c = {
        "w": tq.rand_q(rng, wt, (oc, ch, 3, 3)),
        "xz": tq.rand_zp(rng, xt),
        "wz": np.zeros(oc, wt),
        "yz": tq.rand_zp(rng, xt),
        "xs": tq.rand_scale(rng),
        "ws": np.exp(rng.uniform(-7, -2, size=oc)).astype(np.float32),
        "ys": tq.rand_scale(rng, 0.005, 0.2),
        "bias": rng.integers(-5000, 5000, size=oc).astype(np.int32),
    }
    attrs = {
        "group": 1,
        "kernel_shape": [3, 3],
        "strides": [stride, stride],
        "dilations": [1, 1],
        "pads": [1, 1, 1, 1],
    }
    x = tq.rand_q(rng, xt, (2, 37, 61, ch))
    got = _run(x, c, attrs, seed % 2 == 0, threads=2)
    tq.assert_same(got, tq._ref_qconv_nhwc(x, c, attrs), f"seed {seed}")


def test_one_session_many_sizes() -> None:
    """One session on growing and shrinking images: the reused scratch image is re-padded."""
    rng = np.random.default_rng(7)
    oc, ch = 16, 3
    c = {
        "w": tq.rand_q(rng, np.int8, (oc, ch, 3, 3)),
        "xz": np.array(3, np.uint8),
        "wz": np.array(0, np.int8),
        "yz": np.array(128, np.uint8),
        "xs": np.float32(0.02),
        "ws": np.float32(0.01),
        "ys": np.float32(0.05),
    }
    attrs = {
        "group": 1,
        "kernel_shape": [3, 3],
        "strides": [1, 1],
        "dilations": [1, 1],
        "pads": [1, 1, 1, 1],
    }
    names = ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"]
    node = oh.make_node("QLinearConv", names, ["y"], domain="sliver", channels_last=1, **attrs)
    ins = [oh.make_tensor_value_info("x", onnx.TensorProto.UINT8, ["n", "h", "w", ch])]
    outs = [oh.make_tensor_value_info("y", onnx.TensorProto.UINT8, None)]
    inits = [onnx.numpy_helper.from_array(np.asarray(c[k]), k) for k in names[1:]]
    g = oh.make_graph([node], "g", ins, outs, inits)
    opsets = [oh.make_opsetid("", 21), oh.make_opsetid("sliver", 1)]
    model = oh.make_model(g, opset_imports=opsets, ir_version=10)
    s = sliver.InferenceSession(model.SerializeToString())
    for shape in [(1, 20, 30), (2, 5, 7), (1, 40, 9), (1, 1, 1), (1, 6, 33)]:
        x = tq.rand_q(rng, np.uint8, (*shape, ch))
        (got,) = s.run(None, {"x": tq.fenced(x)})
        tq.assert_same(got, tq._ref_qconv_nhwc(x, c, attrs), f"x{x.shape}")


def test_scalar_twin() -> None:
    """SLIVER_ISA=scalar: the portable wconv kernel and widening agree with the oracle too."""
    import os
    import textwrap

    code = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        import test_q8_conv_small as t
        from hypothesis import given, settings, HealthCheck

        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
        @given(case=t.small_c_cases(max_c=20))
        def check(case):
            x, c, attrs, nchw = case
            t.tq.assert_same(t._run(x, c, attrs, nchw), t.tq._ref_qconv_nhwc(x, c, attrs), "scalar")

        check()
        print("scalar ok")
        """
    )
    run_scalar_isa(code)
