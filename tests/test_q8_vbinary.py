"""8-bit binary elementwise kernels and table gathers (csrc/ukernels/q8_vbinary), bit-exact.

q8_vaddmul (com.microsoft QLinearAdd / QLinearMul) against the numpy references of
python/sliver/ops/contrib.py and against onnxruntime's own kernels; q8_vbinary (the QDQ float
path, sliver:QLinearBinary) against python/sliver/ops/qfused.py; q8_vlut (the gathers of
sliver:QLinearLookup / QLinearPairLookup) against numpy indexing. Every code pair for uint8 and
int8, scales from 1e-6 to 1e3 and zero points at the ends of their range, the three broadcast
forms of a run (both operands advance, A repeats, B repeats) and both repeating, ragged lengths
1..67 with guard bytes around the output and the inputs ending at a PROT_NONE page. The scalar
twins run here directly and, under SLIVER_ISA=scalar, as the kernels sessions dispatch to.
"""

from __future__ import annotations

import os
import textwrap

import numpy as np
import onnx
import pytest
import sliver
from helpers import run_scalar_isa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto as TP
from onnx import helper as oh
from sliver import _C
from sliver.ops import registry
from sliver.ops.contrib import qlinear_add_values, qlinear_mul_values
from sliver.ops.qfused import qlinear_binary_values

T = _C.testing
MS = "com.microsoft"
GUARD = 16
F32 = np.float32
TYPES = {np.dtype(np.uint8): TP.UINT8, np.dtype(np.int8): TP.INT8}
SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))

ADDMUL = [k for k in T.q8_qlinear_kernels()]
OTHER = {name: (isa, usable) for name, isa, usable in T.q8_vbinary_kernels()}
VBINARY = [n for n in OTHER if n.startswith("q8_vbinary_")]
VLUT = [n for n in OTHER if n.startswith("q8_vlut_")]  # q8_vlut_<isa>: lut1 and lut2
FORMS = ("vv", "a", "b", "both")  # which operand repeats along the run
STRIDES = {"vv": (1, 1), "a": (0, 1), "b": (1, 0), "both": (0, 0)}


def _skip_unusable(usable: bool, name: str) -> None:
    if not usable:
        pytest.skip(f"{name}: this CPU lacks its ISA")


def _codes(dt: type) -> np.ndarray:
    return np.arange(256, dtype=np.uint8).view(dt)


