"""Failures are clean exceptions (sliver.SliverError subclasses) that name what went wrong.

Every error a user can provoke (bad feeds, bad names, bad files, unsupported ops or opsets,
external data outside the model's folder) must raise, never crash, and say which
input/node/op/shape is at fault. A subprocess fuzzes the loader with random and
truncated models to show it never segfaults.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import onnx
import pytest
import sliver
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper


def _model(
    nodes: list[onnx.NodeProto],
    inputs: list[onnx.ValueInfoProto],
    outputs: list[onnx.ValueInfoProto],
    inits: list[onnx.TensorProto] | None = None,
    opsets: dict[str, int] | None = None,
) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, inits or [])
    ops = [helper.make_opsetid(d, v) for d, v in (opsets or {"": 17}).items()]
    return helper.make_model(graph, opset_imports=ops)


def _reshape_model() -> bytes:
    """x[N, 6] -> Reshape(x, shape) -> y; 'shape' is an input so a bad one fails at run time."""
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["y"], name="the_reshape")]
    inputs = [
        helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 6]),
        helper.make_tensor_value_info("shape", TensorProto.INT64, [2]),
    ]
    return _model(
        nodes, inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    ).SerializeToString()


@pytest.fixture(scope="module")
def sess() -> sliver.InferenceSession:
    return sliver.InferenceSession(_reshape_model())


def _ok_feed(n: int = 2) -> dict[str, np.ndarray]:
    return {"x": np.zeros((n, 6), np.float32), "shape": np.array([n * 3, 2], np.int64)}


def test_error_hierarchy() -> None:
    for cls in (sliver.InvalidArgument, sliver.InvalidGraph, sliver.NotImplementedOp):
        assert issubclass(cls, sliver.SliverError)
    assert issubclass(sliver.SliverError, RuntimeError)
    assert issubclass(sliver.InvalidArgument, ValueError)


@pytest.mark.parametrize(
    "feed, pattern",
    [
        ({"x": np.zeros((2, 6), np.float64)}, r"'x'.*tensor\(float\).*float64"),
        ({"x": np.zeros((2, 6), np.int32)}, r"'x'.*tensor\(float\).*int32"),
        ({"x": np.zeros((2, 6, 1), np.float32)}, r"'x'.*rank 2.*\[2, 6, 1\]"),
        ({"x": np.zeros(6, np.float32)}, r"'x'.*rank 2.*\[6\]"),
        ({"x": np.zeros((2, 5), np.float32)}, r"'x'.*dimension 1 must be 6.*\[2, 5\]"),
        ({"shape": np.zeros(2, np.int32)}, r"'shape'.*tensor\(int64\).*int32"),
        ({"shape": np.zeros(3, np.int64)}, r"'shape'.*dimension 0 must be 2"),
    ],
)
def test_bad_feed(sess, feed: dict, pattern: str) -> None:
    with pytest.raises(sliver.InvalidArgument, match=pattern):
        sess.run(None, {**_ok_feed(), **feed})


def test_unknown_and_missing_inputs(sess) -> None:
    with pytest.raises(sliver.InvalidArgument, match=r"unknown input.*'nope'.*\['x', 'shape'\]"):
        sess.run(None, {**_ok_feed(), "nope": np.zeros(1)})
    with pytest.raises(sliver.InvalidArgument, match=r"missing input 'shape'"):
        sess.run(None, {"x": _ok_feed()["x"]})
    with pytest.raises(sliver.InvalidArgument, match="dict"):
        sess.run(None, [np.zeros((2, 6), np.float32)])  # type: ignore[arg-type]


def test_unknown_output_name(sess) -> None:
    with pytest.raises(sliver.InvalidArgument, match=r"unknown output name 'z'.*\['y'\]"):
        sess.run(["z"], _ok_feed())


def test_kernel_failure_names_node_op_and_shapes(sess) -> None:
    feed = {**_ok_feed(2), "shape": np.array([5, 5], np.int64)}  # 12 elements into 25
    with pytest.raises(sliver.RuntimeFailure) as e:
        sess.run(None, feed)
    msg = str(e.value)
    assert "the_reshape" in msg and "Reshape" in msg and "[2,6]" in msg.replace(" ", ""), msg
    # The session is still usable after a failed run.
    (y,) = sess.run(None, _ok_feed(2))
    assert y.shape == (6, 2)


@given(n=st.integers(1, 17))
@settings(max_examples=8, deadline=None)
def test_dynamic_dims_at_several_sizes(sess, n: int) -> None:
    x = np.arange(n * 6, dtype=np.float32).reshape(n, 6)
    (y,) = sess.run(None, {"x": x, "shape": np.array([2 * n, 3], np.int64)})
    np.testing.assert_array_equal(y, x.reshape(2 * n, 3))


def test_corrupted_bytes_and_missing_file(tmp_path) -> None:
    good = _reshape_model()
    with pytest.raises(sliver.InvalidGraph, match="cannot parse"):
        sliver.InferenceSession(b"\x08\x07garbage" + os.urandom(64))
    with pytest.raises(sliver.InvalidGraph, match="not found"):
        sliver.InferenceSession(str(tmp_path / "absent.onnx"))
    bad = tmp_path / "truncated.onnx"
    bad.write_bytes(good[: len(good) // 2])
    with pytest.raises(sliver.SliverError):
        sliver.InferenceSession(str(bad))


X2 = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
Y2 = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
BAD_GRAPHS = {
    "reads a name nothing provides": (
        [helper.make_node("Add", ["x", "ghost"], ["y"], name="n")],
        r"'n' \(Add\) reads 'ghost'",
    ),
    "output not produced": (
        [helper.make_node("Relu", ["x"], ["t"])],
        r"output 'y' is not produced",
    ),
    "cycle": (
        [
            helper.make_node("Add", ["x", "b"], ["a"], name="c1"),
            helper.make_node("Relu", ["a"], ["b"], name="c2"),
            helper.make_node("Relu", ["b"], ["y"], name="c3"),
        ],
        r"cycle through nodes \['c1', 'c2'",
    ),
    "two producers": (
        [helper.make_node("Relu", ["x"], ["y"], name="p1"), helper.make_node("Neg", ["x"], ["y"])],
        r"'y' is produced by node 'Neg_1' \(Neg\) and by node 'p1'",
    ),
    "overwrites an input": ([helper.make_node("Relu", ["x"], ["x"])], r"'x' is produced by"),
    "too few inputs": (
        [helper.make_node("Add", ["x"], ["y"], name="a1")],
        r"'a1' \(Add, opset 17\) has 1 inputs.*takes 2\.\.2 inputs",
    ),
    "If branches without outputs": (
        [
            helper.make_node(
                "If",
                ["x"],
                ["y"],
                name="if",
                then_branch=helper.make_graph([], "t", [], []),
                else_branch=helper.make_graph([], "e", [], []),
            )
        ],
        r"if/then_branch gives 0 outputs, the If node has 1",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_GRAPHS))
def test_malformed_graph(case: str) -> None:
    nodes, pattern = BAD_GRAPHS[case]
    data = _model(nodes, [X2], [Y2]).SerializeToString()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # shape inference may give up on these first
        with pytest.raises(sliver.InvalidGraph, match=pattern):
            sliver.InferenceSession(data)


def test_unsorted_nodes_are_sorted() -> None:
    # ONNX asks for topological order; onnxruntime (and sliver) accept any order.
    nodes = [
        helper.make_node("Neg", ["t"], ["y"]),
        helper.make_node("Relu", ["x"], ["t"]),
    ]
    sess = sliver.InferenceSession(_model(nodes, [X2], [Y2]).SerializeToString())
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    np.testing.assert_array_equal(sess.run(None, {"x": x})[0], -np.maximum(x, 0))


def _one_node(op: str, domain: str = "", opsets: dict[str, int] | None = None) -> bytes:
    node = helper.make_node(op, ["x"], ["y"], name="mystery", domain=domain or None)
    return _model(
        [node],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
        opsets=opsets,
    ).SerializeToString()


def test_unsupported_op_names_node_op_domain_opset() -> None:
    with pytest.raises(sliver.NotImplementedOp) as e:
        sliver.InferenceSession(_one_node("NoSuchOp"))
    msg = str(e.value)
    assert all(s in msg for s in ("'mystery'", "'NoSuchOp'", "ai.onnx", "opset 17")), msg
    with pytest.raises(sliver.NotImplementedOp) as e:
        sliver.InferenceSession(_one_node("Frob", "com.example", {"": 17, "com.example": 3}))
    msg = str(e.value)
    assert all(s in msg for s in ("'mystery'", "'Frob'", "com.example", "opset 3")), msg


def test_domain_not_imported() -> None:
    with pytest.raises(sliver.NotImplementedOp, match=r"'mystery'.*com\.example.*not import"):
        sliver.InferenceSession(_one_node("Frob", "com.example"))


@pytest.mark.parametrize("opset", [1, 6, 10_000])
def test_unsupported_opset(opset: int) -> None:
    with pytest.raises(sliver.NotImplementedOp, match=rf"opset {opset}\b.*opsets 7\.\.\d+"):
        sliver.InferenceSession(_one_node("Relu", opsets={"": opset}))


def test_supported_opsets_edges() -> None:
    x = np.array([-1.0, 2.0], np.float32)
    for opset in (7, onnx.defs.onnx_opset_version()):
        (y,) = sliver.InferenceSession(_one_node("Relu", opsets={"": opset})).run(None, {"x": x})
        np.testing.assert_array_equal(y, [0.0, 2.0])


def _external_model(tmp_path, location: str | None = None) -> str:
    """A model whose weight is external data; ``location`` rewrites where it points."""
    w = np.arange(64, dtype=np.float32).reshape(8, 8)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"])]
    model = _model(
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])],
        [onnx.numpy_helper.from_array(w, "w")],
    )
    folder = tmp_path / "model"
    folder.mkdir(exist_ok=True)
    path = folder / "m.onnx"
    onnx.save(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
              location="weights.bin", size_threshold=0)  # fmt: skip
    if location is not None:
        m = onnx.load(str(path), load_external_data=False)
        for e in m.graph.initializer[0].external_data:
            if e.key == "location":
                e.value = location
        onnx.save(m, str(path))
    return str(path)


def test_external_data_inside_the_folder_works(tmp_path) -> None:
    path = _external_model(tmp_path)
    assert os.path.isfile(os.path.join(os.path.dirname(path), "weights.bin"))
    x = np.ones((1, 8), np.float32)
    (y,) = sliver.InferenceSession(path).run(None, {"x": x})
    np.testing.assert_array_equal(y, x @ np.arange(64, dtype=np.float32).reshape(8, 8))


@pytest.mark.parametrize("location", ["../secret.bin", "/etc/passwd", "sub/../../secret.bin"])
def test_external_data_escaping_the_folder_is_refused(tmp_path, location: str) -> None:
    (tmp_path / "secret.bin").write_bytes(np.zeros(64, np.float32).tobytes())
    path = _external_model(tmp_path, location)
    with pytest.raises(sliver.InvalidGraph, match="escapes the model's folder"):
        sliver.InferenceSession(path)


def test_external_data_missing_file_and_bytes(tmp_path) -> None:
    path = _external_model(tmp_path, "absent.bin")
    with pytest.raises(sliver.InvalidGraph, match="not found"):
        sliver.InferenceSession(path)
    with open(_external_model(tmp_path), "rb") as f:
        data = f.read()
    with pytest.raises(sliver.InvalidGraph, match="external data"):
        sliver.InferenceSession(data)


def test_symlink_out_of_the_folder_is_refused(tmp_path) -> None:
    path = _external_model(tmp_path)
    weights = os.path.join(os.path.dirname(path), "weights.bin")
    outside = tmp_path / "outside.bin"
    os.replace(weights, outside)
    os.symlink(outside, weights)
    with pytest.raises(sliver.InvalidGraph, match="escapes the model's folder"):
        sliver.InferenceSession(path)


def _fuzz_seed_model() -> bytes:
    """Conv -> Relu -> ReduceSum -> If (two subgraphs): attributes, weights and control flow."""
    rng = np.random.default_rng(0)
    w = onnx.numpy_helper.from_array(rng.standard_normal((3, 2, 3, 3)).astype(np.float32), "w")
    zero = onnx.numpy_helper.from_array(np.array(0.0, np.float32), "zero")
    out = helper.make_tensor_value_info("b", TensorProto.FLOAT, None)
    then_g = helper.make_graph([helper.make_node("Identity", ["s"], ["b"])], "t", [], [out])
    else_g = helper.make_graph([helper.make_node("Neg", ["s"], ["b"])], "e", [], [out])
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("ReduceSum", ["r"], ["s"], keepdims=0),
        helper.make_node("Greater", ["s", "zero"], ["cond"]),
        helper.make_node("If", ["cond"], ["y"], then_branch=then_g, else_branch=else_g),
    ]
    return _model(
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 5, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [w, zero],
    ).SerializeToString()


FUZZ = textwrap.dedent(
    """
    import os, random, sys
    import numpy as np
    import sliver
    good, folder = open(sys.argv[1], "rb").read(), sys.argv[2]
    rng = random.Random(int(sys.argv[3]))
    def feeds(sess):
        out = {}
        for i in sess.get_inputs():
            shape = [d if isinstance(d, int) else 1 for d in (i.shape or [])]
            dtype = {"tensor(float)": np.float32, "tensor(int64)": np.int64}.get(i.type, np.float32)
            out[i.name] = np.ones(shape, dtype)
        return out
    def attempt(data, via_file):
        src = data
        if via_file:
            src = os.path.join(folder, "fuzz.onnx")
            open(src, "wb").write(data)
        try:
            sess = sliver.InferenceSession(src)
            sess.run(None, feeds(sess))
        except sliver.SliverError:
            pass
    for i in range(int(sys.argv[4])):
        kind = i % 3
        if kind == 0:
            data = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 300)))
        elif kind == 1:
            data = good[: rng.randint(0, len(good))]
        else:
            b = bytearray(good)
            for _ in range(rng.randint(1, 8)):
                b[rng.randrange(len(b))] = rng.getrandbits(8)
            data = bytes(b)
        attempt(data, via_file=bool(i % 2))
    print("fuzz ok")
    """
)


@pytest.mark.parametrize("seed_model", [_reshape_model, _fuzz_seed_model])
def test_fuzzed_models_never_crash(tmp_path, seed_model) -> None:
    good = tmp_path / "good.onnx"
    good.write_bytes(seed_model())
    seed = np.random.SeedSequence().entropy % 2**32  # a new draw each run; printed on failure
    r = subprocess.run(
        [sys.executable, "-c", FUZZ, str(good), str(tmp_path), str(seed), "60"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, (
        f"seed {seed} rc={r.returncode}\n{r.stdout[-2000:]}\n{r.stderr[-4000:]}"
    )
    assert "fuzz ok" in r.stdout
