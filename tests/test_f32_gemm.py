"""FP32 GEMM engine (csrc/include/sliver/gemm.h) against numpy float64, plus the thread pool.

Every case runs each usable micro-kernel of f32_gemm.inc (the scalar twin always) over raw,
transposed, strided and pre-packed operands, every epilogue, 1 and 2 threads. Inputs end at an
inaccessible page (an over-read crashes the test) and C is a view of a wider buffer whose extra
columns hold a sentinel (a stray write changes it). Shapes are chosen so that every operand path
of the driver runs: A in place / packed per block / pre-packed, B pre-packed / packed per block /
in place "sweep" (M <= 2*MR) / in place "blocked" (M <= 96 with a row stride a multiple of 16,
M <= 24 with any other).
"""

from __future__ import annotations

import ctypes
import math
import mmap
import os
import re
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

_C = pytest.importorskip("sliver._C")
T = _C.testing

INC = Path(__file__).resolve().parents[1] / "csrc/ukernels/f32_gemm/f32_gemm.inc"
KERNELS = T.f32_gemm_kernels()
USABLE = [k["name"] for k in KERNELS if k["usable"]]
SENTINEL = np.float32(1234.5)  # what sgemm leaves in the columns of C past N

# Error model. fp32 dot products of length K are within (K + 4) * U * sum|a||b| of exact; the
# SIMD epilogues approximate exp/tanh/erf within ACT_TOL * max(1, |x|) (A&S 7.1.26 erf: 1.5e-7);
# activations are Lipschitz with constant <= ACT_LIPSCHITZ (hard_swish with alpha 1/6: 1.5).
U = 2.0**-24
ACT_TOL = 1e-6
ACT_LIPSCHITZ = 1.5

# name -> (alpha, beta) used in tests (ONNX defaults where ONNX has them)
ACTS = {
    "none": (0.0, 0.0),
    "relu": (0.0, 0.0),
    "clip": (-0.5, 0.75),
    "leaky_relu": (0.1, 0.0),
    "sigmoid": (0.0, 0.0),
    "hard_sigmoid": (0.2, 0.5),
    "hard_swish": (1 / 6, 0.5),
    "tanh": (0.0, 0.0),
    "gelu_erf": (0.0, 0.0),
    "gelu_tanh": (0.0, 0.0),
}
_erf = np.vectorize(math.erf, otypes=[np.float64])


def act_ref(name: str, x: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    """ONNX semantics in float64."""
    if name == "none":
        return x
    if name == "relu":
        return np.maximum(x, 0)
    if name == "clip":
        return np.minimum(np.maximum(x, alpha), beta)
    if name == "leaky_relu":
        return np.where(x >= 0, x, alpha * x)
    if name == "sigmoid":
        return 0.5 * (1 + np.tanh(0.5 * x))
    if name == "hard_sigmoid":
        return np.clip(alpha * x + beta, 0, 1)
    if name == "hard_swish":
        return x * np.clip(alpha * x + beta, 0, 1)
    if name == "tanh":
        return np.tanh(x)
    if name == "gelu_erf":
        return 0.5 * x * (1 + _erf(x / math.sqrt(2)))
    if name == "gelu_tanh":
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    raise ValueError(name)


# ---- buffers ----

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]


