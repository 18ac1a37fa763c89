"""onnxruntime's fused transformer ops (passes/lower_contrib.py) against onnxruntime itself.

Models saved after onnxruntime's optimizations carry com.microsoft SkipLayerNormalization,
BiasGelu, FastGelu, FusedMatMul, QuickGelu and (T5/LLaMA-style) the RMS norms. Each op is
checked on random shapes and attribute combinations against onnxruntime (the only spec these
ops have), and must run natively once lowered; a whole transformer saved by onnxruntime must
load, run every node natively and agree.
Tolerance: float32 sums in a different order, 1e-4 relative and absolute.
"""

from __future__ import annotations

import numpy as np
import pytest
import sliver
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto
from onnx import helper as oh
from onnx import numpy_helper as nh

ort = pytest.importorskip("onnxruntime")
F32 = TensorProto.FLOAT
TOL = 1e-4


def _model(node, inputs, inits, n_out=1):  # noqa: ANN001, ANN202
    g = oh.make_graph(
        [node],
        "g",
        [oh.make_tensor_value_info(n, F32, list(a.shape)) for n, a in inputs.items()],
        [oh.make_tensor_value_info(o, F32, None) for o in node.output[:n_out] if o],
        [nh.from_array(a, n) for n, a in inits.items()],
    )
    opsets = [oh.make_opsetid("", 14), oh.make_opsetid("com.microsoft", 1)]
    return oh.make_model(g, opset_imports=opsets)


def _check(model, feeds, native=True):  # noqa: ANN001, ANN202
    s = sliver.InferenceSession(model.SerializeToString())
    impls = [impl for _, _, impl in s.profile_steps()]
    if native:
        assert not any(i in ("python", "reference") for i in impls), impls
    got = s.run(None, feeds)
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, feeds
    )
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=TOL, atol=TOL)


def _rnd(rng, *shape):  # noqa: ANN001, ANN202
    return rng.standard_normal(shape).astype(np.float32)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    seed=st.integers(0, 2**31),
    b=st.integers(1, 3),
    s=st.integers(1, 9),
    h=st.integers(2, 80),
    beta=st.booleans(),
    bias=st.booleans(),
    want_sum=st.booleans(),
)
def test_skip_layer_norm(seed, b, s, h, beta, bias, want_sum) -> None:  # noqa: ANN001
    rng = np.random.default_rng(seed)
    inits = {"gamma": _rnd(rng, h)}
    names = ["x", "skip", "gamma", "beta" if beta else "", "bias" if bias else ""]
    if beta:
        inits["beta"] = _rnd(rng, h)
    if bias:
        inits["bias"] = _rnd(rng, h)
    while names[-1] == "":
        names.pop()
    outs = ["y", "", "", "sum"] if want_sum else ["y"]
    node = oh.make_node("SkipLayerNormalization", names, outs, domain="com.microsoft", epsilon=1e-5)
    feeds = {"x": _rnd(rng, b, s, h), "skip": _rnd(rng, b, s, h)}
    model = _model(node, feeds, inits, n_out=4)
    _check(model, feeds)


def test_skip_layer_norm_statistics_stay_on_the_fallback() -> None:
    """With its mean output read, the node is not lowered; the Python kernel runs it."""
    rng = np.random.default_rng(1)
    node = oh.make_node(
        "SkipLayerNormalization",
        ["x", "skip", "gamma", "beta"],
        ["y", "mean"],
        domain="com.microsoft",
        epsilon=1e-5,
    )
    feeds = {"x": _rnd(rng, 2, 3, 16), "skip": _rnd(rng, 2, 3, 16)}
    model = _model(node, feeds, {"gamma": _rnd(rng, 16), "beta": _rnd(rng, 16)}, n_out=2)
    s = sliver.InferenceSession(model.SerializeToString())
    assert [impl for _, _, impl in s.profile_steps()] == ["python"]
    _check(model, feeds, native=False)


@pytest.mark.parametrize("op,bias", [("BiasGelu", True), ("FastGelu", True), ("FastGelu", False)])
@pytest.mark.parametrize("shape", [(3, 17), (2, 5, 64)])
def test_gelus(op, bias, shape) -> None:  # noqa: ANN001
    rng = np.random.default_rng(len(shape) + bias)
    inits = {"b": _rnd(rng, shape[-1])} if bias else {}
    node = oh.make_node(op, ["x", "b"] if bias else ["x"], ["y"], domain="com.microsoft")
    feeds = {"x": _rnd(rng, *shape) * 3}
    _check(_model(node, feeds, inits), feeds)


