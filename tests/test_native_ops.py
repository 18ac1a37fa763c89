"""Native FP32 operator kernels vs onnxruntime and onnx's reference evaluator.

Every case builds a one-node model, checks that sliver ran the node natively (the profile's
implementation is neither "reference" nor "python"), and compares the outputs with onnxruntime
(rtol 1e-4) and onnx.reference (same tolerance, where the reference implements the case). Shapes,
values and attributes are drawn at random (hypothesis), broadcasting and the attribute corners
(pads, strides, dilations, groups, auto_pad, ceil_mode, opset-dependent inputs) included. The
vector math (exp, erf, tanh, sigmoid, log, gelu) is also checked against float64 numpy with the
error bounds below, for the AVX2 kernels and, in a subprocess with SLIVER_ISA=scalar, the
portable ones.
"""

from __future__ import annotations

import math
import os
import textwrap

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import sliver
from helpers import run_scalar_isa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

RTOL = 1e-4
ATOL = 1e-5
# Largest relative error of the vector math against float64 (measured on AVX2: exp, sigmoid,
# tanh, erf and log 1.6e-7 to 1.8e-7, gelu 4.1e-7 from the erfc fit; the C library's are lower).
MATH_MAX_REL_ERROR = 6e-7

SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)

NP_TO_ONNX = {
    np.dtype(np.float32): TensorProto.FLOAT,
    np.dtype(np.int64): TensorProto.INT64,
    np.dtype(np.int32): TensorProto.INT32,
    np.dtype(np.bool_): TensorProto.BOOL,
    np.dtype(np.uint8): TensorProto.UINT8,
    np.dtype(np.float64): TensorProto.DOUBLE,
}


def make_model(
    op: str,
    inputs: list[tuple[str, np.ndarray | None, bool]],
    attrs: dict | None = None,
    opset: int = 21,
    n_outputs: int = 1,
    domain: str = "",
) -> onnx.ModelProto:
    """A one-node model. inputs: (name, value, is_constant); name "" is a missing input."""
    graph_inputs, inits = [], []
    for name, value, const in inputs:
        if not name:
            continue
        if const:
            inits.append(onnx.numpy_helper.from_array(value, name))
        else:
            graph_inputs.append(
                helper.make_tensor_value_info(name, NP_TO_ONNX[value.dtype], value.shape)
            )
    outs = [f"y{i}" for i in range(n_outputs)]
    node = helper.make_node(
        op, [n for n, _, _ in inputs], outs, domain=domain or None, **(attrs or {})
    )
    graph = helper.make_graph(
        [node], "g", graph_inputs, [onnx.ValueInfoProto(name=o) for o in outs], inits
    )
    opsets = [helper.make_opsetid("", opset)]
    if domain:
        opsets.append(helper.make_opsetid(domain, 1))
    return helper.make_model(graph, opset_imports=opsets, ir_version=10)


def feeds_of(inputs: list[tuple[str, np.ndarray | None, bool]]) -> dict[str, np.ndarray]:
    return {n: v for n, v, c in inputs if n and not c}


def run_sliver(model: onnx.ModelProto, feeds: dict, native: bool = True) -> list[np.ndarray]:
    """Runs with sliver (all optimisations off, so the node is the one compiled)."""
    opts = sliver.SessionOptions()
    opts.graph_optimization_level = sliver.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = sliver.InferenceSession(model.SerializeToString(), opts)
    if native:
        impls = [impl for _, _, impl in sess.profile_steps()]
        assert all(i not in ("reference", "python") for i in impls), impls
    return sess.run(None, feeds)


def run_ort(model: onnx.ModelProto, feeds: dict) -> list[np.ndarray]:
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(
        model.SerializeToString(), so, providers=["CPUExecutionProvider"]
    ).run(None, feeds)


def assert_close(got, want, rtol: float, atol: float, who: str) -> None:
    for g, w in zip(got, want, strict=True):
        w = np.asarray(w)
        assert g.shape == w.shape, f"{who}: shape {g.shape} != {w.shape}"
        assert g.dtype == w.dtype, f"{who}: dtype {g.dtype} != {w.dtype}"
        if w.dtype.kind == "f":
            np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, err_msg=who)
        else:
            np.testing.assert_array_equal(g, w, err_msg=who)


def check(
    op: str,
    inputs: list[tuple[str, np.ndarray | None, bool]],
    attrs: dict | None = None,
    opset: int = 21,
    n_outputs: int = 1,
    rtol: float = RTOL,
    atol: float = ATOL,
    use_ort: bool = True,
    use_ref: bool = True,
) -> list[np.ndarray]:
    """Runs one node on sliver (natively), onnxruntime and onnx.reference; compares outputs."""
    model = make_model(op, inputs, attrs, opset, n_outputs)
    feeds = feeds_of(inputs)
    got = run_sliver(model, feeds)
    if use_ort:
        assert_close(got, run_ort(model, feeds), rtol, atol, f"{op} vs onnxruntime")
    if use_ref:
        want = ReferenceEvaluator(model).run(None, feeds)
        assert_close(got, want, rtol, atol, f"{op} vs onnx.reference")
    return got


def rand(rng: np.random.Generator, shape, lo: float = -3.0, hi: float = 3.0) -> np.ndarray:
    return rng.uniform(lo, hi, size=shape).astype(np.float32)


seeds = st.integers(0, 2**31 - 1)

# ---------------------------------------------------------------------------------------------
# Vector math accuracy


def _math_inputs() -> np.ndarray:
    return np.concatenate(
        [
            np.linspace(-20, 20, 40001),
            np.geomspace(1e-30, 80, 20000),
            -np.geomspace(1e-30, 80, 20000),
        ]
    ).astype(np.float32)


_erf = np.vectorize(math.erf, otypes=[np.float64])
_erfc = np.vectorize(math.erfc, otypes=[np.float64])

MATH_OPS = {
    "Exp": lambda x: np.exp(x),
    "Sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "Tanh": np.tanh,
    "Erf": _erf,
    "Log": lambda x: np.log(np.abs(x)),
    # The float32 argument already limits gelu far out (relative condition ~x^2), so only x > -5.
    "Gelu": lambda x: 0.5 * x * _erfc(-x / math.sqrt(2)),
}


def _max_rel_error(op: str, y: np.ndarray, x: np.ndarray) -> float:
    ref = MATH_OPS[op](x.astype(np.float64))
    ok = np.isfinite(ref) & (np.abs(ref) > 1e-30) & (np.abs(ref) < 3e38)
    if op == "Gelu":
        ok &= x > -5
    return float(np.max(np.abs(y[ok] - ref[ok]) / np.abs(ref[ok])))


