"""The memory plan: intermediates of repeated runs live in one arena, results never do."""

from __future__ import annotations

import threading

import numpy as np
import onnx
import pytest
import sliver
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper
from sliver.tools import model_zoo

ZOO = ["cnn_resnet_fp32", "cnn_mobilenet_qdq_u8s8", "transformer_fp32", "mlp_qop_u8s8"]


def _session(model, planned: bool = True, threads: int = 1) -> sliver.InferenceSession:
    so = sliver.SessionOptions()
    so.intra_op_num_threads = threads
    so.enable_mem_pattern = planned
    return sliver.InferenceSession(model, so)


def _stats(sess: sliver.InferenceSession) -> dict:
    return dict(sess._plan.native.memory_stats())


@pytest.mark.parametrize("name", ZOO)
def test_replayed_runs_match_unplanned(zoo_model, name: str) -> None:
    path = zoo_model(name)
    planned, plain = _session(path), _session(path, planned=False)
    outputs = len(planned.get_outputs())
    for seed in range(3):
        feeds = model_zoo.make_feeds(name, seed=seed)
        got = planned.run(None, feeds)
        want = plain.run(None, feeds)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w)
    s = _stats(planned)
    assert s["replayed"] and s["arena_bytes"] > 0 and s["planned_blocks"] > 0
    assert s["heap_allocs"] <= outputs  # only what is handed back
    assert _stats(plain)["planned_blocks"] == 0


def _chain_model(n: int, dims: list) -> bytes:
    """x -> (Relu, Add x, Mul 0.5) repeated: values die at different steps, shapes dynamic."""
    nodes, half = [], helper.make_tensor("half", TensorProto.FLOAT, [], [0.5])
    cur = "x"
    for i in range(n):
        nodes += [
            helper.make_node("Relu", [cur], [f"r{i}"]),
            helper.make_node("Add", [f"r{i}", "x"], [f"a{i}"]),
            helper.make_node("Mul", [f"a{i}", "half"], [f"m{i}"]),
        ]
        cur = f"m{i}"
    g = helper.make_graph(
        nodes,
        "chain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)],
        [
            helper.make_tensor_value_info(cur, TensorProto.FLOAT, None),
            helper.make_tensor_value_info("a0", TensorProto.FLOAT, None),
        ],
        [half],
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def _chain_ref(x: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    cur, a0 = x, None
    for i in range(n):
        a = np.maximum(cur, 0) + x
        a0 = a if i == 0 else a0
        cur = (a * np.float32(0.5)).astype(np.float32)
    return cur, a0


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 6),
    shapes=st.lists(st.tuples(st.integers(1, 40), st.integers(1, 70)), min_size=1, max_size=4),
    seed=st.integers(0, 2**31 - 1),
)
def test_dynamic_shapes_replan(n: int, shapes: list, seed: int) -> None:
    sess = _session(_chain_model(n, ["a", "b"]))
    rng = np.random.default_rng(seed)
    for shape in shapes + shapes:  # each shape twice: record, then replay
        x = rng.standard_normal(shape).astype(np.float32)
        y, a0 = sess.run(None, {"x": x})
        ry, ra0 = _chain_ref(x, n)
        np.testing.assert_allclose(y, ry, rtol=1e-6)
        np.testing.assert_allclose(a0, ra0, rtol=1e-6)


def test_results_survive_later_runs() -> None:
    sess = _session(_chain_model(4, [8, 33]))
    xs = [np.full((8, 33), v, np.float32) for v in (1.0, -2.0, 3.0, 5.0)]
    kept = [sess.run(None, {"x": x}) for x in xs]
    for x, (y, a0) in zip(xs, kept, strict=True):
        ry, ra0 = _chain_ref(x, 4)
        np.testing.assert_array_equal(y, ry)
        np.testing.assert_array_equal(a0, ra0)
    assert _stats(sess)["replayed"]