@pytest.mark.parametrize("alpha", [None, 1.0, 1.702, -0.5])
@pytest.mark.parametrize("shape", [(3, 17), (2, 5, 64)])
def test_quick_gelu(alpha, shape) -> None:  # noqa: ANN001
    rng = np.random.default_rng(len(shape) + (0 if alpha is None else int(10 * abs(alpha))))
    kw = {} if alpha is None else {"alpha": alpha}
    node = oh.make_node("QuickGelu", ["x"], ["y"], domain="com.microsoft", **kw)
    feeds = {"x": _rnd(rng, *shape) * 4}
    _check(_model(node, feeds, {}), feeds)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    seed=st.integers(0, 2**31),
    shape=st.lists(st.integers(1, 40), min_size=1, max_size=4),
    axis_from_end=st.integers(1, 4),
    eps=st.sampled_from([1e-6, 1e-5, 0.1]),
    skip=st.booleans(),
    bias=st.booleans(),
    want_sum=st.booleans(),
)
def test_rms_norms(seed, shape, axis_from_end, eps, skip, bias, want_sum) -> None:  # noqa: ANN001
    """SimplifiedLayerNormalization (any axis) and SkipSimplifiedLayerNormalization (last axis,
    optional bias and sum output): lowered to native ops, equal to onnxruntime."""
    rng = np.random.default_rng(seed)
    if skip:  # onnxruntime's kernel takes 2-d and 3-d inputs only
        shape = ([2] + shape)[-3:] if len(shape) < 2 else shape[-3:]
    feeds = {"x": _rnd(rng, *shape) * 3}
    if skip:
        h = shape[-1]
        inits = {"gamma": _rnd(rng, h)}
        names = ["x", "skip", "gamma"] + (["bias"] if bias else [])
        if bias:
            inits["bias"] = _rnd(rng, h)
        feeds["skip"] = _rnd(rng, *shape)
        outs = ["y", "", "", "sum"] if want_sum else ["y"]
        node = oh.make_node(
            "SkipSimplifiedLayerNormalization", names, outs, domain="com.microsoft", epsilon=eps
        )
    else:
        axis = -min(axis_from_end, len(shape))
        inits = {"gamma": _rnd(rng, *shape[axis:])}
        node = oh.make_node(
            "SimplifiedLayerNormalization", ["x", "gamma"], ["y"], epsilon=eps, axis=axis
        )
    _check(_model(node, feeds, inits, n_out=4), feeds)


def test_rms_norm_statistics_stay_on_the_fallback() -> None:
    """Read statistics keep the node on the Python kernel: inv_std_var is computed, the mean
    (which onnxruntime never fills) refuses the model by name."""
    rng = np.random.default_rng(3)
    feeds = {"x": _rnd(rng, 2, 3, 16)}
    node = oh.make_node("SimplifiedLayerNormalization", ["x", "gamma"], ["y", "inv"], epsilon=1e-6)
    model = _model(node, feeds, {"gamma": _rnd(rng, 16)}, n_out=2)
    s = sliver.InferenceSession(model.SerializeToString())
    assert [impl for _, _, impl in s.profile_steps()] == ["python"]
    _check(model, feeds, native=False)
    feeds["skip"] = _rnd(rng, 2, 3, 16)
    node = oh.make_node(
        "SkipSimplifiedLayerNormalization",
        ["x", "skip", "gamma"],
        ["y", "mean"],
        domain="com.microsoft",
    )
    model = _model(node, feeds, {"gamma": _rnd(rng, 16)}, n_out=2)
    with pytest.raises(sliver.NotImplementedOp, match="mean output"):
        sliver.InferenceSession(model.SerializeToString())


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    seed=st.integers(0, 2**31),
    batch=st.sampled_from([(), (2,), (2, 3)]),
    m=st.integers(1, 9),
    k=st.integers(1, 20),
    n=st.integers(1, 19),
    trans_a=st.booleans(),
    trans_b=st.booleans(),
    alpha=st.sampled_from([1.0, 0.125, -2.5]),
)
def test_fused_matmul(seed, batch, m, k, n, trans_a, trans_b, alpha) -> None:  # noqa: ANN001
    rng = np.random.default_rng(seed)
    a = _rnd(rng, *batch, *((k, m) if trans_a else (m, k)))
    b = _rnd(rng, *batch, *((n, k) if trans_b else (k, n)))
    node = oh.make_node(
        "FusedMatMul",
        ["a", "b"],
        ["y"],
        domain="com.microsoft",
        alpha=alpha,
        transA=int(trans_a),
        transB=int(trans_b),
    )
    feeds = {"a": a, "b": b}
    _check(_model(node, feeds, {}), feeds)


def test_fused_matmul_batch_transpose_is_refused_clearly() -> None:
    node = oh.make_node("FusedMatMul", ["a", "b"], ["y"], domain="com.microsoft", transBatchA=1)
    feeds = {"a": np.zeros((2, 3, 4), np.float32), "b": np.zeros((3, 4, 5), np.float32)}
    with pytest.raises(sliver.NotImplementedOp, match="transBatchA"):
        sliver.InferenceSession(_model(node, feeds, {}).SerializeToString())


def test_transformer_saved_by_onnxruntime(tmp_path) -> None:  # noqa: ANN001
    """The zoo transformer as onnxruntime's extended optimizations save it: every node runs
    natively in sliver and the outputs agree with onnxruntime's on the same file."""
    import onnx
    from sliver.tools import model_zoo

    src = tmp_path / "t.onnx"
    onnx.save(model_zoo.build_transformer(), str(src))
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    so.optimized_model_filepath = str(tmp_path / "t_ort.onnx")
    ort.InferenceSession(str(src), so, providers=["CPUExecutionProvider"])
    saved = onnx.load(str(tmp_path / "t_ort.onnx"))
    assert {n.op_type for n in saved.graph.node if n.domain == "com.microsoft"} >= {
        "SkipLayerNormalization",
        "BiasGelu",
    }
    s = sliver.InferenceSession(str(tmp_path / "t_ort.onnx"))
    impls = [impl for _, _, impl in s.profile_steps()]
    assert not any(i in ("python", "reference") for i in impls), impls
    feeds = model_zoo.make_feeds("transformer_fp32")
    got = s.run(None, feeds)
    want = ort.InferenceSession(
        str(tmp_path / "t_ort.onnx"), providers=["CPUExecutionProvider"]
    ).run(None, feeds)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=TOL, atol=TOL)
