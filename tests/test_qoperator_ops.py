"""QOperator transformer ops: native kernels bit-exact against their oracles.

* com.microsoft QLinearSoftmax: native == sliver's Python op == onnxruntime, both opset forms,
  any axis, constant and per-run exp tables;
* QLinearMatMul with an activation B (attention): batched and broadcast shapes vs onnx.reference;
* data movement (Reshape, Transpose, Flatten, ...) on values whose type is unknown when the
  session is built (contrib op outputs): native for every numeric dtype;
* the dynamic-quantization MatMul chain vs onnxruntime.

Shapes, scales, zero points and values are drawn by hypothesis; the extreme codes are planted.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import sliver
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto as TP
from onnx import helper as oh
from onnx.reference import ReferenceEvaluator
from sliver import session as session_module
from sliver.ops import registry

ort = pytest.importorskip("onnxruntime")

MS = "com.microsoft"
SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
TP_OF = {
    np.dtype(np.float32): TP.FLOAT,
    np.dtype(np.float64): TP.DOUBLE,
    np.dtype(np.float16): TP.FLOAT16,
    np.dtype(np.uint8): TP.UINT8,
    np.dtype(np.int8): TP.INT8,
    np.dtype(np.uint16): TP.UINT16,
    np.dtype(np.int16): TP.INT16,
    np.dtype(np.uint32): TP.UINT32,
    np.dtype(np.int32): TP.INT32,
    np.dtype(np.uint64): TP.UINT64,
    np.dtype(np.int64): TP.INT64,
    np.dtype(np.bool_): TP.BOOL,
}


# ---------------------------------------------------------------------------------------------
# Helpers.


def make_model(
    nodes: list,
    inputs: dict[str, np.ndarray],
    outputs: dict[str, type],
    inits: dict[str, np.ndarray] | None = None,
    dims: dict[str, list] | None = None,
    opset: int = 21,
) -> onnx.ModelProto:
    """Graph inputs `inputs` (fed; `dims` may give symbolic shapes), initializers `inits`."""
    dims = dims or {}
    ins = [
        oh.make_tensor_value_info(k, TP_OF[v.dtype], dims.get(k, list(v.shape)))
        for k, v in inputs.items()
    ]
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


def run_sliver(
    model: onnx.ModelProto, feeds: dict[str, np.ndarray], native: bool = True
) -> tuple[list[np.ndarray], list[str]]:
    """Outputs and the implementation of every step; native=False: Python fallbacks only."""
    with pytest.MonkeyPatch.context() as m:
        if not native:
            m.setattr(registry, "native_kernel", lambda node, graph: None)
        s = sliver.InferenceSession(model.SerializeToString())
        impls = [impl for _, _, impl in s.profile_steps()]
        return s.run(None, feeds), impls


def is_native(impl: str) -> bool:
    return impl not in ("python", "reference")


def assert_same(got: np.ndarray, want: np.ndarray, what: str) -> None:
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != {want.dtype}"
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    if not np.array_equal(got, want):
        bad = np.argwhere(got != want)
        i = tuple(bad[0])
        raise AssertionError(
            f"{what}: {len(bad)} of {got.size} differ, first at {i}: {got[i]} vs {want[i]}"
        )


def check_native_and_python(
    model: onnx.ModelProto, feeds: dict[str, np.ndarray], want: list[np.ndarray]
) -> None:
    """Every step native, and both the native and the Python plan give `want` exactly."""
    got, impls = run_sliver(model, feeds, native=True)
    assert all(is_native(i) for i in impls), impls
    for k, (g, w) in enumerate(zip(got, want, strict=True)):
        assert_same(g, w, f"output {k} (native)")
    got, _ = run_sliver(model, feeds, native=False)
    for k, (g, w) in enumerate(zip(got, want, strict=True)):
        assert_same(g, w, f"output {k} (python)")


def q_codes(rng: np.random.Generator, dt: type, shape: tuple[int, ...]) -> np.ndarray:
    """Random codes of dt with its extremes planted."""
    info = np.iinfo(dt)
    x = rng.integers(info.min, info.max + 1, size=shape).astype(dt)
    flat = x.reshape(-1)
    for v in (info.min, info.max):
        if flat.size:
            flat[rng.integers(flat.size)] = v
    return x


def zero_point(rng: np.random.Generator, dt: type) -> np.ndarray:
    info = np.iinfo(dt)
    return np.array(
        rng.choice([info.min, info.max, 0, int(rng.integers(info.min, info.max + 1))]), dt
    )


seeds = st.integers(0, 2**32 - 1)


# ---------------------------------------------------------------------------------------------
# QLinearSoftmax.


def _softmax_case(seed: int) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    dt = np.uint8 if seed % 2 else np.int8
    rank = int(rng.integers(1, 5))
    shape = [int(d) for d in rng.integers(1, 6, size=rank)]
    opset = int(rng.choice([12, 13, 17]))
    axis = int(rng.integers(-rank, rank))
    shape[axis] = int(rng.choice([1, 2, 7, 16, 33, 70]))  # the row; 1 and 16+ are edge cases
    x = q_codes(rng, dt, tuple(shape))
    info = np.iinfo(dt)
    ys = np.float32(rng.choice([1 / 256, 1 / 255, 0.01, 0.003, 1e-5]))  # 1e-5: y_inv 99999
    yz = np.array(rng.choice([info.min, 0, int(rng.integers(info.min, info.max + 1))]), dt)
    xs = np.float32(np.exp(rng.uniform(np.log(1e-3), np.log(2.0))))
    dynamic_scale = seed % 3 == 0  # x_scale fed: the table is built per run
    symbolic = seed % 5 == 0  # row length unknown when the session is built
    inits = {"xz": zero_point(rng, dt), "ys": ys, "yz": yz}
    feeds = {"x": x}
    if dynamic_scale:
        feeds["xs"] = np.array(xs, np.float32)
    else:
        inits["xs"] = np.array(xs, np.float32)
    attrs: dict = {"opset": opset}  # onnxruntime requires it
    if seed % 4:
        attrs["axis"] = axis
    node = oh.make_node("QLinearSoftmax", ["x", "xs", "xz", "ys", "yz"], ["y"], domain=MS, **attrs)
    dims = {"x": [f"d{i}" for i in range(rank)]} if symbolic else None
    return make_model([node], feeds, {"y": dt}, inits, dims=dims), feeds


@SETTINGS
@given(seeds)
def test_qlinear_softmax_native_python_ort(seed: int) -> None:
    model, feeds = _softmax_case(seed)
    check_native_and_python(model, feeds, run_ort(model, feeds))


def test_qlinear_softmax_known_rows() -> None:
    """Fixed points: a one-element row is all probability (y_inv + zp, saturated), equal codes
    share it evenly, and the zero point shifts the int8 range."""
    for dt, yz in ((np.uint8, 0), (np.int8, -128)):
        x = np.array([[7], [200 if dt == np.uint8 else 100]], dt)
        model = make_model(
            [
                oh.make_node(
                    "QLinearSoftmax",
                    ["x", "xs", "xz", "ys", "yz"],
                    ["y"],
                    domain=MS,
                    axis=-1,
                    opset=13,
                )
            ],
            {"x": x},
            {"y": dt},
            {
                "xs": np.float32(0.1),
                "xz": np.array(0, dt),
                "ys": np.float32(1 / 256),
                "yz": np.array(yz, dt),
            },
            dims={"x": ["n", "d"]},
        )
        (y,), impls = run_sliver(model, {"x": x})
        assert is_native(impls[0])
        assert (y.astype(int) == min(256 + yz, np.iinfo(dt).max)).all()
        x4 = np.full((1, 4), 9, dt)
        (y4,), _ = run_sliver(model, {"x": x4})
        assert (y4.astype(int) == 64 + yz).all()


# ---------------------------------------------------------------------------------------------
# QLinearMatMul with B an activation.


def _batch_shapes(rng: np.random.Generator) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Batch prefixes of A and B that broadcast (either may be shorter or hold 1s)."""
    n = int(rng.integers(0, 3))
    full = [int(d) for d in rng.integers(1, 4, size=n)]
    a = tuple(d if rng.random() < 0.7 else 1 for d in full)
    b = tuple(d if rng.random() < 0.7 else 1 for d in full)
    if rng.random() < 0.3:
        b = b[int(rng.integers(0, len(b) + 1)) :]
    if rng.random() < 0.3:
        a = a[int(rng.integers(0, len(a) + 1)) :]
    return a, b


