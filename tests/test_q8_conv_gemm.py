"""Large channels-last 8-bit convs on the GEMM path (q8_conv_nhwc.h gemm_path, qgemm.h).

The path gathers each output pixel's window (im2col, zero-point borders) a few panels at a time
inside the GEMM driver, or reads a 1x1 stride-1 conv's NHWC input as A directly, and finishes
the tiles with the GEMM epilogue (including requant.h's short float32 form where the weights'
bounds prove it exact). What can go wrong: windows at every border, stride and dilation, pixel
counts that leave partial panels and tasks, K tails (K not a multiple of 4 or 32), column tails,
zero points at their extremes (0 / 255, -128 / 127: the largest |x - x_zp|, which the exact
kernel and the form choice must survive), per-channel weights and the thread split. Every case
is compared bit for bit with onnx.reference's QLinearConv (NCHW, then the fused clamp), and must
actually run on the GEMM path.
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
from onnx.reference import ReferenceEvaluator


def _zp(draw, rng, dt):  # noqa: ANN001, ANN202
    lo, hi = tq.qrange(dt)
    return np.array(draw(st.sampled_from([lo, hi, lo, hi, int(rng.integers(lo, hi + 1))])), dt)


def _fast_safe_weights(rng, dt, shape):  # noqa: ANN001, ANN202
    """7-bit weights with a few extremes: panels the pair fixes make fast-safe."""
    lo, hi = tq.qrange(dt)
    shift = 128 if dt == np.uint8 else 0
    w = rng.integers(-64, 64, size=shape) + shift
    hit = rng.random(shape) < 0.003
    w[hit] = rng.choice([lo, hi, lo + 1, hi - 1], hit.sum())
    return w.astype(dt)


@st.composite
def gemm_cases(draw, pointwise: bool, fast: bool = False, symmetric: bool = False):  # noqa: ANN001, ANN201
    """fast: weights whose panels are fast-safe (after pair fixes), which take the GEMM path
    from K = 256 (1x1) / 576 (windows) on; else full-range weights, from K = 512 / 1024.
    symmetric: u8 input, int8 weights with zero points 0 and C a multiple of 4 (the common
    quantized-CNN case, where the VNNI GEMM reads the windows in place, no row sums)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if pointwise:  # 1x1 stride 1, K = C >= 512 (256 fast)
        ch = draw(st.integers(256 if fast else 512, 700))
        oc = draw(st.sampled_from([1, 7, 16, 24, 33, 64, 100]))
        kh = kw = sh = sw = dh = dw = 1
        pads = [0, 0, 0, 0]
    else:  # gathered windows, K >= 1024 and OC >= 256 (fast: K >= 576, 1x1 K >= 256)
        kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
        k_min = (256 if kh * kw == 1 else 576) if fast else 1024
        ch = draw(st.integers(-(-k_min // (kh * kw)), (k_min + 80) // (kh * kw) + 1))
        oc = draw(st.sampled_from([16, 40, 64, 129] if fast else [256, 257, 271, 300]))
        sh, sw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
        dh, dw = draw(st.sampled_from([1, 1, 2])), draw(st.sampled_from([1, 1, 2]))
        pads = [draw(st.integers(0, 2)) for _ in range(4)]
        if kh * kw == 1 and sh * sw == 1 and not any(pads):
            sh = 2  # keep it a gathered conv
    if symmetric:
        ch = -(-ch // 4) * 4
    h = draw(st.integers(max(1, (kh - 1) * dh + 1 - pads[0] - pads[2]), 9))
    w = draw(st.integers(max(1, (kw - 1) * dw + 1 - pads[1] - pads[3]), 9))
    batch = draw(st.integers(1, 2))
    xt, wt, yt = (draw(st.sampled_from([np.uint8, np.int8])) for _ in range(3))
    if symmetric:
        xt, wt = np.uint8, np.int8
    per_channel = draw(st.booleans())
    wshape = (oc, ch, kh, kw)
    c = {
        "w": _fast_safe_weights(rng, wt, wshape) if fast else tq.rand_q(rng, wt, wshape),
        "xz": _zp(draw, rng, xt),
        "wz": np.array([_zp(draw, rng, wt) for _ in range(oc)], wt)
        if per_channel
        else _zp(draw, rng, wt),
        "yz": tq.rand_zp(rng, yt),
        "xs": tq.rand_scale(rng),
        "ws": np.exp(rng.uniform(-9, -5, size=oc)).astype(np.float32)
        if per_channel
        else tq.rand_scale(rng, 1e-4, 1e-2),
        "ys": tq.rand_scale(rng, 0.02, 0.5),
    }
    if symmetric:
        c["wz"] = np.zeros_like(c["wz"])
    tq.draw_requant_extremes(draw, rng, c, oc)
    attrs = {
        "group": 1,
        "kernel_shape": [kh, kw],
        "strides": [sh, sw],
        "dilations": [dh, dw],
        "pads": pads,
    }
    lo, hi = tq.qrange(yt)
    if draw(st.booleans()):  # a fused Relu / Clip
        attrs["activation_min"] = int(rng.integers(lo, hi + 1))
        attrs["activation_max"] = int(rng.integers(attrs["activation_min"], hi + 1))
    x = tq.rand_q(rng, xt, (batch, h, w, ch))
    return x, c, attrs


def _onnx_reference(x, c, attrs) -> np.ndarray:  # noqa: ANN001
    """onnx.reference QLinearConv on the NCHW input, then the fused clamp, back to NHWC."""
    names = ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"] + (["bias"] if "bias" in c else [])
    conv_attrs = {k: v for k, v in attrs.items() if not k.startswith("activation_")}
    node = oh.make_node("QLinearConv", names, ["y"], **conv_attrs)
    xin = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    ins = [oh.make_tensor_value_info("x", tq.TP_OF[x.dtype], xin.shape)]
    outs = [oh.make_tensor_value_info("y", tq.TP_OF[c["yz"].dtype], None)]
    inits = [onnx.numpy_helper.from_array(np.asarray(c[k]), k) for k in names[1:]]
    model = oh.make_model(
        oh.make_graph([node], "g", ins, outs, inits), opset_imports=[oh.make_opsetid("", 21)]
    )
    (y,) = ReferenceEvaluator(model).run(None, {"x": xin})
    lo, hi = tq.qrange(c["yz"].dtype)
    y = np.clip(y, attrs.get("activation_min", lo), attrs.get("activation_max", hi))
    return np.ascontiguousarray(y.transpose(0, 2, 3, 1)).astype(c["yz"].dtype)


def _run(x, c, attrs, threads: int = 1) -> np.ndarray:  # noqa: ANN001
    model, xin = tq._nhwc_conv_model(x, c, attrs, False)
    so = sliver.SessionOptions()
    so.intra_op_num_threads = threads
    s = sliver.InferenceSession(model.SerializeToString(), so)
    impls = [impl for _, _, impl in s.profile_steps()]
    assert len(impls) == 1 and "q8 gemm" in impls[0], impls
    return s.run(None, {"x": tq.fenced(xin)})[0]


def _check(x, c, attrs, threads: int = 1) -> None:  # noqa: ANN001
    want = _onnx_reference(x, c, attrs)
    tq.assert_same(want, tq._ref_qconv_nhwc(x, c, attrs), "oracles")
    tq.assert_same(_run(x, c, attrs, threads), want, f"{attrs} x{x.shape} oc{c['w'].shape[0]}")


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=gemm_cases(pointwise=True))
def test_pointwise_gemm(case) -> None:  # noqa: ANN001
    _check(*case)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=gemm_cases(pointwise=False))
def test_gathered_gemm(case) -> None:  # noqa: ANN001
    _check(*case)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=st.booleans().flatmap(lambda pw: gemm_cases(pointwise=pw, fast=True)))
def test_fast_panel_gemm(case) -> None:  # noqa: ANN001
    """Fast-safe weights (pair fixes included) on the GEMM path down to K = 256 / 576."""
    _check(*case)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=st.booleans().flatmap(lambda fast: gemm_cases(False, fast=fast, symmetric=True)))
