"""The QDQ passes: quantized graphs become integer kernels, and the numbers stay those of the
float path (DequantizeLinear -> float op -> QuantizeLinear) up to rounding ties.

Every test builds a small QDQ graph by hand (or with onnxruntime.quantization), checks the
rewrite's structure (the integer op exists, the float op and its DQ/Q are gone) and compares
the output codes with two spec-like float paths, onnx.reference and onnxruntime with its
optimizations off: no code may differ by more than 1, and at most ``MAX_TIE_FRACTION`` of them
by 1 (a float sum that lands within its own rounding error of a .5 tie rounds either way).
"""

from __future__ import annotations

import collections
import math
import warnings

import numpy as np
import onnx
import pytest
import sliver
from helpers import cosine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator
from sliver.options import GraphOptimizationLevel as Level
from sliver.passes.qdq_to_integer import BIAS_MAX_ERROR_LSB
from sliver.plan import compile_graph

ort = pytest.importorskip("onnxruntime")

# Output codes that may differ by one from a float path (rounding ties), as a fraction.
MAX_TIE_FRACTION = 0.02
F32 = TensorProto.FLOAT
CODES = {"u8": (np.uint8, TensorProto.UINT8, 0, 255), "s8": (np.int8, TensorProto.INT8, -128, 127)}
HYP = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FLOAT_ANCHORS = {"Conv", "MatMul", "Gemm", "ConvTranspose"}


@pytest.fixture(autouse=True)
def _verify_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLIVER_VERIFY_PASSES", "1")


# -- building QDQ graphs ---------------------------------------------------------------------
class QDQ:
    """Collects nodes and constants of a hand-quantized graph."""

    def __init__(self, rng: np.random.Generator, act: str = "u8") -> None:
        self.rng, self.act = rng, act
        self.nodes: list[onnx.NodeProto] = []
        self.inits: dict[str, np.ndarray] = {}
        self.n = 0

    def name(self, stem: str) -> str:
        self.n += 1
        return f"{stem}{self.n}"

    def const(self, stem: str, arr: np.ndarray) -> str:
        name = self.name(stem)
        self.inits[name] = np.asarray(arr)
        return name

    def qparams(self, lo: float, hi: float, kind: str | None = None) -> tuple[str, str]:
        """Scale and zero point constants covering [lo, hi] (asymmetric for u8)."""
        kind = kind or self.act
        dt, _, qmin, qmax = CODES[kind]
        lo, hi = min(lo, 0.0), max(hi, 0.0)
        scale = max(hi - lo, 1e-3) / (qmax - qmin)
        zp = 0 if kind == "s8" else int(np.clip(round(-lo / scale), qmin, qmax))
        return self.const("s", np.array(scale, np.float32)), self.const("z", np.array(zp, dt))

    def q(self, x: str, sz: tuple[str, str], out: str | None = None) -> str:
        out = out or self.name("q")
        self.nodes.append(helper.make_node("QuantizeLinear", [x, *sz], [out]))
        return out

    def dq(self, x: str, sz: tuple[str, str], axis: int | None = None) -> str:
        out = self.name("dq")
        attrs = {} if axis is None else {"axis": axis}
        self.nodes.append(helper.make_node("DequantizeLinear", [x, *sz], [out], **attrs))
        return out

    def qdq(self, x: str, lo: float, hi: float) -> tuple[str, tuple[str, str]]:
        """Q then DQ of float ``x``: the DQ output and the parameters used."""
        sz = self.qparams(lo, hi)
        return self.dq(self.q(x, sz), sz), sz

    def weight(self, w: np.ndarray, axis: int | None, kind: str = "s8") -> tuple[str, np.ndarray]:
        """DQ of symmetric 8-bit codes of w, per tensor or per channel along ``axis``."""
        dt = CODES[kind][0]
        if axis is None:
            scale = np.array(max(np.abs(w).max(), 1e-3) / 127, np.float32)
            shaped = scale
        else:
            red = tuple(i for i in range(w.ndim) if i != axis)
            scale = (np.maximum(np.abs(w).max(axis=red), 1e-3) / 127).astype(np.float32)
            shaped = scale.reshape([-1 if i == axis else 1 for i in range(w.ndim)])
        codes = np.clip(np.rint(w / shaped), -127, 127).astype(dt)
        zp = np.zeros(scale.shape, dt)
        name = self.dq(
            self.const("w", codes), (self.const("ws", scale), self.const("wz", zp)), axis
        )
        return name, scale

    def bias32(self, b: np.ndarray, sx: float, sw: np.ndarray) -> str:
        unit = (np.float32(sx) * sw.reshape(-1)).astype(np.float32) * np.ones(b.shape, np.float32)
        codes = np.rint(b / unit).astype(np.int32)
        return self.dq(
            self.const("b", codes),
            (self.const("bs", unit), self.const("bz", np.zeros(b.shape, np.int32))),
            0,
        )

    def node(self, op: str, inputs: list[str], **attrs: object) -> str:
        out = self.name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    def scale_of(self, sz: tuple[str, str]) -> float:
        return float(self.inits[sz[0]])

    def scale_zp(self, sz: tuple[str, str]) -> tuple[float, int]:
        return float(self.inits[sz[0]]), int(self.inits[sz[1]])

    def quantize(self, x: np.ndarray, sz: tuple[str, str]) -> np.ndarray:
        """QuantizeLinear of x (round half to even, saturate) with the constants sz names."""
        scale, zp = self.inits[sz[0]], self.inits[sz[1]]
        info = np.iinfo(zp.dtype)
        q = np.rint(x / scale).astype(np.float64) + int(zp)
        return np.clip(q, info.min, info.max).astype(zp.dtype)

    def model(
        self,
        inputs: dict[str, tuple],
        outputs: list[str],
        out_kind: str | None = None,
        opset: int = 19,
    ) -> onnx.ModelProto:
        code = CODES[out_kind or self.act][1]
        g = helper.make_graph(
            self.nodes, "qdq",
            [helper.make_tensor_value_info(k, F32, list(s)) for k, s in inputs.items()],
            [helper.make_tensor_value_info(o, code, None) for o in outputs],
            [numpy_helper.from_array(v, k) for k, v in self.inits.items()],
        )  # fmt: skip
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
        m.ir_version = 8
        return m