@SETTINGS
@given(seeds)
def test_qlinear_matmul_activation_b(seed: int) -> None:
    rng = np.random.default_rng(seed)
    at, bt = (
        (np.uint8 if rng.random() < 0.6 else np.int8),
        (np.uint8 if rng.random() < 0.5 else np.int8),
    )
    yt = np.uint8 if rng.random() < 0.6 else np.int8
    m, k, n = (int(d) for d in rng.integers(1, 40, size=3))
    ab, bb = _batch_shapes(rng)
    a_shape = ab + (m, k) if rng.random() < 0.9 else (k,)
    b_shape = bb + (k, n) if rng.random() < 0.9 else (k,)
    a, b = q_codes(rng, at, a_shape), q_codes(rng, bt, b_shape)
    per_col = len(b_shape) >= 2 and seed % 4 == 0
    bz = np.array([zero_point(rng, bt) for _ in range(n)], bt) if per_col else zero_point(rng, bt)
    bs = (
        np.exp(rng.uniform(-6, -2, size=n)).astype(np.float32)
        if per_col
        else np.float32(np.exp(rng.uniform(-6, -2)))
    )
    inits = {
        "as": np.float32(np.exp(rng.uniform(-6, -2))),
        "az": zero_point(rng, at),
        "bs": np.asarray(bs, np.float32),
        "bz": bz,
        "ys": np.float32(np.exp(rng.uniform(-4, 0))),
        "yz": zero_point(rng, yt),
    }
    feeds = {"a": a, "b": b}
    node = oh.make_node("QLinearMatMul", ["a", "as", "az", "b", "bs", "bz", "ys", "yz"], ["y"])
    model = make_model([node], feeds, {"y": yt}, inits)
    want = ReferenceEvaluator(model).run(None, feeds)
    got, impls = run_sliver(model, feeds)
    assert impls == ["native QLinearMatMul (q8 gemm, B packed per run)"], impls
    assert_same(got[0], want[0], "QLinearMatMul")


