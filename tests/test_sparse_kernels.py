"""Sparse-weight kernels (csrc/include/sliver/sparse.h) against numpy.

FP32 results must lie within FP32_REL_TOL of the float64 product, measured against the sum of
|w * x| of each output (the scale the rounding errors of any summation order live on); INT8 results
are bit-exact, including requantization (both rounding modes), float output, fused clamps and
int32 wrap-around. Every case draws its shape and data from a seeded generator and checks guard
values around the output, both layouts (weights on the left: Conv; on the right: MatMul), every
tile width and block height, forced K chunks, 1 and 2 threads, and the portable kernels.
"""

from __future__ import annotations

import numpy as np
import pytest
import sliver
import sliver._C as _C

T = getattr(_C, "testing", None)
pytestmark = pytest.mark.skipif(
    T is None or not hasattr(T, "sparse_f32_spmm"), reason="sparse testing hooks not built in"
)

# Largest error of an FP32 output over the sum of |w x| it is made of: a few units of float32
# rounding per addition in a K <= 600 sum would be far below this; a wrong entry is far above.
FP32_REL_TOL = 2e-6
# Transcendental activations go through the vector kernels (f32_vunary), whose own error bound
# is a few ulp; applied after the sums they add this much relative error.
FP32_ACT_REL_TOL = 1e-5
GUARD_F32 = np.float32(1234.5)
GUARD_BYTE = 0xA5

ZERO_FRACTIONS = [0.0, 0.01, 0.5, 0.9, 0.99, 1.0]
# (block rows R, tile NT) of every compiled FP32 kernel shape (f32_spmm.inc lines); a forced
# tile runs the first usable kernel of its shape (AVX-512, else AVX2; SLIVER_ISA=avx2 for the
# latter on an AVX-512 CPU).
KERNEL_SHAPES = sorted(
    {(k["r"], k["nt"]) for k in (T.sparse_kernels() if T else []) if k["name"].startswith("f32_")}
)
# INT8 (q8_spmm.inc): and the pairing kr (2 = aligned pairs, 4 = quads on a uint8 panel; R = 1
# only, and quads have no 4-lane form).
Q8_KERNEL_SHAPES = [
    (r, nt, kr)
    for r, nt in [(1, 32), (1, 16), (1, 8), (1, 4), (1, 1), (4, 16), (4, 8), (4, 1), (8, 8), (8, 1)]
    for kr in (1, 2, 4, 8)
    if kr == 1 or (r == 1 and (kr < 4 or nt >= 8))
]  # INT8 also has a 4-lane form (narrow batches); quads (kr = 4, and 8: aligned groups of 4
# inputs) have tiles of 8 lanes and more only
QUADS = (4, 8)
# Whether VNNI is usable (not turned off by SLIVER_ISA): the aligned quads (kr = 8) then run
# vpdpbusd and packing prefers them (sparse_pack.cc: kQ8EntryCostVnni).
VNNI = "vnni" in sliver.cpu_info()["kernels"]["q8_gemm"]


