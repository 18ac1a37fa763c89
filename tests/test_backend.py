"""sliver.backend as an onnx.backend: a slice of onnx's BackendTest, plus run_node/run_model."""

from __future__ import annotations

import pathlib
import warnings

import numpy as np
import onnx
import onnx.backend.test
import pytest
import sliver
import sliver.backend as backend
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

# Node tests for a few ops (control flow included) and the hand-written 'simple' models.
# Not here: Gradient (training, 'simple' gradient models), the light/real CNNs
# (test_light_models.py) and the PyTorch-exported models, which declare opset 6.
NODE_SLICE = (
    "add|add_bcast|relu|sigmoid|matmul_2d|matmul_4d|gemm_default_matrix_bias|conv_with_strides_padding"
    "|maxpool_2d_pads|averagepool_2d_pads|softmax_axis_1|reshape_negative_dim|transpose_default"
    "|concat_2d_axis_0|gather_0|slice|cast_FLOAT_to_INT32|if|if_seq|loop11|loop13_seq|scan9_sum"
    "|scan_sum|sequence_map_add_2_sequences|sequence_insert_at_front|optional_has_element_empty_no_input_optional_input"
    "|range_float_type_positive_delta_expanded|scatter_with_axis|upsample_nearest"
)
SIMPLE_SLICE = (
    "expand_shape_model\\d|sequence_model\\d|sign_model|single_relu_model|shrink|strnorm_model_\\w+"
)

_bt = onnx.backend.test.BackendTest(backend, __name__)
_bt.include(rf"^test_({NODE_SLICE})_cpu$")
_bt.include(rf"^test_({SIMPLE_SLICE})_cpu$")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    _CASES = _bt.test_cases
# Keep only the slice: BackendTest turns every other test into a skip.
for _cls in _CASES.values():
    for _name in [n for n in vars(_cls) if n.startswith("test_")]:
        if getattr(getattr(_cls, _name), "__unittest_skip__", False):
            delattr(_cls, _name)
globals().update(_CASES)

PYTORCH_DIR = pathlib.Path(onnx.__file__).parent / "backend" / "test" / "data" / "pytorch-converted"


def test_slice_is_not_empty() -> None:
    ran = [n for c in _CASES.values() for n in vars(c) if n.startswith("test_")]
    assert len(ran) > 30, ran


def test_devices() -> None:
    assert backend.supports_device("CPU")
    assert not backend.supports_device("CUDA")
    assert not backend.supports_device("NOT_A_DEVICE")
    model = _add_model([2, 3])
    assert backend.is_compatible(model)
    with pytest.raises(sliver.InvalidArgument, match="CPU only"):
        backend.prepare(model, "CUDA")


def _add_model(shape: list[int]) -> onnx.ModelProto:
    node = helper.make_node("Add", ["a", "b"], ["y"])
    vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape) for n in ("a", "b")]
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)
    return helper.make_model(helper.make_graph([node], "add", vi, [y]))


@given(shape=st.lists(st.integers(1, 5), min_size=0, max_size=4), seed=st.integers(0, 2**31))
@settings(max_examples=10, deadline=None)
def test_run_model_positional_and_named(shape: list[int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    a, b = (rng.standard_normal(shape).astype(np.float32) for _ in range(2))
    out = backend.run_model(_add_model(shape), [a, b])
    np.testing.assert_array_equal(out[0], a + b)
    np.testing.assert_array_equal(out["y"], a + b)  # outputs are a namedtuple-dict
    rep = backend.prepare(_add_model(shape))
    np.testing.assert_array_equal(rep.run({"a": a, "b": b}).y, a + b)


def test_prepare_options_become_session_options() -> None:
    rep = backend.prepare(_add_model([2]), intra_op_num_threads=1, graph_optimization_level=0)
    opts = rep.session.get_session_options()
    assert opts.intra_op_num_threads == 1
    assert int(opts.graph_optimization_level) == 0


def test_too_many_positional_inputs() -> None:
    x = np.zeros(2, np.float32)
    with pytest.raises(sliver.InvalidArgument, match="at most 2"):
        backend.run_model(_add_model([2]), [x, x, x])


@given(
    op=st.sampled_from(["Relu", "Neg", "Abs", "Exp"]),
    shape=st.lists(st.integers(1, 6), max_size=3),
    seed=st.integers(0, 2**31),
)
@settings(max_examples=12, deadline=None)
def test_run_node_unary(op: str, shape: list[int], seed: int) -> None:
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    want = {"Relu": np.maximum(x, 0), "Neg": -x, "Abs": np.abs(x), "Exp": np.exp(x)}[op]
    (got,) = backend.run_node(helper.make_node(op, ["x"], ["y"]), [x])
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_run_node_opset_version_and_sequences() -> None:
    # Opset 10 Scatter (removed in 11) only runs when the opset is asked for.
    data = np.zeros((2, 3), np.float32)
    idx = np.array([[2, 0]], np.int64)
    upd = np.array([[5, 7]], np.float32)
    node = helper.make_node("Scatter", ["d", "i", "u"], ["y"], axis=1)
    (got,) = backend.run_node(node, [data, idx, upd], opset_version=10)
    np.testing.assert_array_equal(got, [[7, 0, 5], [0, 0, 0]])
    seq = [np.ones(2, np.float32), np.zeros(3, np.float32)]
    (n,) = backend.run_node(helper.make_node("SequenceLength", ["s"], ["n"]), [seq])
    assert int(n) == 2


def test_pytorch_converted_models_are_refused_clearly() -> None:
    model_dir = PYTORCH_DIR / "test_ReLU"
    model = onnx.load(str(model_dir / "model.onnx"))
    with pytest.raises(sliver.NotImplementedOp, match=r"opset 6.*opsets 7\.\."):
        backend.prepare(model)