def test_symmetric_weights_windows_in_place(case) -> None:  # noqa: ANN001
    """u8 input, zero weight zero points (per tensor or per channel), C % 4 == 0: with VNNI the
    GEMM reads each window's rows in place through pointer tables (edge windows gathered)."""
    _check(*case)
    x, c, attrs = case
    _check(x, c, attrs, threads=2)


@pytest.mark.parametrize("seed", range(4))
def test_gemm_two_threads(seed: int) -> None:
    """Enough pixels and panels that rows and columns are split over tasks on two threads."""
    rng = np.random.default_rng(seed)
    xt = np.uint8 if seed % 2 else np.int8
    ch, oc, k = (120, 264, 3) if seed < 2 else (530, 72, 1)
    lo, hi = tq.qrange(xt)
    c = {
        "w": tq.rand_q(rng, np.int8, (oc, ch, k, k)),
        "xz": np.array(hi if seed % 2 else lo, xt),
        "wz": np.zeros(oc, np.int8),
        "yz": tq.rand_zp(rng, xt),
        "xs": tq.rand_scale(rng),
        "ws": np.exp(rng.uniform(-9, -6, size=oc)).astype(np.float32),
        "ys": tq.rand_scale(rng, 0.05, 0.5),
        "bias": rng.integers(-5000, 5000, size=oc).astype(np.int32),
    }
    attrs = {
        "group": 1,
        "kernel_shape": [k, k],
        "strides": [1 + seed % 2, 1 + seed % 2] if k > 1 else [1, 1],
        "dilations": [1, 1],
        "pads": [k // 2] * 4,
    }
    x = tq.rand_q(rng, xt, (2, 13, 17, ch))
    _check(x, c, attrs, threads=2)


def test_gemm_scalar_twin() -> None:
    """SLIVER_ISA=scalar: the portable GEMM kernels and packing run the same path exactly."""
    import os
    import textwrap

    code = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        import test_q8_conv_gemm as t
        from hypothesis import given, settings, HealthCheck

        @settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
        @given(case=t.gemm_cases(pointwise=False))
        def check(case):
            t._check(*case)

        check()
        print("scalar ok")
        """
    )
    run_scalar_isa(code)
