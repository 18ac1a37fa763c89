"""The onnxruntime-compatible surface: what `import sliver as ort` code relies on."""

from __future__ import annotations

import json
import os
import warnings

import numpy as np
import onnx
import onnxruntime
import pytest
import sliver
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper


def small_model(batch: int | str = "N", opset: int = 17) -> onnx.ModelProto:
    """y = relu(x @ W + b), z = sum(y) over axis 1, with a symbolic batch dimension."""
    rng = np.random.default_rng(0)
    w = onnx.numpy_helper.from_array(rng.standard_normal((4, 3)).astype(np.float32), "W")
    b = onnx.numpy_helper.from_array(rng.standard_normal(3).astype(np.float32), "b")
    axes = onnx.numpy_helper.from_array(np.array([1], np.int64), "axes")
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["xw"], name="mm"),
        helper.make_node("Add", ["xw", "b"], ["pre"], name="add"),
        helper.make_node("Relu", ["pre"], ["y"], name="relu"),
        helper.make_node("ReduceSum", ["y", "axes"], ["z"], name="sum", keepdims=0),
    ]
    graph = helper.make_graph(
        nodes,
        "small",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 4])],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 3]),
            helper.make_tensor_value_info("z", TensorProto.FLOAT, [batch]),
        ],
        [w, b, axes],
        doc_string="graph doc",
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", opset)],
        producer_name="sliver-tests",
        model_version=7,
        doc_string="model doc",
        domain="test.domain",
    )
    helper.set_model_props(model, {"author": "tests", "purpose": "api"})
    return model


@pytest.fixture(scope="module")
def model_bytes() -> bytes:
    return small_model().SerializeToString()


@pytest.fixture(scope="module")
def sessions(model_bytes: bytes):
    ref = onnxruntime.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    return sliver.InferenceSession(model_bytes), ref


def test_path_bytes_and_proto_load_the_same(tmp_path, model_bytes: bytes) -> None:
    path = tmp_path / "m.onnx"
    path.write_bytes(model_bytes)
    x = np.random.default_rng(1).standard_normal((2, 4)).astype(np.float32)
    results = [
        sliver.InferenceSession(src).run(None, {"x": x})
        for src in (str(path), path, model_bytes, onnx.load(str(path)))
    ]
    for r in results[1:]:
        for a, b in zip(results[0], r, strict=True):
            np.testing.assert_array_equal(a, b)


