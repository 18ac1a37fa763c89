"""If / Loop / Scan / SequenceMap run their subgraphs as sliver plans; onnxruntime is the oracle."""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import onnxruntime
import pytest
import sliver
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

F = TensorProto.FLOAT
I64 = TensorProto.INT64
B = TensorProto.BOOL


def _vi(name: str, dtype: int = F, shape=None) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, dtype, shape)


def _const(name: str, value) -> onnx.NodeProto:
    return helper.make_node(
        "Constant", [], [name], value=onnx.numpy_helper.from_array(np.asarray(value))
    )


def _model(nodes, inputs, outputs, opset: int = 17, inits=()) -> bytes:
    graph = helper.make_graph(nodes, "cf", inputs, outputs, list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return model.SerializeToString()


def _both(data: bytes, feeds: dict) -> tuple[list, list, sliver.InferenceSession]:
    sess = sliver.InferenceSession(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds), ref.run(None, feeds), sess


def _assert_same(got: list, want: list) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype and g.shape == w.shape, (g.dtype, g.shape, w.dtype, w.shape)
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


def _loop_model(opset: int = 17) -> bytes:
    """acc = Loop(M, cond): acc += x * i, stop once acc > limit; scan outputs acc and i."""
    body = helper.make_graph(
        [
            helper.make_node("Cast", ["i"], ["fi"], to=F),
            helper.make_node("Mul", ["x", "fi"], ["xi"]),  # x comes from the outer scope
            helper.make_node("Add", ["acc_in", "xi"], ["acc_out"]),
            helper.make_node("ReduceSum", ["acc_out"], ["total"], keepdims=0),
            helper.make_node("Less", ["total", "limit"], ["cond_out"]),  # outer 'limit'
            helper.make_node("Identity", ["i"], ["i_out"]),
        ],
        "body",
        [_vi("i", I64, []), _vi("cond_in", B, []), _vi("acc_in", F, None)],
        [_vi("cond_out", B, []), _vi("acc_out", F, None), _vi("acc_out_scan", F, None)]
        + [_vi("i_out", I64, [])],
    )
    # acc_out is both carried and scanned: scan it through an Identity.
    body.node.append(helper.make_node("Identity", ["acc_out"], ["acc_out_scan"]))
    loop = helper.make_node(
        "Loop", ["M", "cond", "acc0"], ["acc", "accs", "iters"], body=body, name="the_loop"
    )
    return _model(
        [loop],
        [_vi("M", I64, []), _vi("cond", B, []), _vi("acc0", F, [3]), _vi("x", F, [3])]
        + [_vi("limit", F, [])],
        [_vi("acc", F, [3]), _vi("accs", F, None), _vi("iters", I64, None)],
        opset,
    )


@given(
    trips=st.integers(0, 7),
    cond=st.booleans(),
    limit=st.floats(-5, 50, width=32),
    seed=st.integers(0, 2**31),
)
@settings(max_examples=25, deadline=None)
def test_loop_matches_onnxruntime(trips: int, cond: bool, limit: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    feeds = {
        "M": np.array(trips, np.int64),
        "cond": np.array(cond),
        "acc0": rng.standard_normal(3).astype(np.float32),
        "x": rng.uniform(0, 2, 3).astype(np.float32),
        "limit": np.array(limit, np.float32),
    }
    got, want, sess = _both(_loop_model(), feeds)
    if trips and cond:  # zero-iteration scan outputs: onnxruntime's shape is its own choice
        _assert_same(got, want)
    else:
        np.testing.assert_array_equal(got[0], feeds["acc0"])
        assert got[1].shape[0] == 0 and got[2].shape == (0,) and got[2].dtype == np.int64
    assert ("the_loop", "Loop", "python") in sess.profile_steps()


def test_loop_scan_of_scalars_stacks_to_1d() -> None:
    # What Range's function body does: one scalar per iteration -> shape (n,).
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["c"], ["c_out"]),
            helper.make_node("Add", ["v", "d"], ["v_out"]),
            helper.make_node("Identity", ["v"], ["scan"]),
        ],
        "body",
        [_vi("i", I64, []), _vi("c", B, []), _vi("v", F, [])],
        [_vi("c_out", B, []), _vi("v_out", F, []), _vi("scan", F, [])],
    )
    nodes = [helper.make_node("Loop", ["n", "", "v0"], ["last", "all"], body=body)]
    data = _model(
        nodes,
        [_vi("n", I64, []), _vi("v0", F, []), _vi("d", F, [])],
        [_vi("last", F, []), _vi("all", F, None)],
    )
    feeds = {"n": np.array(4, np.int64), "v0": np.array(1.0, np.float32), "d": np.float32(0.5)}
    got, want, _ = _both(data, {**feeds, "d": np.array(0.5, np.float32)})
    _assert_same(got, want)
    assert got[1].shape == (4,)