def _scale(rng: np.random.Generator, lo: float = 1e-6, hi: float = 1e3) -> F32:
    return F32(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def _zp(rng: np.random.Generator, dt: type) -> int:
    info = np.iinfo(dt)
    return int(rng.choice([info.min, info.max, int(rng.integers(info.min, info.max + 1))]))


def addmul_params(rng: np.random.Generator, dt: type, extreme: bool) -> tuple:
    """(sa, za, sb, zb, sc, zc). extreme: every scale anywhere in [1e-6, 1e3] (many outputs
    saturate, some past 2^31). Otherwise sa and sb are sc times a ratio of small integers: the
    outputs spread over the codes and many land within a float32 ulp of a rounding tie, where
    the fused multiply-adds and their order decide the code."""
    if extreme:
        sa, sb, sc = _scale(rng), _scale(rng), _scale(rng)
    else:
        sc = _scale(rng, 1e-5, 1e2)
        sa, sb = (F32(sc * F32(rng.integers(1, 33)) / F32(rng.integers(1, 33))) for _ in range(2))
    return sa, _zp(rng, dt), sb, _zp(rng, dt), sc, _zp(rng, dt)


# Scales and zero points where the QLinearAdd formulas of the run forms (and an unfused
# evaluation) give different codes on some pairs: a kernel with the wrong order fails here.
TIE_PARAMS = {
    np.dtype(np.uint8): (F32(0.027450792), 210, F32(0.010294047), 242, F32(0.03431349), 63),
    np.dtype(np.int8): (F32(0.028316446), -21, F32(0.0022935129), 4, F32(0.0067713242), -54),
}


def addmul_ref(
    op: str, form: str, a: np.ndarray, b: np.ndarray, params: tuple, n: int
) -> np.ndarray:
    """The contrib.py reference for one run of n outputs in the given form. Operands are stacked
    to two rows so that the reference sees the same form whatever n is (it decides from whole
    shapes)."""
    fn = qlinear_add_values if op == "add" else qlinear_mul_values
    a2 = np.stack([a, a]) if form in ("vv", "b") else a[:1].reshape(1, 1)
    b2 = np.stack([b, b]) if form in ("vv", "a") else b[:1].reshape(1, 1)
    sa, za, sb, zb, sc, zc = params
    out = fn(a2, sa, za, b2, sb, zb, sc, zc)
    return np.broadcast_to(out, (2, n))[0] if out.ndim == 2 else out.reshape(-1)[:n]


def run_addmul(name: str, form: str, a: np.ndarray, b: np.ndarray, n: int, params: tuple):
    """The kernel on one run; checks the guards and returns the n codes (as a's dtype)."""
    sa, sb = STRIDES[form]
    y = T.q8_qlinear(name, a, sa, b, sb, n, *params, guard=GUARD)
    assert (y[:GUARD] == 0xA5).all() and (y[GUARD + n :] == 0xA5).all(), f"{name}: guard bytes"
    return y[GUARD : GUARD + n].view(a.dtype)


def assert_same(got: np.ndarray, want: np.ndarray, what: str) -> None:
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape, (what, got.dtype, want.dtype)
    if not np.array_equal(got, want):
        bad = np.flatnonzero(got.reshape(-1) != want.reshape(-1))
        i = bad[0]
        raise AssertionError(
            f"{what}: {bad.size} of {got.size} differ, first at {i}: "
            f"{got.reshape(-1)[i]} vs {want.reshape(-1)[i]}"
        )


# ---------------------------------------------------------------------------------------------
# q8_vaddmul: QLinearAdd / QLinearMul kernels.


def test_every_type_and_op_has_a_scalar_twin() -> None:
    have = {(k["op"], k["signed"], k["isa"]) for k in ADDMUL}
    for op in ("add", "mul"):
        for signed in (False, True):
            assert (op, signed, "scalar") in have
    assert _C.cpu_info()["kernels"]["q8_vaddmul"] in {k["isa"] for k in ADDMUL}


@pytest.mark.parametrize("kernel", ADDMUL, ids=lambda k: k["name"])
@pytest.mark.parametrize("extreme", [False, True], ids=["spread", "extreme"])
def test_addmul_every_code_pair(kernel: dict, extreme: bool) -> None:
    """Every (a, b) pair in each form, for a few random scale/zero-point sets."""
    _skip_unusable(kernel["usable"], kernel["name"])
    dt = np.int8 if kernel["signed"] else np.uint8
    rng = np.random.default_rng(abs(hash((kernel["name"], extreme))) % 2**32)
    codes = _codes(dt)
    a_all, b_all = np.repeat(codes, 256), np.tile(codes, 256)
    sets = [addmul_params(rng, dt, extreme) for _ in range(3)]
    for p in sets + ([] if extreme else [TIE_PARAMS[np.dtype(dt)]]):
        got = run_addmul(kernel["name"], "vv", a_all, b_all, 65536, p)
        assert_same(got, addmul_ref(kernel["op"], "vv", a_all, b_all, p, 65536), "vv")
        for i in rng.choice(256, 48, replace=False):  # repeating code i against every code
            one = codes[i : i + 1]
            got = run_addmul(kernel["name"], "a", one, codes, 256, p)
            assert_same(got, addmul_ref(kernel["op"], "a", one, codes, p, 256), f"A={one[0]}")
            got = run_addmul(kernel["name"], "b", codes, one, 256, p)
            assert_same(got, addmul_ref(kernel["op"], "b", codes, one, p, 256), f"B={one[0]}")


@pytest.mark.parametrize("dt", [np.uint8, np.int8], ids=["u8", "s8"])
def test_tie_params_tell_the_forms_apart(dt: type) -> None:
    """The pinned parameters make the vector-vector and scalar-A formulas differ on some code
    pairs (else the every-pair tests could not catch a kernel using the wrong one)."""
    codes = _codes(dt)
    p = TIE_PARAMS[np.dtype(dt)]
    fn = qlinear_add_values
    grid_a, grid_b = np.repeat(codes, 256).reshape(256, 256), np.tile(codes, 256).reshape(256, 256)
    vv = fn(grid_a, *p[:2], grid_b, *p[2:])
    scalar_a = fn(codes.reshape(256, 1), *p[:2], codes.reshape(1, 256), *p[2:])
    assert (vv != scalar_a).sum() > 0


@pytest.mark.parametrize("kernel", ADDMUL, ids=lambda k: k["name"])
@SETTINGS
@given(n=st.integers(1, 67), form=st.sampled_from(FORMS), extreme=st.booleans(),
       seed=st.integers(0, 2**32 - 1))  # fmt: skip
def test_addmul_ragged(kernel: dict, n: int, form: str, extreme: bool, seed: int) -> None:
    """Lengths 1..67 (tails of every size) in every form, guards intact, inputs fenced."""
    _skip_unusable(kernel["usable"], kernel["name"])
    dt = np.int8 if kernel["signed"] else np.uint8
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, n, dtype=np.uint8).view(dt)
    b = rng.integers(0, 256, n, dtype=np.uint8).view(dt)
    p = addmul_params(rng, dt, extreme)
    sa, sb = STRIDES[form]
    a_in, b_in = (a if sa else a[:1]), (b if sb else b[:1])
    got = run_addmul(kernel["name"], form, a_in, b_in, n, p)
    assert_same(got, addmul_ref(kernel["op"], form, a_in, b_in, p, n), f"{form} n={n}")