@given(batch=st.integers(1, 9), seed=st.integers(0, 2**31))
@settings(max_examples=10, deadline=None)
def test_matches_onnxruntime_at_any_batch(sessions, batch: int, seed: int) -> None:
    ours, ref = sessions
    x = np.random.default_rng(seed).standard_normal((batch, 4)).astype(np.float32)
    for a, b in zip(ours.run(None, {"x": x}), ref.run(None, {"x": x}), strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_output_name_selection(sessions) -> None:
    ours, _ = sessions
    x = np.ones((3, 4), np.float32)
    y, z = ours.run(None, {"x": x})
    (z2,) = ours.run(["z"], {"x": x})
    z3, y3 = ours.run(["z", "y"], {"x": x})
    np.testing.assert_array_equal(z, z2)
    np.testing.assert_array_equal(z, z3)
    np.testing.assert_array_equal(y, y3)
    assert len(ours.run([], {"x": x})) == 2  # like None: every output


def test_results_are_fresh_writable_arrays(sessions) -> None:
    ours, _ = sessions
    x = np.ones((2, 4), np.float32)
    y, _ = ours.run(None, {"x": x})
    assert isinstance(y, np.ndarray) and y.flags.writeable
    y[...] = 123.0  # must not leak into the next run
    y2, _ = ours.run(None, {"x": x})
    assert not np.any(y2 == 123.0)
    np.testing.assert_array_equal(x, 1.0)  # the feed is untouched


def test_io_description_matches_onnxruntime(sessions) -> None:
    ours, ref = sessions
    for a, b in [(ours.get_inputs(), ref.get_inputs()), (ours.get_outputs(), ref.get_outputs())]:
        assert [i.name for i in a] == [i.name for i in b]
        assert [i.type for i in a] == [i.type for i in b]
        assert [list(i.shape) for i in a] == [list(i.shape) for i in b]
    assert ours.get_inputs()[0].shape == ["N", 4]
    assert ours.get_inputs()[0].type == "tensor(float)"


def test_modelmeta(sessions) -> None:
    ours, ref = sessions
    m, r = ours.get_modelmeta(), ref.get_modelmeta()
    for field in ("producer_name", "graph_name", "domain", "description", "version"):
        assert getattr(m, field) == getattr(r, field), field
    assert m.custom_metadata_map == r.custom_metadata_map == {"author": "tests", "purpose": "api"}


def test_providers(model_bytes: bytes) -> None:
    sess = sliver.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    assert sess.get_providers() == ["CPUExecutionProvider"]
    assert "CPUExecutionProvider" in sliver.get_available_providers()
    assert sliver.get_device() == "CPU"
    # (name, options) tuples are accepted too.
    sliver.InferenceSession(model_bytes, providers=[("CPUExecutionProvider", {})])


def test_unknown_provider_warns_but_runs(model_bytes: bytes) -> None:
    with pytest.warns(UserWarning, match="CUDAExecutionProvider"):
        sess = sliver.InferenceSession(
            model_bytes, providers=["CUDAExecutionProvider", "CPUExecutionProvider"]
        )
    (z,) = sess.run(["z"], {"x": np.zeros((1, 4), np.float32)})
    assert z.shape == (1,)


def test_graph_optimization_level_values_match_onnxruntime() -> None:
    for name in ("ORT_DISABLE_ALL", "ORT_ENABLE_BASIC", "ORT_ENABLE_EXTENDED", "ORT_ENABLE_ALL"):
        ours = getattr(sliver.GraphOptimizationLevel, name)
        theirs = getattr(onnxruntime.GraphOptimizationLevel, name)
        assert int(ours) == int(theirs), name


@pytest.mark.parametrize("level", list(sliver.GraphOptimizationLevel))
@pytest.mark.parametrize("threads", [0, 1, 2])
def test_session_options_are_honoured(model_bytes: bytes, level, threads: int) -> None:
    opts = sliver.SessionOptions()
    opts.graph_optimization_level = level
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = sliver.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    opts.add_session_config_entry("session.use_env_allocators", "1")
    assert opts.get_session_config_entry("session.use_env_allocators") == "1"
    sess = sliver.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])
    assert sess.get_session_options() is opts
    x = np.random.default_rng(threads).standard_normal((5, 4)).astype(np.float32)
    ref = onnxruntime.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    for a, b in zip(sess.run(None, {"x": x}), ref.run(None, {"x": x}), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_run_options_accepted(sessions) -> None:
    ours, _ = sessions
    ro = sliver.RunOptions()
    ro.log_severity_level = 3
    ro.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
    (z,) = ours.run(["z"], {"x": np.ones((1, 4), np.float32)}, ro)
    assert z.shape == (1,)


def test_profiling_writes_chrome_trace(tmp_path, model_bytes: bytes) -> None:
    opts = sliver.SessionOptions()
    opts.enable_profiling = True
    opts.profile_file_prefix = str(tmp_path / "prof")
    sess = sliver.InferenceSession(model_bytes, opts)
    sess.run(None, {"x": np.ones((2, 4), np.float32)})
    path = sess.end_profiling()
    assert os.path.isfile(path)
    events = json.load(open(path))
    assert events and all(e["ph"] == "X" and e["dur"] >= 0 for e in events)


def test_optimized_model_filepath_is_a_loadable_model(tmp_path, model_bytes: bytes) -> None:
    opts = sliver.SessionOptions()
    opts.optimized_model_filepath = str(tmp_path / "opt.onnx")
    sess = sliver.InferenceSession(model_bytes, opts)
    x = np.random.default_rng(3).standard_normal((3, 4)).astype(np.float32)
    again = sliver.InferenceSession(opts.optimized_model_filepath)
    for a, b in zip(sess.run(None, {"x": x}), again.run(None, {"x": x}), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_free_dimension_override(model_bytes: bytes) -> None:
    opts = sliver.SessionOptions()
    opts.add_free_dimension_override_by_name("N", 3)
    sess = sliver.InferenceSession(model_bytes, opts)
    (z,) = sess.run(["z"], {"x": np.ones((3, 4), np.float32)})
    assert z.shape == (3,)


def test_drop_in_import_style(model_bytes: bytes) -> None:
    # Code written for onnxruntime, with sliver swapped in.
    ort = sliver
    sess = ort.InferenceSession(model_bytes, providers=ort.get_available_providers())
    name = sess.get_inputs()[0].name
    out = sess.run([o.name for o in sess.get_outputs()], {name: np.ones((1, 4), np.float32)})
    assert [o.shape for o in out] == [(1, 3), (1,)]
    assert issubclass(ort.SliverError, RuntimeError)


@pytest.mark.parametrize("ir_version", [3, 4, 8])
def test_overridable_initializer(ir_version: int) -> None:
    # An initializer also listed as a graph input is a default the caller may feed (IR >= 4;
    # before that every initializer was listed, and onnxruntime treats them as constants).
    model = small_model()
    model.ir_version = ir_version
    model.graph.input.append(helper.make_tensor_value_info("b", TensorProto.FLOAT, [3]))
    data = model.SerializeToString()
    sess = sliver.InferenceSession(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_overridable_initializers()]
    assert names == [i.name for i in ref.get_overridable_initializers()]
    assert names == ([] if ir_version < 4 else ["b"])
    assert [i.name for i in sess.get_inputs()] == ["x"]
    x = np.zeros((1, 4), np.float32)
    (y,) = sess.run(["y"], {"x": x})
    np.testing.assert_allclose(y, ref.run(["y"], {"x": x})[0], rtol=1e-6)
    if names:
        b = np.full(3, 5.0, np.float32)
        (y2,) = sess.run(["y"], {"x": x, "b": b})
        np.testing.assert_array_equal(y2, 5.0)
        np.testing.assert_array_equal(y2, ref.run(["y"], {"x": x, "b": b})[0])