def test_qlinear_matmul_mismatched_b_fails_cleanly() -> None:
    a = np.zeros((2, 3, 4), np.uint8)
    b = np.zeros((5, 2), np.uint8)  # K 5 != 4
    inits = {
        "as": np.float32(0.1),
        "az": np.uint8(0),
        "bs": np.float32(0.1),
        "bz": np.uint8(0),
        "ys": np.float32(0.1),
        "yz": np.uint8(0),
    }
    model = make_model(
        [oh.make_node("QLinearMatMul", ["a", "as", "az", "b", "bs", "bz", "ys", "yz"], ["y"])],
        {"a": a, "b": b},
        {"y": np.uint8},
        inits,
        dims={"a": ["x", "y", "z"], "b": ["p", "q"]},
    )
    s = sliver.InferenceSession(model.SerializeToString())
    with pytest.raises(Exception, match="K"):
        s.run(None, {"a": a, "b": b})


# ---------------------------------------------------------------------------------------------
# Data movement on values of unknown static type.

MOVABLE = [
    np.float32,
    np.float64,
    np.float16,
    np.uint8,
    np.int8,
    np.uint16,
    np.int16,
    np.uint32,
    np.int32,
    np.uint64,
    np.int64,
    np.bool_,
]


def _untyped(monkeypatch: pytest.MonkeyPatch) -> None:
    """Compile with every intermediate value's type unknown (as below contrib ops that nothing
    types): the graph's passes run as usual, then the types they left are forgotten."""
    real = session_module.run_pipeline

    def run(graph, level):  # noqa: ANN001, ANN202
        g = real(graph, level)
        keep = {v.name for v in g.inputs} | {v.name for v in g.outputs} | set(g.initializers)
        for name, v in g.values.items():
            if name not in keep:
                v.dtype = 0
        return g

    monkeypatch.setattr(session_module, "run_pipeline", run)


def _values(rng: np.random.Generator, dt: type, shape: tuple[int, ...]) -> np.ndarray:
    if dt == np.bool_:
        return rng.random(shape) < 0.5
    if np.issubdtype(dt, np.integer):
        info = np.iinfo(dt)
        return rng.integers(max(info.min, -1000), min(info.max, 1000) + 1, size=shape).astype(dt)
    return rng.standard_normal(shape).astype(dt)