def test_addmul_twins_agree_on_saturating_extremes() -> None:
    """Scale ratios at both ends of the range, where every value saturates or lands on a tie
    of the rounding: the AVX2 kernels equal their scalar twins code for code."""
    by = {(k["op"], k["signed"], k["isa"]): k for k in ADDMUL}
    rng = np.random.default_rng(5)
    for (op, signed, isa), k in by.items():
        if isa == "scalar" or not k["usable"]:
            continue
        twin = by[(op, signed, "scalar")]["name"]
        dt = np.int8 if signed else np.uint8
        codes = _codes(dt)
        a, b = np.repeat(codes, 256), np.tile(codes, 256)
        for sa, sb, sc in ((1e3, 1e-6, 1e-6), (1e-6, 1e3, 1e3), (0.5, 0.25, 1.0), (1.0, 1.0, 2.0)):
            info = np.iinfo(dt)
            for z in (info.min, info.max):
                p = (F32(sa), z, F32(sb), int(rng.integers(info.min, info.max + 1)), F32(sc), z)
                got = run_addmul(k["name"], "vv", a, b, 65536, p)
                assert_same(got, run_addmul(twin, "vv", a, b, 65536, p), f"{k['name']} {p}")


# ---------------------------------------------------------------------------------------------
# QLinearAdd / QLinearMul sessions vs onnxruntime and the Python fallback.


def _qlinear_model(op: str, a: np.ndarray, b: np.ndarray, params: tuple) -> onnx.ModelProto:
    sa, za, sb, zb, sc, zc = params
    dt = a.dtype
    inits = [
        onnx.numpy_helper.from_array(np.array(v, t), name)
        for name, v, t in (
            ("sa", sa, np.float32), ("za", za, dt), ("sb", sb, np.float32), ("zb", zb, dt),
            ("sc", sc, np.float32), ("zc", zc, dt),
        )
    ]  # fmt: skip
    node = oh.make_node(op, ["a", "sa", "za", "b", "sb", "zb", "sc", "zc"], ["c"], domain=MS)
    ins = [oh.make_tensor_value_info(k, TYPES[dt], list(v.shape)) for k, v in (("a", a), ("b", b))]
    out = [oh.make_tensor_value_info("c", TYPES[dt], None)]
    graph = oh.make_graph([node], "g", ins, out, inits)
    opsets = [oh.make_opsetid("", 21), oh.make_opsetid(MS, 1)]
    return oh.make_model(graph, opset_imports=opsets, ir_version=10)


def _sliver(model: onnx.ModelProto, feeds: dict, native: bool, threads: int = 1) -> tuple:
    with pytest.MonkeyPatch.context() as m:
        if not native:
            m.setattr(registry, "native_kernel", lambda node, graph: None)
        so = sliver.SessionOptions()
        so.intra_op_num_threads = threads
        s = sliver.InferenceSession(model.SerializeToString(), so)
        return s.run(None, feeds)[0], [impl for _, _, impl in s.profile_steps()]


def _ort(model: onnx.ModelProto, feeds: dict) -> np.ndarray:
    ort = pytest.importorskip("onnxruntime")
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return s.run(None, feeds)[0]