def test_concurrent_runs_get_their_own_arena() -> None:
    sess = _session(_chain_model(5, [64, 65]), threads=1)
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((64, 65)).astype(np.float32) for _ in range(8)]
    want = [_chain_ref(x, 5)[0] for x in xs]
    errors: list[str] = []

    def worker(k: int) -> None:
        for _ in range(30):
            y = sess.run([sess.get_outputs()[0].name], {"x": xs[k]})[0]
            if not np.array_equal(y, want[k]):
                errors.append(f"thread {k}")
                return

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(len(xs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_value_dependent_shapes_stay_correct() -> None:
    """NonZero's output size depends on values, not shapes: the plan must notice and adapt."""
    nodes = [
        helper.make_node("Greater", ["x", "zero"], ["pos"]),
        helper.make_node("NonZero", ["pos"], ["idx"]),
        helper.make_node("Cast", ["idx"], ["f"], to=TensorProto.FLOAT),
        helper.make_node("Relu", ["f"], ["r"]),
        helper.make_node("ReduceSum", ["r"], ["s"], keepdims=0),
        helper.make_node("Add", ["x", "s"], ["y"]),
    ]
    g = helper.make_graph(
        nodes,
        "nz",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [64])],
        [helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(m)
    sess = _session(m.SerializeToString())
    rng = np.random.default_rng(1)
    for _ in range(12):
        x = (rng.standard_normal(64) * rng.choice([0.1, 1, 10])).astype(np.float32)
        x[rng.random(64) < rng.random()] = -1
        y = sess.run(None, {"x": x})[0]
        s = np.float32(np.nonzero(x > 0)[0].astype(np.float32).sum())
        np.testing.assert_allclose(y, x + s, rtol=1e-6)


# -- in-place reuse: an elementwise op may write into an input nothing else reads afterwards --
_UNARY = {"Relu": lambda v: np.maximum(v, 0), "Neg": np.negative, "Abs": np.abs, "Exp": np.exp}


def _inplace_model(ops: list[tuple[str, int]], shape: list[int]) -> bytes:
    """A chain over x where step i applies ops[i] = (op, k): a unary op, or a binary op with
    the output of step k (an earlier value that then has two readers), through a Reshape view
    every third step; ReduceSum at the end keeps the chain's values out of the results."""
    nodes, names = [], ["x"]
    flat = helper.make_tensor("flat", TensorProto.INT64, [1], [-1])
    back = helper.make_tensor("back", TensorProto.INT64, [len(shape)], shape)
    for i, (op, k) in enumerate(ops):
        cur = names[-1]
        if i % 3 == 2:
            nodes += [
                helper.make_node("Reshape", [cur, "flat"], [f"f{i}"]),
                helper.make_node("Reshape", [f"f{i}", "back"], [f"v{i}"]),
            ]
            cur = f"v{i}"
        ins = [cur] if op in _UNARY else [cur, names[k % len(names)]]
        nodes.append(helper.make_node(op, ins, [f"t{i}"]))
        names.append(f"t{i}")
    nodes.append(helper.make_node("ReduceSum", [names[-1]], ["y"], keepdims=1))
    g = helper.make_graph(
        nodes,
        "inplace",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [flat, back],
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def _inplace_ref(x: np.ndarray, ops: list[tuple[str, int]]) -> np.ndarray:
    vals = [x]
    for op, k in ops:
        cur = vals[-1]
        if op in _UNARY:
            vals.append(_UNARY[op](cur).astype(np.float32))
        else:
            other = vals[k % len(vals)]
            vals.append({"Add": np.add, "Mul": np.multiply, "Sub": np.subtract}[op](cur, other))
    return vals[-1].sum(keepdims=True)


@settings(max_examples=30, deadline=None)
@given(
    ops=st.lists(
        st.tuples(st.sampled_from([*_UNARY, "Add", "Mul", "Sub"]), st.integers(0, 20)),
        min_size=1,
        max_size=9,
    ),
    shape=st.lists(st.integers(1, 33), min_size=1, max_size=3),
    seed=st.integers(0, 2**31 - 1),
)
def test_inplace_reuse_matches_numpy_and_spares_feeds(ops, shape, seed) -> None:  # noqa: ANN001
    model = _inplace_model(ops, shape)
    x = (np.random.default_rng(seed).standard_normal(shape) * 0.5).astype(np.float32)
    x_before = x.copy()
    sess, plain = _session(model), _session(model, planned=False)
    # Reuse must not change a bit: the planned runs equal the unplanned one exactly. numpy is a
    # looser check, since nested Exp amplifies the last-ulp differences of two exp
    # implementations (4 Exps of 0.06 reach 7.9e7 with 1.3e-5 relative apart).
    plain_y = plain.run(None, {"x": x})[0]
    np.testing.assert_allclose(plain_y, _inplace_ref(x, ops), rtol=1e-4, atol=1e-5)
    for _ in range(3):  # record, then replay
        np.testing.assert_array_equal(sess.run(None, {"x": x})[0], plain_y)
    np.testing.assert_array_equal(x, x_before)


def test_inplace_chain_needs_one_block() -> None:
    """Relu -> Neg -> Abs -> Exp over a 256 KiB tensor: each op writes into its input, so the
    arena holds one such block, not two alternating ones."""
    shape = [256, 256]
    model = _inplace_model([("Relu", 0), ("Neg", 0), ("Exp", 0), ("Abs", 0)], shape)
    sess = _session(model)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    for _ in range(2):
        sess.run(None, {"x": x})
    block = 256 * 256 * 4
    s = _stats(sess)
    assert s["replayed"] and block <= s["arena_bytes"] < 1.5 * block, s