def session(model: onnx.ModelProto, level: Level = Level.ORT_ENABLE_ALL) -> sliver.InferenceSession:
    so = sliver.SessionOptions()
    so.graph_optimization_level = level
    return sliver.InferenceSession(model.SerializeToString(), so)


def float_paths(model: onnx.ModelProto, feeds: dict) -> list[list[np.ndarray]]:
    """onnx.reference's and onnxruntime's (optimizations off) outputs: the spec's float path."""
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    o = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        ref = ReferenceEvaluator(model).run(None, feeds)
    return [ref, o.run(None, feeds)]


def assert_codes_close(
    got: np.ndarray,
    want: np.ndarray,
    what: str = "",
    exact: np.ndarray | None = None,
    max_tie_fraction: float = MAX_TIE_FRACTION,
) -> int:
    """|got - want| <= 1 everywhere and rarely 1; returns how many differ.

    With ``exact`` (the real-valued code before rounding, in float64) the codes may differ only
    where it is a .5 tie, however many there are: scales that are simple ratios of each other
    put whole rows of products exactly on ties, which no fraction bounds."""
    assert got.dtype == want.dtype and got.shape == want.shape, (got.dtype, got.shape, want.shape)
    diff = np.abs(got.astype(np.int64) - want.astype(np.int64))
    assert diff.max(initial=0) <= 1, f"{what}: codes differ by {diff.max()}"
    ties = int(np.count_nonzero(diff))
    if exact is not None:
        off_tie = np.abs(exact - np.floor(exact) - 0.5) > 1e-4
        assert not np.any(off_tie & (diff > 0)), f"{what}: a code off by 1 away from a tie"
        return ties
    assert ties <= max(1, max_tie_fraction * diff.size), (
        f"{what}: {ties}/{diff.size} codes off by 1"
    )
    return ties


def check(
    model: onnx.ModelProto,
    feeds: dict,
    exact: np.ndarray | None = None,
    max_tie_fraction: float = MAX_TIE_FRACTION,
) -> sliver.InferenceSession:
    """The optimized sliver session agrees with both float paths; returns it. ``exact``: the
    first output's codes before rounding (see assert_codes_close)."""
    sess = session(model)
    got = sess.run(None, feeds)
    for ref in float_paths(model, feeds):
        for i, (g, r) in enumerate(zip(got, ref, strict=True)):
            assert_codes_close(
                g, r, exact=exact if i == 0 else None, max_tie_fraction=max_tie_fraction
            )
    return sess


def ops(sess: sliver.InferenceSession) -> collections.Counter:
    return collections.Counter(n.key for n in sess.graph.nodes)


def no_float_compute(sess: sliver.InferenceSession) -> None:
    """No float anchor and no DequantizeLinear is left in the rewritten graph."""
    c = ops(sess)
    assert not FLOAT_ANCHORS & set(c), c
    assert c["DequantizeLinear"] == 0, c


