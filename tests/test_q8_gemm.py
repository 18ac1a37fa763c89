"""8-bit GEMM (csrc/include/sliver/qgemm.h): bit-exact against numpy int64 and onnx.reference.

Every case runs the kernels it names (scalar twins, AVX2 and AVX-512 VNNI when usable, the
exact and the fast chain, 1 and 2 threads) on inputs copied to end at a guard page (an over-read
crashes the test) and writes into a view of a sentinel-filled buffer (a stray write changes the
sentinel).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

_C = pytest.importorskip("sliver._C")
T = _C.testing

KERNELS = T.q8_gemm_kernels()
HAVE_AVX2 = any(k["isa"] == "avx2" and k["usable"] for k in KERNELS)
# isa= tiers whose kernels differ on this CPU: the portable twins, AVX2, and the best (VNNI)
HAVE_WIDER = any(k["isa"] not in ("scalar", "avx2") and k["usable"] for k in KERNELS)
ISAS = ["scalar"] + ["avx2"] * HAVE_AVX2 + ["native"] * HAVE_WIDER
# tiers whose path="fast" kernel is the classic saturating chain (VNNI's vpdpbusd is exact)
FAST_EXACT = next(k["exact"] for k in KERNELS if k["usable"] and k["a_format"] == "offset_u8")
SATURATING = [i for i in ISAS if i != "native" or not FAST_EXACT]
GUARD = 3  # rows/columns of sentinel around every output
SENTINEL = {np.int32: -0x5A5A5A5B, np.float32: -7.5e30, np.uint8: 0xA5, np.int8: -0x5B}
I8 = (np.uint8, np.int8)


def info(t):
    return np.iinfo(t)


def ref_int32(a, za, b, zb):
    """sum_k (a - za) (b - zb[n]) in int64, then wrapped to int32 like the kernels."""
    acc = (a.astype(np.int64) - int(za)) @ (b.astype(np.int64) - np.asarray(zb, np.int64))
    return acc.astype(np.int32)


def guarded(m, n, dtype, extra_cols=0):
    """A sentinel-filled buffer and the m x n view inside it (row stride n + 2*GUARD + extra)."""
    buf = np.full((m + 2 * GUARD, n + 2 * GUARD + extra_cols), SENTINEL[dtype], dtype)
    return buf, buf[GUARD : GUARD + m, GUARD : GUARD + n]


def check_guard(buf, m, n):
    inner = np.zeros(buf.shape, bool)
    inner[GUARD : GUARD + m, GUARD : GUARD + n] = True
    s = SENTINEL[buf.dtype.type]
    assert (buf[~inner] == s).all(), "write outside C"


def with_lda(a, extra):
    """The same matrix as a view with row stride K + extra (exercises lda)."""
    if extra == 0:
        return a
    wide = np.zeros((a.shape[0], a.shape[1] + extra), a.dtype)
    wide[:, : a.shape[1]] = a
    return wide[:, : a.shape[1]]


def run(a, packed, za, dtype, m, n, **kw):
    buf, out = guarded(m, n, dtype, extra_cols=kw.pop("ldc_extra", 0))
    T.q8_gemm(a, packed, int(za), out, fenced=True, **kw)
    check_guard(buf, m, n)
    return out.copy()


def values(draw_rng, shape, dtype, mode):
    lo, hi = info(dtype).min, info(dtype).max
    if mode == "extreme":
        return draw_rng.choice(np.array([lo, hi], dtype), shape)
    if mode in ("7bit", "spiky"):  # 7bit: weights that keep the classic chain exact
        v = draw_rng.integers(-64, 64, shape)
        if mode == "spiky":  # and a few large ones: unsafe pairs that packing fixes
            hit = draw_rng.random(shape) < 0.02
            v[hit] = draw_rng.choice(np.array([-128, -127, -100, 100, 126, 127]), hit.sum())
        return (v + (128 if dtype == np.uint8 else 0)).astype(dtype)
    return draw_rng.integers(lo, hi + 1, shape).astype(dtype)


def f32s(lo, hi):
    """float32 values in [lo, hi] (bounds rounded to float32 first)."""
    return st.floats(float(np.float32(lo)), float(np.float32(hi)), width=32)


dims = st.one_of(
    st.integers(1, 12), st.integers(13, 70), st.integers(118, 122), st.integers(1, 200)
)


@st.composite
def gemm_case(draw):
    m, n, k = draw(dims), draw(dims), draw(st.one_of(st.integers(1, 10), dims))
    at, bt = draw(st.sampled_from(I8)), draw(st.sampled_from(I8))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    amode = draw(st.sampled_from(["random", "extreme"]))
    bmode = draw(st.sampled_from(["random", "extreme", "7bit", "spiky"]))
    a = values(rng, (m, k), at, amode)
    b = values(rng, (k, n), bt, bmode)
    per_col = draw(st.booleans())
    zmode = draw(st.sampled_from(["random", "extreme", "zero"]))
    if zmode == "zero":
        za, zb = 0, np.zeros(n if per_col else 1, np.int64)
    elif zmode == "extreme":
        za = rng.choice([info(at).min, info(at).max])
        zb = rng.choice([info(bt).min, info(bt).max], n if per_col else 1)
    else:
        za = rng.integers(info(at).min, info(at).max + 1)
        zb = rng.integers(info(bt).min, info(bt).max + 1, n if per_col else 1)
    trans = draw(st.booleans())
    lda_extra = draw(st.sampled_from([0, 0, 5]))
    return a, int(za), b, zb.astype(np.int32), trans, lda_extra


def pack(b, zb, trans):
    src = np.ascontiguousarray(b.T) if trans else np.ascontiguousarray(b)
    return T.q8_pack_b(src, zb, trans_b=trans, fenced=True)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    gemm_case(), st.sampled_from(["auto", "exact"]), st.sampled_from(ISAS), st.sampled_from([1, 2])
)
def test_int32_exact(case, path, isa, threads):
    a, za, b, zb, trans, lda_extra = case
    m, k = a.shape
    n = b.shape[1]
    packed = pack(b, zb, trans)
    got = run(
        with_lda(a, lda_extra),
        packed,
        za,
        np.int32,
        m,
        n,
        path=path,
        isa=isa,
        threads=threads,
        ldc_extra=lda_extra,
    )
    np.testing.assert_array_equal(got, ref_int32(a, za, b, zb.reshape(-1)))


@settings(max_examples=60, deadline=None)
@given(gemm_case())
def test_fast_chain_twins_agree_and_are_exact_when_safe(case):
    """The forced fast chain matches its scalar twin bit for bit on any input (saturation
    included), and is exact exactly where packing said so."""
    a, za, b, zb, trans, _ = case
    m, n = a.shape[0], b.shape[1]
    packed = pack(b, zb, trans)
    outs = [run(a, packed, za, np.int32, m, n, path="fast", isa=s) for s in SATURATING]
    for o in outs[1:]:
        np.testing.assert_array_equal(o, outs[0])
    ref = ref_int32(a, za, b, zb.reshape(-1))
    safe = np.repeat(np.array(packed.panel_fast_safe, bool), 16)[:n]
    np.testing.assert_array_equal(outs[0][:, safe], ref[:, safe])
    if "native" not in SATURATING and "native" in ISAS:  # VNNI: exact on every panel
        np.testing.assert_array_equal(run(a, packed, za, np.int32, m, n, path="fast"), ref)


def test_fast_chain_saturates_where_packing_says_unsafe():
    # u8 255 x s8 (127, 127): the pair sum 64770 does not fit s16.
    k, n = 64, 16
    a = np.full((4, k), 255, np.uint8)
    b = np.full((k, n), 127, np.int8)
    packed = pack(b, np.zeros(1, np.int32), False)
    assert packed.fast_panels == 0
    ref = ref_int32(a, 0, b, [0])
    for isa in SATURATING:
        fast = run(a, packed, 0, np.int32, 4, n, path="fast", isa=isa)
        assert (fast != ref).all()  # what the classic chain alone would return
    for isa in ISAS:
        for path in ("auto", "exact"):
            got = run(a, packed, 0, np.int32, 4, n, path=path, isa=isa)
            np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize(
    "w0,w1,safe",
    [
        (64, 64, True),
        (65, 64, False),
        (128 - 1, 1, True),
        (127, 2, False),
        (-64, -64, True),
        (-65, -64, False),
        (-128, 0, True),
        (-128, -1, False),
        (127, -128, True),
    ],
)
@pytest.mark.parametrize("k", [4, 64])
def test_fast_safe_pair_bound(w0, w1, safe, k):
    """A pair is safe iff 255 * (positive sum) <= 32767 and 255 * (negative sum) >= -32768. An
    unsafe one is fixed when the panel's K affords a fix (K = 64: up to 4), else the panel
    stays on the exact kernel; every path is exact either way."""
    b = np.zeros((k, 16), np.int8)
    b[0, 3], b[1, 3] = w0, w1
    packed = pack(b, np.zeros(1, np.int32), False)
    assert list(packed.panel_fix_counts) == [0 if safe or k == 4 else 1]
    assert bool(packed.panel_fast_safe[0]) == (safe or k == 64)
    a = np.zeros((5, k), np.uint8)
    a[:, :4] = [[255] * 4, [0, 255, 0, 255], [255, 0, 7, 9], [0, 0, 0, 0], [255, 0, 0, 0]]
    paths = ["auto", "exact"] + (["fast"] if packed.panel_fast_safe[0] else [])
    for path in paths:
        for isa in ISAS:
            got = run(a, packed, 0, np.int32, 5, 16, path=path, isa=isa)
            np.testing.assert_array_equal(got, ref_int32(a, 0, b, [0]))


@pytest.mark.parametrize("at", I8)
@pytest.mark.parametrize("bt", I8)
def test_pair_fixes_exact_at_the_extremes(at, bt):
    """Fixed panels (every unsafe pattern of extreme weight pairs, a few per panel) against
    extreme activations and zero points, on every kernel and path."""
    rng = np.random.default_rng(11)
    k, n = 1024, 70  # a panel affords K / 16 fixes: 64 >= 16 columns x 3
    b = values(rng, (k, n), bt, "7bit")
    lo_b, hi_b = int(info(bt).min), int(info(bt).max)
    shift = 128 if bt == np.uint8 else 0
    for j in range(n):  # 3 unsafe pairs per column: both large, same sign
        for p in rng.choice(k // 2, 3, replace=False):
            w = rng.choice([[lo_b, lo_b], [hi_b, hi_b], [hi_b, shift + 2], [shift - 65, lo_b]])
            b[2 * p, j], b[2 * p + 1, j] = w
    lo_a, hi_a = info(at).min, info(at).max
    a = rng.choice(np.array([lo_a, hi_a, 0], at), (37, k))
    for zb in (lo_b, hi_b, shift):
        packed = pack(b, np.array([zb], np.int32), False)
        assert packed.fast_panels == packed.panels
        assert list(packed.panel_fix_counts) == [3 * 16] * (n // 16) + [3 * (n % 16)]
        for za in (lo_a, hi_a):
            want = ref_int32(a, za, b, [zb])
            for path in ("auto", "exact", "fast"):
                for isa in ISAS:
                    got = run(a, packed, za, np.int32, 37, n, path=path, isa=isa, threads=2)
                    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("at", I8)
@pytest.mark.parametrize("bt", I8)
@pytest.mark.parametrize("isa", ISAS)
def test_all_extremes_every_pattern(at, bt, isa):
    """Every combination of extreme values in a k group, with extreme zero points."""
    lo_a, hi_a, lo_b, hi_b = info(at).min, info(at).max, info(bt).min, info(bt).max
    pats = np.array([[(i >> j) & 1 for j in range(8)] for i in range(256)])
    a = np.where(pats[:, :8], hi_a, lo_a).astype(at)  # 256 rows, K = 8
    b = np.where(pats[::7, :8].T, hi_b, lo_b).astype(bt)  # 8 x 37
    for za in (lo_a, hi_a, 0 if at == np.int8 else 128):
        for zb in (lo_b, hi_b):
            packed = pack(b, np.array([zb], np.int32), False)
            for path in ("auto", "exact"):
                got = run(a, packed, za, np.int32, 256, b.shape[1], path=path, isa=isa, threads=2)
                np.testing.assert_array_equal(got, ref_int32(a, za, b, [zb]))


@pytest.mark.parametrize("k", [0, 1, 2, 3, 4, 5, 15, 16, 17, 31, 33])
def test_tiny_and_empty(k):
    rng = np.random.default_rng(k)
    for m, n in [(1, 1), (0, 5), (5, 0), (3, 17), (5, 33)]:
        a = rng.integers(0, 256, (m, k)).astype(np.uint8)
        b = rng.integers(-128, 128, (k, n)).astype(np.int8)
        bias = rng.integers(-1000, 1000, n).astype(np.int32)
        packed = pack(b, np.array([3], np.int32), False)
        for isa in ISAS:
            got = run(a, packed, 9, np.int32, m, n, bias=bias, isa=isa)
            np.testing.assert_array_equal(got, ref_int32(a, 9, b, [3]) + bias)


@pytest.mark.skipif(not HAVE_AVX2, reason="needs AVX2")
@given(
    st.integers(1, 23),
    st.integers(0, 70),
    st.sampled_from(I8),
    st.integers(0, 3),
    st.integers(0, 2**32 - 1),
)
@settings(max_examples=60, deadline=None)
def test_pack_a_avx2_matches_scalar(m, k, at, extra, seed):
    a = values(np.random.default_rng(seed), (m, k), at, "random")
    a = with_lda(a, extra)
    for x, y in zip(T.q8_pack_a(a, scalar=False), T.q8_pack_a(a, scalar=True), strict=True):
        np.testing.assert_array_equal(x, y)


# ---- requantized and float outputs ---------------------------------------------------------


def onnx_qlinear_matmul(a, sa, za, b, sb, zb, sy, zy):
    from onnx.reference.ops.op_qlinear_matmul import QLinearMatMul

    return QLinearMatMul._run(None, a, sa, za, b, sb, zb, sy, zy)[0]


def onnx_qlinear_conv_1x1(a, sa, za, b, sb, zb, sy, zy, bias):
    """QLinearConv with a 1x1 kernel: X = A^T as (1, K, M, 1), W = B^T as (N, K, 1, 1)."""
    from onnx import TensorProto, helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    m, k = a.shape
    n = b.shape[1]
    tp = {np.dtype(np.uint8): TensorProto.UINT8, np.dtype(np.int8): TensorProto.INT8}
    inits = [
        numpy_helper.from_array(v, name)
        for name, v in [
            ("sx", sa),
            ("zx", za),
            ("w", np.ascontiguousarray(b.T).reshape(n, k, 1, 1)),
            ("sw", sb),
            ("zw", zb),
            ("sy", sy),
            ("zy", zy),
            ("bias", bias),
        ]
    ]
    node = helper.make_node(
        "QLinearConv", ["x", "sx", "zx", "w", "sw", "zw", "sy", "zy", "bias"], ["y"]
    )
    g = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", tp[a.dtype], [1, k, m, 1])],
        [helper.make_tensor_value_info("y", tp[zy.dtype], [1, n, m, 1])],
        inits,
    )
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 10)])
    y = ReferenceEvaluator(model).run(None, {"x": np.ascontiguousarray(a.T).reshape(1, k, m, 1)})[0]
    return y.reshape(n, m).T


@st.composite
def scales(draw, n):
    """float32 scales over many magnitudes (ties and huge products included)."""
    exp = draw(st.integers(-14, 2))
    per = draw(st.booleans())
    vals = draw(st.lists(f32s(0.5, 2.0), min_size=n, max_size=n))
    s = (np.array(vals, np.float32) * np.float32(2.0**exp)).astype(np.float32)
    return s if per else s[:1].reshape(())


@settings(max_examples=120, deadline=None)
@given(gemm_case(), st.data())
def test_requant_matches_onnx_reference_qlinearmatmul(case, data):
    a, za, b, zb, trans, _ = case
    m, n = a.shape[0], b.shape[1]
    at, bt = a.dtype.type, b.dtype.type
    yt = data.draw(st.sampled_from(I8))
    sa = np.array(data.draw(f32s(1e-4, 1.0)), np.float32)
    sb = data.draw(scales(n))
    sy = np.array(data.draw(f32s(1e-3, 64.0)), np.float32)
    zy = np.array(data.draw(st.integers(info(yt).min, info(yt).max)), yt)
    ref = onnx_qlinear_matmul(
        a, np.array(sa, np.float32), np.array(za, at), b, sb, zb.astype(bt), sy, zy
    )
    packed = pack(b, zb, trans)
    for isa in ISAS:
        got = run(
            a,
            packed,
            za,
            yt,
            m,
            n,
            a_scale=float(sa),
            b_scale=np.atleast_1d(sb),
            y_scale=float(sy),
            y_zero_point=int(zy),
            isa=isa,
            threads=2,
        )
        np.testing.assert_array_equal(got, ref)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 40),
    st.integers(1, 40),
    st.integers(1, 130),
    st.sampled_from(I8),
    st.sampled_from(I8),
    st.booleans(),
    st.integers(0, 2**32 - 1),
)
def test_requant_matches_onnx_reference_qlinearconv_bias_per_channel(m, n, k, xt, yt, relu, seed):
    rng = np.random.default_rng(seed)
    a = values(rng, (m, k), xt, "random")
    b = values(rng, (k, n), np.int8, "random")
    za = np.array(rng.integers(info(xt).min, info(xt).max + 1), xt)
    zb = np.zeros(n, np.int8)  # per-channel weights are symmetric in ONNX QLinearConv practice
    sa = np.float32(rng.uniform(1e-3, 0.1))
    sb = rng.uniform(1e-4, 0.05, n).astype(np.float32)
    sy = np.float32(rng.uniform(0.01, 1.0))
    zy = np.array(rng.integers(info(yt).min, info(yt).max + 1), yt)
    bias = rng.integers(-50000, 50000, n).astype(np.int32)
    ref = onnx_qlinear_conv_1x1(a, np.array(sa), za, b, sb, zb, np.array(sy), zy, bias)
    qmin = int(zy) if relu else None
    if relu:  # a fused Relu after the requantization is a clamp at the zero point
        ref = np.maximum(ref, zy)
    packed = T.q8_pack_b(np.ascontiguousarray(b.T), np.zeros(n, np.int32), trans_b=True)
    for isa in ISAS:
        got = run(
            a,
            packed,
            int(za),
            yt,
            m,
            n,
            bias=bias,
            a_scale=float(sa),
            b_scale=sb,
            y_scale=float(sy),
            y_zero_point=int(zy),
            qmin=qmin,
            isa=isa,
        )
        np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("rounding", ["onnx_reference", "onnxruntime"])
def test_requant_ties_round_half_even(rounding):
    """Multiplier 0.5 puts odd sums exactly on .5. The reference adds the zero point before
    rounding (rint(x/2 + 3)); onnxruntime after (rint(x/2) + 3): ties land on different sides."""
    a = np.arange(-20, 21, dtype=np.int8).reshape(-1, 1)
    b = np.ones((1, 1), np.int8)
    packed = pack(b, np.zeros(1, np.int32), False)
    x = a[:, 0].astype(np.float64)
    want = np.rint(x * 0.5 + 3) if rounding == "onnx_reference" else np.rint(x * 0.5) + 3
    for isa in ISAS:
        got = run(
            a,
            packed,
            0,
            np.int8,
            a.shape[0],
            1,
            a_scale=0.5,
            b_scale=np.ones(1, np.float32),
            y_scale=1.0,
            y_zero_point=3,
            rounding=rounding,
            isa=isa,
        )
        np.testing.assert_array_equal(got[:, 0], want.astype(np.int8))


@settings(max_examples=60, deadline=None)
@given(gemm_case(), st.booleans(), st.data())
def test_requant_onnxruntime_rounding_float32_order(case, use_bias, data):
    """The onnxruntime order: f32(acc) * m, clamp to [qmin-zp, qmax-zp], round, + zp."""
    a, za, b, zb, trans, _ = case
    m, n = a.shape[0], b.shape[1]
    yt = data.draw(st.sampled_from(I8))
    sa = np.float32(data.draw(f32s(1e-4, 1.0)))
    sb = np.atleast_1d(data.draw(scales(n)))
    sy = np.float32(data.draw(f32s(1e-3, 64.0)))
    zy = data.draw(st.integers(info(yt).min, info(yt).max))
    qmin = data.draw(st.integers(info(yt).min, zy))
    qmax = data.draw(st.integers(zy, info(yt).max))
    bias = (
        np.random.default_rng(m * n).integers(-(2**20), 2**20, n).astype(np.int32)
        if use_bias
        else None
    )
    acc = ref_int32(a, za, b, zb.reshape(-1)) + (bias if use_bias else 0)
    mult = (np.float32(sa) * sb).astype(np.float32) / np.float32(sy)
    f = acc.astype(np.float32) * mult.astype(np.float32)
    f = np.clip(f, np.float32(qmin - zy), np.float32(qmax - zy))
    ref = (np.rint(f).astype(np.int32) + zy).astype(yt)
    packed = pack(b, zb, trans)
    for isa in ISAS:
        got = run(
            a,
            packed,
            za,
            yt,
            m,
            n,
            bias=bias,
            a_scale=float(sa),
            b_scale=sb,
            y_scale=float(sy),
            y_zero_point=zy,
            qmin=qmin,
            qmax=qmax,
            rounding="onnxruntime",
            isa=isa,
        )
        np.testing.assert_array_equal(got, ref)


@settings(max_examples=60, deadline=None)
@given(gemm_case(), st.booleans(), st.booleans(), st.data())
def test_float_output(case, use_bias, use_fbias, data):
    """y = f32(acc + bias) * f32(sa * sb[n]) + float_bias[n], each op rounded in float32."""
    a, za, b, zb, trans, _ = case
    m, n = a.shape[0], b.shape[1]
    sa = np.float32(data.draw(f32s(1e-4, 1.0)))
    sb = np.atleast_1d(data.draw(scales(n)))
    rng = np.random.default_rng(m + 7 * n)
    bias = rng.integers(-(2**20), 2**20, n).astype(np.int32) if use_bias else None
    fbias = rng.standard_normal(n).astype(np.float32) if use_fbias else None
    acc = ref_int32(a, za, b, zb.reshape(-1)) + (bias if use_bias else 0)
    ref = acc.astype(np.float32) * (np.float32(sa) * sb).astype(np.float32)
    if use_fbias:
        ref = ref + fbias
    packed = pack(b, zb, trans)
    for isa in ISAS:
        got = run(
            a,
            packed,
            za,
            np.float32,
            m,
            n,
            bias=bias,
            a_scale=float(sa),
            b_scale=sb,
            float_bias=fbias,
            isa=isa,
            threads=2,
        )
        np.testing.assert_array_equal(got, ref.astype(np.float32))


def test_onnxruntime_u8s8_saturates_but_we_do_not():
    """onnxruntime's u8s8 QLinearMatMul on AVX2 (no VNNI) saturates for full-range weights;
    our default path stays exact. Skipped where onnxruntime is exact (e.g. VNNI CPUs)."""
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    m = k = n = 16
    a = np.full((m, k), 255, np.uint8)
    b = np.full((k, n), 127, np.int8)
    args = dict(
        sa=np.float32(1.0),
        za=np.uint8(0),
        sb=np.float32(1.0),
        zb=np.int8(0),
        sy=np.float32(4096.0),
        zy=np.uint8(0),
    )
    ref = onnx_qlinear_matmul(
        a, args["sa"], args["za"], b, args["sb"], args["zb"], args["sy"], args["zy"]
    )
    inits = [numpy_helper.from_array(np.array(v), name) for name, v in args.items() if name != "b"]
    inits.append(numpy_helper.from_array(b, "b"))
    node = helper.make_node("QLinearMatMul", ["a", "sa", "za", "b", "sb", "zb", "sy", "zy"], ["y"])
    g = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [m, k])],
        [helper.make_tensor_value_info("y", TensorProto.UINT8, [m, n])],
        inits,
    )
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 10)])
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    theirs = sess.run(None, {"a": a})[0]
    ours = run(
        a,
        pack(b, np.zeros(1, np.int32), False),
        0,
        np.uint8,
        m,
        n,
        b_scale=np.ones(1, np.float32),
        y_scale=4096.0,
    )
    np.testing.assert_array_equal(ours, ref)
    if (theirs == ref).all():
        pytest.skip("onnxruntime is exact on this CPU")
    assert (theirs != ref).any()


@pytest.mark.parametrize("k", [1535, 1537, 2050, 4099])
def test_large_k(k):
    """Deep K (whole-K panels streamed from L2), full-range and 7-bit weights."""
    rng = np.random.default_rng(k)
    m, n = 37, 45
    a = rng.integers(0, 256, (m, k)).astype(np.uint8)
    for b in (
        rng.integers(-128, 128, (k, n)).astype(np.int8),
        values(rng, (k, n), np.int8, "7bit"),
    ):
        zb = rng.integers(-128, 128, n).astype(np.int32)
        packed = pack(b, zb, True)
        ref = ref_int32(a, 77, b, zb)
        for isa in ISAS:
            for threads in (1, 2):
                got = run(a, packed, 77, np.int32, m, n, isa=isa, threads=threads)
                np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("m,k", [(49, 4608), (130, 2304), (241, 4608), (13, 2304)])
@pytest.mark.parametrize("at", I8)
def test_row_blocks_and_uneven_calls(m, k, at):
    """Deep K: A is split into several row blocks (tasks), and direct mode splits a block's
    rows evenly over its calls (49 rows: 10+10+10+10+9); int32 and requantized outputs."""
    rng = np.random.default_rng(m * k)
    n = 35
    a = values(rng, (m, k), at, "random")
    b = values(rng, (k, n), np.int8, "random")
    za = int(rng.integers(info(at).min, info(at).max + 1))
    sb = np.float32(2e-3)
    for zb in (np.zeros(1, np.int32), rng.integers(-128, 128, n).astype(np.int32)):
        packed = pack(b, zb, True)
        ref = ref_int32(a, za, b, zb)
        ref8 = onnx_qlinear_matmul(
            a,
            np.float32(0.05),
            np.array(za, at),
            b,
            sb,
            zb.astype(np.int8),
            np.float32(9.0),
            np.uint8(100),
        )
        for isa in ISAS:
            for threads in (1, 2):
                got = run(a, packed, za, np.int32, m, n, isa=isa, threads=threads)
                np.testing.assert_array_equal(got, ref)
                got8 = run(
                    a,
                    packed,
                    za,
                    np.uint8,
                    m,
                    n,
                    a_scale=0.05,
                    b_scale=np.full(1, sb),
                    y_scale=9.0,
                    y_zero_point=100,
                    isa=isa,
                    threads=threads,
                )
                np.testing.assert_array_equal(got8, ref8)


@given(gemm_case())
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_dropped_pair_fixes_stay_exact(case):
    """q8_drop_pair_fixes: the panels hold the true weights again (no fixes left, fixed panels
    no longer fast-safe), and every tier's automatic path stays exact on them."""
    a, za, b, zb, trans, _ = case
    m, k = a.shape
    n = b.shape[1]
    src = np.ascontiguousarray(b.T) if trans else np.ascontiguousarray(b)
    kept = T.q8_pack_b(src, zb, trans_b=trans, fenced=True)
    dropped = T.q8_pack_b(src, zb, trans_b=trans, fenced=True, drop_fixes=True)
    assert sum(dropped.panel_fix_counts) == 0
    for p, c in enumerate(kept.panel_fix_counts):
        assert dropped.panel_fast_safe[p] == (kept.panel_fast_safe[p] and c == 0)
    ref = ref_int32(a, za, b, zb)
    for isa in ISAS:
        np.testing.assert_array_equal(run(a, dropped, za, np.int32, m, n, isa=isa), ref)