def sparse_mask(
    rng: np.random.Generator, out: int, inp: int, zeros: float, pattern: str
) -> np.ndarray:
    """A [out, inp] bool mask of nonzeros with about `zeros` of the weights pruned.

    pattern: "unstructured", "4x1" / "8x1" (blocks of consecutive outputs), "1x4" (consecutive
    inputs), or "rows_cols" (unstructured plus whole empty output rows and input columns).
    """
    if pattern in ("4x1", "8x1"):
        r = int(pattern[0])
        m = rng.random(((out + r - 1) // r, inp)) >= zeros
        return np.repeat(m, r, axis=0)[:out]
    if pattern == "1x4":
        m = rng.random((out, (inp + 3) // 4)) >= zeros
        return np.repeat(m, 4, axis=1)[:, :inp]
    m = rng.random((out, inp)) >= zeros
    if pattern == "rows_cols":
        m[rng.random(out) < 0.3] = False
        m[:, rng.random(inp) < 0.3] = False
    return m


def act_ref(name: str, x: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    """ONNX semantics of the epilogue activations, in float64."""
    from math import erf

    if name == "none":
        return x
    if name == "relu":
        return np.maximum(x, 0)
    if name == "clip":
        return np.minimum(np.maximum(x, alpha), beta)
    if name == "leaky_relu":
        return np.where(x >= 0, x, alpha * x)
    if name == "sigmoid":
        return 1 / (1 + np.exp(-x))
    if name == "tanh":
        return np.tanh(x)
    if name == "gelu_erf":
        return 0.5 * x * (1 + np.vectorize(erf)(x / np.sqrt(2)))
    if name == "hard_swish":
        return x * np.clip(alpha * x + beta, 0, 1)
    raise ValueError(name)


def split_guard(buf: np.ndarray, rows: int, cols: int, byte_guard: bool = False) -> np.ndarray:
    """The rows x cols result inside a guarded buffer, after checking the guards (1234.5 for
    the FP32 kernels, 0xA5 bytes for the INT8 ones whatever their output type)."""
    if not byte_guard:
        assert np.all(buf[rows:] == GUARD_F32), "guard row overwritten"
        assert np.all(buf[:, cols:] == GUARD_F32), "guard columns overwritten"
    else:
        raw = buf.view(np.uint8).reshape(buf.shape[0], -1)
        esize = buf.dtype.itemsize
        assert np.all(raw[rows:] == GUARD_BYTE), "guard row overwritten"
        assert np.all(raw[:, cols * esize :] == GUARD_BYTE), "guard columns overwritten"
    return buf[:rows, :cols]


def f32_case(rng, out, inp, cols, zeros, pattern, layout):
    w = rng.standard_normal((out, inp)).astype(np.float32)
    w *= sparse_mask(rng, out, inp, zeros, pattern)
    if layout == "left":
        x = rng.standard_normal((inp, cols)).astype(np.float32)
        ref = w.astype(np.float64) @ x
        scale = np.abs(w).astype(np.float64) @ np.abs(x)
        return w, x, ref, scale
    x = rng.standard_normal((cols, inp)).astype(np.float32)
    ref = x.astype(np.float64) @ w.T
    scale = np.abs(x).astype(np.float64) @ np.abs(w.T)
    return np.ascontiguousarray(w.T), x, ref, scale


def check_f32(got, ref, scale, tol=FP32_REL_TOL):
    err = np.abs(got.astype(np.float64) - ref)
    bound = tol * (scale + np.abs(ref)) + 1e-30
    assert np.all(err <= bound), f"max error ratio {np.max(err / bound):.3g}"


# ---------------------------------------------------------------------------------------------
# FP32


@pytest.mark.parametrize("layout", ["left", "right"])
@pytest.mark.parametrize("zeros", ZERO_FRACTIONS)
@pytest.mark.parametrize("pattern", ["unstructured", "4x1", "8x1", "1x4", "rows_cols"])
def test_f32_densities_and_patterns(layout, zeros, pattern):
    rng = np.random.default_rng(hash((layout, zeros, pattern)) % 2**32)
    out, inp, cols = (int(v) for v in rng.integers([1, 1, 1], [70, 300, 90]))
    w, x, ref, scale = f32_case(rng, out, inp, cols, zeros, pattern, layout)
    pk = T.sparse_pack_f32(w, layout=layout)
    assert pk.nnz == np.count_nonzero(w)
    rows, ycols = ref.shape
    got = split_guard(T.sparse_f32_spmm(pk, x, ld_extra=3), rows, ycols)
    check_f32(got, ref, scale)


@pytest.mark.parametrize("layout", ["left", "right"])
@pytest.mark.parametrize("block,tile", KERNEL_SHAPES)
@pytest.mark.parametrize("scalar", [False, True])
def test_f32_every_kernel(layout, block, tile, scalar):
    rng = np.random.default_rng(1000 * block + tile + (7 if scalar else 0))
    out = int(rng.integers(1, 3 * block + 20))  # ragged last block
    inp = int(rng.integers(1, 200))
    cols = int(rng.integers(1, 3 * tile + 5))  # ragged last tile
    w, x, ref, scale = f32_case(rng, out, inp, cols, 0.7, "unstructured", layout)
    pk = T.sparse_pack_f32(w, layout=layout, block_rows=block, kc=int(rng.integers(1, 90)))
    assert pk.block == block
    got = T.sparse_f32_spmm(pk, x, tile=tile, force_scalar=scalar, ld_extra=2)
    check_f32(split_guard(got, *ref.shape), ref, scale)


@pytest.mark.parametrize("layout", ["left", "right"])
@pytest.mark.parametrize(
    "act,alpha,beta",
    [
        ("none", 0, 0),
        ("relu", 0, 0),
        ("clip", -0.5, 0.7),
        ("leaky_relu", 0.1, 0),
        ("sigmoid", 0, 0),
        ("gelu_erf", 0, 0),
        ("hard_swish", 1 / 6, 0.5),
    ],
)
@pytest.mark.parametrize("residual", [False, True])
def test_f32_epilogue(layout, act, alpha, beta, residual):
    rng = np.random.default_rng(abs(hash((layout, act, residual))) % 2**32)
    out, inp, cols = 37, 150, 45
    w, x, ref, scale = f32_case(rng, out, inp, cols, 0.8, "unstructured", layout)
    bias = rng.standard_normal(out).astype(np.float32)
    res = rng.standard_normal(ref.shape).astype(np.float32) if residual else None
    kc = 64 if residual else 0  # chunked and unchunked accumulation
    pk = T.sparse_pack_f32(w, layout=layout, kc=kc)
    got = T.sparse_f32_spmm(
        pk,
        x,
        bias=bias,
        act=act,
        alpha=alpha,
        beta=beta,
        residual=res,
        post_act="relu" if residual else "none",
        ld_extra=1,
    )
    b = bias[:, None] if layout == "left" else bias[None, :]
    want = act_ref(act, ref + b, alpha, beta)
    if residual:
        want = np.maximum(want + res, 0)
    tol = FP32_ACT_REL_TOL if act in ("sigmoid", "gelu_erf") else FP32_REL_TOL
    # Activations have slope <= ~1.2, so the sums' error bound carries over (plus the bias).
    check_f32(split_guard(got, *ref.shape), want, 1.2 * (scale + np.abs(b) + 1), tol)


@pytest.mark.parametrize("layout", ["left", "right"])
def test_f32_threads_and_isa_agree(layout):
    rng = np.random.default_rng(5)
    w, x, ref, scale = f32_case(rng, 300, 700, 200, 0.85, "unstructured", layout)
    pk = T.sparse_pack_f32(w, layout=layout)
    one = T.sparse_f32_spmm(pk, x, num_threads=1)
    two = T.sparse_f32_spmm(pk, x, num_threads=2)
    np.testing.assert_array_equal(one, two)  # same summation order whatever the split
    check_f32(split_guard(T.sparse_f32_spmm(pk, x, force_scalar=True), *ref.shape), ref, scale)


def test_chunk_choice():
    rng = np.random.default_rng(10)
    w = rng.standard_normal((64, 3000)).astype(np.float32) * (rng.random((64, 3000)) < 0.1)
    pk = T.sparse_pack_f32(w)
    assert 1 < pk.chunks and pk.kc % 64 == 0  # a long K is chunked ...
    assert T.sparse_pack_f32(w, cols=1).chunks == 1  # ... except for a GEMV
    q = (w * 100).astype(np.int8)
    assert T.sparse_pack_q8(q, zero_point=0, kr=2, kc=7).kc == 8  # aligned pairs: even chunks
    x = rng.standard_normal((1, 3000)).astype(np.float32)
    got = T.sparse_f32_spmm(T.sparse_pack_f32(w.T.copy(), layout="right", cols=1), x)
    check_f32(split_guard(got, 1, 64), x.astype(np.float64) @ w.T, np.abs(x) @ np.abs(w.T))


def test_f32_empty_shapes():
    rng = np.random.default_rng(9)
    for out, inp, cols in [(0, 5, 3), (4, 0, 3), (4, 5, 0), (1, 1, 1)]:
        w = rng.standard_normal((out, inp)).astype(np.float32)
        x = rng.standard_normal((inp, cols)).astype(np.float32)
        bias = np.arange(out, dtype=np.float32)
        got = T.sparse_f32_spmm(T.sparse_pack_f32(w), x, bias=bias)
        np.testing.assert_allclose(split_guard(got, out, cols), w @ x + bias[:, None], rtol=1e-6)


def test_f32_errors_are_exceptions():
    w = np.ones((4, 5), np.float32)
    pk = T.sparse_pack_f32(w)
    with pytest.raises(Exception, match="inputs"):
        T.sparse_f32_spmm(pk, np.ones((6, 3), np.float32))
    with pytest.raises(Exception, match="tile"):
        T.sparse_f32_spmm(T.sparse_pack_f32(w, block_rows=8), np.ones((5, 3), np.float32), tile=64)
    with pytest.raises(Exception, match="block_rows"):
        T.sparse_pack_f32(w, block_rows=3)


# ---------------------------------------------------------------------------------------------
# Detection


def test_detection_counts_and_blocks():
    rng = np.random.default_rng(11)
    for pattern, rows, cols in [("4x1", 4, 1), ("8x1", 8, 1), ("1x4", 1, 4)]:
        m = sparse_mask(rng, 64, 96, 0.8, pattern)
        w = rng.uniform(0.5, 1, m.shape).astype(np.float32) * m
        info = T.sparse_analyze(w)
        assert info["nnz"] == m.sum()
        assert info["block_rows"] >= rows and info["block_cols"] >= cols
        assert info["empty_rows"] == int((~m.any(1)).sum())
        assert info["empty_cols"] == int((~m.any(0)).sum())
    m = sparse_mask(rng, 64, 96, 0.8, "unstructured")
    info = T.sparse_analyze(m.astype(np.float32))
    assert info["block_rows"] == 1 and info["block_cols"] == 1
    assert info["blocks_rx1"][2] == m.reshape(16, 4, 96).any(1).sum()


def test_layout_choice_follows_structure():
    rng = np.random.default_rng(12)
    w = rng.standard_normal((64, 128)).astype(np.float32)
    assert T.sparse_pack_f32(w * sparse_mask(rng, 64, 128, 0.8, "8x1")).block in (4, 8)
    assert T.sparse_pack_f32(w * sparse_mask(rng, 64, 128, 0.8, "unstructured")).block == 1
    q = rng.integers(1, 100, (64, 128)).astype(np.int8)
    choices = [("unstructured", (1,), 4), ("1x4", (1,), 2), ("8x1", (4, 8), 1)]
    if VNNI:  # one vpdpbusd a group beats the AVX2 layouts even on the zeros it pads
        choices = [(pattern, (1,), 8) for pattern, _, _ in choices]
    for pattern, blocks, kr in choices:
        pk = T.sparse_pack_q8(q * sparse_mask(rng, 64, 128, 0.8, pattern), zero_point=0)
        assert pk.block in blocks and pk.kr == kr, pattern
    # Quads need w - zero_point within int8: otherwise the weights take pairs or blocks.
    pk = T.sparse_pack_q8(q * sparse_mask(rng, 64, 128, 0.8, "unstructured"), zero_point=-100)
    assert pk.kr not in QUADS


# ---------------------------------------------------------------------------------------------
# INT8


def q8_case(rng, out, inp, cols, zeros, pattern, layout, w_type, x_type, per_channel, narrow=False):
    """Weights, activations, zero points and the exact int64 product. narrow: the zero point
    of symmetric quantization (0 for s8, 128 for u8), so w - zp fits int8."""
    lo, hi = (0, 256) if w_type == np.uint8 else (-128, 128)
    zp = rng.integers(lo, hi, out if per_channel else 1).astype(np.int32)
    if narrow:
        zp[:] = 128 if w_type == np.uint8 else 0
    w = rng.integers(lo, hi, (out, inp)).astype(np.int32)
    m = sparse_mask(rng, out, inp, zeros, pattern)
    w = np.where(m, w, zp[:, None] if per_channel else zp[0]).astype(w_type)
    xlo, xhi = (0, 256) if x_type == np.uint8 else (-128, 128)
    xz = int(rng.integers(xlo, xhi))
    xs = (inp, cols) if layout == "left" else (cols, inp)
    x = rng.integers(xlo, xhi, xs).astype(x_type)
    wc = w.astype(np.int64) - (zp[:, None] if per_channel else zp[0])
    xc = x.astype(np.int64) - xz
    acc = wc @ xc if layout == "left" else xc @ wc.T
    wl = w if layout == "left" else np.ascontiguousarray(w.T)
    return wl, x, xz, zp if per_channel else int(zp[0]), acc


def wrap32(a: np.ndarray) -> np.ndarray:
    return ((a + 2**31) % 2**32 - 2**31).astype(np.int32)


@pytest.mark.parametrize("layout", ["left", "right"])
@pytest.mark.parametrize("zeros", ZERO_FRACTIONS)
@pytest.mark.parametrize("pattern", ["unstructured", "4x1", "8x1", "1x4", "rows_cols"])
@pytest.mark.parametrize("types", [(np.int8, np.uint8), (np.uint8, np.int8)])
def test_q8_int32_exact(layout, zeros, pattern, types):
    w_type, x_type = types
    rng = np.random.default_rng(abs(hash((layout, zeros, pattern, str(types)))) % 2**32)
    out, inp, cols = (int(v) for v in rng.integers([1, 1, 1], [70, 300, 90]))
    w, x, xz, zp, acc = q8_case(
        rng,
        out,
        inp,
        cols,
        zeros,
        pattern,
        layout,
        w_type,
        x_type,
        per_channel=bool(rng.integers(2)),
    )
    pk = T.sparse_pack_q8(w, layout=layout, zero_point=zp)
    bias = rng.integers(-(2**20), 2**20, out).astype(np.int32)
    got = T.sparse_q8_spmm(pk, x, x_zero_point=xz, bias=bias, ld_extra=5)
    b = bias[:, None] if layout == "left" else bias[None, :]
    np.testing.assert_array_equal(split_guard(got, *acc.shape, byte_guard=True), wrap32(acc + b))


def q8_bytes(pk, narrow: bool) -> int:
    """What SparseQ8Weights stores: 16-bit pair counts per (chunk, block) run and an int32 start
    every 64 runs, the 8-bit input steps, the int8 (or int16) weights."""
    runs = pk.chunks * ((pk.out + pk.block - 1) // pk.block)
    steps = {2: pk.pairs, 8: pk.pairs // 2}.get(pk.kr, 2 * pk.pairs)
    wsum = 4 * pk.out if pk.kr in QUADS else 0  # quads: each row's weight sum
    return 2 * runs + 4 * (runs // 64 + 1) + steps + pk.pairs * 2 * pk.block * (2 - narrow) + wsum


@pytest.mark.parametrize("layout", ["left", "right"])
@pytest.mark.parametrize("block,tile,kr", Q8_KERNEL_SHAPES)
@pytest.mark.parametrize("scalar", [False, True])
@pytest.mark.parametrize("narrow", [False, True])
def test_q8_every_kernel(layout, block, tile, kr, scalar, narrow):
    """Every kernel, with int16-stored weights (random zero points: w - zp up to 255) and int8
    ones (zero point 0, or 128 for u8 weights; unblocked rows only). Quads (kr = 4) take int8
    weights only and refuse the others."""
    rng = np.random.default_rng(2000 * block + 100 * kr + tile + (7 if scalar else 0) + narrow)
    out = int(rng.integers(1, 3 * block + 20))
    inp = int(rng.integers(1, 200))
    cols = int(rng.integers(1, 3 * tile + 5))
    w_type = np.uint8 if narrow and rng.integers(2) else np.int8
    w, x, xz, zp, acc = q8_case(
        rng,
        out,
        inp,
        cols,
        0.7,
        "unstructured",
        layout,
        w_type,
        np.uint8,
        per_channel=True,
        narrow=narrow,
    )
    kc = int(rng.integers(1, 90))
    zpb = np.asarray(zp)[:, None] if layout == "left" else np.asarray(zp)[None, :]
    wc = w.astype(np.int64) - zpb
    fits = wc.min() >= -128 and wc.max() <= 127
    if kr in QUADS and not fits:
        with pytest.raises(Exception, match=f"kr={kr} needs weights"):
            T.sparse_pack_q8(w, layout=layout, zero_point=zp, block_rows=block, kr=kr, kc=kc)
        return
    pk = T.sparse_pack_q8(w, layout=layout, zero_point=zp, block_rows=block, kr=kr, kc=kc)
    assert pk.bytes == q8_bytes(pk, narrow and block == 1)  # blocks keep int16 weights
    assert pk.block == block and pk.kr == kr
    got = T.sparse_q8_spmm(pk, x, x_zero_point=xz, tile=tile, force_scalar=scalar, ld_extra=2)
    np.testing.assert_array_equal(split_guard(got, *acc.shape, byte_guard=True), wrap32(acc))


@pytest.mark.parametrize("kr", [1, 2, 4, 8])
@pytest.mark.parametrize("narrow", [False, True])
def test_q8_long_gaps_take_fillers(kr, narrow):
    """Input steps are bytes: gaps of 255+ inputs (510+ for aligned pairs, 1020+ for aligned
    groups of 4) between a row's nonzeros, and a first nonzero far from the chunk's start, go
    through zero-weight fillers."""
    rng = np.random.default_rng(31 + kr + 2 * narrow)
    out, inp, cols = 12, 5000, 21
    w = np.zeros((out, inp), np.int8)
    for m in range(out):
        ks = np.cumsum(rng.integers(1, 1400 if kr == 8 else 700, 12))
        ks = ks[ks < inp]
        w[m, ks] = rng.integers(1, 120, ks.size) * rng.choice([-1, 1], ks.size)
        if kr == 2:
            w[m, np.minimum(ks + 1, inp - 1)] = 3
    zp = 0 if narrow else 5
    wq = np.where(w == 0, zp, w).astype(np.int8) if not narrow else w
    x = rng.integers(0, 256, (inp, cols)).astype(np.uint8)
    pk = T.sparse_pack_q8(wq, zero_point=zp, kr=kr, kc=inp)
    nz = w != 0
    g = {2: 2, 8: 4}.get(kr, 1)  # inputs of an aligned group
    plain = sum(
        len(np.unique(np.flatnonzero(r) // g)) * g // 2 if g > 1 else (r.sum() + 1) // 2 for r in nz
    )  # pairs without fillers
    assert pk.chunks == 1 and pk.pairs > plain  # fillers were needed
    acc = (wq.astype(np.int64) - zp) @ (x.astype(np.int64) - 9)
    for tile in (0, 8) if kr in QUADS else (0, 1, 8):
        got = T.sparse_q8_spmm(pk, x, x_zero_point=9, tile=tile, ld_extra=1)
        np.testing.assert_array_equal(split_guard(got, out, cols, byte_guard=True), wrap32(acc))


@pytest.mark.parametrize("layout", ["left", "right"])
@pytest.mark.parametrize("x_type", [np.uint8, np.int8])
def test_q8_quads_exact_where_pairs_would_saturate(layout, x_type):
    """Quads run vpmaddubsw, whose s16 pair sums saturate for same-signed weights summing past
    128 against large activations: the packer stores such pairs as two half pairs, so the sums
    stay exact at the extremes (activations 0 / 255 or -128 / 127, weights -128 / 127), for any
    zero point, tile, chunk, thread count and the portable kernels."""
    rng = np.random.default_rng(40 + (layout == "left") + 2 * (x_type == np.int8))
    out, inp, cols = 37, 300, 41  # a 32-lane tile and a 9-column rest
    w = rng.choice(np.array([-128, -127, -100, -1, 1, 60, 100, 127]), (out, inp)).astype(np.int8)
    w[rng.random(w.shape) < 0.6] = 0
    w[:3] = 127  # rows of nothing but unsafe pairs
    w[3:6] = -128
    lo, hi = (0, 255) if x_type == np.uint8 else (-128, 127)
    xs = (inp, cols) if layout == "left" else (cols, inp)
    x = np.where(rng.random(xs) < 0.5, lo, hi).astype(x_type)
    wl = w if layout == "left" else np.ascontiguousarray(w.T)
    nnz = int((w != 0).sum())
    for kc in (0, 33):
        pk = T.sparse_pack_q8(wl, layout=layout, zero_point=0, kr=4, kc=kc)
        assert pk.kr == 4 and pk.nnz == nnz and pk.pairs > (nnz + 1) // 2  # half pairs stored
        for xz in (lo, hi, int(rng.integers(lo, hi))):
            xc = x.astype(np.int64) - xz
            acc = w.astype(np.int64) @ xc if layout == "left" else xc @ w.T.astype(np.int64)
            for kw in (
                dict(tile=32),
                dict(tile=16),
                dict(tile=8),
                dict(num_threads=2),
                dict(force_scalar=True),
            ):
                got = T.sparse_q8_spmm(pk, x, x_zero_point=xz, ld_extra=3, **kw)
                np.testing.assert_array_equal(
                    split_guard(got, *acc.shape, byte_guard=True), wrap32(acc), err_msg=str(kw)
                )


def test_q8_quads_have_no_vector_form():
    """One column runs in an 8-lane tile (faster than scalar sums); forcing tile 1 is refused."""
    rng = np.random.default_rng(44)
    w = (rng.integers(-127, 128, (40, 64)) * (rng.random((40, 64)) < 0.5)).astype(np.int8)
    pk = T.sparse_pack_q8(w, zero_point=0, kr=4)
    x = rng.integers(0, 256, (64, 1)).astype(np.uint8)
    got = T.sparse_q8_spmm(pk, x, x_zero_point=3)
    want = wrap32(w.astype(np.int64) @ (x.astype(np.int64) - 3))
    np.testing.assert_array_equal(split_guard(got, 40, 1, byte_guard=True), want)
    with pytest.raises(Exception, match="no tile 1"):
        T.sparse_q8_spmm(pk, x, x_zero_point=3, tile=1)


def test_q8_extreme_values_wrap():
    # All-extreme operands: pair sums at their bound (2 * 255 * 255) and int32 wrap-around.
    out, inp, cols = 8, 40000, 9
    w = np.full((out, inp), 255, np.uint8)
    x = np.zeros((inp, cols), np.uint8)
    pk = T.sparse_pack_q8(w, zero_point=0)
    got = split_guard(T.sparse_q8_spmm(pk, x, x_zero_point=255), out, cols, byte_guard=True)
    np.testing.assert_array_equal(got, wrap32(np.full((out, cols), -255 * 255 * inp, np.int64)))


def requant_ref(acc, mult, zp, qmin, qmax, rounding):
    """requant.h's two operation orders, in numpy."""
    if rounding == "onnx_reference":
        d = acc.astype(np.float64) * mult.astype(np.float64) + np.float64(zp)
        return np.rint(np.clip(d, qmin, qmax)).astype(np.int64)
    f = acc.astype(np.float32) * mult.astype(np.float32)
    f = np.clip(f, np.float32(qmin - zp), np.float32(qmax - zp))
    return np.rint(f).astype(np.int64) + zp


@pytest.mark.parametrize("layout", ["left", "right"])
@pytest.mark.parametrize("rounding", ["onnx_reference", "onnxruntime"])
@pytest.mark.parametrize("y_type", ["u8", "i8"])
@pytest.mark.parametrize("relu", [False, True])
def test_q8_requantized_exact(layout, rounding, y_type, relu):
    rng = np.random.default_rng(abs(hash((layout, rounding, y_type, relu))) % 2**32)
    out, inp, cols = 45, 260, 70
    w, x, xz, zp, acc = q8_case(
        rng, out, inp, cols, 0.85, "unstructured", layout, np.int8, np.uint8, per_channel=True
    )
    bias = rng.integers(-5000, 5000, out).astype(np.int32)
    a_scale = np.float32(0.02)
    b_scale = rng.uniform(0.001, 0.01, out).astype(np.float32)
    y_scale = np.float32(0.07)
    yz = int(rng.integers(0, 256)) if y_type == "u8" else int(rng.integers(-128, 128))
    lo, hi = (0, 255) if y_type == "u8" else (-128, 127)
    qmin = yz if relu else lo
    # Half of the sums land on exact .5 ties: scale so acc * m has a tie for even acc.
    pk = T.sparse_pack_q8(w, layout=layout, zero_point=zp)
    got = T.sparse_q8_spmm(
        pk,
        x,
        x_zero_point=xz,
        output="quantized",
        bias=bias,
        a_scale=a_scale,
        b_scale=b_scale,
        y_scale=y_scale,
        y_zero_point=yz,
        y_type=y_type,
        qmin=qmin,
        qmax=hi,
        rounding=rounding,
        ld_extra=3,
    )
    mult = ((a_scale * b_scale).astype(np.float32) / y_scale).astype(np.float32)
    b = bias[:, None] if layout == "left" else bias[None, :]
    m = mult[:, None] if layout == "left" else mult[None, :]
    want = requant_ref(wrap32(acc + b), m, yz, qmin, hi, rounding)
    got = split_guard(got, *acc.shape, byte_guard=True).astype(np.int64)
    np.testing.assert_array_equal(got, want)


def test_q8_requant_ties_round_to_even():
    # multiplier 0.5: every odd sum is a .5 tie.
    out, cols = 3, 16
    w = np.array([[1], [1], [1]], np.int8)
    x = np.arange(cols, dtype=np.uint8)[None, :]
    pk = T.sparse_pack_q8(w, zero_point=0)
    for rounding in ["onnx_reference", "onnxruntime"]:
        got = T.sparse_q8_spmm(
            pk,
            x,
            output="quantized",
            a_scale=0.5,
            b_scale=np.float32(1),
            y_scale=1,
            y_zero_point=0,
            rounding=rounding,
        )[:out, :cols]
        np.testing.assert_array_equal(got[0], np.rint(np.arange(cols) / 2).astype(np.uint8))


@pytest.mark.parametrize("layout", ["left", "right"])
def test_q8_float_output(layout):
    rng = np.random.default_rng(21)
    out, inp, cols = 33, 120, 41
    w, x, xz, zp, acc = q8_case(
        rng, out, inp, cols, 0.9, "8x1", layout, np.int8, np.uint8, per_channel=False
    )
    b_scale = rng.uniform(0.001, 0.01, out).astype(np.float32)
    fbias = rng.standard_normal(out).astype(np.float32)
    pk = T.sparse_pack_q8(w, layout=layout, zero_point=zp)
    got = T.sparse_q8_spmm(
        pk,
        x,
        x_zero_point=xz,
        output="float32",
        a_scale=0.03,
        b_scale=b_scale,
        float_bias=fbias,
        ld_extra=2,
    )
    s = (np.float32(0.03) * b_scale).astype(np.float32)
    sc = s[:, None] if layout == "left" else s[None, :]
    fb = fbias[:, None] if layout == "left" else fbias[None, :]
    want = (acc.astype(np.float32) * sc).astype(np.float32) + fb
    np.testing.assert_array_equal(split_guard(got, *acc.shape, byte_guard=True), want)


@pytest.mark.parametrize("layout", ["left", "right"])
def test_q8_threads_and_isa_agree(layout):
    rng = np.random.default_rng(22)
    w, x, xz, zp, acc = q8_case(
        rng, 260, 900, 150, 0.9, "unstructured", layout, np.int8, np.uint8, per_channel=True
    )
    pk = T.sparse_pack_q8(w, layout=layout, zero_point=zp)
    kw = dict(
        x_zero_point=xz,
        output="quantized",
        a_scale=0.01,
        b_scale=np.float32(0.01),
        y_scale=0.5,
        y_zero_point=128,
    )
    one = T.sparse_q8_spmm(pk, x, num_threads=1, **kw)
    np.testing.assert_array_equal(one, T.sparse_q8_spmm(pk, x, num_threads=2, **kw))
    np.testing.assert_array_equal(one, T.sparse_q8_spmm(pk, x, force_scalar=True, **kw))


def test_q8_zero_point_is_the_pruned_value():
    # u8 weights with zero point 128: the stored 128s are the zeros, 0 is a real weight.
    rng = np.random.default_rng(23)
    w = np.full((16, 64), 128, np.uint8)
    w[rng.random(w.shape) < 0.1] = 0
    pk = T.sparse_pack_q8(w, zero_point=128)
    assert pk.nnz == int((w != 128).sum())
    info = T.sparse_analyze(w, zero_point=np.full(16, 128, np.int32))
    assert info["nnz"] == pk.nnz


def test_cost_model():
    for int8 in (False, True):
        for block in (1, 4, 8):
            wide = T.sparse_crossover_density(int8, block, 1, 256)
            assert 0.05 < wide < 1
            # fewer columns amortize the panel less: the crossover never rises
            assert T.sparse_crossover_density(int8, block, 1, 8) <= wide
            assert T.sparse_crossover_density(int8, block, 1, 1) <= wide
    rng = np.random.default_rng(24)
    dense = rng.standard_normal((128, 512)).astype(np.float32)
    sparse = dense * (rng.random(dense.shape) < 0.05)
    assert not T.sparse_pack_f32(dense).is_faster(256)
    assert T.sparse_pack_f32(sparse).is_faster(256)
    q = (rng.integers(-100, 100, (128, 512)) * (rng.random((128, 512)) < 0.2)).astype(np.int8)
    # with VNNI the dense INT8 GEMM is ~4x faster and sparse wins only below ~10% nonzeros
    vnni = VNNI
    assert T.sparse_pack_q8(q, zero_point=0).is_faster(256) != vnni
    q5 = (rng.integers(-100, 100, (128, 512)) * (rng.random((128, 512)) < 0.05)).astype(np.int8)
    assert T.sparse_pack_q8(q5, zero_point=0).is_faster(256)
    assert not T.sparse_pack_q8(q, zero_point=0).is_faster(1)  # INT8 GEMV: dense wins
    # FP32 GEMVs: weights past L2 come from memory inside a model, where sparse wins to ~30%
    # nonzeros; small ones stay on the warm-cache table.
    big = rng.standard_normal((1000, 1280)).astype(np.float32)
    small = big[:128, :256].copy()
    for w, density, faster in [(big, 0.2, True), (big, 0.5, False), (small, 0.2, False)]:
        pruned = w * (rng.random(w.shape) < density)
        assert T.sparse_pack_f32(pruned).is_faster(1) == faster, (w.shape, density)