@pytest.mark.parametrize("op", sorted(MATH_OPS))
def test_vector_math_accuracy(op: str) -> None:
    x = _math_inputs()
    if op == "Log":
        x = np.abs(x) + np.float32(1e-38)
    model = make_model(op, [("x", x, False)], opset=20)
    (y,) = run_sliver(model, {"x": x})
    assert _max_rel_error(op, y, x) < MATH_MAX_REL_ERROR


def test_vector_math_special_values() -> None:
    x = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0, 89.0, -89.0, -104.0, -120.0], np.float32)
    for op, fn in [("Exp", np.exp), ("Tanh", np.tanh), ("Erf", _erf)]:
        (y,) = run_sliver(make_model(op, [("x", x, False)]), {"x": x})
        with np.errstate(all="ignore"):
            want = fn(x.astype(np.float64)).astype(np.float32)
        np.testing.assert_allclose(y, want, rtol=1e-6, atol=1e-43, err_msg=op)
    (y,) = run_sliver(make_model("Log", [("x", x, False)]), {"x": x})
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(np.isnan(y), np.isnan(np.log(x)))
        np.testing.assert_array_equal(y[~np.isnan(y)], np.log(x)[~np.isnan(y)])


def test_scalar_kernels_in_subprocess() -> None:
    """SLIVER_ISA=scalar selects the portable twins; they must agree too."""
    code = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        import numpy as np
        import test_native_ops as t
        x = t._math_inputs()
        for op in sorted(t.MATH_OPS):
            xi = np.abs(x) + np.float32(1e-38) if op == "Log" else x
            (y,) = t.run_sliver(t.make_model(op, [("x", xi, False)], opset=20), {{"x": xi}})
            assert t._max_rel_error(op, y, xi) < t.MATH_MAX_REL_ERROR, op
        t.test_conv_dwconv_paths()
        t.test_binary_broadcast_cases()
        print("scalar ok", __import__("sliver").cpu_info())
        """
    )
    run_scalar_isa(code, timeout=300)


# ---------------------------------------------------------------------------------------------
# Unary and elementwise


UNARY = [
    ("Relu", {}, (-3, 3)),
    ("LeakyRelu", {"alpha": 0.15}, (-3, 3)),
    ("Sigmoid", {}, (-10, 10)),
    ("Tanh", {}, (-6, 6)),
    ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}, (-5, 5)),
    ("HardSwish", {}, (-5, 5)),
    ("Erf", {}, (-4, 4)),
    ("Gelu", {}, (-5, 5)),
    ("Gelu", {"approximate": "tanh"}, (-5, 5)),
    ("Exp", {}, (-10, 10)),
    ("Log", {}, (0.01, 100)),
    ("Sqrt", {}, (0, 100)),
    ("Neg", {}, (-3, 3)),
    ("Abs", {}, (-3, 3)),
    ("Reciprocal", {}, (0.1, 10)),
    ("Elu", {"alpha": 0.7}, (-4, 4)),
    ("Softplus", {}, (-10, 10)),
]


@pytest.mark.parametrize("op,attrs,span", UNARY, ids=[f"{u[0]}{len(u[1])}" for u in UNARY])
@given(seed=seeds, shape=st.lists(st.integers(1, 9), min_size=0, max_size=4))
@settings(max_examples=6, deadline=None, derandomize=True)
def test_unary(op, attrs, span, seed, shape) -> None:
    rng = np.random.default_rng(seed)
    x = rand(rng, shape, *span)
    check(op, [("x", x, False)], attrs, opset=20)


@given(seed=seeds, n=st.integers(1, 300))
@SETTINGS
def test_clip_by_opset(seed, n) -> None:
    rng = np.random.default_rng(seed)
    x = rand(rng, [n])
    check("Clip", [("x", x, False)], {"min": -0.5, "max": 1.5}, opset=10)
    lo, hi = np.float32(-1.0), np.float32(0.25)
    check(
        "Clip",
        [("x", x, False), ("lo", np.array(lo), False), ("hi", np.array(hi), False)],
        opset=13,
    )
    check("Clip", [("x", x, False), ("", None, False), ("hi", np.array(hi), False)], opset=13)
    xi = rng.integers(-50, 50, n).astype(np.int64)
    check(
        "Clip", [("x", xi, False), ("lo", np.array(-7), True), ("hi", np.array(9), True)], opset=13
    )


@st.composite
def broadcast_pair(draw):
    """Two shapes that broadcast: drop leading dims and set random dims to 1 in each."""
    base = draw(st.lists(st.integers(1, 6), min_size=0, max_size=4))
    a, b = list(base), list(base)
    for s in (a, b):
        for i in range(len(s)):
            if draw(st.booleans()) and draw(st.booleans()):
                s[i] = 1
    a = a[draw(st.integers(0, len(a))) :] if draw(st.booleans()) else a
    b = b[draw(st.integers(0, len(b))) :] if draw(st.booleans()) else b
    return a, b


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div", "Max", "Min", "Pow"])
@given(seed=seeds, shapes=broadcast_pair())
@SETTINGS
def test_binary_float(op, seed, shapes) -> None:
    rng = np.random.default_rng(seed)
    a = rand(rng, shapes[0], 0.5, 3) if op in ("Pow", "Div") else rand(rng, shapes[0])
    b = rand(rng, shapes[1], 0.5, 2) if op in ("Pow", "Div") else rand(rng, shapes[1])
    check(op, [("a", a, False), ("b", b, False)])


def test_binary_broadcast_cases() -> None:
    """Long runs (one vector kernel call), channel broadcast, scalar-first operands."""
    rng = np.random.default_rng(0)
    for sa, sb in [
        ([2, 64, 50, 50], [2, 64, 50, 50]),
        ([2, 64, 50, 50], [1, 64, 1, 1]),
        ([64, 1, 1], [2, 64, 9, 9]),
        ([], [3, 40000]),
        ([7, 1], [1, 300]),
        ([1000, 37], [37]),
    ]:
        for op in ("Add", "Sub", "Div", "Max"):
            a, b = rand(rng, sa, 0.5, 2), rand(rng, sb, 0.5, 2)
            model = make_model(op, [("a", a, False), ("b", b, False)])
            (got,) = run_sliver(model, {"a": a, "b": b})
            want = {"Add": np.add, "Sub": np.subtract, "Div": np.divide, "Max": np.maximum}[op](
                a, b
            )
            np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div", "Max", "Min"])
@given(seed=seeds, shapes=broadcast_pair(), dtype=st.sampled_from([np.int64, np.int32]))
@settings(max_examples=10, deadline=None, derandomize=True)
def test_binary_int(op, seed, shapes, dtype) -> None:
    rng = np.random.default_rng(seed)
    a = np.asarray(rng.integers(-100, 100, shapes[0]), dtype)
    b = np.asarray(rng.integers(1, 20, shapes[1]) * rng.choice([-1, 1], shapes[1]), dtype)
    check(op, [("a", a, False), ("b", b, False)])


def test_int_division_by_zero_is_an_error() -> None:
    a, b = np.array([1, 2], np.int64), np.array([1, 0], np.int64)
    with pytest.raises(sliver.SliverError, match="division by zero"):
        run_sliver(make_model("Div", [("a", a, False), ("b", b, False)]), {"a": a, "b": b})


@pytest.mark.parametrize("op", ["Sum", "Mean", "Max", "Min"])
@given(seed=seeds)
@settings(max_examples=8, deadline=None, derandomize=True)
def test_variadic(op, seed) -> None:
    rng = np.random.default_rng(seed)
    ins = [
        ("a", rand(rng, [3, 1, 5]), False),
        ("b", rand(rng, [4, 1]), False),
        ("c", rand(rng, [5]), False),
    ]
    check(op, ins, use_ref=op != "Mean")  # onnx's Mean accumulates in place into input 0's shape
    check(op, [("a", rand(rng, [3, 4, 5]), False), *ins[1:]])
    check(op, ins[:1])


@pytest.mark.parametrize("op", ["Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"])
@given(seed=seeds, shapes=broadcast_pair(), dtype=st.sampled_from([np.float32, np.int64, np.int32]))
@settings(max_examples=8, deadline=None, derandomize=True)
def test_compare(op, seed, shapes, dtype) -> None:
    rng = np.random.default_rng(seed)
    a = np.asarray(rng.integers(-3, 3, shapes[0]), dtype)
    b = np.asarray(rng.integers(-3, 3, shapes[1]), dtype)
    check(op, [("a", a, False), ("b", b, False)])


@given(seed=seeds, shapes=broadcast_pair(), dtype=st.sampled_from([np.float32, np.int64, np.bool_]))
@settings(max_examples=15, deadline=None, derandomize=True)
def test_where(seed, shapes, dtype) -> None:
    rng = np.random.default_rng(seed)
    c = np.asarray(rng.random(shapes[0]) > 0.5)
    x = np.asarray(rng.integers(-9, 9, shapes[1]), dtype)
    y = np.asarray(rng.integers(-9, 9, shapes[0][-1:]), dtype)
    check("Where", [("c", c, False), ("x", x, False), ("y", y, False)], use_ort=dtype != np.bool_)


# ---------------------------------------------------------------------------------------------
# Conv, ConvTranspose, Gemm, MatMul and the fused forms


@st.composite
def conv_case(draw):
    nsp = draw(st.sampled_from([1, 2]))
    group = draw(st.sampled_from([1, 1, 2, 3, "dw"]))
    cg = 1 if group == "dw" else draw(st.integers(1, 4))
    g = draw(st.integers(2, 6)) if group == "dw" else group
    c = cg * g
    m = g * (1 if group == "dw" else draw(st.integers(1, 4)))
    k = [draw(st.integers(1, 4)) for _ in range(nsp)]
    s = [draw(st.integers(1, 3)) for _ in range(nsp)]
    d = [draw(st.integers(1, 2)) for _ in range(nsp)]
    auto_pad = draw(st.sampled_from(["NOTSET", "NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"]))
    pads = [draw(st.integers(0, 2)) for _ in range(2 * nsp)]
    size = [draw(st.integers(max(1, (ki - 1) * di + 1), 12)) for ki, di in zip(k, d, strict=True)]
    attrs = {"kernel_shape": k, "strides": s, "dilations": d, "group": g, "auto_pad": auto_pad}
    if auto_pad == "NOTSET":
        attrs["pads"] = pads
    elif auto_pad.startswith("SAME"):
        attrs["dilations"] = [1] * nsp  # onnxruntime rejects SAME with dilation
    n = draw(st.integers(1, 2))
    return n, c, m, cg, size, attrs, draw(st.booleans()), draw(st.booleans())


@given(seed=seeds, case=conv_case())
@settings(max_examples=60, deadline=None, derandomize=True)
def test_conv(seed, case) -> None:
    n, c, m, cg, size, attrs, bias, const_w = case
    rng = np.random.default_rng(seed)
    x = rand(rng, [n, c, *size])
    w = rand(rng, [m, cg, *attrs["kernel_shape"]])
    ins = [("x", x, False), ("w", w, const_w)]
    if bias:
        ins.append(("b", rand(rng, [m]), True))
    check("Conv", ins, attrs, rtol=1e-4, atol=1e-4)


def test_conv_dwconv_paths() -> None:
    """The depthwise paths: in place or padded, strides 1-3, 3x3 and other windows, dilation."""
    rng = np.random.default_rng(1)
    for k, s, p, d in [
        (3, 1, 0, 1),
        (3, 1, 1, 1),
        (3, 2, 1, 1),
        (5, 1, 2, 1),
        (3, 1, 2, 2),
        (5, 2, 2, 1),
        (3, 2, 0, 1),  # stride 2 read in place
        (3, 3, 1, 1),  # stride 3: column phases
        (4, 3, 0, 2),
    ]:
        x = rand(rng, [2, 8, 19, 37])
        w = rand(rng, [8, 1, k, k])
        b = rand(rng, [8])
        attrs = {"group": 8, "strides": [s, s], "pads": [p] * 4, "dilations": [d, d]}
        model = make_model("Conv", [("x", x, False), ("w", w, True), ("b", b, True)], attrs)
        (got,) = run_sliver(model, {"x": x})
        (want,) = ReferenceEvaluator(model).run(None, {"x": x})
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@given(
    seed=seeds,
    k=st.integers(1, 3),
    s=st.integers(1, 3),
    d=st.integers(1, 2),
    p=st.integers(0, 2),
    op=st.integers(0, 1),
    group=st.sampled_from([1, 2]),
    nsp=st.sampled_from([1, 2]),
    out_shape=st.booleans(),
)
@settings(max_examples=40, deadline=None, derandomize=True)
def test_conv_transpose(seed, k, s, d, p, op, group, nsp, out_shape) -> None:
    rng = np.random.default_rng(seed)
    op = min(op, s - 1, d - 1) if s > 1 else 0  # output_padding must be < stride or dilation
    x = rand(rng, [2, 2 * group, *([5] * nsp)])
    w = rand(rng, [2 * group, 3, *([k] * nsp)])
    attrs = {
        "strides": [s] * nsp,
        "dilations": [d] * nsp,
        "group": group,
        "output_padding": [op] * nsp,
    }
    if out_shape:
        attrs["output_shape"] = [s * 4 + (k - 1) * d + 1 + op - p] * nsp
        attrs["auto_pad"] = "SAME_UPPER"
    else:
        attrs["pads"] = [p] * (2 * nsp)
    ins = [("x", x, False), ("w", w, True), ("b", rand(rng, [3 * group]), True)]
    # onnx's reference slices weights and bias per group incorrectly: onnxruntime only then.
    check("ConvTranspose", ins, attrs, atol=1e-4, use_ref=group == 1)


@given(
    seed=seeds,
    m=st.integers(1, 40),
    n=st.integers(1, 40),
    k=st.integers(0, 40),
    ta=st.integers(0, 1),
    tb=st.integers(0, 1),
    alpha=st.sampled_from([1.0, 0.5]),
    beta=st.sampled_from([1.0, 0.0, 2.0]),
    c=st.sampled_from(["none", "n", "1n", "m1", "mn", "1"]),
    const_b=st.booleans(),
)
@settings(max_examples=60, deadline=None, derandomize=True)
def test_gemm(seed, m, n, k, ta, tb, alpha, beta, c, const_b) -> None:
    rng = np.random.default_rng(seed)
    a = rand(rng, [k, m] if ta else [m, k])
    b = rand(rng, [n, k] if tb else [k, n])
    ins = [("a", a, False), ("b", b, const_b)]
    if c != "none":
        cs = {"n": [n], "1n": [1, n], "m1": [m, 1], "mn": [m, n], "1": [1]}[c]
        ins.append(("c", rand(rng, cs), False))
    attrs = {"alpha": alpha, "beta": beta, "transA": ta, "transB": tb}
    check("Gemm", ins, attrs, atol=1e-4, use_ort=k > 0)


@st.composite
def matmul_shapes(draw):
    m, k, n = draw(st.integers(1, 20)), draw(st.integers(1, 20)), draw(st.integers(1, 20))
    batch = draw(st.lists(st.integers(1, 3), min_size=0, max_size=2))
    ba = [d if draw(st.booleans()) else 1 for d in batch]
    bb = [d if draw(st.booleans()) else 1 for d in batch]
    ba = ba[draw(st.integers(0, len(ba))) :]
    bb = bb[draw(st.integers(0, len(bb))) :]
    sa = [k] if draw(st.integers(0, 5)) == 0 else [*ba, m, k]
    sb = [k] if draw(st.integers(0, 5)) == 0 else [*bb, k, n]
    return sa, sb


@given(seed=seeds, shapes=matmul_shapes(), const_b=st.booleans())
@settings(max_examples=60, deadline=None, derandomize=True)
def test_matmul(seed, shapes, const_b) -> None:
    rng = np.random.default_rng(seed)
    check(
        "MatMul",
        [("a", rand(rng, shapes[0]), False), ("b", rand(rng, shapes[1]), const_b)],
        atol=1e-4,
    )


def test_matmul_large_batched_parallel_paths() -> None:
    """Attention-like batches (small per-batch GEMMs) and one tall GEMM with packed weights."""
    rng = np.random.default_rng(2)
    a, b = rand(rng, [2, 4, 33, 16]), rand(rng, [2, 4, 16, 33])
    check("MatMul", [("a", a, False), ("b", b, False)], atol=1e-4)
    a, w = rand(rng, [3, 50, 64]), rand(rng, [64, 96])
    check("MatMul", [("a", a, False), ("w", w, True)], atol=1e-4)


ACTS = [
    ("", []),
    ("Relu", []),
    ("Clip", [-0.5, 0.8]),
    ("LeakyRelu", [0.2]),
    ("Sigmoid", []),
    ("HardSigmoid", [0.25, 0.4]),
    ("HardSwish", []),
    ("Tanh", []),
    ("Gelu", []),
]


def act_nodes(name: str, params: list[float], x: str, y: str, tag: str) -> tuple[list, list]:
    """ONNX nodes (and initializers) computing activation `name` from x to y."""
    if name == "":
        return [helper.make_node("Identity", [x], [y])], []
    if name == "Clip":
        lo, hi = f"{tag}_lo", f"{tag}_hi"
        inits = [
            onnx.numpy_helper.from_array(np.array(v, np.float32), n)
            for v, n in zip(params, (lo, hi), strict=True)
        ]
        return [helper.make_node("Clip", [x, lo, hi], [y])], inits
    attrs = {}
    if name == "LeakyRelu":
        attrs = {"alpha": params[0]}
    if name == "HardSigmoid":
        attrs = {"alpha": params[0], "beta": params[1]}
    return [helper.make_node(name, [x], [y], **attrs)], []


def unfused_model(op: str, ins, attrs, act, post, residual: bool) -> onnx.ModelProto:
    """The ONNX graph a fused node stands for: op -> act -> (+ residual -> post_act)."""
    base_ins = [n for n, _, _ in ins if n != "r"]
    nodes, inits = [], []
    if op == "MatMul" and "bias" in base_ins:
        nodes.append(helper.make_node("MatMul", base_ins[:2], ["t0"]))
        nodes.append(helper.make_node("Add", ["t0", "bias"], ["t1"]))
    else:
        nodes.append(helper.make_node(op, base_ins, ["t1"], **attrs))
    n1, i1 = act_nodes(*act, "t1", "t2", "a")
    nodes += n1
    inits += i1
    last = "t2"
    if residual:
        nodes.append(helper.make_node("Add", ["t2", "r"], ["t3"]))
        n2, i2 = act_nodes(*post, "t3", "y0", "p")
        nodes += n2
        inits += i2
    else:
        nodes.append(helper.make_node("Identity", [last], ["y0"]))
    gi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, v.shape) for n, v, c in ins if not c]
    inits += [onnx.numpy_helper.from_array(v, n) for n, v, c in ins if c]
    g = helper.make_graph(nodes, "g", gi, [onnx.ValueInfoProto(name="y0")], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)], ir_version=10)


@pytest.mark.parametrize("op", ["Conv", "Gemm", "MatMul"])
@pytest.mark.parametrize("act", ACTS, ids=[a[0] or "none" for a in ACTS])
@given(
    seed=seeds,
    residual=st.booleans(),
    post=st.sampled_from([("", []), ("Relu", []), ("Clip", [0.0, 6.0])]),
)
@settings(max_examples=4, deadline=None, derandomize=True)
def test_fused(op, act, seed, residual, post) -> None:
    rng = np.random.default_rng(seed)
    if op == "Conv":
        group = int(rng.integers(1, 3)) if seed % 3 else 6  # 6: depthwise
        x = rand(rng, [2, 6, 9, 11])
        ins = [
            ("x", x, False),
            ("w", rand(rng, [6, 6 // group, 3, 3]), True),
            ("b", rand(rng, [6]), True),
        ]
        attrs = {"pads": [1, 1, 1, 1], "group": group}
        yshape = [2, 6, 9, 11]
    elif op == "Gemm":
        ins = [
            ("x", rand(rng, [7, 20]), False),
            ("w", rand(rng, [13, 20]), True),
            ("b", rand(rng, [13]), True),
        ]
        attrs = {"transB": 1}
        yshape = [7, 13]
    else:
        ins = [
            ("x", rand(rng, [2, 7, 20]), False),
            ("w", rand(rng, [20, 13]), True),
            ("bias", rand(rng, [13]), True),
        ]
        attrs = {}
        yshape = [2, 7, 13]
    if residual:
        ins.append(("r", rand(rng, yshape), False))
    fattrs = dict(attrs, activation=act[0])
    if act[1]:
        fattrs["activation_params"] = act[1]
    if residual:
        fattrs["post_activation"] = post[0]
        if post[1]:
            fattrs["post_activation_params"] = post[1]
    fused = make_model(f"Fused{op}", ins, fattrs, domain="sliver")
    feeds = feeds_of(ins)
    got = run_sliver(fused, feeds)
    want = run_ort(unfused_model(op, ins, attrs, act, post, residual), feeds)
    assert_close(got, want, 1e-4, 1e-4, f"Fused{op} {act} {post}")


def test_fused_conv_broadcast_residual() -> None:
    """A residual that only broadcasts to the output is added after the GEMM, then post_act."""
    rng = np.random.default_rng(3)
    x, w, r = rand(rng, [1, 4, 6, 6]), rand(rng, [5, 4, 3, 3]), rand(rng, [5, 1, 1])
    ins = [("x", x, False), ("w", w, True), ("", None, False), ("r", r, False)]
    attrs = {"activation": "Relu", "post_activation": "Clip", "post_activation_params": [0.0, 1.0]}
    (got,) = run_sliver(make_model("FusedConv", ins, attrs, domain="sliver"), {"x": x, "r": r})
    (conv,) = ReferenceEvaluator(make_model("Conv", ins[:2])).run(None, {"x": x})
    np.testing.assert_allclose(got, np.clip(np.maximum(conv, 0) + r, 0, 1), rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------------------------------------
# Pools and normalizations


@st.composite
def pool_case(draw):
    nsp = draw(st.sampled_from([1, 2, 2, 3]))
    k = [draw(st.integers(1, 3)) for _ in range(nsp)]
    s = [draw(st.integers(1, 3)) for _ in range(nsp)]
    pads = [draw(st.integers(0, ki - 1)) for ki in k] * 2
    size = [draw(st.integers(ki, 9)) for ki in k]
    auto_pad = draw(
        st.sampled_from(["NOTSET", "NOTSET", "NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"])
    )
    if auto_pad.startswith("SAME"):  # onnxruntime fails when a stride exceeds the window
        s = [min(si, ki) for si, ki in zip(s, k, strict=True)]
    attrs = {"kernel_shape": k, "strides": s, "auto_pad": auto_pad}
    if auto_pad == "NOTSET":
        attrs["pads"] = pads
        attrs["ceil_mode"] = int(draw(st.booleans()))
    return size, attrs


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
@given(seed=seeds, case=pool_case(), cip=st.integers(0, 1), dil=st.booleans())
@settings(max_examples=50, deadline=None, derandomize=True)
def test_pool(op, seed, case, cip, dil) -> None:
    size, attrs = case
    rng = np.random.default_rng(seed)
    x = rand(rng, [2, 3, *size])
    attrs = dict(attrs)
    if op == "AveragePool":
        attrs["count_include_pad"] = cip
    if dil and attrs["auto_pad"] == "NOTSET" and not attrs.get("ceil_mode"):
        attrs["dilations"] = [2] * len(size)
        attrs["pads"] = [0] * (2 * len(size))
        if any(2 * (k - 1) + 1 > n for k, n in zip(attrs["kernel_shape"], size, strict=True)):
            return
    # onnx's reference pools fail on auto_pad SAME_*, padded 1-D inputs and uneven pads (wrong
    # shapes and values, IndexError): it is consulted for 2-D symmetric explicit padding only.
    pads = attrs.get("pads", [0] * 4)
    use_ref = len(size) == 2 and attrs["auto_pad"] in ("NOTSET", "VALID") and pads[:2] == pads[2:]
    check(op, [("x", x, False)], attrs, opset=19, atol=1e-5, use_ref=use_ref)


@given(
    seed=seeds,
    kh=st.integers(1, 5),
    kw=st.integers(1, 2),
    sh=st.integers(1, 4),
    w_out=st.integers(1, 40),
    h=st.integers(5, 12),
    pad_h=st.booleans(),
    nan=st.booleans(),
)
@settings(max_examples=40, deadline=None, derandomize=True)
def test_max_pool_direct_rows(seed, kh, kw, sh, w_out, h, pad_h, nan) -> None:
    """Non-overlapping max windows along W (kw = sw <= 2, the 2x2/2 and Nx1 pools of CNNs and
    text recognisers) take the rows-first kernel; NaN must propagate like numpy's max."""
    rng = np.random.default_rng(seed)
    x = rand(rng, [2, 3, h, w_out * kw + int(rng.integers(0, kw))])
    if nan:
        x.reshape(-1)[rng.choice(x.size, size=3, replace=False)] = np.nan
    pads = [kh // 2 if pad_h else 0, 0, kh // 2 if pad_h else 0, 0]
    attrs = {"kernel_shape": [kh, kw], "strides": [sh, kw], "pads": pads}
    (got,) = check(
        "MaxPool", [("x", x, False)], attrs, opset=19, atol=1e-6, use_ort=not nan, use_ref=not nan
    )
    if nan:  # onnxruntime and onnx.reference drop NaN in max pooling; numpy's max keeps it
        xp = np.pad(x, [(0, 0), (0, 0), (pads[0], pads[2]), (0, 0)], constant_values=-np.inf)
        oh = (xp.shape[2] - kh) // sh + 1
        want = np.stack(
            [xp[:, :, i * sh : i * sh + kh, : w_out * kw].max(axis=2) for i in range(oh)], axis=2
        )
        want = want.reshape(*want.shape[:3], w_out, kw).max(axis=4)
        np.testing.assert_array_equal(got, want)


@given(
    seed=seeds,
    k=st.integers(1, 4),
    s=st.integers(1, 3),
    h=st.integers(4, 20),
    w=st.integers(4, 40),
    pad=st.booleans(),
)
@settings(max_examples=40, deadline=None, derandomize=True)
def test_max_pool_separable_nan(seed, k, s, h, w, pad) -> None:
    """Overlapping and padded windows (the 3x3/2 stem pool of ResNets) take the separable paths
    (strided rows: the window's rows first, then along W; stride 1: along W first), whose row
    kernels and border columns use branch-free NaN-propagating max: compared with numpy's max
    over -inf padding, NaN included."""
    rng = np.random.default_rng(seed)
    x = rand(rng, [1, 2, h + k, w + k])
    x.reshape(-1)[rng.choice(x.size, size=3, replace=False)] = np.nan
    p = k // 2 if pad else 0
    attrs = {"kernel_shape": [k, k], "strides": [s, s], "pads": [p] * 4}
    (got,) = check("MaxPool", [("x", x, False)], attrs, opset=19, use_ort=False, use_ref=False)
    xp = np.pad(x, [(0, 0), (0, 0), (p, p), (p, p)], constant_values=-np.inf)
    oh, ow = (xp.shape[2] - k) // s + 1, (xp.shape[3] - k) // s + 1
    want = np.empty((1, 2, oh, ow), np.float32)
    for i in range(oh):
        for j in range(ow):
            want[:, :, i, j] = xp[:, :, i * s : i * s + k, j * s : j * s + k].max(axis=(2, 3))
    np.testing.assert_array_equal(got, want)


@given(seed=seeds, h=st.integers(1, 12), w=st.integers(1, 12), cip=st.integers(0, 1))
@settings(max_examples=30, deadline=None, derandomize=True)
def test_average_pool_whole_plane(seed, h, w, cip) -> None:
    """A window as large as the plane (CNN head pools written as AveragePool) is one sum per
    plane: same values as onnxruntime and onnx.reference, including 1-wide planes."""
    rng = np.random.default_rng(seed)
    x = rand(rng, [2, 5, h, w])
    attrs = {"kernel_shape": [h, w], "count_include_pad": cip}
    check("AveragePool", [("x", x, False)], attrs, opset=19, atol=1e-5)


@pytest.mark.parametrize("op", ["GlobalAveragePool", "GlobalMaxPool"])
@given(seed=seeds, shape=st.lists(st.integers(1, 9), min_size=3, max_size=5))
@settings(max_examples=10, deadline=None, derandomize=True)
def test_global_pool(op, seed, shape) -> None:
    # onnx's reference GlobalMaxPool gets the output rank wrong except for 4-D inputs.
    check(op, [("x", rand(np.random.default_rng(seed), shape), False)], use_ref=len(shape) == 4)


@given(seed=seeds, shape=st.lists(st.integers(1, 8), min_size=2, max_size=4), const=st.booleans())
@settings(max_examples=20, deadline=None, derandomize=True)
def test_batchnorm(seed, shape, const) -> None:
    rng = np.random.default_rng(seed)
    c = shape[1]
    ins = [
        ("x", rand(rng, shape), False),
        ("s", rand(rng, [c]), const),
        ("b", rand(rng, [c]), const),
        ("m", rand(rng, [c]), const),
        ("v", rand(rng, [c], 0.1, 2), const),
    ]
    check("BatchNormalization", ins, {"epsilon": 1e-3}, opset=15)


@given(
    seed=seeds,
    shape=st.lists(st.integers(1, 10), min_size=1, max_size=4),
    axis=st.integers(-4, 3),
    bias=st.booleans(),
    n_out=st.integers(1, 3),
)
@settings(max_examples=30, deadline=None, derandomize=True)
def test_layernorm(seed, shape, axis, bias, n_out) -> None:
    if not -len(shape) <= axis < len(shape):
        return
    rng = np.random.default_rng(seed)
    norm = shape[axis:] if axis >= 0 else shape[len(shape) + axis :]
    ins = [("x", rand(rng, shape), False), ("s", rand(rng, norm), True)]
    if bias:
        ins.append(("b", rand(rng, norm), True))
    check(
        "LayerNormalization",
        ins,
        {"axis": axis, "epsilon": 1e-4},
        opset=17,
        n_outputs=n_out,
        atol=1e-4,
    )


@pytest.mark.parametrize("value", [0.0, 3.75, -1234.5])
def test_layernorm_constant_rows_give_the_bias(value) -> None:
    """A constant row normalises to exactly 0 (then the bias), even with BERT's eps = 1e-12,
    where 1 / sqrt(var + eps) is 1e6 and x * inv - mean * inv would not cancel."""
    x = np.full((3, 768), value, np.float32)
    x[1] = np.linspace(-2, 2, 768, dtype=np.float32)
    rng = np.random.default_rng(0)
    ins = [("x", x, False), ("s", rand(rng, [768]), True), ("b", rand(rng, [768]), True)]
    (y,) = check("LayerNormalization", ins, {"axis": -1, "epsilon": 1e-12}, opset=17, atol=1e-4)
    np.testing.assert_array_equal(y[[0, 2]], np.broadcast_to(ins[2][1], (2, 768)))


@given(seed=seeds, shape=st.lists(st.integers(1, 8), min_size=3, max_size=4))
@settings(max_examples=10, deadline=None, derandomize=True)
def test_instancenorm(seed, shape) -> None:
    rng = np.random.default_rng(seed)
    c = shape[1]
    ins = [("x", rand(rng, shape), False), ("s", rand(rng, [c]), True), ("b", rand(rng, [c]), True)]
    check("InstanceNormalization", ins, {"epsilon": 1e-4}, atol=1e-4)


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
@given(
    seed=seeds,
    shape=st.lists(st.integers(1, 9), min_size=1, max_size=4),
    axis=st.integers(-4, 3),
    opset=st.sampled_from([11, 13]),
)
@settings(max_examples=30, deadline=None, derandomize=True)
def test_softmax(op, seed, shape, axis, opset) -> None:
    if not -len(shape) <= axis < len(shape):
        return
    x = rand(np.random.default_rng(seed), shape, -5, 5)
    # onnx's reference applies the opset-13 axis semantics to older opsets too.
    check(op, [("x", x, False)], {"axis": axis}, opset=opset, use_ref=opset >= 13)


@pytest.mark.parametrize(
    "op",
    [
        "ReduceSum",
        "ReduceMean",
        "ReduceMax",
        "ReduceMin",
        "ReduceProd",
        "ReduceSumSquare",
        "ReduceL1",
        "ReduceL2",
    ],
)
@given(
    seed=seeds,
    shape=st.lists(st.integers(1, 6), min_size=1, max_size=4),
    data=st.data(),
    keepdims=st.integers(0, 1),
    opset=st.sampled_from([11, 13, 18]),
)
@settings(max_examples=15, deadline=None, derandomize=True)
def test_reduce(op, seed, shape, data, keepdims, opset) -> None:
    rng = np.random.default_rng(seed)
    axes = sorted(set(data.draw(st.lists(st.integers(-len(shape), len(shape) - 1), max_size=3))))
    axes = [
        a
        for a in axes
        if (a + len(shape)) % len(shape)
        not in [(b + len(shape)) % len(shape) for b in axes if b < a]
    ]
    x = rand(rng, shape, 0.5, 1.5)
    axes_input = opset >= 18 or (op == "ReduceSum" and opset >= 13)
    attrs = {"keepdims": keepdims}
    ins = [("x", x, False)]
    if axes_input:
        if axes:
            ins.append(("axes", np.array(axes, np.int64), data.draw(st.booleans())))
    elif axes:
        attrs["axes"] = axes
    check(op, ins, attrs, opset=opset)
    if op in ("ReduceSum", "ReduceMax"):
        xi = rng.integers(-20, 20, shape).astype(np.int64)
        check(op, [("x", xi, False), *ins[1:]], attrs, opset=opset)


# ---------------------------------------------------------------------------------------------
# Shape and data-movement ops


@given(seed=seeds, shape=st.lists(st.integers(1, 5), min_size=1, max_size=4), data=st.data())
@settings(max_examples=30, deadline=None, derandomize=True)
def test_reshape_flatten_squeeze(seed, shape, data) -> None:
    rng = np.random.default_rng(seed)
    x = rand(rng, shape)
    target = list(shape)
    rng.shuffle(target)
    target = [int(v) for v in target]
    target[data.draw(st.integers(0, len(target) - 1))] = -1
    if len(shape) > 1:
        target[0] = 0 if target[0] != -1 and shape[0] == target[0] else target[0]
    check("Reshape", [("x", x, False), ("s", np.array(target, np.int64), data.draw(st.booleans()))])
    check("Flatten", [("x", x, False)], {"axis": data.draw(st.integers(-len(shape), len(shape)))})
    x1 = x.reshape([1, *shape, 1])
    check("Squeeze", [("x", x1, False)], opset=11)
    check("Squeeze", [("x", x1, False), ("a", np.array([0, -1], np.int64), True)], opset=13)
    check("Unsqueeze", [("x", x, False)], {"axes": [0, -1]}, opset=11)
    check("Unsqueeze", [("x", x, False), ("a", np.array([1, 0], np.int64), False)], opset=13)


def test_reshape_allowzero() -> None:
    x = np.zeros([0, 3], np.float32)
    check(
        "Reshape",
        [("x", x, False), ("s", np.array([3, 0], np.int64), True)],
        {"allowzero": 1},
        opset=14,
    )


@given(
    seed=seeds,
    shape=st.lists(st.integers(1, 6), min_size=1, max_size=5),
    data=st.data(),
    dtype=st.sampled_from([np.float32, np.int64, np.uint8, np.bool_]),
)
@settings(max_examples=30, deadline=None, derandomize=True)
def test_transpose_concat_gather_split(seed, shape, data, dtype) -> None:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 100, shape).astype(dtype)
    perm = data.draw(st.permutations(list(range(len(shape)))))
    check("Transpose", [("x", x, False)], {"perm": list(perm)})
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    other = list(shape)
    other[axis] = data.draw(st.integers(0, 3))
    y = rng.integers(0, 100, other).astype(dtype)
    check("Concat", [("x", x, False), ("y", y, False), ("z", x, False)], {"axis": axis})
    idx = rng.integers(
        -shape[axis], shape[axis], data.draw(st.lists(st.integers(1, 3), max_size=2))
    )
    check(
        "Gather",
        [("x", x, False), ("i", idx.astype(np.int64), data.draw(st.booleans()))],
        {"axis": axis},
    )
    parts = data.draw(st.integers(1, 3))
    if shape[axis] % parts == 0:
        check("Split", [("x", x, False)], {"axis": axis}, opset=11, n_outputs=parts)
    split = [shape[axis] // 2, shape[axis] - shape[axis] // 2]
    check(
        "Split",
        [("x", x, False), ("s", np.array(split, np.int64), True)],
        {"axis": axis},
        opset=13,
        n_outputs=2,
    )
    if parts <= shape[axis]:
        check(
            "Split",
            [("x", x, False)],
            {"axis": axis, "num_outputs": parts},
            opset=18,
            n_outputs=parts,
        )


@given(seed=seeds, shape=st.lists(st.integers(1, 7), min_size=1, max_size=4), data=st.data())
@settings(max_examples=40, deadline=None, derandomize=True)
def test_slice(seed, shape, data) -> None:
    x = rand(np.random.default_rng(seed), shape)
    n = data.draw(st.integers(1, len(shape)))
    axes = data.draw(st.permutations(list(range(len(shape)))))[:n]
    big = st.sampled_from([-(2**62), -9, -3, -1, 0, 1, 2, 5, 9, 2**62])
    starts = [data.draw(big) for _ in axes]
    ends = [data.draw(big) for _ in axes]
    steps = [data.draw(st.sampled_from([1, 2, 3, -1, -2])) for _ in axes]
    ins = [
        ("x", x, False),
        ("s", np.array(starts, np.int64), False),
        ("e", np.array(ends, np.int64), True),
        (
            "a",
            np.array([a - len(shape) if data.draw(st.booleans()) else a for a in axes], np.int64),
            True,
        ),
        ("t", np.array(steps, np.int64), True),
    ]
    # onnx's reference slices like numpy, which differs from the spec's clamping of starts
    # outside [-dim, dim] with negative steps.
    in_range = all(-shape[a] <= v <= shape[a] for a, v in zip(axes, starts, strict=True))
    check("Slice", ins, use_ref=in_range)
    check(
        "Slice",
        [("x", x, False)],
        {"starts": [max(s, -9) for s in starts], "ends": ends, "axes": list(axes)},
        opset=9,
    )


@given(
    seed=seeds,
    shapes=broadcast_pair(),
    reps=st.lists(st.integers(0, 3), min_size=4, max_size=4),
)
@settings(max_examples=30, deadline=None, derandomize=True)
def test_expand_tile(seed, shapes, reps) -> None:
    rng = np.random.default_rng(seed)
    x = rand(rng, shapes[0])
    check("Expand", [("x", x, False), ("s", np.array(shapes[1], np.int64), False)])
    check("Tile", [("x", x, False), ("r", np.array(reps[: x.ndim], np.int64), True)])


@given(
    seed=seeds,
    shape=st.lists(st.integers(1, 6), min_size=1, max_size=4),
    data=st.data(),
    mode=st.sampled_from(["constant", "reflect", "edge", "wrap"]),
)
@settings(max_examples=40, deadline=None, derandomize=True)
def test_pad(seed, shape, data, mode) -> None:
    x = rand(np.random.default_rng(seed), shape)
    pads = []
    for _ in range(2):
        for d in shape:
            if mode == "constant":
                pads.append(data.draw(st.integers(-1 if d > 2 else 0, 3)))  # negative pads crop
            elif mode == "reflect":
                pads.append(data.draw(st.integers(0, d - 1)))
            else:
                pads.append(data.draw(st.integers(0, 3)))
    ins = [("x", x, False), ("p", np.array(pads, np.int64), data.draw(st.booleans()))]
    if mode == "constant":
        ins.append(("v", np.array(1.5, np.float32), True))
    check("Pad", ins, {"mode": mode}, opset=19 if mode == "wrap" else 18, use_ref=min(pads) >= 0)
    if mode != "wrap" and min(pads) >= 0:
        check("Pad", [("x", x, False)], {"mode": mode, "pads": pads, "value": 2.0}, opset=10)
    axes_ins = [
        ("x", x, False),
        ("p", np.array([1, 2], np.int64), True),
        ("v", np.array(0.5, np.float32), True),
        ("ax", np.array([-1], np.int64), True),
    ]
    check("Pad", axes_ins, {"mode": "constant"}, opset=18)


@given(
    seed=seeds,
    h=st.integers(1, 7),
    w=st.integers(1, 7),
    data=st.data(),
    mode=st.sampled_from(["nearest", "linear"]),
    coord=st.sampled_from(["half_pixel", "asymmetric", "align_corners", "pytorch_half_pixel"]),
    nearest=st.sampled_from(["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]),
)
@settings(max_examples=50, deadline=None, derandomize=True)
def test_resize(seed, h, w, data, mode, coord, nearest) -> None:
    x = rand(np.random.default_rng(seed), [1, 2, h, w])
    attrs = {"mode": mode, "coordinate_transformation_mode": coord, "nearest_mode": nearest}
    use_ort = True
    if data.draw(st.booleans()):
        scales = [
            1.0,
            1.0,
            data.draw(st.sampled_from([0.5, 0.75, 1.0, 1.5, 2.0, 3.0])),
            data.draw(st.sampled_from([0.6, 1.0, 1.7, 2.0, 2.5])),
        ]
        ins = [("x", x, False), ("", None, False), ("sc", np.array(scales, np.float32), True)]
        # align_corners with scales: onnx (and its node tests) divide by in*scale - 1,
        # onnxruntime by the floored output size - 1; sliver follows onnx.
        use_ort = coord != "align_corners"
    else:
        sizes = [1, 2, data.draw(st.integers(1, 12)), data.draw(st.integers(1, 12))]
        ins = [
            ("x", x, False),
            ("", None, False),
            ("", None, False),
            ("sz", np.array(sizes, np.int64), True),
        ]
    check("Resize", ins, attrs, opset=19, atol=1e-5, use_ort=use_ort)


@given(
    seed=seeds,
    shape=st.lists(st.integers(0, 5), min_size=0, max_size=4),
    to=st.sampled_from(
        [
            TensorProto.FLOAT,
            TensorProto.INT64,
            TensorProto.INT32,
            TensorProto.UINT8,
            TensorProto.BOOL,
            TensorProto.DOUBLE,
        ]
    ),
    src=st.sampled_from([np.float32, np.int64, np.int32, np.uint8, np.bool_, np.float64]),
)
@settings(max_examples=30, deadline=None, derandomize=True)
def test_cast_shape_identity(seed, shape, to, src) -> None:
    x = (np.random.default_rng(seed).uniform(0, 100, shape)).astype(src)
    check("Cast", [("x", x, False)], {"to": to})
    check("Shape", [("x", x, False)])
    check("Shape", [("x", x, False)], {"start": 1, "end": -1}, opset=15)
    check("Size", [("x", x, False)])
    check("Identity", [("x", x, False)])
    if src == np.float32:
        check("Dropout", [("x", x, False)], opset=13, n_outputs=2)


def test_constant_of_shape_and_range() -> None:
    check("ConstantOfShape", [("s", np.array([2, 3], np.int64), False)])
    model_attrs = {"value": onnx.numpy_helper.from_array(np.array([7], np.int64))}
    check("ConstantOfShape", [("s", np.array([4], np.int64), False)], model_attrs)
    for dtype, (a, b, d) in [
        (np.int64, (2, 17, 3)),
        (np.int32, (10, -3, -4)),
        (np.float32, (0.5, 3.0, 0.25)),
    ]:
        check(
            "Range",
            [
                ("a", np.array(a, dtype), False),
                ("b", np.array(b, dtype), False),
                ("d", np.array(d, dtype), False),
            ],
        )


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
@given(
    seed=seeds,
    k=st.lists(st.integers(1, 7), min_size=2, max_size=2),
    s=st.lists(st.integers(1, 3), min_size=2, max_size=2),
    extra=st.lists(st.integers(0, 40), min_size=2, max_size=2),
    pad=st.booleans(),
    cip=st.integers(0, 1),
)
@settings(max_examples=40, deadline=None, derandomize=True)
def test_pool_wide_rows(op, seed, k, s, extra, pad, cip) -> None:
    """Rows long enough for the vector row kernels (8 outputs, 16-float stride-2 loads)."""
    rng = np.random.default_rng(seed)
    size = [ki + e for ki, e in zip(k, extra, strict=True)]
    pads = [ki // 2 if pad else 0 for ki in k] * 2
    attrs = {"kernel_shape": k, "strides": s, "pads": pads}
    if op == "AveragePool":
        attrs["count_include_pad"] = cip
    x = rand(rng, [1, 2, *size])
    check(op, [("x", x, False)], attrs, opset=19, atol=1e-5, use_ref=True)