# Shapes of every code pair in each form: A advances with B (vv), A repeats along the inner run
# (scalar-A), B repeats (scalar-B), and a 0-d scalar operand on either side.
PAIR_SHAPES = {
    "vv": lambda c: (np.repeat(c, 256).reshape(256, 256), np.tile(c, 256).reshape(256, 256)),
    "scalar-A": lambda c: (c.reshape(256, 1), c.reshape(1, 256)),
    "scalar-B": lambda c: (c.reshape(1, 256), c.reshape(256, 1)),
}


def check_session_pairs(op: str, dt: type, seed: int, with_ort: bool = True) -> None:
    """Every code pair in every form through a session, native == Python (== onnxruntime)."""
    rng = np.random.default_rng(seed)
    codes = _codes(dt)
    for form, make in PAIR_SHAPES.items():
        a, b = (np.ascontiguousarray(x) for x in make(codes))
        p = addmul_params(rng, dt, extreme=bool(rng.integers(0, 4) == 0))
        model = _qlinear_model(op, a, b, p)
        got, impls = _sliver(model, {"a": a, "b": b}, native=True)
        assert impls == [f"native {op} (q8_vaddmul)"], impls
        py, _ = _sliver(model, {"a": a, "b": b}, native=False)
        assert_same(got, py, f"{op} {form} {p}: native vs python")
        if with_ort:
            assert_same(got, _ort(model, {"a": a, "b": b}), f"{op} {form} {p}: vs onnxruntime")


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("dt", [np.uint8, np.int8], ids=["u8", "s8"])
@pytest.mark.parametrize("op", ["QLinearAdd", "QLinearMul"])
def test_session_every_code_pair_vs_onnxruntime(op: str, dt: type, seed: int) -> None:
    check_session_pairs(op, dt, seed)