@pytest.mark.skipif(not HAVE_AVX2, reason="needs AVX2")
@pytest.mark.parametrize("dtype", [np.int32, np.float32, np.uint8, np.int8])
@pytest.mark.parametrize("rounding", ["onnx_reference", "onnxruntime"])
def test_standalone_epilogue_twins_agree(dtype, rounding):
    """The standalone epilogue (used on the sparse kernels' tiles): AVX2 == scalar, any shape."""
    rng = np.random.default_rng(3)
    for mr, nc, n0 in [(1, 1, 0), (3, 7, 5), (5, 16, 16), (9, 43, 3), (2, 64, 0)]:
        acc = rng.integers(-(2**24), 2**24, (mr, nc)).astype(np.int32)
        width = n0 + (nc + 7) // 8 * 8
        col_term = rng.integers(-(2**20), 2**20, width).astype(np.int32)
        row_term = rng.integers(-(2**20), 2**20, mr).astype(np.int32)
        col_scale = (rng.uniform(0.5, 2.0, width) * 2.0**-14).astype(np.float32)
        fbias = rng.standard_normal(nc).astype(np.float32)
        outs = []
        for scalar in (False, True):
            buf, out = guarded(mr, nc, dtype)
            T.q8_epilogue(
                acc,
                out,
                n0,
                col_term,
                row_term,
                col_scale,
                float_bias=fbias,
                y_zero_point=3,
                rounding=rounding,
                scalar=scalar,
            )
            check_guard(buf, mr, nc)
            outs.append(out.copy())
        np.testing.assert_array_equal(outs[0], outs[1])
        if dtype == np.int32:
            want = acc.astype(np.int64) + row_term[:, None] + col_term[n0 : n0 + nc][None, :]
            np.testing.assert_array_equal(outs[0], want.astype(np.int32))


