"""Sparse weights wired into the ops (csrc/ops/sparse_ops.cc): pruned zoo models and random
pruned single layers give the dense kernels' results with ``sliver.sparse=sparse`` (FP32 within
a rounding tolerance, INT8 bit-exact), track onnxruntime, show up in ``sliver inspect`` and
store their weights in a fraction of the dense bytes."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import onnxruntime as ort
import pytest
import sliver
from helpers import cosine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper
from sliver import cli
from sliver.tools import model_zoo as mz

# Sparse and dense FP32 kernels sum in different orders: results agree to a few float32 ulps
# of the largest partial sums, named here relative to the output's scale.
F32_REL_TOL = 1e-4
ORT_MIN_COSINE = 0.999
# Quantized models follow the spec's float order (requant.h), onnxruntime its own: they are
# checked against the spec oracle (Python reference ops) at ORT_MIN_COSINE and against
# onnxruntime loosely, as tests/test_models_vs_ort.py does.
QUANT_MIN_COSINE_VS_ORT = 0.99
WEIGHT_BYTES_GOAL_90 = 0.3  # packed sparse weights / dense packed weights at 90% zeros (FP32)
# INT8 at 90% zeros: packed sparse bytes / the int8 weights' element count (1 byte each).
INT8_WEIGHT_BYTES_GOAL_90 = 0.3

PRUNED = [n for n, s in mz.REGISTRY.items() if s.sparsity > 0]
PRUNED_FP32 = [n for n in PRUNED if mz.REGISTRY[n].dtype == "fp32"]


def session(model: str | bytes, mode: str, threads: int = 1) -> sliver.InferenceSession:
    so = sliver.SessionOptions()
    so.intra_op_num_threads = threads
    so.add_session_config_entry("sliver.sparse", mode)
    return sliver.InferenceSession(model, so)


def sparse_steps(sess: sliver.InferenceSession) -> list[str]:
    return [impl for _, _, impl in sess.profile_steps() if impl.startswith("sparse")]


def assert_same(dense: np.ndarray, sparse: np.ndarray, exact: bool, what: str) -> None:
    assert dense.shape == sparse.shape and dense.dtype == sparse.dtype, what
    if exact:
        np.testing.assert_array_equal(sparse, dense, err_msg=what)
    else:
        scale = float(np.max(np.abs(dense))) if dense.size else 0.0
        np.testing.assert_allclose(
            sparse, dense, rtol=F32_REL_TOL, atol=F32_REL_TOL * scale, err_msg=what
        )


# ---- zoo models ----


@pytest.mark.parametrize("name", PRUNED)
def test_zoo_sparse_equals_dense_and_tracks_ort(zoo_model, name: str) -> None:
    path = zoo_model(name)
    quantized = mz.REGISTRY[name].quantized
    feeds = mz.make_feeds(name, seed=3)
    sp = session(path, "sparse")
    assert len(sparse_steps(sp)) >= 2, sp.profile_steps()  # the pruned layers run sparse
    dn = session(path, "dense")
    assert not sparse_steps(dn)
    got, want = sp.run(None, feeds), dn.run(None, feeds)
    for g, w in zip(got, want, strict=True):
        assert_same(w, g, quantized, name)
    auto = session(path, "auto").run(None, feeds)  # whatever auto picks, the same results
    for a, w in zip(auto, want, strict=True):
        assert_same(w, a, quantized, name)
    ref = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, feeds)
    if not quantized:
        assert cosine(got[0], ref[0]) >= ORT_MIN_COSINE
        return
    assert cosine(got[0], ref[0]) >= QUANT_MIN_COSINE_VS_ORT
    so = sliver.SessionOptions()
    so.add_session_config_entry("sliver.native_kernels", "0")
    spec = sliver.InferenceSession(path, so).run(None, feeds)
    assert cosine(got[0], spec[0]) >= ORT_MIN_COSINE


@pytest.mark.parametrize(
    "name",
    [
        "mlp_fp32_sp50",
        "transformer_fp32_sp50",
        "transformer_qdq_s8s8_sp80",
        "ocr_like_qdq_s8s8_sp90",
    ],
)
def test_dynamic_extent_runs_dense_below_the_crossover(zoo_model, name: str) -> None:
    """Dynamic batch/sequence/width: auto builds the sparse kernel and hands small runs to the
    dense one; every size gives the dense results."""
    path = zoo_model(name)
    quantized = mz.REGISTRY[name].quantized
    auto, dense = session(path, "auto"), session(path, "dense")
    family = mz.REGISTRY[name].family
    sizes = {
        "mlp": [{"batch": 1}, {"batch": 5}, {"batch": 40}],
        "transformer": [{"batch": 1, "seq": 1}, {"batch": 1, "seq": 9}, {"batch": 2, "seq": 33}],
        "ocr_like": [{"width": 4}, {"width": 36}, {"width": 200}],
    }[family]
    for dims in sizes:
        feeds = mz.make_feeds(name, seed=5, **dims)
        assert_same(dense.run(None, feeds)[0], auto.run(None, feeds)[0], quantized, str(dims))


def test_auto_leaves_dense_weights_dense(zoo_model) -> None:
    for name in ("mlp_fp32", "cnn_resnet_qdq_s8s8", "transformer_fp32"):
        assert not sparse_steps(session(zoo_model(name), "auto")), name


def test_auto_picks_sparse_for_90_percent_zeros(zoo_model) -> None:
    for name in ("transformer_fp32_sp90", "cnn_mobilenet_fp32_sp90", "ocr_like_qdq_s8s8_sp90"):
        assert len(sparse_steps(session(zoo_model(name), "auto"))) >= 3, name


def test_bad_mode_is_an_error(zoo_model) -> None:
    with pytest.raises(sliver.SliverError, match="sliver.sparse"):
        session(zoo_model("mlp_fp32_sp90"), "fast")


def test_threads_do_not_change_results(zoo_model) -> None:
    for name in ("cnn_resnet_fp32_sp80", "cnn_resnet_qdq_s8s8_bsp80", "transformer_qdq_s8s8_sp90"):
        feeds = mz.make_feeds(name, seed=7)
        one = session(zoo_model(name), "sparse", threads=1).run(None, feeds)[0]
        two = session(zoo_model(name), "sparse", threads=2).run(None, feeds)[0]
        np.testing.assert_array_equal(one, two, err_msg=name)


# ---- inspect and weight bytes ----


def test_inspect_shows_sparse_layers(zoo_model) -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["inspect", zoo_model("cnn_resnet_fp32_sp90")]) == 0
    text = out.getvalue()
    assert "sparse f32_spmm_left conv_grid R=" in text
    assert "density 0.10" in text and "blocks " in text
    assert "weight layers (9 sparse of 10" in text  # the 1-row Gemm stays dense
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["inspect", "--sparse", "dense", zoo_model("cnn_resnet_fp32_sp90")]) == 0
    assert "(0 sparse of" in out.getvalue()


def _layer_bytes(sess: sliver.InferenceSession) -> dict[str, int]:
    return {
        name: b
        for (name, _, _), b in zip(sess.profile_steps(), cli.packed_weight_bytes(sess), strict=True)
    }


@pytest.mark.parametrize("name", [n for n in PRUNED_FP32 if n.endswith("_sp90")])
def test_weight_bytes_goal_at_90_percent(zoo_model, name: str) -> None:
    sp, dn = session(zoo_model(name), "sparse"), session(zoo_model(name), "dense")
    sb, db = _layer_bytes(sp), _layer_bytes(dn)
    layers = [n for n, _, impl in sp.profile_steps() if impl.startswith("sparse")]
    assert layers and all(db[n] > 0 for n in layers)  # dense kernels report their panels
    ratio = sum(sb[n] for n in layers) / sum(db[n] for n in layers)
    assert ratio <= WEIGHT_BYTES_GOAL_90, ratio


Q8_SP90 = [f"{f}_qdq_s8s8_sp90" for f in ("cnn_resnet", "cnn_mobilenet", "transformer", "mlp")]


@pytest.mark.parametrize("name", Q8_SP90)
def test_int8_weight_bytes_goal_at_90_percent(zoo_model, name: str) -> None:
    """8-bit weights and 8-bit input steps: a 90%-pruned INT8 model's sparse layers hold at most
    0.3 bytes per dense int8 weight (pointers and zero points included)."""
    sp = session(zoo_model(name), "sparse")
    nodes = {n.name: n for n in sp.graph.nodes}
    sparse_bytes = dense_bytes = 0
    for (node, _, impl), nbytes in zip(
        sp.profile_steps(), cli.packed_weight_bytes(sp), strict=True
    ):
        if impl.startswith("sparse"):
            w = sp.graph.initializers[nodes[node].inputs[3]]  # QLinearConv/MatMul, QGemm: B
            assert w.dtype in (np.int8, np.uint8), (node, w.dtype)
            sparse_bytes += nbytes
            dense_bytes += w.size
    assert dense_bytes > 0
    assert sparse_bytes / dense_bytes <= INT8_WEIGHT_BYTES_GOAL_90, sparse_bytes / dense_bytes


def _qlinear_matmul_model(w: np.ndarray) -> bytes:
    """y (uint8, 1 x N) = QLinearMatMul(x (uint8, 1 x K), w (int8, K x N)), per-tensor scales."""
    k, n = w.shape
    inits = [
        numpy_helper.from_array(np.array(0.02, np.float32), "xs"),
        numpy_helper.from_array(np.array(128, np.uint8), "xz"),
        numpy_helper.from_array(w, "w"),
        numpy_helper.from_array(np.array(0.01, np.float32), "ws"),
        numpy_helper.from_array(np.array(0, np.int8), "wz"),
        numpy_helper.from_array(np.array(0.05, np.float32), "ys"),
        numpy_helper.from_array(np.array(120, np.uint8), "yz"),
    ]
    node = helper.make_node(
        "QLinearMatMul", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"], ["y"], name="classifier"
    )
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, k])],
        [helper.make_tensor_value_info("y", TensorProto.UINT8, [1, n])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()


def test_int8_cold_classifier_goes_sparse_at_90_percent() -> None:
    """A classifier-sized INT8 GEMV (1280 -> 1000, 1.3 MB of weights, as MobileNetV2's) at 90%
    zeros runs sparse in automatic mode (inside a model it reads its weights from memory, where
    fewer bytes run as fast as the dense GEMV) and holds under 0.3 of its dense bytes; with 40%
    zeros it stays dense. Outputs are bit-identical to the dense path. (92% random zeros: the
    quads' padding stores about 0.10 of the dense entries, as magnitude pruning's 90% does.)"""
    rng = np.random.default_rng(5)
    x = {"x": rng.integers(0, 256, size=(1, 1280), dtype=np.uint8)}
    for zeros, want_sparse in [(0.92, True), (0.6, False)]:
        w = rng.integers(-128, 128, size=(1280, 1000), dtype=np.int8)
        w[rng.random(w.shape) < zeros] = 0
        model = _qlinear_matmul_model(w)
        auto, dense = session(model, "auto"), session(model, "dense")
        assert bool(sparse_steps(auto)) == want_sparse, auto.profile_steps()
        if want_sparse:
            assert sum(cli.packed_weight_bytes(auto)) <= INT8_WEIGHT_BYTES_GOAL_90 * w.size
        np.testing.assert_array_equal(auto.run(None, x)[0], dense.run(None, x)[0])


# ---- random pruned single layers ----


def prune(rng: np.random.Generator, w: np.ndarray, zeros: float, pattern: str) -> np.ndarray:
    """w [out, in, ...] with about `zeros` of it zero in the given pattern."""
    out, k = w.shape[0], int(np.prod(w.shape[1:]))
    flat = w.reshape(out, k).copy()
    if pattern == "unstructured":
        keep = rng.random(flat.shape) >= zeros
    elif pattern == "rows":  # whole output channels empty, the rest unstructured
        keep = (rng.random((out, 1)) >= zeros) & (rng.random(flat.shape) >= zeros / 2)
    elif pattern == "cols":  # inputs nobody reads
        keep = (rng.random((1, k)) >= zeros) & (rng.random(flat.shape) >= zeros / 2)
    elif pattern == "4x1":
        keep = np.repeat(rng.random(((out + 3) // 4, k)) >= zeros, 4, axis=0)[:out]
    else:  # 1x4
        keep = np.repeat(rng.random((out, (k + 3) // 4)) >= zeros, 4, axis=1)[:, :k]
    return np.where(keep, flat, 0).reshape(w.shape).astype(w.dtype)


ZEROS = st.sampled_from([0.0, 0.01, 0.5, 0.9, 0.99, 1.0])
PATTERNS = st.sampled_from(["unstructured", "rows", "cols", "4x1", "1x4"])
SETTINGS = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def model_bytes(nodes, inputs, outputs, inits, opset: int = 17) -> bytes:
    g = helper.make_graph(nodes, "g", inputs, outputs, inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)]).SerializeToString()


def both_modes(model: bytes, feeds: dict[str, np.ndarray]) -> tuple[list, list, list[str]]:
    sp = session(model, "sparse")
    return sp.run(None, feeds), session(model, "dense").run(None, feeds), sparse_steps(sp)


@SETTINGS
@given(
    seed=st.integers(0, 2**31),
    zeros=ZEROS,
    pattern=PATTERNS,
    kind=st.sampled_from(
        [
            "conv1x1",
            "conv3x3",
            "conv3x3_s2",
            "conv_group2",
            "conv1d",
            "conv_odd",
            "conv_same",
            "conv1x1_s2",
            "gemm",
            "gemm_tb",
            "matmul3d",
        ]
    ),
    act=st.sampled_from(["", "Relu", "Clip"]),
    dynamic=st.booleans(),
)
def test_random_f32_layer(
    seed: int, zeros: float, pattern: str, kind: str, act: str, dynamic: bool
) -> None:
    """dynamic: the input's spatial dims are symbolic, so a conv's window grid is only known at
    run time (offsets looked up per entry) instead of resolved at load."""
    rng = np.random.default_rng(seed)
    out, cin = int(rng.integers(1, 40)), int(rng.integers(1, 40))
    inits, attrs = [], {}
    if kind.startswith("conv"):
        group = 2 if kind == "conv_group2" else 1
        cin, out = cin * group, out * group
        k = 1 if kind.startswith("conv1x1") else 3
        spatial = [int(v) for v in rng.integers(1, 12, 1 if kind == "conv1d" else 2)]
        wshape = [out, cin // group] + [k] * len(spatial)
        xshape = [int(rng.integers(1, 3)), cin] + spatial
        attrs = {"group": group, "pads": [k // 2] * (2 * len(spatial))}
        if kind in ("conv3x3_s2", "conv1x1_s2"):
            attrs["strides"] = [2, 2]
        elif kind == "conv_odd":  # the phase grid's general case: mixed strides and dilations
            spatial = [int(v) for v in rng.integers(6, 14, 2)]
            xshape = xshape[:2] + spatial
            wshape = [out, cin, 3, 2]
            attrs = {"strides": [2, 3], "dilations": [2, 1], "pads": [1, 0, 2, 1]}
        elif kind == "conv_same":
            attrs = {"strides": [2, 2], "auto_pad": "SAME_UPPER"}
        op, ins = "Conv", ["x", "w", "b"]
    else:
        wshape = [out, cin]  # output channels first for pruning; B [K, N] unless transB
        rows = int(rng.integers(1, 70))
        xshape = [2, rows // 2 + 1, cin] if kind == "matmul3d" else [rows, cin]
        op, ins = ("MatMul", ["x", "w"]) if kind == "matmul3d" else ("Gemm", ["x", "w", "b"])
        if kind == "gemm_tb":
            attrs = {"transB": 1, "alpha": 0.5}
    declared = list(xshape)
    if dynamic and kind.startswith("conv"):
        declared[2:] = [f"d{i}" for i in range(len(xshape) - 2)]
    w = prune(rng, rng.standard_normal(wshape).astype(np.float32), zeros, pattern)
    if kind in ("gemm", "matmul3d"):
        w = np.ascontiguousarray(w.T)
    inits = [
        numpy_helper.from_array(w, "w"),
        numpy_helper.from_array(rng.standard_normal(out).astype(np.float32), "b"),
    ]
    nodes = [helper.make_node(op, ins, ["y0"], **attrs)]
    last = "y0"
    if act:
        nodes.append(helper.make_node(act, ["y0", "lo", "hi"] if act == "Clip" else ["y0"], ["y1"]))
        inits += [
            numpy_helper.from_array(np.array(-0.5, np.float32), "lo"),
            numpy_helper.from_array(np.array(0.7, np.float32), "hi"),
        ]
        last = "y1"
    model = model_bytes(
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, declared)],
        [helper.make_tensor_value_info(last, TensorProto.FLOAT, None)],
        inits,
    )
    feeds = {"x": rng.standard_normal(xshape).astype(np.float32)}
    got, want, steps = both_modes(model, feeds)
    assert steps, kind  # the layer ran sparse
    assert_same(want[0], got[0], False, f"{kind} {wshape} {xshape} {zeros} {pattern}")


@pytest.mark.parametrize(
    "cin,k,stride,width,residual",
    [
        (64, 3, 1, 70, True),  # 70 outputs a row: a 64-lane tile and a 6-lane rest; 3 K chunks
        (3, 7, 2, 150, False),  # a ResNet-like stem, 75 outputs a row on a stride-2 phase grid
        (8, 3, 1, 129, True),  # 64 + 64 + 1 outputs a row
        (16, 5, 2, 127, False),  # 64 outputs a row exactly
    ],
)
@pytest.mark.parametrize("threads,dynamic", [(1, False), (2, False), (1, True)])
def test_wide_grid_rows(
    cin: int, k: int, stride: int, width: int, residual: bool, threads: int, dynamic: bool
):
    """Grids with 64+ real outputs a row take tiles of their own that write Y directly (the
    last chunk, with bias, Relu and the residual Add); the result must equal dense execution.
    dynamic: symbolic spatial dims (offsets looked up per entry at run time)."""
    rng = np.random.default_rng(cin * 1000 + width)
    out, height = 24, 5
    w = prune(rng, rng.standard_normal((out, cin, k, k)).astype(np.float32), 0.8, "unstructured")
    x = rng.standard_normal((1, cin, height, width)).astype(np.float32)
    attrs = {"pads": [k // 2] * 4, "strides": [stride, stride]}
    oh, ow = (height - 1) // stride + 1, (width - 1) // stride + 1
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], **attrs)]
    declared = [1, cin, "h", "w"] if dynamic else list(x.shape)
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, declared)]
    feeds = {"x": x}
    last = "c"
    if residual:
        nodes.append(helper.make_node("Add", ["c", "r"], ["s"]))
        rshape = [1, out, "oh", "ow"] if dynamic else [1, out, oh, ow]
        inputs.append(helper.make_tensor_value_info("r", TensorProto.FLOAT, rshape))
        feeds["r"] = rng.standard_normal((1, out, oh, ow)).astype(np.float32)
        last = "s"
    nodes.append(helper.make_node("Relu", [last], ["y"]))
    inits = [
        numpy_helper.from_array(w, "w"),
        numpy_helper.from_array(rng.standard_normal(out).astype(np.float32), "b"),
    ]
    model = model_bytes(
        nodes, inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits
    )
    got = session(model, "sparse", threads)
    assert any("conv_grid" in s for s in sparse_steps(got))
    want = session(model, "dense", threads).run(None, feeds)[0]
    assert_same(want, got.run(None, feeds)[0], False, f"{cin} {k} {stride} {width}")


def _q8_weight_inits(rng: np.random.Generator, w: np.ndarray, channels: int | None) -> list:
    """w (int8, symmetric: zero point 0, so pruned zeros stay zeros), its scale and zero point,
    per tensor or per output channel (`channels` values)."""
    shape = () if channels is None else (channels,)
    return [
        numpy_helper.from_array(w, "w"),
        numpy_helper.from_array(rng.uniform(0.005, 0.05, shape).astype(np.float32), "ws"),
        numpy_helper.from_array(np.zeros(shape, np.int8), "wz"),
    ]


@SETTINGS
@given(
    seed=st.integers(0, 2**31),
    zeros=ZEROS,
    pattern=PATTERNS,
    kind=st.sampled_from(
        [
            "qconv1x1",
            "qconv3x3",
            "qconv_s2",
            "qdq_conv",
            "qdq_conv_relu",
            "qdq_conv1x1",
            "qmatmul",
            "qdq_matmul",
        ]
    ),
    signed=st.booleans(),
    per_channel=st.booleans(),
)
def test_random_int8_layer_is_bit_exact(
    seed: int, zeros: float, pattern: str, kind: str, signed: bool, per_channel: bool
) -> None:
    rng = np.random.default_rng(seed)
    at, tp = (np.int8, TensorProto.INT8) if signed else (np.uint8, TensorProto.UINT8)
    lo, hi = (-128, 127) if signed else (0, 255)
    out, cin = int(rng.integers(1, 40)), int(rng.integers(1, 40))
    conv = "conv" in kind
    k = 1 if kind.endswith("1x1") else 3
    if conv:
        w = prune(rng, rng.integers(-127, 128, (out, cin, k, k)).astype(np.int8), zeros, pattern)
        xshape = [1, cin, int(rng.integers(1, 10)), int(rng.integers(1, 10))]
    else:  # B [K, N]: pruned as [N, K] (output channels first)
        w = prune(rng, rng.integers(-127, 128, (out, cin)).astype(np.int8), zeros, pattern)
        w = np.ascontiguousarray(w.T)
        xshape = [int(rng.integers(1, 60)), cin]
    inits = _q8_weight_inits(rng, w, out if per_channel else None) + [
        numpy_helper.from_array(np.array(0.05, np.float32), "xs"),
        numpy_helper.from_array(np.array(rng.integers(lo, hi + 1), at), "xz"),
        numpy_helper.from_array(np.array(rng.uniform(0.02, 0.3), np.float32), "ys"),
        numpy_helper.from_array(np.array(rng.integers(lo, hi + 1), at), "yz"),
    ]
    attrs = {"pads": [1, 1, 1, 1]} if k == 3 and conv else {}
    if kind == "qconv_s2":
        attrs["strides"] = [2, 2]
    if kind.startswith("qdq"):  # the QDQ form, which the passes turn into sliver:QLinear* ops
        w_axis = {"axis": 0 if conv else 1} if per_channel else {}
        nodes = [
            helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
            helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
            helper.make_node("DequantizeLinear", ["w", "ws", "wz"], ["wd"], **w_axis),
            helper.make_node("Conv" if conv else "MatMul", ["xd", "wd"], ["c"], **attrs),
        ]
        last = "c"
        if kind == "qdq_conv_relu":
            nodes.append(helper.make_node("Relu", ["c"], ["r"]))
            last = "r"
        nodes += [
            helper.make_node("QuantizeLinear", [last, "ys", "yz"], ["yq"]),
            helper.make_node("DequantizeLinear", ["yq", "ys", "yz"], ["y"]),
        ]
        x_info = helper.make_tensor_value_info("x", TensorProto.FLOAT, xshape)
        y_type = TensorProto.FLOAT
        feeds = {"x": rng.standard_normal(xshape).astype(np.float32)}
    else:
        ins = ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"]
        if conv:
            bias = rng.integers(-500, 500, out).astype(np.int32)
            inits.append(numpy_helper.from_array(bias, "b"))
        nodes = [
            helper.make_node(
                "QLinearConv" if conv else "QLinearMatMul",
                ins + (["b"] if conv else []),
                ["y"],
                **attrs,
            )
        ]
        x_info, y_type = helper.make_tensor_value_info("x", tp, xshape), tp
        feeds = {"x": rng.integers(lo, hi + 1, xshape).astype(at)}
    model = model_bytes(nodes, [x_info], [helper.make_tensor_value_info("y", y_type, None)], inits)
    got, want, steps = both_modes(model, feeds)
    assert steps, kind  # the layer ran sparse
    assert_same(want[0], got[0], True, f"{kind} {w.shape} {xshape} {zeros} {pattern}")
