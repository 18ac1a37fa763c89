"""com.microsoft Attention and EmbedLayerNormalization (ops/contrib_attention.py) against
onnxruntime, whose CPU kernels define them: random batch, sequence, heads and head sizes, every
mask_index format it accepts (none, valid lengths, end/start positions, 2-D and 3-D raw masks),
causal attention, a custom scale, a relative position bias, and embeddings with and without
segments and a mask.
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
    seed=st.integers(0, 2**31),
    b=st.integers(1, 3),
    s=st.integers(1, 9),
    heads=st.sampled_from([1, 2, 4]),
    head_size=st.sampled_from([1, 3, 8]),
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