def test_threads_do_not_change_results():
    rng = np.random.default_rng(5)
    a = rng.integers(0, 256, (203, 301)).astype(np.uint8)
    b = rng.integers(-128, 128, (301, 77)).astype(np.int8)
    packed = pack(b, np.array([2], np.int32), False)
    outs = [run(a, packed, 131, np.int32, 203, 77, threads=t) for t in (1, 2, 3)]
    for o in outs:
        np.testing.assert_array_equal(o, ref_int32(a, 131, b, [2]))


def test_bad_arguments_raise():
    b = np.zeros((8, 4), np.int8)
    with pytest.raises(Exception, match="zero point"):
        T.q8_pack_b(b, np.array([200], np.int32))
    packed = T.q8_pack_b(b, np.zeros(1, np.int32))
    a = np.zeros((2, 8), np.uint8)
    with pytest.raises(Exception, match="zero point"):
        T.q8_gemm(a, packed, 300, np.zeros((2, 4), np.int32))
    with pytest.raises(Exception, match="b_scale"):
        T.q8_gemm(a, packed, 0, np.zeros((2, 4), np.uint8))
    with pytest.raises(Exception, match="clamp"):
        T.q8_gemm(
            a,
            packed,
            0,
            np.zeros((2, 4), np.uint8),
            b_scale=np.ones(1, np.float32),
            qmin=10,
            qmax=5,
        )


def test_kernel_names_follow_the_convention():
    for k in KERNELS:
        assert k["name"].endswith(f"_{k['mr']}x{k['nr']}c{k['kr']}_{k['isa']}")
    for fmt in {k["a_format"] for k in KERNELS}:
        assert any(k["isa"] == "scalar" and k["a_format"] == fmt for k in KERNELS), fmt