def _scan_model(n_state: int, axes: list[int], dirs: list[int], out_axis: int, out_dir: int):
    """state += sum of the scan slices; scan output = state * slice0 (opset 16)."""
    n_in = len(axes)
    body_nodes = [helper.make_node("Sum", [f"s{j}" for j in range(n_in)], ["tot"])]
    body_nodes.append(helper.make_node("Add", ["st", "tot"], ["st_out"]))
    body_nodes.append(helper.make_node("Mul", ["st_out", "s0"], ["y"]))
    body_nodes.append(helper.make_node("Mul", ["y", "w"], ["y2"]))  # 'w' from the outer scope
    body = helper.make_graph(
        body_nodes,
        "body",
        [_vi("st", F, None)] + [_vi(f"s{j}", F, None) for j in range(n_in)],
        [_vi("st_out", F, None), _vi("y2", F, None)],
    )
    scan = helper.make_node(
        "Scan",
        ["st0"] + [f"x{j}" for j in range(n_in)],
        ["st", "ys"],
        body=body,
        num_scan_inputs=n_in,
        scan_input_axes=axes,
        scan_input_directions=dirs,
        scan_output_axes=[out_axis],
        scan_output_directions=[out_dir],
    )
    return scan


@given(data=st.data())
@settings(max_examples=25, deadline=None)
def test_scan_matches_onnxruntime(data) -> None:
    n_in = data.draw(st.integers(1, 3))
    length = data.draw(st.integers(1, 5))
    elem = data.draw(st.lists(st.integers(1, 3), min_size=1, max_size=2))
    axes = [data.draw(st.integers(-(len(elem) + 1), len(elem))) for _ in range(n_in)]
    dirs = [data.draw(st.integers(0, 1)) for _ in range(n_in)]
    out_axis = data.draw(st.integers(-(len(elem) + 1), len(elem)))
    out_dir = data.draw(st.integers(0, 1))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31)))
    feeds = {"st0": rng.standard_normal(elem).astype(np.float32)}
    feeds["w"] = rng.standard_normal(elem).astype(np.float32)
    for j, a in enumerate(axes):
        shape = list(elem)
        shape.insert(a % (len(elem) + 1), length)
        feeds[f"x{j}"] = rng.standard_normal(shape).astype(np.float32)
    scan = _scan_model(1, axes, dirs, out_axis, out_dir)
    data_bytes = _model(
        [scan],
        [_vi(n, F, list(v.shape)) for n, v in feeds.items()],
        [_vi("st", F, None), _vi("ys", F, None)],
        16,
    )
    got, want, _ = _both(data_bytes, feeds)
    _assert_same(got, want)


def test_scan_opset8_with_sequence_lens() -> None:
    body = helper.make_graph(
        [
            helper.make_node("Add", ["st", "s"], ["st_out"]),
            helper.make_node("Identity", ["st_out"], ["y"]),
        ],
        "body",
        [_vi("st", F, [2]), _vi("s", F, [2])],
        [_vi("st_out", F, [2]), _vi("y", F, [2])],
    )
    scan = helper.make_node(
        "Scan", ["lens", "st0", "x"], ["st", "ys"], body=body, num_scan_inputs=1, directions=[1]
    )
    data = _model(
        [scan],
        [_vi("lens", I64, [3]), _vi("st0", F, [3, 2]), _vi("x", F, [3, 4, 2])],
        [_vi("st", F, [3, 2]), _vi("ys", F, [3, 4, 2])],
        8,
    )
    rng = np.random.default_rng(5)
    feeds = {
        "lens": np.array([4, 2, 1], np.int64),
        "st0": rng.standard_normal((3, 2)).astype(np.float32),
        "x": rng.standard_normal((3, 4, 2)).astype(np.float32),
    }
    got, want, _ = _both(data, feeds)
    _assert_same(got, want)
    st_, ys = got
    x, s0 = feeds["x"], feeds["st0"]
    for b, n in enumerate(feeds["lens"]):
        steps = x[b, :n][::-1]  # direction 1: the first n steps, last first
        np.testing.assert_allclose(st_[b], s0[b] + steps.sum(axis=0), rtol=1e-6)
        np.testing.assert_allclose(ys[b, :n], s0[b] + np.cumsum(steps, axis=0), rtol=1e-6)
        np.testing.assert_array_equal(ys[b, n:], 0)