@pytest.mark.parametrize("dt", MOVABLE, ids=lambda t: np.dtype(t).name)
@SETTINGS
@given(seed=seeds)
def test_data_movement_unknown_type(dt: type, seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Transpose -> Reshape (0 and -1) -> Unsqueeze -> Squeeze -> Flatten -> Slice -> Concat ->
    Gather -> Expand -> Tile -> Split, every intermediate of unknown type."""
    _untyped(monkeypatch)
    rng = np.random.default_rng(seed)
    shape = tuple(int(d) for d in rng.integers(1, 5, size=3))
    x = _values(rng, dt, shape)
    perm = [int(p) for p in rng.permutation(3)]
    t = x.transpose(perm)
    inits = {
        "shape": np.array([0, -1], np.int64),
        "ax0": np.array([0], np.int64),
        "starts": np.array([0], np.int64),
        "ends": np.array([int(rng.integers(1, t.shape[0] + 1))], np.int64),
        "idx": np.array([0, 0], np.int64),
        "eshape": np.array([2, 1, 1], np.int64),
        "reps": np.array([1, 2], np.int64),
    }
    nodes = [
        oh.make_node("Identity", ["x"], ["x0"]),
        oh.make_node("Transpose", ["x0"], ["t"], perm=perm),
        oh.make_node("Reshape", ["t", "shape"], ["r"]),
        oh.make_node("Unsqueeze", ["r", "ax0"], ["u"]),
        oh.make_node("Squeeze", ["u", "ax0"], ["s"]),
        oh.make_node("Flatten", ["s"], ["f"], axis=1),
        oh.make_node("Slice", ["f", "starts", "ends", "ax0"], ["sl"]),
        oh.make_node("Concat", ["sl", "f"], ["c"], axis=0),
        oh.make_node("Gather", ["c", "idx"], ["g"], axis=0),
        oh.make_node("Expand", ["g", "eshape"], ["e"]),
        oh.make_node("Tile", ["g", "reps"], ["ti"]),
        oh.make_node("Split", ["ti"], ["p0", "p1"], axis=1, num_outputs=2),
    ]
    outs = {"e": dt, "p0": dt, "p1": dt}
    model = make_model(nodes, {"x": x}, outs, inits)
    r = t.reshape(t.shape[0], -1)
    c = np.concatenate([r[: int(inits["ends"][0])], r], axis=0)
    g = c[[0, 0]]
    ti = np.tile(g, (1, 2))
    half = (ti.shape[1] + 1) // 2
    want = [np.broadcast_to(g, (2, *g.shape)), ti[:, :half], ti[:, half:]]
    got, impls = run_sliver(model, {"x": x})
    assert all(is_native(i) for i in impls), impls
    for k, (gv, wv) in enumerate(zip(got, want, strict=True)):
        assert_same(gv, np.ascontiguousarray(wv), f"output {k}")


def test_unknown_type_string_fails_cleanly(monkeypatch: pytest.MonkeyPatch) -> None:
    """A string value reaching a kernel chosen for an unknown type is an error naming the op."""
    _untyped(monkeypatch)
    x = np.array([["a", "b"], ["c", "d"]], dtype=object)
    g = oh.make_graph(  # the Unsqueeze (Python: a string input) feeds Transpose a string
        [oh.make_node("Unsqueeze", ["x", "ax"], ["u"]), oh.make_node("Transpose", ["u"], ["y"])],
        "g",
        [oh.make_tensor_value_info("x", TP.STRING, [2, 2])],
        [oh.make_tensor_value_info("y", TP.STRING, None)],
        [onnx.numpy_helper.from_array(np.array([0], np.int64), "ax")],
    )
    model = oh.make_model(g, opset_imports=[oh.make_opsetid("", 21)], ir_version=10)
    s = sliver.InferenceSession(model.SerializeToString())
    with pytest.raises(Exception, match="Transpose"):
        s.run(None, {"x": x})


def test_qoperator_attention_is_native() -> None:
    """The QOperator attention block (QLinearAdd -> Reshape -> Transpose -> QLinearMatMul of two
    activations -> QLinearSoftmax -> QLinearMatMul -> Transpose -> Reshape) runs natively, bit
    for bit as the Python plan, and within one code of onnxruntime."""
    rng = np.random.default_rng(3)
    b, s, h, dh = 1, 6, 2, 4
    u8 = np.uint8

    def q(name: str) -> list[str]:
        return [f"{name}_s", f"{name}_z"]

    inits: dict[str, np.ndarray] = {}
    for name in ("x", "c", "qa", "ka", "va", "sc", "p", "o"):
        inits[f"{name}_s"] = np.float32(rng.uniform(0.01, 0.05))
        inits[f"{name}_z"] = u8(rng.integers(100, 156))
    inits["p_s"], inits["p_z"] = np.float32(1 / 256), u8(0)
    for name in ("bq", "bk", "bv"):
        inits[name] = rng.integers(0, 256, size=(h * dh,)).astype(u8)
    inits["heads"] = np.array([0, 0, h, dh], np.int64)
    inits["merge"] = np.array([0, 0, h * dh], np.int64)
    nodes = []
    for name, bias in (("qa", "bq"), ("ka", "bk"), ("va", "bv")):
        nodes.append(
            oh.make_node("QLinearAdd", ["x", *q("x"), bias, *q("c"), *q(name)], [name], domain=MS)
        )
        nodes.append(oh.make_node("Reshape", [name, "heads"], [f"{name}_r"]))
    nodes += [
        oh.make_node("Transpose", ["qa_r"], ["qt"], perm=[0, 2, 1, 3]),
        oh.make_node("Transpose", ["ka_r"], ["kt"], perm=[0, 2, 3, 1]),
        oh.make_node("Transpose", ["va_r"], ["vt"], perm=[0, 2, 1, 3]),
        oh.make_node("QLinearMatMul", ["qt", *q("qa"), "kt", *q("ka"), *q("sc")], ["scores"]),
        oh.make_node(
            "QLinearSoftmax", ["scores", *q("sc"), *q("p")], ["probs"], domain=MS, axis=-1, opset=13
        ),
        oh.make_node("QLinearMatMul", ["probs", *q("p"), "vt", *q("va"), *q("o")], ["ctx"]),
        oh.make_node("Transpose", ["ctx"], ["ct"], perm=[0, 2, 1, 3]),
        oh.make_node("Reshape", ["ct", "merge"], ["y"]),
    ]
    x = rng.integers(0, 256, size=(b, s, h * dh)).astype(u8)
    model = make_model(nodes, {"x": x}, {"y": u8}, inits, dims={"x": ["B", "S", h * dh]})
    got, impls = run_sliver(model, {"x": x})
    assert all(is_native(i) for i in impls), impls
    want, _ = run_sliver(model, {"x": x}, native=False)
    assert_same(got[0], want[0], "attention, native vs Python")
    # onnxruntime rounds QLinearMatMul's float step in float32 (onnx.reference: float64), so
    # codes may differ by one where a product sits on a tie; not by more.
    diff = np.abs(got[0].astype(int) - run_ort(model, {"x": x})[0].astype(int))
    assert diff.max() <= 1, diff.max()


# ---------------------------------------------------------------------------------------------
# Dynamic quantization: the threaded min/max and quantize passes.


def _session(model: onnx.ModelProto, threads: int) -> sliver.InferenceSession:
    so = sliver.SessionOptions()
    so.intra_op_num_threads = threads
    return sliver.InferenceSession(model.SerializeToString(), so)


@settings(max_examples=15, deadline=None)
@given(seeds)
def test_dynamic_quantize_large_threaded(seed: int) -> None:
    """Tensors large enough to split into chunks: DynamicQuantizeLinear equals onnx.reference
    and DynamicQuantizeMatMul equals onnxruntime, on 1 and 3 threads alike."""
    rng = np.random.default_rng(seed)
    m, k, n = int(rng.integers(40, 140)), int(rng.integers(300, 700)), int(rng.integers(1, 40))
    x = (rng.standard_normal((m, k)) * rng.uniform(0.1, 10) + rng.uniform(-2, 2)).astype(np.float32)
    x.reshape(-1)[rng.integers(x.size)] = np.float32(rng.choice([-1e4, 1e4]))  # one outlier
    if seed % 5 == 0:
        x = np.abs(x)  # all positive: the minimum clamps to 0
    dql = make_model(
        [oh.make_node("DynamicQuantizeLinear", ["x"], ["y", "s", "z"])],
        {"x": x},
        {"y": np.uint8, "s": np.float32, "z": np.uint8},
    )
    want = ReferenceEvaluator(dql).run(None, {"x": x})
    w = rng.integers(-63, 64, size=(k, n)).astype(np.int8)  # onnxruntime's AVX2 kernel is exact
    inits = {
        "w": w,
        "ws": np.float32(rng.uniform(0.001, 0.1)),
        "wz": np.int8(0),
        "bias": rng.standard_normal(n).astype(np.float32),
    }
    dqmm = make_model(
        [oh.make_node("DynamicQuantizeMatMul", ["x", "w", "ws", "wz", "bias"], ["y"], domain=MS)],
        {"x": x},
        {"y": np.float32},
        inits,
    )
    want_mm = run_ort(dqmm, {"x": x})
    for threads in (1, 3):
        got = _session(dql, threads).run(None, {"x": x})
        for g, wv, what in zip(got, want, ("y", "scale", "zero point"), strict=True):
            assert_same(np.asarray(g), np.asarray(wv), f"DynamicQuantizeLinear {what}, {threads}t")
        got_mm = _session(dqmm, threads).run(None, {"x": x})
        assert_same(got_mm[0], want_mm[0], f"DynamicQuantizeMatMul, {threads} threads")
