"""LSTM and GRU (csrc/ops/rnn.cc) against onnxruntime and onnx.reference.

Random sizes, directions, layouts, optional inputs (biases, initial states, peepholes,
sequence_lens with uneven lengths) and clip. onnxruntime implements every one of them and is
the oracle; onnx.reference (which ignores sequence_lens and clip, and has no layout = 1 in
onnxruntime) checks the batch-first layout. Tolerance: float32 sums in a different order over
up to 40 steps, 2e-5 absolute on outputs in (-1, 1).
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
ATOL = 2e-5


def _model(
    op,
    t,
    b,
    i,
    h,
    direction,
    layout=0,
    bias=True,
    init=False,
    peep=False,
    seq=False,
    clip=None,
    lbr=0,
    seed=0,
    opset=14,
    activations=None,
):  # noqa: ANN001, ANN202, PLR0913
    rng = np.random.default_rng(seed)
    d = 2 if direction == "bidirectional" else 1
    g = 4 if op == "LSTM" else 3
    inits = [
        nh.from_array(rng.uniform(-0.5, 0.5, (d, g * h, i)).astype(np.float32), "W"),
        nh.from_array(rng.uniform(-0.5, 0.5, (d, g * h, h)).astype(np.float32), "R"),
    ]
    names = ["x", "W", "R"]
    if bias:
        inits.append(nh.from_array(rng.uniform(-1, 1, (d, 2 * g * h)).astype(np.float32), "B"))
    names.append("B" if bias else "")
    xshape = [b, t, i] if layout else [t, b, i]
    sshape = [b, d, h] if layout else [d, b, h]
    inputs = [oh.make_tensor_value_info("x", TensorProto.FLOAT, xshape)]
    names.append("seq" if seq else "")
    if seq:
        inputs.append(oh.make_tensor_value_info("seq", TensorProto.INT32, [b]))
    for s in ["h0"] + (["c0"] if op == "LSTM" else []):
        names.append(s if init else "")
        if init:
            inputs.append(oh.make_tensor_value_info(s, TensorProto.FLOAT, sshape))
    if op == "LSTM" and peep:
        inits.append(nh.from_array(rng.uniform(-0.5, 0.5, (d, 3 * h)).astype(np.float32), "P"))
        names.append("P")
    while names[-1] == "":
        names.pop()
    outs = ["y", "yh"] + (["yc"] if op == "LSTM" else [])
    attrs = {"hidden_size": h, "direction": direction}
    if layout:
        attrs["layout"] = 1
    if clip is not None:
        attrs["clip"] = clip
    if op == "GRU" and lbr:
        attrs["linear_before_reset"] = 1
    if activations:
        attrs["activations"] = activations
    node = oh.make_node(op, names, outs, **attrs)
    graph = oh.make_graph(
        [node],
        "g",
        inputs,
        [oh.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outs],
        inits,
    )
    model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", opset)])
    feeds = {"x": rng.standard_normal(xshape).astype(np.float32)}
    if seq:
        feeds["seq"] = rng.integers(0, t + 1, b).astype(np.int32)
        feeds["seq"][rng.integers(b)] = t  # onnxruntime wants the longest to be there
    if init:
        feeds["h0"] = rng.uniform(-1, 1, sshape).astype(np.float32)
        if op == "LSTM":
            feeds["c0"] = rng.uniform(-1, 1, sshape).astype(np.float32)
    return model, feeds


def _sliver(model, feeds, threads=1):  # noqa: ANN001, ANN202
    so = sliver.SessionOptions()
    so.intra_op_num_threads = threads
    s = sliver.InferenceSession(model.SerializeToString(), so)
    return s, s.run(None, feeds)


@st.composite
def cases(draw):  # noqa: ANN001, ANN202
    return dict(
        op=draw(st.sampled_from(["LSTM", "GRU"])),
        t=draw(st.integers(1, 12)),
        b=draw(st.integers(1, 5)),
        i=draw(st.integers(1, 40)),
        h=draw(st.integers(1, 37)),
        direction=draw(st.sampled_from(["forward", "reverse", "bidirectional"])),
        bias=draw(st.booleans()),
        init=draw(st.booleans()),
        peep=draw(st.booleans()),
        seq=draw(st.booleans()),
        clip=draw(st.sampled_from([None, None, 0.7, 3.0])),
        lbr=draw(st.sampled_from([0, 1])),
        seed=draw(st.integers(0, 2**31)),
    )


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=cases(), threads=st.sampled_from([1, 2]))
def test_matches_onnxruntime(case, threads) -> None:  # noqa: ANN001
    model, feeds = _model(**case)
    s, got = _sliver(model, feeds, threads)
    assert [impl for _, _, impl in s.profile_steps()][0].startswith(case["op"] + " packed")
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, feeds
    )
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=0, atol=ATOL)


@pytest.mark.parametrize("op", ["LSTM", "GRU"])
@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
@pytest.mark.parametrize("layout", [0, 1])
def test_matches_onnx_reference(op, direction, layout) -> None:  # noqa: ANN001
    from onnx.reference import ReferenceEvaluator

    model, feeds = _model(op, 7, 3, 11, 9, direction, layout=layout, init=True, seed=5, lbr=1)
    _, got = _sliver(model, feeds)
    want = ReferenceEvaluator(model).run(None, feeds)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=0, atol=ATOL)


def test_crnn_sized_layer_two_threads_agree() -> None:
    """A CRNN-sized bidirectional layer: 2 threads run the directions side by side."""
    model, feeds = _model("LSTM", 40, 2, 256, 128, "bidirectional", seq=True, seed=3)
    _, one = _sliver(model, feeds, 1)
    _, two = _sliver(model, feeds, 2)
    for a, b in zip(one, two, strict=True):
        np.testing.assert_array_equal(a, b)


def test_other_activations_fall_back_to_the_reference() -> None:
    model, feeds = _model("GRU", 4, 2, 5, 3, "forward", activations=["Relu", "Tanh"], seed=2)
    s, _ = _sliver(model, feeds)
    assert "packed" not in [impl for _, _, impl in s.profile_steps()][0]


def test_bad_sequence_lens_raise() -> None:
    model, feeds = _model("LSTM", 4, 2, 5, 3, "forward", seq=True, seed=1)
    feeds["seq"] = np.array([2, 9], np.int32)
    s = sliver.InferenceSession(model.SerializeToString())
    with pytest.raises(Exception, match=r"sequence_lens\[1\] = 9"):
        s.run(None, feeds)
    feeds["seq"] = np.array([-1, 2], np.int32)
    with pytest.raises(Exception, match=r"sequence_lens\[0\] = -1"):
        s.run(None, feeds)