@pytest.mark.parametrize("cond", [True, False])
def test_nested_if_in_loop_reads_two_scopes(cond: bool) -> None:
    # The If inside the Loop body reads 'x' (main graph) and 'acc_in' (the body).
    then_g = helper.make_graph(
        [helper.make_node("Add", ["acc_in", "x"], ["r"])], "then", [], [_vi("r", F, None)]
    )
    else_g = helper.make_graph(
        [helper.make_node("Sub", ["acc_in", "x"], ["r2"])], "else", [], [_vi("r2", F, None)]
    )
    body = helper.make_graph(
        [
            helper.make_node("If", ["flag"], ["acc_out"], then_branch=then_g, else_branch=else_g),
            helper.make_node("Identity", ["c"], ["c_out"]),
        ],
        "body",
        [_vi("i", I64, []), _vi("c", B, []), _vi("acc_in", F, [2])],
        [_vi("c_out", B, []), _vi("acc_out", F, [2])],
    )
    data = _model(
        [helper.make_node("Loop", ["n", "", "a0"], ["acc"], body=body)],
        [_vi("n", I64, []), _vi("a0", F, [2]), _vi("x", F, [2]), _vi("flag", B, [])],
        [_vi("acc", F, [2])],
    )
    feeds = {
        "n": np.array(3, np.int64),
        "a0": np.array([1, 2], np.float32),
        "x": np.array([0.5, -1], np.float32),
        "flag": np.array(cond),
    }
    got, want, _ = _both(data, feeds)
    _assert_same(got, want)
    np.testing.assert_allclose(got[0], feeds["a0"] + (3 if cond else -3) * feeds["x"])


def test_if_cond_must_hold_one_element() -> None:
    g = helper.make_graph([_const("k", np.float32(1))], "b", [], [_vi("k", F, [])])
    data = _model(
        [helper.make_node("If", ["c"], ["y"], then_branch=g, else_branch=g, name="iff")],
        [_vi("c", B, [None])],
        [_vi("y", F, [])],
    )
    sess = sliver.InferenceSession(data)
    assert sess.run(None, {"c": np.array([True])})[0] == 1
    with pytest.raises(sliver.RuntimeFailure, match=r"'iff'.*cond must hold one element.*\[2\]"):
        sess.run(None, {"c": np.array([True, False])})


def test_sequence_map_matches_onnxruntime() -> None:
    body = helper.make_graph(
        [helper.make_node("Mul", ["a", "b"], ["p"]), helper.make_node("Shape", ["p"], ["s"])],
        "body",
        [_vi("a", F, None), _vi("b", F, None)],
        [_vi("p", F, None), _vi("s", I64, None)],
    )
    nodes = [
        helper.make_node("SplitToSequence", ["x", "lens"], ["seq"], axis=0),
        helper.make_node("SequenceMap", ["seq", "k"], ["prods", "shapes"], body=body),
        helper.make_node("ConcatFromSequence", ["prods"], ["y"], axis=0),
        helper.make_node("SequenceLength", ["shapes"], ["n"]),
    ]
    data = _model(
        nodes,
        [_vi("x", F, [6, 2]), _vi("lens", I64, [3]), _vi("k", F, [2])],
        [_vi("y", F, None), _vi("n", I64, [])],
    )
    rng = np.random.default_rng(2)
    feeds = {
        "x": rng.standard_normal((6, 2)).astype(np.float32),
        "lens": np.array([1, 3, 2], np.int64),
        "k": rng.standard_normal(2).astype(np.float32),
    }
    got, want, sess = _both(data, feeds)
    _assert_same(got, want)
    assert ("SequenceMap_1", "SequenceMap", "python") in sess.profile_steps()


@pytest.mark.parametrize("level", [0, 99])
def test_subgraph_reads_of_values_passes_would_rewrite(level: int) -> None:
    # 't' is an Identity and 'u' a foldable MatMul+Add: the branch reads both by name, so
    # the optimizer must keep them (or the subgraph would read names that are gone).
    rng = np.random.default_rng(9)
    w = onnx.numpy_helper.from_array(rng.standard_normal((3, 3)).astype(np.float32), "w")
    bias = onnx.numpy_helper.from_array(rng.standard_normal(3).astype(np.float32), "bias")
    then_g = helper.make_graph(
        [helper.make_node("Add", ["t", "u"], ["r"])], "then", [], [_vi("r", F, None)]
    )
    else_g = helper.make_graph(
        [helper.make_node("Identity", ["t"], ["r2"])], "else", [], [_vi("r2", F, None)]
    )
    nodes = [
        helper.make_node("Identity", ["x"], ["t"]),
        helper.make_node("MatMul", ["x", "w"], ["m"]),
        helper.make_node("Add", ["m", "bias"], ["u"]),
        helper.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g),
    ]
    data = _model(
        nodes, [_vi("x", F, [2, 3]), _vi("c", B, [])], [_vi("y", F, [2, 3])], 17, [w, bias]
    )
    opts = sliver.SessionOptions()
    opts.graph_optimization_level = sliver.GraphOptimizationLevel(level)
    sess = sliver.InferenceSession(data, opts)
    x = rng.standard_normal((2, 3)).astype(np.float32)
    for c in (True, False):
        (y,) = sess.run(None, {"x": x, "c": np.array(c)})
        want = (
            x + (x @ onnx.numpy_helper.to_array(w) + onnx.numpy_helper.to_array(bias)) if c else x
        )
        np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)