def at_guard_page(a: np.ndarray) -> np.ndarray:
    """A copy of `a` (made C-contiguous) whose last byte is followed by an inaccessible page."""
    a = np.ascontiguousarray(a, np.float32)
    page = mmap.PAGESIZE
    total = (a.nbytes + page - 1) // page * page + page
    buf = mmap.mmap(-1, total, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    addr = ctypes.addressof(ctypes.c_char.from_buffer(buf))
    if _libc.mprotect(addr + total - page, page, 0) != 0:  # PROT_NONE
        raise OSError(ctypes.get_errno(), "mprotect")
    out = np.frombuffer(buf, np.float32, a.size, total - page - a.nbytes).reshape(a.shape)
    out[...] = a
    return out


def strided(a: np.ndarray, extra: int) -> np.ndarray:
    """`a` as a view with row stride cols + extra (exercises ld > cols), ending at a guard page."""
    if extra == 0:
        return at_guard_page(a)
    wide = np.zeros((a.shape[0], a.shape[1] + extra), np.float32)
    wide[:, : a.shape[1]] = a
    return at_guard_page(wide)[:, : a.shape[1]]


# ---- the check ----


def run_case(
    rng,
    M,
    N,
    K,
    *,
    kernel="",
    trans_a=False,
    trans_b=False,
    pack_a=False,
    pack_b=False,
    bias=None,
    act="none",
    residual=False,
    post_act="none",
    beta_c=0.0,
    lda_extra=0,
    ldb_extra=0,
    ldc_extra=0,
    num_threads=1,
):
    """Runs sgemm on random data and checks it against the float64 reference with error bounds;
    returns the output (M, N) block."""
    A = rng.uniform(-1, 1, (M, K)).astype(np.float32)
    B = rng.uniform(-1, 1, (K, N)).astype(np.float32)
    a_arg = strided(A.T.copy() if trans_a else A, lda_extra)
    b_arg = strided(B.T.copy() if trans_b else B, ldb_extra)
    C0 = rng.uniform(-1, 1, (M, N)).astype(np.float32)
    kw = {}
    bias_v = None
    if bias is not None:
        bias_v = rng.uniform(-1, 1, M if bias == "row" else N).astype(np.float32)
        kw.update(bias=at_guard_page(bias_v), bias_per_row=bias == "row")
    R = None
    if residual:
        R = rng.uniform(-1, 1, (M, N)).astype(np.float32)
        kw["residual"] = strided(R, 3)
    alpha, beta = ACTS[act]
    palpha, pbeta = ACTS[post_act]
    out = T.sgemm(
        a_arg,
        b_arg,
        trans_a=trans_a,
        trans_b=trans_b,
        pack_a=pack_a,
        pack_b=pack_b,
        act=act,
        alpha=alpha,
        beta=beta,
        post_act=post_act,
        post_alpha=palpha,
        post_beta=pbeta,
        c=C0 if beta_c else None,
        beta_c=beta_c,
        ldc=N + ldc_extra,
        num_threads=num_threads,
        kernel=kernel,
        **kw,
    )
    assert out.shape == (M, N + ldc_extra)
    assert (out[:, N:] == SENTINEL).all(), "write past N in C"
    got = out[:, :N].astype(np.float64)

    A64, B64 = A.astype(np.float64), B.astype(np.float64)
    z = A64 @ B64
    mag = np.abs(A64) @ np.abs(B64)
    if beta_c:
        z += beta_c * C0
        mag += abs(beta_c) * np.abs(C0)
    if bias_v is not None:
        b64 = bias_v.astype(np.float64)
        b64 = b64[:, None] if bias == "row" else b64[None, :]
        z = z + b64
        mag = mag + np.abs(b64)
    err = (K + 4) * U * mag
    y = act_ref(act, z, alpha, beta)
    if act != "none":
        err = ACT_LIPSCHITZ * err + ACT_TOL * np.maximum(1, np.abs(z))
    if R is not None:
        y = y + R
        err = err + U * (np.abs(y) + np.abs(R))
    if post_act != "none":
        err = ACT_LIPSCHITZ * err + ACT_TOL * np.maximum(1, np.abs(y))
        y = act_ref(post_act, y, palpha, pbeta)
    bad = ~(np.abs(got - y) <= err)
    assert not bad.any(), (
        f"{bad.sum()} of {M}x{N} wrong, first at {np.argwhere(bad)[0]}: "
        f"got {got[bad][0]!r}, want {y[bad][0]!r} +- {err[bad][0]:.3g}"
    )
    return out[:, :N]


# ---- kernel table ----


def test_inc_lists_every_compiled_kernel():
    lines = re.findall(
        r"SLIVER_F32_GEMM_KERNEL\((\w+),\s*(\d+),\s*(\d+),\s*(\w+)\)", INC.read_text()
    )
    listed = {name: (int(mr), int(nr), isa) for name, mr, nr, isa in lines}
    assert KERNELS, "no kernels compiled"
    for k in KERNELS:
        assert listed[k["name"]] == (k["mr"], k["nr"], k["isa"])
        assert k["name"] == f"f32_gemm_{k['mr']}x{k['nr']}_{k['isa']}"
    assert KERNELS[-1]["isa"] == "scalar" and KERNELS[-1]["usable"]
    selected = dict(T.selected_kernels())["f32_gemm"]
    assert selected == USABLE[0]


def test_sliver_isa_scalar_forces_portable_kernels():
    code = (
        "import sliver._C as C; t = C.testing; "
        "print(dict(t.selected_kernels())['f32_gemm'], any(t.cpu_features().values()), "
        "t.cpu_features(detected=True)['avx2'])"
    )
    env = dict(os.environ, SLIVER_ISA="scalar")
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["f32_gemm_4x8_scalar", "False", str(T.cpu_features(detected=True)["avx2"])]


@pytest.mark.parametrize("kernel", USABLE)
def test_ukernel_timer_runs(kernel):
    assert T.ukernel_gflops(kernel, kc=64, calls=200, repeats=1) > 0


# ---- shapes and operand forms ----

EDGES = [
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8,
    9,
    11,
    12,
    13,
    15,
    16,
    17,
    23,
    24,
    25,
    31,
    32,
    33,
    47,
    48,
    49,
    95,
    96,
    97,
    144,
    145,
    255,
    256,
    257,
    300,
]
dim = st.one_of(st.sampled_from(EDGES), st.integers(1, 300))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    M=dim,
    N=dim,
    K=dim,
    kernel=st.sampled_from(USABLE),
    trans_a=st.booleans(),
    trans_b=st.booleans(),
    pack_a=st.booleans(),
    pack_b=st.booleans(),
    lda_extra=st.sampled_from([0, 0, 1, 16]),
    ldb_extra=st.sampled_from([0, 0, 3, 16]),
    ldc_extra=st.sampled_from([0, 5]),
    num_threads=st.sampled_from([1, 2]),
    seed=st.integers(0, 2**32 - 1),
)
def test_shapes_and_operand_forms(
    M,
    N,
    K,
    kernel,
    trans_a,
    trans_b,
    pack_a,
    pack_b,
    lda_extra,
    ldb_extra,
    ldc_extra,
    num_threads,
    seed,
):
    run_case(
        np.random.default_rng(seed),
        M,
        N,
        K,
        kernel=kernel,
        trans_a=trans_a,
        trans_b=trans_b,
        pack_a=pack_a,
        pack_b=pack_b,
        lda_extra=lda_extra,
        ldb_extra=ldb_extra,
        ldc_extra=ldc_extra,
        num_threads=num_threads,
    )


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    M=dim,
    N=dim,
    K=st.one_of(st.sampled_from([1, 7, 8, 9, 256, 257]), st.integers(1, 300)),
    kernel=st.sampled_from(USABLE),
    pack_b=st.booleans(),
    bias=st.sampled_from([None, "col", "row"]),
    act=st.sampled_from(sorted(ACTS)),
    residual=st.booleans(),
    post_act=st.sampled_from(["none", "relu", "clip", "sigmoid", "hard_swish"]),
    beta_c=st.sampled_from([0.0, 1.0, -0.5]),
    num_threads=st.sampled_from([1, 2]),
    seed=st.integers(0, 2**32 - 1),
)
def test_epilogues(
    M, N, K, kernel, pack_b, bias, act, residual, post_act, beta_c, num_threads, seed
):
    run_case(
        np.random.default_rng(seed),
        M,
        N,
        K,
        kernel=kernel,
        pack_b=pack_b,
        bias=bias,
        act=act,
        residual=residual,
        post_act=post_act,
        beta_c=beta_c,
        num_threads=num_threads,
        ldc_extra=2,
    )