@pytest.mark.parametrize("op", ["QLinearAdd", "QLinearMul"])
@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), signed=st.booleans())
def test_session_broadcasts_vs_onnxruntime(op: str, seed: int, signed: bool) -> None:
    """Random broadcasts (0-d scalars, inner and outer repeats, odd sizes) vs onnxruntime."""
    rng = np.random.default_rng(seed)
    dt = np.int8 if signed else np.uint8
    rank = int(rng.integers(1, 4))
    full = [int(d) for d in rng.integers(1, 40, size=rank)]
    shapes = [tuple(d if rng.random() < 0.6 else 1 for d in full) for _ in range(2)]
    for k in range(2):
        if rng.random() < 0.15:
            shapes[k] = ()
    a = rng.integers(0, 256, shapes[0], dtype=np.uint8).view(dt)
    b = rng.integers(0, 256, shapes[1], dtype=np.uint8).view(dt)
    params = addmul_params(rng, dt, extreme=rng.random() < 0.2)
    model = _qlinear_model(op, a, b, params)
    got, _ = _sliver(model, {"a": a, "b": b}, native=True)
    want = _ort(model, {"a": a, "b": b})
    # onnxruntime evaluates short runs (fewer elements than one vector) in another float order
    # than its vector loop, which the kernel follows; the two differ by one code only where the
    # exact value lies within float32 rounding of a .5 tie (seed 299: 9.5000004 gives 9 vs 10).
    ties = _float_ties(op, a, b, params, got.shape)
    differ = got != want
    assert_same(np.where(ties, want, got), want, f"{op} {shapes}")
    assert (np.abs(got[differ].astype(int) - want[differ].astype(int)) <= 1).all()
    assert differ.sum() <= max(1, got.size // 16), f"{op} {shapes}: {differ.sum()} ties"


def _float_ties(op: str, a: np.ndarray, b: np.ndarray, params: tuple, shape: tuple) -> np.ndarray:
    """Where the exact (float64) pre-rounding value of a QLinearAdd/Mul is within 8 float32
    ulps of a .5 rounding tie, so that float32 evaluation orders may round it either way."""
    sa, za, sb, zb, sc, zc = (float(v) for v in params)
    x, y = a.astype(np.float64) - za, b.astype(np.float64) - zb
    v = (sa * x + sb * y) / sc + zc if op == "QLinearAdd" else sa * sb / sc * x * y + zc
    v = np.broadcast_to(v, shape)
    ulp = np.spacing(np.abs(v).astype(np.float32)).astype(np.float64)
    return np.abs(np.abs(v - np.floor(v)) - 0.5) <= 8 * ulp


@pytest.mark.parametrize("op", ["QLinearAdd", "QLinearMul"])
def test_session_threaded_long_run(op: str) -> None:
    """One run long enough to be cut into pieces for two threads (and a broadcast one)."""
    rng = np.random.default_rng(11)
    for shapes in (((3, 70001), (3, 70001)), ((2, 50003), (1,)), ((1,), (130001,))):
        a = rng.integers(0, 256, shapes[0], dtype=np.uint8)
        b = rng.integers(0, 256, shapes[1], dtype=np.uint8)
        model = _qlinear_model(op, a, b, addmul_params(rng, np.uint8, extreme=False))
        got, _ = _sliver(model, {"a": a, "b": b}, native=True, threads=2)
        assert_same(got, _ort(model, {"a": a, "b": b}), f"{op} {shapes}")


# ---------------------------------------------------------------------------------------------
# q8_vbinary (sliver:QLinearBinary, the QDQ float path) and q8_vlut (sliver:QLinearLookup and
# QLinearPairLookup).


def vbinary_case(rng: np.random.Generator) -> dict:
    """Random op, code types, parameters and output clamp."""
    kinds = [bool(rng.integers(0, 2)) for _ in range(3)]
    dts = [np.int8 if s else np.uint8 for s in kinds]
    case = {"op": str(rng.choice(["Add", "Sub", "Mul", "Div", "Max", "Min"]))}
    for name, dt, signed in zip("aby", dts, kinds, strict=True):
        case[f"{name}_scale"] = _scale(rng, 1e-4, 1.0) if rng.random() < 0.8 else _scale(rng)
        case[f"{name}_zero_point"] = _zp(rng, dt)
        case[f"{name}_signed"] = signed
    info = np.iinfo(dts[2])
    lo, hi = sorted(int(v) for v in rng.integers(info.min, info.max + 1, 2))
    case["lo"], case["hi"] = (lo, hi) if rng.random() < 0.3 else (int(info.min), int(info.max))
    return case


def vbinary_ref(case: dict, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    dt = [np.int8 if case[f"{k}_signed"] else np.uint8 for k in "aby"]
    zp = [np.array(case[f"{k}_zero_point"], t) for k, t in zip("aby", dt, strict=True)]
    return qlinear_binary_values(
        case["op"], a, F32(case["a_scale"]), zp[0], b, F32(case["b_scale"]), zp[1],
        F32(case["y_scale"]), zp[2], case["lo"], case["hi"],
    )  # fmt: skip


def run_vbinary(name: str, case: dict, form: str, a: np.ndarray, b: np.ndarray, n: int):
    sa, sb = STRIDES[form]
    y = T.q8_vbinary(name, a=a, a_stride=sa, b=b, b_stride=sb, n=n, guard=GUARD, **case)
    assert (y[:GUARD] == 0xA5).all() and (y[GUARD + n :] == 0xA5).all(), f"{name}: guard bytes"
    return y[GUARD : GUARD + n].view(np.int8 if case["y_signed"] else np.uint8)


@pytest.mark.parametrize("name", VBINARY)
@SETTINGS
@given(n=st.integers(1, 67), form=st.sampled_from(FORMS), seed=st.integers(0, 2**32 - 1))
def test_vbinary_ragged(name: str, n: int, form: str, seed: int) -> None:
    _skip_unusable(OTHER[name][1], name)
    rng = np.random.default_rng(seed)
    case = vbinary_case(rng)
    a = rng.integers(0, 256, n, dtype=np.uint8).view(np.int8 if case["a_signed"] else np.uint8)
    b = rng.integers(0, 256, n, dtype=np.uint8).view(np.int8 if case["b_signed"] else np.uint8)
    sa, sb = STRIDES[form]
    a_in, b_in = (a if sa else a[:1]), (b if sb else b[:1])
    want = vbinary_ref(case, np.broadcast_to(a_in, (n,)), np.broadcast_to(b_in, (n,)))
    assert_same(run_vbinary(name, case, form, a_in, b_in, n), want, f"{case} {form} n={n}")


@pytest.mark.parametrize("name", VBINARY)
@pytest.mark.parametrize("seed", range(4))
def test_vbinary_every_code_pair(name: str, seed: int) -> None:
    _skip_unusable(OTHER[name][1], name)
    rng = np.random.default_rng(seed)
    for _ in range(6):
        case = vbinary_case(rng)
        a = np.repeat(_codes(np.int8 if case["a_signed"] else np.uint8), 256)
        b = np.tile(_codes(np.int8 if case["b_signed"] else np.uint8), 256)
        got = run_vbinary(name, case, "vv", a, b, 65536)
        assert_same(got, vbinary_ref(case, a, b), str(case))


@pytest.mark.parametrize("name", VLUT)
@SETTINGS
@given(n=st.integers(1, 67), form=st.sampled_from(FORMS), seed=st.integers(0, 2**32 - 1))
def test_vlut2_ragged(name: str, n: int, form: str, seed: int) -> None:
    """Gathers at every corner of the table (the last entry reads into the padding only)."""
    _skip_unusable(OTHER[name][1], name)
    rng = np.random.default_rng(seed)
    table = rng.integers(0, 256, 65536, dtype=np.uint8)
    a = rng.choice(np.array([0, 255, *rng.integers(0, 256, 4)], np.uint8), n)
    b = rng.choice(np.array([0, 255, *rng.integers(0, 256, 4)], np.uint8), n)
    sa, sb = STRIDES[form]
    a_in, b_in = (a if sa else a[:1]), (b if sb else b[:1])
    want = table[np.broadcast_to(a_in, (n,)).astype(np.intp) * 256 + np.broadcast_to(b_in, (n,))]
    y = T.q8_vlut2(OTHER[name][0], table, a_in, sa, b_in, sb, n, guard=GUARD)
    assert (y[:GUARD] == 0xA5).all() and (y[GUARD + n :] == 0xA5).all(), f"{name}: guard bytes"
    assert_same(y[GUARD : GUARD + n], want, f"{form} n={n}")


@pytest.mark.parametrize("name", VLUT)
@SETTINGS
@given(n=st.integers(1, 200), seed=st.integers(0, 2**32 - 1))
def test_vlut1_ragged(name: str, n: int, seed: int) -> None:
    """256-entry lookups: every code (n >= 256 would repeat), ragged tails, guards intact."""
    _skip_unusable(OTHER[name][1], name)
    rng = np.random.default_rng(seed)
    table = rng.integers(0, 256, 256, dtype=np.uint8)
    x = rng.permutation(256).astype(np.uint8)[:n] if rng.random() < 0.5 else rng.integers(
        0, 256, n, dtype=np.uint8)  # fmt: skip
    y = T.q8_vlut1(OTHER[name][0], table, x, n, guard=GUARD)
    assert (y[:GUARD] == 0xA5).all() and (y[GUARD + n :] == 0xA5).all(), f"{name}: guard bytes"
    assert_same(y[GUARD : GUARD + n], table[x], f"n={n}")
    every = np.arange(256, dtype=np.uint8)
    assert_same(T.q8_vlut1(OTHER[name][0], table, every, 256, guard=0), table, "every code")


@pytest.mark.parametrize("name", VLUT)
def test_vlut2_every_code_pair(name: str) -> None:
    _skip_unusable(OTHER[name][1], name)
    table = np.random.default_rng(3).integers(0, 256, 65536, dtype=np.uint8)
    codes, isa = _codes(np.uint8), OTHER[name][0]
    y = T.q8_vlut2(isa, table, np.repeat(codes, 256), 1, np.tile(codes, 256), 1, 65536, guard=0)
    assert_same(y, table, "vv")
    for i in (0, 1, 127, 128, 255):
        one = codes[i : i + 1]
        row = T.q8_vlut2(isa, table, one, 0, codes, 1, 256, guard=0)
        assert_same(row, table[i * 256 : (i + 1) * 256], f"row {i}")
        column = T.q8_vlut2(isa, table, codes, 1, one, 0, 256, guard=0)
        assert_same(column, table[i::256], f"column {i}")


# ---------------------------------------------------------------------------------------------
# SLIVER_ISA=scalar: sessions dispatch to the scalar twins and stay exact.


def test_scalar_isa_sessions() -> None:
    code = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        import numpy as np
        import sliver
        import test_q8_vbinary as t

        assert sliver._C.cpu_info()["kernels"]["q8_vaddmul"] == "scalar"
        for op in ("QLinearAdd", "QLinearMul"):
            for k, dt in enumerate((np.uint8, np.int8)):
                t.check_session_pairs(op, dt, seed=100 + k)
        print("scalar ok")
        """
    )
    run_scalar_isa(code, timeout=900)