def rnd(rng: np.random.Generator, *shape: int, scale: float = 1.0) -> np.ndarray:
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def with_python_kernels(sess: sliver.InferenceSession, feeds: dict) -> list[np.ndarray]:
    """The rewritten graph run with Python implementations only (sliver's numpy references)."""
    plan = compile_graph(sess.graph, allow_native=False)
    return plan.native.run(
        [feeds[n] for n in plan.input_names], list(range(len(plan.output_names)))
    )


def activation(b: QDQ, y: str, kind: str, span: float) -> tuple[str, tuple[str, str]]:
    """Appends Relu/Clip (or nothing) to y, whose values lie in about [-span, span]; returns
    the result and parameters for its Q (a range a little wider than the activation's)."""
    if kind == "relu":
        return b.node("Relu", [y]), b.qparams(0.0, span)
    if kind == "clip":
        lo, hi = -0.3 * span, 0.6 * span
        bounds = [b.const("lo", np.array(lo, np.float32)), b.const("hi", np.array(hi, np.float32))]
        return b.node("Clip", [y, *bounds]), b.qparams(1.2 * lo, 1.2 * hi)
    return y, b.qparams(-span, span)


# -- qdq_to_integer --------------------------------------------------------------------------
@given(
    seed=st.integers(0, 2**31), act=st.sampled_from(["u8", "s8"]), per_channel=st.booleans(),
    c=st.integers(1, 12), oc=st.integers(1, 12), k=st.sampled_from([1, 3]),
    stride=st.integers(1, 2), depthwise=st.booleans(),
    bias=st.sampled_from(["none", "int32", "float"]), post=st.sampled_from(["", "relu", "clip"]),
)  # fmt: skip
@HYP
def test_conv_becomes_qlinearconv(seed, act, per_channel, c, oc, k, stride, depthwise, bias, post):
    rng = np.random.default_rng(seed)
    if depthwise:
        oc = c
    group = c if depthwise else 1
    b = QDQ(rng, act)
    x, xsz = b.qdq("x", -2.0, 2.5)
    w_f = rnd(rng, oc, c // group, k, k, scale=0.5)
    w, sw = b.weight(w_f, 0 if per_channel else None)
    inputs = [x, w]
    if bias == "int32":
        inputs.append(b.bias32(rnd(rng, oc, scale=0.3), b.scale_of(xsz), sw))
    elif bias == "float":
        inputs.append(b.const("bf", rnd(rng, oc, scale=0.3)))
    y = b.node(
        "Conv", inputs, kernel_shape=[k, k], strides=[stride] * 2, pads=[k // 2] * 4, group=group
    )
    y, ysz = activation(b, y, post, math.sqrt(c // group * k * k) * 2.0)
    b.q(y, ysz, "y")
    model = b.model({"x": (2, c, 7, 6)}, ["y"])
    feeds = {"x": rnd(rng, 2, c, 7, 6)}
    # A float bias becomes int32 in sx*sw units only when that moves no output by more than
    # BIAS_MAX_ERROR_LSB: a code may then also flip where the float path lies that close to a
    # tie, up to twice that fraction of outputs (seed 33554431, one channel: 2 of 84).
    slack = 2 * BIAS_MAX_ERROR_LSB if bias == "float" else 0.0
    sess = check(model, feeds, max_tie_fraction=MAX_TIE_FRACTION + slack)
    no_float_compute(sess)
    counts = ops(sess)
    assert counts["QLinearConv"] + counts["sliver:QLinearConv"] == 1
    assert counts["Relu"] == counts["Clip"] == 0
    # The channels-last layout computes the same codes as the NCHW kernels.
    nchw = session(model, Level.ORT_ENABLE_EXTENDED).run(None, feeds)[0]
    np.testing.assert_array_equal(sess.run(None, feeds)[0], nchw)
    np.testing.assert_array_equal(with_python_kernels(sess, feeds)[0], nchw)


def test_conv_with_unrepresentable_float_bias_stays_float() -> None:
    """A float bias whose rounding to sx*sw units would move outputs by more than the
    documented bound keeps the float path."""
    rng = np.random.default_rng(0)
    b = QDQ(rng, "u8")
    x, _ = b.qdq("x", -1, 1)
    w, _ = b.weight(rnd(rng, 4, 3, 1, 1), None)
    y = b.node("Conv", [x, w, b.const("bf", np.array([0.5, -0.25, 0.125, 1.0], np.float32))])
    b.q(y, (b.const("ys", np.array(1e-4, np.float32)), b.const("yz", np.array(128, np.uint8))), "y")
    sess = session(b.model({"x": (1, 3, 4, 4)}, ["y"]))
    assert ops(sess)["Conv"] == 1


@given(
    seed=st.integers(0, 2**31), act=st.sampled_from(["u8", "s8"]), per_column=st.booleans(),
    m=st.integers(1, 9), k=st.integers(1, 40), n=st.integers(1, 20), batch=st.integers(1, 3),
    post=st.sampled_from(["", "relu", "clip"]),
)  # fmt: skip
@HYP
def test_matmul_becomes_qlinearmatmul(seed, act, per_column, m, k, n, batch, post):
    rng = np.random.default_rng(seed)
    b = QDQ(rng, act)
    x, _ = b.qdq("x", -1.5, 2.0)
    w, _ = b.weight(rnd(rng, k, n), 1 if per_column else None)
    y, ysz = activation(b, b.node("MatMul", [x, w]), post, math.sqrt(k) * 1.5)
    b.q(y, ysz, "y")
    model = b.model({"x": (batch, m, k)}, ["y"])
    feeds = {"x": rnd(rng, batch, m, k)}
    sess = check(model, feeds)
    no_float_compute(sess)
    assert ops(sess)["QLinearMatMul"] + ops(sess)["sliver:QLinearMatMul"] == 1
    np.testing.assert_array_equal(with_python_kernels(sess, feeds)[0], sess.run(None, feeds)[0])


@given(
    seed=st.integers(0, 2**31),
    act=st.sampled_from(["u8", "s8"]),
    m=st.integers(1, 8),
    k=st.integers(1, 24),
    n=st.integers(1, 8),
)
@HYP
def test_matmul_of_two_activations(seed, act, m, k, n):
    """Attention's Q x K^T: B is an activation, packed per run."""
    rng = np.random.default_rng(seed)
    b = QDQ(rng, act)
    a, asz = b.qdq("a", -1, 1)
    bb, bsz = b.qdq("b", -1, 1.5)
    ysz = b.qparams(-math.sqrt(k), math.sqrt(k))
    b.q(b.node("MatMul", [a, bb]), ysz, "y")
    model = b.model({"a": (2, 3, m, k), "b": (2, 3, k, n)}, ["y"])
    feeds = {"a": rnd(rng, 2, 3, m, k, scale=0.5), "b": rnd(rng, 2, 3, k, n, scale=0.5)}
    # Both operands are grid values and the scales simple ratios: many products are exact ties.
    (sa, za), (sb, zb), (sy, zy) = (b.scale_zp(sz) for sz in (asz, bsz, ysz))
    qa = b.quantize(feeds["a"], asz).astype(np.float64) - za
    qb = b.quantize(feeds["b"], bsz).astype(np.float64) - zb
    sess = check(model, feeds, exact=(qa @ qb) * (sa * sb / sy) + zy)
    no_float_compute(sess)
    assert ops(sess)["sliver:QLinearMatMul"] == 1
    np.testing.assert_array_equal(with_python_kernels(sess, feeds)[0], sess.run(None, feeds)[0])


@given(
    seed=st.integers(0, 2**31),
    trans_a=st.booleans(),
    trans_b=st.booleans(),
    per_channel=st.booleans(),
    bias=st.sampled_from(["none", "int32", "float"]),
    post=st.sampled_from(["", "relu"]),
)
@HYP
def test_gemm_becomes_qlinearmatmul(seed, trans_a, trans_b, per_channel, bias, post):
    rng = np.random.default_rng(seed)
    m, k, n = 5, 19, 11
    b = QDQ(rng, "s8")
    x, xsz = b.qdq("x", -2, 2)
    w_f = rnd(rng, n, k) if trans_b else rnd(rng, k, n)
    w, sw = b.weight(w_f, (0 if trans_b else 1) if per_channel else None)
    inputs = [x, w]
    if bias == "int32":
        inputs.append(b.bias32(rnd(rng, n), b.scale_of(xsz), sw))
    elif bias == "float":
        inputs.append(b.const("bf", rnd(rng, n)))
    gemm = b.node("Gemm", inputs, transA=int(trans_a), transB=int(trans_b))
    y, ysz = activation(b, gemm, post, 8.0)
    b.q(y, ysz, "y")
    model = b.model({"x": (k, m) if trans_a else (m, k)}, ["y"])
    feeds = {"x": rnd(rng, *((k, m) if trans_a else (m, k)))}
    sess = check(model, feeds)
    no_float_compute(sess)
    assert ops(sess)["sliver:QLinearMatMul"] == 1
    np.testing.assert_array_equal(with_python_kernels(sess, feeds)[0], sess.run(None, feeds)[0])


def test_gemm_with_alpha_stays_float() -> None:
    rng = np.random.default_rng(1)
    b = QDQ(rng, "u8")
    x, _ = b.qdq("x", -1, 1)
    w, _ = b.weight(rnd(rng, 4, 3), None)
    b.q(b.node("Gemm", [x, w], alpha=0.5), b.qparams(-2, 2), "y")
    sess = check(b.model({"x": (2, 4)}, ["y"]), {"x": rnd(rng, 2, 4)})
    assert ops(sess)["Gemm"] == 1


# -- qdq_commute, qdq_drop_pair --------------------------------------------------------------
COMMUTING = {
    "MaxPool": ({"kernel_shape": [2, 2], "strides": [2, 1], "pads": [0, 1, 1, 0]}, []),
    "Reshape": ({}, [np.array([2, -1], np.int64)]),
    "Flatten": ({"axis": 2}, []),
    "Transpose": ({"perm": [0, 2, 3, 1]}, []),
    "Squeeze": ({}, [np.array([0], np.int64)]),
    "Unsqueeze": ({}, [np.array([1], np.int64)]),
    "Slice": (
        {},
        [np.array([1, 0], np.int64), np.array([3, 5], np.int64), np.array([2, 3], np.int64)],
    ),
    "Gather": ({"axis": 3}, [np.array([[0, 4], [2, 2]], np.int64)]),
    "Pad": ({}, [np.array([0, 1, 0, 2, 0, 0, 1, 1], np.int64), np.array(0.7, np.float32)]),
    "Resize": (
        {"mode": "nearest"},
        [np.array([], np.float32), np.array([1, 1, 2, 1.5], np.float32)],
    ),
    "Expand": ({}, [np.array([2, 1, 1, 1], np.int64)]),
}


@pytest.mark.parametrize("op", sorted(COMMUTING))
@pytest.mark.parametrize("act", ["u8", "s8"])
def test_commuting_op_runs_on_codes(op: str, act: str) -> None:
    rng = np.random.default_rng(len(op))
    attrs, extra = COMMUTING[op]
    b = QDQ(rng, act)
    x, sz = b.qdq("x", -1.5, 2.0)
    y = b.node(op, [x] + [b.const("c", e) for e in extra], **attrs)
    b.q(y, sz, "y")
    shape = (1, 3, 4, 5)
    model = b.model({"x": shape}, ["y"])
    sess = check(model, {"x": rnd(rng, *shape)})
    counts = ops(sess)
    assert counts["DequantizeLinear"] == 0 and counts["QuantizeLinear"] == 1, counts
    assert counts[op] == 1 or (op == "MaxPool" and counts["com.microsoft:NhwcMaxPool"] == 1)


def test_concat_same_and_mixed_parameters() -> None:
    rng = np.random.default_rng(3)
    for mixed in (False, True):
        b = QDQ(rng, "u8")
        x, sz = b.qdq("x", -1, 1)
        y, sz2 = b.qdq("y", -3, 2) if mixed else (b.dq(b.q("y", sz), sz), sz)
        b.q(b.node("Concat", [x, y], axis=1), sz, "z")
        model = b.model({"x": (2, 3, 4), "y": (2, 5, 4)}, ["z"])
        sess = check(model, {"x": rnd(rng, 2, 3, 4), "y": rnd(rng, 2, 5, 4)})
        assert ops(sess)["com.microsoft:QLinearConcat" if mixed else "Concat"] == 1


def test_drop_pair_and_requantize() -> None:
    """Q(DQ(q)) with the same parameters is q; with others it is a requantization table."""
    rng = np.random.default_rng(4)
    b = QDQ(rng, "s8")
    x, sz = b.qdq("x", -1, 1)
    y, _ = b.qdq("y", -1, 1)
    b.q(b.node("Add", [b.dq(b.q(x, sz), sz), y]), b.qparams(-2, 3), "z")
    sess = check(
        b.model({"x": (3, 4), "y": (3, 4)}, ["z"]), {"x": rnd(rng, 3, 4), "y": rnd(rng, 3, 4)}
    )
    assert dict(ops(sess)) == {"QuantizeLinear": 2, "sliver:QLinearBinary": 1}
    b = QDQ(rng, "u8")
    x, sz = b.qdq("x", -1, 1)
    b.q(x, b.qparams(-0.5, 2.0), "t")
    sess = check(b.model({"x": (3, 40)}, ["t"]), {"x": rnd(rng, 3, 40)})
    assert dict(ops(sess)) == {"QuantizeLinear": 1, "sliver:QLinearLookup": 1}


# -- qdq_binary, qdq_global_pool, qdq_lookup -------------------------------------------------
@given(
    seed=st.integers(0, 2**31),
    act=st.sampled_from(["u8", "s8"]),
    op=st.sampled_from(["Add", "Sub", "Mul", "Div", "Max", "Min"]),
    post=st.sampled_from(["", "relu", "clip"]),
    broadcast=st.booleans(),
)
@HYP
def test_binary_op_runs_the_float_path_on_codes(seed, act, op, post, broadcast):
    rng = np.random.default_rng(seed)
    b = QDQ(rng, act)
    x, _ = b.qdq("x", -2, 1)
    y, _ = b.qdq("y", 0.5 if op == "Div" else -1, 3)
    z, zsz = activation(b, b.node(op, [x, y]), post, 3.0)
    b.q(z, zsz, "z")
    ys = (1, 5) if broadcast else (4, 5)
    model = b.model({"x": (4, 5), "y": ys}, ["z"])
    feeds = {"x": rnd(rng, 4, 5), "y": np.abs(rnd(rng, *ys)) + 0.5}
    sess = check(model, feeds)
    assert dict(ops(sess)) == {"QuantizeLinear": 2, "sliver:QLinearBinary": 1}
    # The float path itself, in its own float32 order: bit-exact with the unrewritten graph.
    want = session(model, Level.ORT_ENABLE_BASIC).run(None, feeds)[0]
    np.testing.assert_array_equal(sess.run(None, feeds)[0], want)
    np.testing.assert_array_equal(with_python_kernels(sess, feeds)[0], want)


def test_binary_with_other_epilogue_is_a_pair_table() -> None:
    """A binary op followed by a non-clamp function (Sigmoid) becomes one pair table, equal
    to the float path it replaces."""
    rng = np.random.default_rng(11)
    for act in ("u8", "s8"):
        b = QDQ(rng, act)
        x, _ = b.qdq("x", -2, 1)
        y, _ = b.qdq("y", -1, 3)
        b.q(b.node("Sigmoid", [b.node("Add", [x, y])]), b.qparams(0, 1), "z")
        model = b.model({"x": (3, 1, 40), "y": (3, 5, 40)}, ["z"])
        feeds = {"x": rnd(rng, 3, 1, 40), "y": rnd(rng, 3, 5, 40)}
        sess = check(model, feeds)
        assert dict(ops(sess)) == {"QuantizeLinear": 2, "sliver:QLinearPairLookup": 1}
        want = session(model, Level.ORT_ENABLE_BASIC).run(None, feeds)[0]
        np.testing.assert_array_equal(sess.run(None, feeds)[0], want)
        np.testing.assert_array_equal(with_python_kernels(sess, feeds)[0], want)


def test_qdq_gelu_folds_into_one_lookup() -> None:
    """x * 0.5 * (1 + erf(x / sqrt2)) with a Q/DQ pair after every op (a QDQ transformer's
    FFN): the lookups and the Mul of x with its own function fold into one 256-entry table."""
    rng = np.random.default_rng(12)
    for act in ("u8", "s8"):
        b = QDQ(rng, act)
        x, _ = b.qdq("x", -4, 4)

        def requant(v: str, lo: float, hi: float, b: QDQ = b) -> str:
            sz = b.qparams(lo, hi)
            return b.dq(b.q(v, sz), sz)

        d = requant(b.node("Div", [x, b.const("r2", np.array(math.sqrt(2), np.float32))]), -3, 3)
        e = requant(b.node("Erf", [d]), -1, 1)
        one = requant(b.node("Add", [e, b.const("one", np.array(1, np.float32))]), 0, 2)
        m = requant(b.node("Mul", [x, one]), -1, 8)
        half = b.const("half", np.array(0.5, np.float32))
        b.q(b.node("Mul", [m, half]), b.qparams(-0.5, 4), "y")
        model = b.model({"x": (4, 37)}, ["y"])
        feeds = {"x": rnd(rng, 4, 37, scale=2)}
        sess = check(model, feeds)
        assert dict(ops(sess)) == {"QuantizeLinear": 1, "sliver:QLinearLookup": 1}, ops(sess)
        want = session(model, Level.ORT_ENABLE_BASIC).run(None, feeds)[0]
        np.testing.assert_array_equal(sess.run(None, feeds)[0], want)


def test_global_average_pool() -> None:
    rng = np.random.default_rng(5)
    for act in ("u8", "s8"):
        b = QDQ(rng, act)
        x, _ = b.qdq("x", -1, 2)
        b.q(b.node("GlobalAveragePool", [x]), b.qparams(-0.5, 1), "y")
        sess = check(b.model({"x": (2, 6, 5, 7)}, ["y"]), {"x": rnd(rng, 2, 6, 5, 7)})
        assert ops(sess)["com.microsoft:QLinearGlobalAveragePool"] == 1


LOOKUPS = [
    ("Sigmoid", []), ("Tanh", []), ("Erf", []), ("LeakyRelu", []), ("HardSwish", []),
    ("Div", [np.array(5.65, np.float32)]), ("Add", [np.array([1.0], np.float32)]),
    ("Mul", [np.array(0.5, np.float32)]), ("Sub", [np.array(0.25, np.float32)]),
]  # fmt: skip


@pytest.mark.parametrize("op,extra", LOOKUPS, ids=[o for o, _ in LOOKUPS])
def test_elementwise_becomes_lookup(op: str, extra: list) -> None:
    rng = np.random.default_rng(6)
    for act in ("u8", "s8"):
        b = QDQ(rng, act)
        x, _ = b.qdq("x", -3, 3)
        b.q(b.node(op, [x] + [b.const("c", e) for e in extra]), b.qparams(-2, 2), "y")
        sess = check(b.model({"x": (3, 70)}, ["y"]), {"x": rnd(rng, 3, 70, scale=2)})
        assert ops(sess)["sliver:QLinearLookup"] == 1, ops(sess)
        assert ops(sess)[op] == 0


def test_elementwise_chain_is_one_lookup() -> None:
    """x * 0.5 * (1 + erf(x / sqrt2)) without Q/DQ between: one table for the whole chain."""
    rng = np.random.default_rng(7)
    b = QDQ(rng, "u8")
    x, _ = b.qdq("x", -3, 3)
    e = b.node("Erf", [b.node("Div", [x, b.const("r2", np.array(math.sqrt(2), np.float32))])])
    h = b.node(
        "Mul",
        [
            b.node("Add", [e, b.const("one", np.array(1, np.float32))]),
            b.const("half", np.array(0.5, np.float32)),
        ],
    )
    b.q(h, b.qparams(0, 1), "y")
    sess = check(b.model({"x": (4, 33)}, ["y"]), {"x": rnd(rng, 4, 33)})
    assert dict(ops(sess)) == {"QuantizeLinear": 1, "sliver:QLinearLookup": 1}


# -- qdq_nhwc --------------------------------------------------------------------------------
def test_conv_stack_runs_channels_last() -> None:
    """Conv -> MaxPool -> depthwise Conv -> Add(residual) -> GAP: one NHWC region, bit-exact
    with the NCHW kernels; the first conv reads the NCHW input itself (nchw_input)."""
    rng = np.random.default_rng(8)
    for act in ("u8", "s8"):
        b = QDQ(rng, act)
        x, _ = b.qdq("x", -1, 1)
        w1, _ = b.weight(rnd(rng, 8, 3, 3, 3), 0)
        h1 = b.dq(b.q(b.node("Conv", [x, w1], pads=[1] * 4), sz1 := b.qparams(-4, 4)), sz1)
        h2 = b.dq(b.q(b.node("MaxPool", [h1], kernel_shape=[2, 2], strides=[2, 2]), sz1), sz1)
        w2, _ = b.weight(rnd(rng, 8, 1, 3, 3), 0)
        h3 = b.dq(
            b.q(b.node("Conv", [h2, w2], pads=[1] * 4, group=8), sz3 := b.qparams(-6, 6)), sz3
        )
        h4 = b.dq(b.q(b.node("Add", [h3, h2]), sz4 := b.qparams(-8, 8)), sz4)
        b.q(b.node("GlobalAveragePool", [h4]), b.qparams(-2, 2), "y")
        model = b.model({"x": (2, 3, 10, 12)}, ["y"])
        feeds = {"x": rnd(rng, 2, 3, 10, 12)}
        sess = check(model, feeds)
        counts = ops(sess)
        assert counts["sliver:QLinearConv"] == 2 and counts["com.microsoft:NhwcMaxPool"] == 1
        assert counts.get("Transpose", 0) == 0, counts  # entry read in place; 1x1 exit: Reshape
        want = session(model, Level.ORT_ENABLE_EXTENDED).run(None, feeds)[0]
        np.testing.assert_array_equal(sess.run(None, feeds)[0], want)
        np.testing.assert_array_equal(with_python_kernels(sess, feeds)[0], want)


# -- fuse_dynamic_quant ----------------------------------------------------------------------
def _dynamic_mlp(tmp_path, shared: bool) -> onnx.ModelProto:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    rng = np.random.default_rng(9)
    nodes, inits = [], {}
    h = "x"
    for i, (k, n) in enumerate([(16, 24), (24, 10)]):
        inits[f"w{i}"] = rnd(rng, k, n, scale=0.3)
        inits[f"b{i}"] = rnd(rng, n, scale=0.1)
        nodes.append(helper.make_node("MatMul", [h, f"w{i}"], [f"m{i}"]))
        nodes.append(helper.make_node("Add", [f"m{i}", f"b{i}"], [f"a{i}"]))
        h = f"a{i}"
        if i == 0:
            nodes.append(helper.make_node("Relu", [h], ["r0"]))
            h = "r0"
    outputs = ["a1"]
    if shared:  # a second MatMul on the same quantized input
        inits["w2"] = rnd(rng, 24, 7, scale=0.3)
        nodes.append(helper.make_node("MatMul", ["r0", "w2"], ["m2"]))
        outputs.append("m2")
    g = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", F32, ["b", 16])],
        [helper.make_tensor_value_info(o, F32, None) for o in outputs],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    src, dst = tmp_path / f"f{shared}.onnx", tmp_path / f"q{shared}.onnx"
    onnx.save(m, src)
    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)
    return onnx.load(dst)


@pytest.mark.parametrize("shared", [False, True])
def test_dynamic_quantization_fuses_bit_exact(tmp_path, shared: bool) -> None:
    model = _dynamic_mlp(tmp_path, shared)
    rng = np.random.default_rng(10)
    for batch in (1, 5):
        feeds = {"x": rnd(rng, batch, 16)}
        fused = session(model)
        want = session(model, Level.ORT_ENABLE_BASIC).run(None, feeds)
        for g, w in zip(fused.run(None, feeds), want, strict=True):
            np.testing.assert_array_equal(g, w)  # same float order as the unfused chain
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        o = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
        for g, w in zip(fused.run(None, feeds), o.run(None, feeds), strict=True):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(
            with_python_kernels(fused, feeds)[0], fused.run(None, feeds)[0]
        )
    counts = ops(fused)
    assert counts["MatMulInteger"] == counts["Cast"] == 0, counts
    fused_ops = (
        counts["com.microsoft:DynamicQuantizeMatMul"] + counts["com.microsoft:MatMulIntegerToFloat"]
    )
    assert fused_ops == 2 + shared
    if shared:
        assert (
            counts["com.microsoft:MatMulIntegerToFloat"] == 2
        )  # the shared input stays quantized once


# -- the zoo ---------------------------------------------------------------------------------
ZOO = [
    "cnn_resnet_qdq_s8s8",
    "cnn_mobilenet_qdq_u8s8",
    "ocr_like_qdq_s8s8_pc",
    "transformer_qdq_s8s8",
    "mlp_qdq_u8s8",
    "mlp_dyn_u8s8",
    "transformer_dyn_u8s8",
]


@pytest.mark.parametrize("name", ZOO)
def test_zoo_model_agrees_with_float_path(zoo_model, name: str) -> None:
    """Whole quantized models: integer kernels everywhere they apply, and the output agrees
    with onnxruntime's unoptimized float path within a few steps of the output scale."""
    from sliver.tools.model_zoo import make_feeds

    path = zoo_model(name)
    feeds = make_feeds(name)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    want = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    sess = sliver.InferenceSession(path)
    got = sess.run(None, feeds)[0]
    assert cosine(got, want) >= 0.999
    impls = [impl for _, _, impl in sess.profile_steps()]
    assert not [i for i in impls if i in ("python", "reference")]
    counts = ops(sess)
    if "_qdq_" not in name:
        assert counts["MatMulInteger"] == 0 and counts["DynamicQuantizeLinear"] <= 8, counts
        return
    assert not {"Conv", "Gemm"} & set(counts), counts
    # The output is DQ(codes): a few steps of its scale cover the float path's rounding ties.
    model = onnx.load(path)
    consts = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    last = next(n for n in model.graph.node if n.output[0] == model.graph.output[0].name)
    assert last.op_type == "DequantizeLinear"
    assert np.abs(got - want).max() <= 4 * float(consts[last.input[1]])