# One shape per driver path (see the module docstring), every kernel, raw/packed.
PATH_SHAPES = [
    (1, 1, 1),
    (1, 4096, 64),
    (5, 1000, 70),
    (12, 33, 300),  # B sweep (M <= 2*MR)
    (13, 64, 300),
    (50, 256, 100),
    (96, 3136 // 4, 40),  # B blocked (ld % 16 == 0)
    (24, 3025, 37),  # B blocked, ld not a multiple of 16 (M <= 24), partial last panel
    (97, 64, 50),
    (40, 100, 30),  # B packed per block (M too big / ld not a multiple of 16)
    (7, 512, 33),
    (30, 600, 290),  # A packed per block (N >= 512)
    (300, 17, 1),
    (145, 47, 257),
]


@pytest.mark.parametrize("kernel", USABLE)
@pytest.mark.parametrize("M,N,K", PATH_SHAPES)
@pytest.mark.parametrize("form", ["raw", "trans", "packed"])
def test_driver_paths(kernel, M, N, K, form):
    rng = np.random.default_rng(M * 7919 + N * 31 + K)
    run_case(
        rng,
        M,
        N,
        K,
        kernel=kernel,
        trans_a=form == "trans",
        trans_b=form == "trans",
        pack_a=form == "packed",
        pack_b=form == "packed",
        bias="col",
        act="relu",
        residual=True,
        num_threads=2,
    )


@pytest.mark.parametrize("kernel", USABLE)
@pytest.mark.parametrize("bias", ["col", "row"])
def test_k_zero_is_epilogue_only(kernel, bias):
    rng = np.random.default_rng(0)
    M, N = 9, 21
    C0 = rng.uniform(-1, 1, (M, N)).astype(np.float32)
    bv = rng.uniform(-1, 1, M if bias == "row" else N).astype(np.float32)
    out = T.sgemm(
        np.zeros((M, 0), np.float32),
        np.zeros((0, N), np.float32),
        c=C0,
        beta_c=0.5,
        bias=bv,
        bias_per_row=bias == "row",
        act="relu",
        kernel=kernel,
    )
    want = np.maximum(0.5 * C0 + (bv[:, None] if bias == "row" else bv[None, :]), 0)
    np.testing.assert_allclose(out, want, rtol=1e-6, atol=1e-7)
    zero = T.sgemm(np.zeros((M, 0), np.float32), np.zeros((0, N), np.float32), kernel=kernel)
    assert (zero == 0).all()


def test_empty_m_or_n():
    assert T.sgemm(np.zeros((0, 5), np.float32), np.ones((5, 3), np.float32)).shape == (0, 3)
    assert T.sgemm(np.ones((4, 5), np.float32), np.zeros((5, 0), np.float32)).shape == (4, 0)


def test_bad_arguments_raise():
    a, b = np.ones((4, 5), np.float32), np.ones((5, 3), np.float32)
    with pytest.raises(ValueError, match="ldc"):
        T.sgemm(a, b, ldc=2)
    with pytest.raises(ValueError, match="inner"):
        T.sgemm(a, np.ones((6, 3), np.float32))
    with pytest.raises(ValueError):
        T.sgemm(a, b, act="swish")


# ---- threads ----

THREAD_SHAPES = [
    (1, 4096, 64),
    (7, 1000, 100),
    (64, 64, 64),
    (300, 300, 300),
    (64, 3136, 64),
    (3136, 64, 72),
    (97, 513, 257),
    (2, 17, 9000),
]


@pytest.mark.parametrize("kernel", USABLE)
@pytest.mark.parametrize("M,N,K", THREAD_SHAPES)
@pytest.mark.parametrize("pack", [False, True])
def test_threads_are_bit_identical(kernel, M, N, K, pack):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((M, K), np.float32)
    b = rng.standard_normal((K, N), np.float32)
    bias = rng.standard_normal(N, np.float32)
    kw = dict(pack_a=pack, pack_b=pack, bias=bias, act="gelu_erf", kernel=kernel)
    one = T.sgemm(a, b, num_threads=1, **kw)
    for threads in (2, 3):
        assert np.array_equal(one, T.sgemm(a, b, num_threads=threads, **kw))


@pytest.mark.parametrize("threads", [1, 2, 3, 8])
@pytest.mark.parametrize("n", [0, 1, 2, 5, 64])
def test_thread_pool_covers_every_index_once(threads, n):
    for tasks in (False, True):
        counts, ranges = T.thread_pool_check(threads, n, tasks=tasks)
        assert counts == [1] * n
    _, ranges = T.thread_pool_check(threads, n)
    # parallel_for: min(n, 4 * threads) contiguous ranges of near-equal length, in order.
    parts = min(n, 4 * threads if threads > 1 else 1)
    assert len(ranges) == parts
    if parts:
        assert ranges[0][0] == 0 and ranges[-1][1] == n
        assert all(r[1] == s[0] for r, s in zip(ranges[:-1], ranges[1:], strict=True))
        lengths = [e - b for b, e in ranges]
        assert max(lengths) - min(lengths) <= 1


@pytest.mark.parametrize("tasks", [False, True])
def test_thread_pool_exception_reaches_caller(tasks):
    with pytest.raises(RuntimeError, match="task 13 failed"):
        T.thread_pool_check(2, 40, tasks=tasks, throw_at=13)
    assert T.thread_pool_check(2, 40, tasks=tasks)[0] == [1] * 40  # pool still works


def test_thread_pool_nested_and_concurrent_calls():
    assert T.thread_pool_check(2, 16, nested=True)[0] == [1] * 16
    errors = []

    def hammer():
        try:
            for _ in range(200):
                assert T.thread_pool_check(2, 7, tasks=True)[0] == [1] * 7
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_idle_pool_does_not_spin():
    a = np.ones((256, 256), np.float32)
    T.sgemm(a, a, num_threads=2)
    time.sleep(0.4)  # past our workers' bounded spin (and OpenBLAS's, used by the references)
    before = resource.getrusage(resource.RUSAGE_SELF)
    time.sleep(0.3)
    after = resource.getrusage(resource.RUSAGE_SELF)
    used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert used < 0.05, f"{used:.3f} s of CPU burnt while idle"
