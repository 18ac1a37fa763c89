"""com.microsoft Attention, QAttention and EmbedLayerNormalization (ops/contrib_attention.py)
against onnxruntime, whose CPU kernels define them: random batch, sequence, heads and head
sizes, every mask_index format it accepts (none, valid lengths, end/start positions, 2-D and 3-D
raw masks), causal attention, a custom scale, a relative position bias, 8-bit projections
(QAttention, per-tensor and per-column weights) and embeddings with and without segments and a
mask.
Tolerance: float32 products and a softmax in another order, 2e-5 absolute on O(1) outputs.
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
TOL = 2e-5
MS_OPSETS = [oh.make_opsetid("", 14), oh.make_opsetid("com.microsoft", 1)]
# Batch, sequence, heads and head size drawn for the attention tests.
ATTENTION_SHAPES = {
    "seed": st.integers(0, 2**31),
    "b": st.integers(1, 3),
    "s": st.integers(1, 9),
    "heads": st.sampled_from([1, 2, 4]),
    "head_size": st.sampled_from([1, 3, 8]),
}


def _run_both(node, inputs, feeds, inits, outs):  # noqa: ANN001, ANN202
    g = oh.make_graph(
        [node],
        "g",
        inputs,
        [oh.make_tensor_value_info(o, t, None) for o, t in outs],
        [nh.from_array(a, n) for n, a in inits.items()],
    )
    m = oh.make_model(g, opset_imports=MS_OPSETS).SerializeToString()
    got = sliver.InferenceSession(m).run(None, feeds)
    want = ort.InferenceSession(m, providers=["CPUExecutionProvider"]).run(None, feeds)
    for a, b in zip(got, want, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=0, atol=TOL)


def _mask(kind: str, rng, b: int, s: int):  # noqa: ANN001, ANN202
    lens = rng.integers(1, s + 1, b)
    if kind == "lengths":
        return lens.astype(np.int32)
    if kind == "end_start":
        start = np.array([rng.integers(0, n) for n in lens])
        return np.concatenate([lens, start]).astype(np.int32)
    raw = (np.arange(s)[None, :] < lens[:, None]).astype(np.int32)
    if kind == "raw2d":
        return raw
    return np.broadcast_to(raw[:, None, :], (b, s, s)).astype(np.int32).copy()  # raw3d


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    **ATTENTION_SHAPES,
    mask=st.sampled_from(["none", "lengths", "end_start", "raw2d", "raw3d"]),
    causal=st.booleans(),
    scale=st.sampled_from([None, 0.2]),
    rel_bias=st.booleans(),
)
def test_attention(seed, b, s, heads, head_size, mask, causal, scale, rel_bias) -> None:  # noqa: ANN001
    # Causal rows that a start position masks entirely are left out: onnxruntime then weighs
    # its fill values in a way of its own (sliver's rows differ there, and only there).
    causal = causal and mask != "end_start"
    rng = np.random.default_rng(seed)
    hidden = heads * head_size
    inits = {
        "w": (rng.standard_normal((hidden, 3 * hidden)) * 0.4).astype(np.float32),
        "bias": (rng.standard_normal(3 * hidden) * 0.1).astype(np.float32),
    }
    feeds = {"x": rng.standard_normal((b, s, hidden)).astype(np.float32)}
    inputs = [oh.make_tensor_value_info("x", TensorProto.FLOAT, [b, s, hidden])]
    names = ["x", "w", "bias"]
    if mask != "none":
        feeds["m"] = _mask(mask, rng, b, s)
        inputs.append(oh.make_tensor_value_info("m", TensorProto.INT32, list(feeds["m"].shape)))
        names.append("m")
    if rel_bias:  # input 5, after mask_index and past
        names += [""] * (5 - len(names)) + ["rb"]
        feeds["rb"] = rng.standard_normal((b, heads, s, s)).astype(np.float32)
        inputs.append(oh.make_tensor_value_info("rb", TensorProto.FLOAT, [b, heads, s, s]))
    attrs = {"num_heads": heads, "unidirectional": int(causal)}
    if scale is not None:
        attrs["scale"] = scale
    node = oh.make_node("Attention", names, ["y"], domain="com.microsoft", **attrs)
    _run_both(node, inputs, feeds, inits, [("y", TensorProto.FLOAT)])


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    **ATTENTION_SHAPES,
    mask=st.sampled_from(["none", "lengths", "raw2d"]),
    per_column=st.booleans(),
    wtype=st.sampled_from([np.int8, np.uint8]),
)
def test_qattention(seed, b, s, heads, head_size, mask, per_column, wtype) -> None:  # noqa: ANN001
    # quantize_dynamic's form: DynamicQuantizeLinear feeds QAttention the input codes, scale
    # and zero point. Weight codes within 63 of their zero point: onnxruntime's u8s8 sums cannot
    # saturate then, so it is exact and the oracle.
    rng = np.random.default_rng(seed)
    hidden = heads * head_size
    n = 3 * hidden if per_column else 1
    zp = (rng.integers(-4, 5, n) if wtype == np.int8 else rng.integers(120, 137, n)).astype(wtype)
    codes = rng.integers(-63, 64, (hidden, 3 * hidden)) + zp.astype(np.int64)
    inits = {
        "w": codes.astype(wtype),
        "bias": (rng.standard_normal(3 * hidden) * 0.1).astype(np.float32),
        "ws": rng.uniform(0.005, 0.02, n).astype(np.float32),
        "wz": zp,
    }
    if not per_column:
        inits["ws"], inits["wz"] = inits["ws"].reshape(()), inits["wz"].reshape(())
    feeds = {"x": rng.standard_normal((b, s, hidden)).astype(np.float32)}
    inputs = [oh.make_tensor_value_info("x", TensorProto.FLOAT, [b, s, hidden])]
    mask_name = ""
    if mask != "none":
        feeds["m"] = _mask(mask, rng, b, s)
        inputs.append(oh.make_tensor_value_info("m", TensorProto.INT32, list(feeds["m"].shape)))
        mask_name = "m"
    dql = oh.make_node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"])
    qatt = oh.make_node(
        "QAttention", ["xq", "w", "bias", "xs", "ws", mask_name, "xz", "wz"], ["y"],
        domain="com.microsoft", num_heads=heads,
    )  # fmt: skip
    g = oh.make_graph(
        [dql, qatt], "g", inputs, [oh.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [nh.from_array(a, k) for k, a in inits.items()],
    )  # fmt: skip
    m = oh.make_model(g, opset_imports=MS_OPSETS).SerializeToString()
    (got,) = sliver.InferenceSession(m).run(None, feeds)
    (want,) = ort.InferenceSession(m, providers=["CPUExecutionProvider"]).run(None, feeds)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=TOL)


def test_attention_with_a_cache_is_refused_clearly() -> None:
    node = oh.make_node(
        "Attention", ["x", "w", "bias", "", "past"], ["y", "present"], domain="com.microsoft",
        num_heads=2,
    )  # fmt: skip
    g = oh.make_graph(
        [node],
        "g",
        [
            oh.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4]),
            oh.make_tensor_value_info("past", TensorProto.FLOAT, [2, 1, 2, 1, 2]),
        ],
        [oh.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [
            nh.from_array(np.zeros((4, 12), np.float32), "w"),
            nh.from_array(np.zeros(12, np.float32), "bias"),
        ],
    )
    with pytest.raises(sliver.NotImplementedOp, match="past/present"):
        sliver.InferenceSession(oh.make_model(g, opset_imports=MS_OPSETS).SerializeToString())


@pytest.mark.parametrize("segments", [True, False])
@pytest.mark.parametrize("with_mask", [True, False])
def test_embed_layer_norm(segments: bool, with_mask: bool) -> None:
    rng = np.random.default_rng(3 + 2 * segments + with_mask)
    b, s, h, vocab = 2, 7, 24, 50
    inits = {
        "we": rng.standard_normal((vocab, h)).astype(np.float32),
        "pe": rng.standard_normal((16, h)).astype(np.float32),
        "g": rng.standard_normal(h).astype(np.float32),
        "be": rng.standard_normal(h).astype(np.float32),
    }
    feeds = {"ids": rng.integers(0, vocab, (b, s)).astype(np.int32)}
    inputs = [oh.make_tensor_value_info("ids", TensorProto.INT32, [b, s])]
    if segments:
        inits["se"] = rng.standard_normal((2, h)).astype(np.float32)
        feeds["seg"] = rng.integers(0, 2, (b, s)).astype(np.int32)
        inputs.append(oh.make_tensor_value_info("seg", TensorProto.INT32, [b, s]))
    names = ["ids", "seg" if segments else "", "we", "pe", "se" if segments else "", "g", "be"]
    if with_mask:
        feeds["mask"] = (np.arange(s)[None, :] < np.array([[4], [7]])).astype(np.int32)
        inputs.append(oh.make_tensor_value_info("mask", TensorProto.INT32, [b, s]))
        names.append("mask")
    node = oh.make_node(
        "EmbedLayerNormalization", names, ["y", "mi"], domain="com.microsoft", epsilon=1e-12
    )
    _run_both(node, inputs, feeds, inits, [("y", TensorProto.FLOAT), ("mi", TensorProto.INT32)])


@pytest.mark.parametrize("segments", [True, False])
@pytest.mark.parametrize("with_mask", [True, False])
@pytest.mark.parametrize("qtype", [np.uint8, np.int8])
def test_qembed_layer_norm(segments: bool, with_mask: bool, qtype) -> None:  # noqa: ANN001
    """quantize_dynamic's QEmbedLayerNormalization: 8-bit tables, gamma and beta, each with its
    own scale and zero point."""
    rng = np.random.default_rng(11 + 4 * segments + 2 * with_mask + (qtype == np.int8))
    b, s, h, vocab = 2, 7, 24, 50
    lo, hi = (0, 256) if qtype == np.uint8 else (-128, 128)

    def q(*shape):  # noqa: ANN002, ANN202
        return rng.integers(lo, hi, shape).astype(qtype)

    def scale():  # noqa: ANN202
        return np.array(rng.uniform(0.005, 0.05), np.float32)

    def zp():  # noqa: ANN202
        return np.array(rng.integers(lo, hi), qtype)

    tables = {"we": q(vocab, h), "pe": q(16, h), "g": q(h), "be": q(h)}
    if segments:
        tables["se"] = q(2, h)
    inits = dict(tables)
    for t in tables:
        inits[t + "_s"], inits[t + "_z"] = scale(), zp()
    feeds = {"ids": rng.integers(0, vocab, (b, s)).astype(np.int32)}
    inputs = [oh.make_tensor_value_info("ids", TensorProto.INT32, [b, s])]
    if segments:
        feeds["seg"] = rng.integers(0, 2, (b, s)).astype(np.int32)
        inputs.append(oh.make_tensor_value_info("seg", TensorProto.INT32, [b, s]))
    mask = ""
    if with_mask:
        feeds["mask"] = (np.arange(s)[None, :] < np.array([[4], [7]])).astype(np.int32)
        inputs.append(oh.make_tensor_value_info("mask", TensorProto.INT32, [b, s]))
        mask = "mask"
    se = "se" if segments else ""
    names = ["ids", "seg" if segments else "", "we", "pe", se, "g", "be", mask]
    names += ["we_s", "pe_s", se + "_s" if se else "", "g_s", "be_s"]
    names += ["we_z", "pe_z", se + "_z" if se else "", "g_z", "be_z"]
    node = oh.make_node(
        "QEmbedLayerNormalization", names, ["y", "mi"], domain="com.microsoft", epsilon=1e-12
    )
    _run_both(node, inputs, feeds, inits, [("y", TensorProto.FLOAT), ("mi", TensorProto.INT32)])
