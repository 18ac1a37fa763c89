"""The model zoo (sliver.tools.model_zoo) and the bundled digits model, checked with onnx and
onnxruntime only: they are the inputs of every sliver-vs-onnxruntime comparison, so they must be
valid, runnable, and exactly as sparse / as quantized as the registry says."""

from __future__ import annotations

import collections
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from sliver.tools import model_zoo as mz

ort = pytest.importorskip("onnxruntime")

NAMES = list(mz.REGISTRY)
QUANTIZED = [n for n, s in mz.REGISTRY.items() if s.quantized]
PRUNED = [n for n, s in mz.REGISTRY.items() if s.sparsity]
DATA = Path(mz.__file__).resolve().parents[1] / "data"
# Measured by `python -m sliver.tools.digits`: fp32 dense 0.9907, fp32 pruned 0.9778, int8 pruned
# 0.9741 on the 540 held-out images; allow 1% for other CPUs' int8 kernels.
DIGITS_MIN_ACCURACY = 0.9641
SPARSITY_TOL = 0.01
MIN_CORRELATION = 0.98  # quantized vs its FP32 source, on random inputs


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The whole zoo, built once (about 5 s on 2 cores)."""
    return mz.build_all(tmp_path_factory.mktemp("zoo"))


def _session(path: Path, optimize: bool = True) -> ort.InferenceSession:
    so = ort.SessionOptions()
    if not optimize:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def _run(path: Path, feeds: dict[str, np.ndarray], optimize: bool = True) -> list[np.ndarray]:
    return _session(path, optimize).run(None, feeds)


def _ops(model: onnx.ModelProto) -> collections.Counter:
    return collections.Counter(n.op_type for n in model.graph.node)


# ---- registry -----------------------------------------------------------------------------------
def test_registry_is_consistent() -> None:
    assert set(mz.FAST_SUBSET) <= set(mz.REGISTRY)
    for name, spec in mz.REGISTRY.items():
        assert spec.name == name and spec.family in mz.FAMILIES
        assert spec.scheme in ("fp32", "qdq", "qoperator", "dynamic")
        assert (spec.activation is None) == (spec.scheme == "fp32")
        assert spec.source is None or spec.source in mz.REGISTRY
        assert 0.0 <= spec.sparsity < 1.0 and (spec.block is None or spec.sparsity > 0)
    for fam in mz.FAMILIES:  # every family has every scheme
        schemes = {s.dtype for s in mz.REGISTRY.values() if s.family == fam}
        assert {"fp32", "qdq_s8s8", "qdq_u8s8", "qoperator_u8s8"} <= schemes


@pytest.mark.parametrize(
    ("family", "macs", "classes"),
    [("resnet18", 1.81e9, 1000), ("mobilenet_v2", 0.30e9, 1000), ("bert_base", 4 * 0.906e9, 768)],
)
def test_full_size_families(family: str, macs: float, classes: int) -> None:
    """The benchmark-only full-size graphs are what their names claim: valid, the published
    output width, and the published multiply-accumulate counts of their weight layers within 5%
    (ResNet-18 1.8 G, MobileNetV2 0.30 G, BERT-base 12 * 768^2 * 128 per layer at seq 128)."""
    spec = mz.spec_of(f"{family}_fp32")
    assert spec.family in mz.FULL_SIZE_FAMILIES and spec.name not in mz.REGISTRY
    model = onnx.shape_inference.infer_shapes(mz.FP32_BUILDERS[family](), strict_mode=True)
    onnx.checker.check_model(model)
    (x,) = mz.make_feeds(family).values()
    tokens = int(np.prod(x.shape[:-1]))  # rows of the transformer's weight matmuls
    dims = {
        v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in [*model.graph.value_info, *model.graph.output]
    }
    weights = {t.name: list(t.dims) for t in model.graph.initializer}
    total = 0
    for node in model.graph.node:
        if node.op_type == "Conv":
            w = weights[node.input[1]]
            total += int(np.prod(dims[node.output[0]][1:])) * int(np.prod(w[1:]))
        elif node.op_type in ("MatMul", "Gemm") and node.input[1] in weights:
            k, n = weights[node.input[1]][:: 1 if node.op_type == "MatMul" else -1]
            rows = int(np.prod(dims[node.input[0]][:-1])) if family != "bert_base" else tokens
            total += rows * k * n
    assert abs(total / macs - 1) < 0.05, (family, total)
    assert dims[model.graph.output[0].name][-1] == classes


def test_cli_builds_a_subset(tmp_path: Path) -> None:
    names = ["mlp_fp32", "mlp_qdq_s8s8_bsp80"]
    assert mz.main([str(tmp_path), "--only", *names]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{n}.onnx" for n in names)
    with pytest.raises(KeyError):
        mz.build_all(tmp_path, ["no_such_model"])


def test_build_is_deterministic(tmp_path: Path, zoo: dict[str, Path]) -> None:
    again = mz.build_all(tmp_path, mz.FAST_SUBSET)
    for name, path in again.items():
        assert path.read_bytes() == zoo[name].read_bytes(), name


# ---- every model --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_valid_and_runs_finite(zoo: dict[str, Path], name: str) -> None:
    spec = mz.REGISTRY[name]
    model = onnx.load(zoo[name])
    onnx.checker.check_model(model, full_check=True)
    assert {o.domain: o.version for o in model.opset_import}[""] == spec.opset
    assert json.loads(mz.read_meta(model, "sliver.zoo"))["name"] == name
    (out,) = _run(zoo[name], mz.make_feeds(name, seed=1))
    assert np.isfinite(out).all()
    assert 1e-2 < float(out.std()) < 1e2, "activations collapsed or exploded"


@pytest.mark.parametrize("name", QUANTIZED)
def test_quantized_tracks_fp32(zoo: dict[str, Path], name: str) -> None:
    feeds = mz.make_feeds(name, seed=2)
    (ref,) = _run(zoo[mz.REGISTRY[name].source], feeds)
    (out,) = _run(zoo[name], feeds, optimize=False)  # the plain QDQ / QOperator semantics
    assert out.shape == ref.shape
    assert np.corrcoef(out.ravel(), ref.ravel())[0, 1] > MIN_CORRELATION


EXPECTED_QOP = {  # QOperator ops each family must contain
    "mlp": {"QGemm"},
    "cnn_resnet": {"QLinearConv", "QLinearAdd", "QLinearGlobalAveragePool", "QGemm"},
    "cnn_mobilenet": {"QLinearConv", "QLinearAdd", "QLinearGlobalAveragePool", "QGemm"},
    "transformer": {"QLinearMatMul", "QLinearAdd", "QLinearSoftmax", "QLinearMul"},
    "ocr_like": {"QLinearConv", "QGemm"},
}


@pytest.mark.parametrize("name", NAMES)
def test_op_kinds(zoo: dict[str, Path], name: str) -> None:
    spec = mz.REGISTRY[name]
    model = onnx.load(zoo[name])
    ops = _ops(model)
    views = mz.prunable_weight_views(model)
    assert views, "no Conv/Gemm/MatMul weight found"
    if spec.scheme == "fp32":
        assert not {"QuantizeLinear", "DequantizeLinear"} & set(ops)
        assert all(v.values.dtype == np.float32 for v in views)
        if spec.opset == mz.OPSET_COMPAT:
            assert "LayerNormalization" not in ops
        if spec.family in ("cnn_resnet", "cnn_mobilenet"):
            assert ops["BatchNormalization"] > 0
        if spec.family == "cnn_mobilenet":  # depthwise convs exist and are not prunable weights
            assert any(a.name == "group" and a.i > 1 for n in model.graph.node for a in n.attribute)
        return
    # quantized: int8 weights, symmetric (zero point 0), BatchNormalization folded away
    assert all(v.values.dtype == np.int8 and not np.any(v.zero_point) for v in views)
    assert "BatchNormalization" not in ops
    act = np.uint8 if spec.activation == "u8" else np.int8
    if spec.scheme == "qdq":
        assert ops["QuantizeLinear"] > 0 and ops["DequantizeLinear"] > 0
        assert not any(op.startswith("QLinear") for op in ops)
        zps = [
            onnx.numpy_helper.to_array(t)
            for t in model.graph.initializer
            if any(n.op_type == "QuantizeLinear" and n.input[2] == t.name for n in model.graph.node)
        ]
        assert zps and all(z.dtype == act for z in zps)
    elif spec.scheme == "qoperator":
        assert EXPECTED_QOP[spec.family] <= set(ops)
        assert any(n.domain == "com.microsoft" for n in model.graph.node)
    else:
        assert {"DynamicQuantizeLinear", "MatMulInteger"} <= set(ops)
    assert any(v.scale.size > 1 for v in views) == spec.per_channel


# ---- sparsity -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", PRUNED)
def test_pruned_zero_fractions(zoo: dict[str, Path], name: str) -> None:
    spec = mz.REGISTRY[name]
    model = onnx.load(zoo[name])
    meta = json.loads(mz.read_meta(model, mz.SPARSITY_KEY))
    views = mz.prunable_weight_views(model)
    assert sorted(meta) == sorted(v.name for v in views), "every prunable weight is pruned"
    for v in views:
        assert abs(v.zero_fraction - spec.sparsity) <= SPARSITY_TOL, (v.name, v.zero_fraction)
        block = meta[v.name]["block"]
        if spec.block is None:
            assert block is None
            continue
        k = v.values.shape[v.k_axis]
        assert block == list(spec.block) or (block is None and k % spec.block[1] != 0), v.name
        if block is None:
            continue
        moved = np.moveaxis(v.values == v.zero_point, v.k_axis, -1)
        blocks = moved.reshape(*moved.shape[:-1], k // block[1], block[1])
        all_zero = blocks.all(-1).mean()
        assert abs(all_zero - spec.sparsity) <= SPARSITY_TOL, (v.name, all_zero)
        if spec.scheme == "fp32":  # FP32: a block is all zero or all non-zero
            assert np.all(blocks.all(-1) | ~blocks.any(-1))


def test_depthwise_and_biases_stay_dense(zoo: dict[str, Path]) -> None:
    dense = {t.name: t for t in onnx.load(zoo["cnn_mobilenet_fp32"]).graph.initializer}
    pruned = onnx.load(zoo["cnn_mobilenet_fp32_sp90"])
    prunable = {v.name for v in mz.prunable_weight_views(pruned)}
    for t in pruned.graph.initializer:
        if t.name not in prunable:
            assert onnx.numpy_helper.to_array(t).tobytes() == (
                onnx.numpy_helper.to_array(dense[t.name]).tobytes()
            ), t.name


def test_magnitude_mask_is_exact() -> None:
    w = np.random.default_rng(0).standard_normal((8, 12)).astype(np.float32)
    keep = mz.magnitude_mask(w, 0.75, 1, block=4)
    assert keep.sum() == 24 and np.all(
        keep.reshape(8, 3, 4).all(-1) | ~keep.reshape(8, 3, 4).any(-1)
    )
    keep = mz.magnitude_mask(w, 0.5, 0)
    assert keep.sum() == 48 and np.abs(w[keep]).min() >= np.abs(w[~keep]).max()


# ---- dynamic shapes -----------------------------------------------------------------------------
def test_dynamic_dims(zoo: dict[str, Path]) -> None:
    (out,) = _run(zoo["transformer_fp32"], mz.make_feeds("transformer", batch=2, seq=7))
    assert out.shape == (2, 7, 128)
    (out13,) = _run(zoo["transformer_fp32_op13"], mz.make_feeds("transformer", batch=2, seq=7))
    np.testing.assert_allclose(out13, out, rtol=1e-4, atol=1e-4)
    (out,) = _run(zoo["ocr_like_qdq_s8s8"], mz.make_feeds("ocr_like", width=64))
    assert out.shape == (16, 37)
    (out,) = _run(zoo["mlp_dyn_u8s8"], mz.make_feeds("mlp", batch=3))
    assert out.shape == (3, 10)


# ---- the bundled digits model -------------------------------------------------------------------
def test_digits_bundle() -> None:
    model_path, test_path = DATA / "digits_cnn_int8_pruned.onnx", DATA / "digits_test.npz"
    assert test_path.stat().st_size < 200 * 1024
    model = onnx.load(model_path)
    onnx.checker.check_model(model, full_check=True)
    data = np.load(test_path)
    x, y = data["images"], data["labels"]
    assert x.dtype == np.float32 and x.shape[1:] == (1, 8, 8) and y.dtype == np.int64
    sess = _session(model_path)
    assert [i.name for i in sess.get_inputs()] == ["input"]
    assert [o.name for o in sess.get_outputs()] == ["logits"]
    logits = sess.run(["logits"], {"input": x})[0]
    assert float(np.mean(logits.argmax(1) == y)) >= DIGITS_MIN_ACCURACY
    np.testing.assert_array_equal(sess.run(["logits"], {"input": x[:1]})[0], logits[:1])
    views = mz.prunable_weight_views(model)
    assert len(views) == 4
    for v in views:
        assert v.values.dtype == np.int8 and not np.any(v.zero_point)
        assert 0.79 <= v.zero_fraction <= 0.82, (v.name, v.zero_fraction)
