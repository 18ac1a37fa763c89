"""The repo's own models (FP32, QDQ, QOperator, dynamic, pruned) on sliver vs onnxruntime.

FP32 models must match onnxruntime to FP32_RTOL (fusions change rounding, not results).
Quantized models are compared with the spec: the same graph run on Python reference
implementations (onnx.reference ops and sliver's numpy com.microsoft ops, no rewrites), by
cosine; onnxruntime (ORT_DISABLE_ALL) is a looser sanity check, because its u8s8 kernels
saturate pair sums (seen on ocr_like_qop_u8s8_pc: cosine 0.994 to the spec).
"""

from __future__ import annotations

import numpy as np
import onnxruntime
import pytest
import sliver
from helpers import cosine
from sliver.tools import model_zoo

FP32_RTOL = 1e-3
FP32_ATOL = 1e-4
QUANT_MIN_COSINE = 0.999
QUANT_MIN_COSINE_VS_ORT = 0.99

NAMES = sorted(model_zoo.REGISTRY)


def _ort(path: str, disable_all: bool) -> onnxruntime.InferenceSession:
    so = onnxruntime.SessionOptions()
    so.intra_op_num_threads = 1
    if disable_all:
        so.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    return onnxruntime.InferenceSession(path, so, providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("name", NAMES)
def test_zoo_model_matches_onnxruntime(zoo_model, name: str) -> None:
    spec = model_zoo.REGISTRY[name]
    path = zoo_model(name)
    sess = sliver.InferenceSession(path)
    ref = _ort(path, disable_all=spec.quantized)
    spec_sess = None
    if spec.quantized:
        so = sliver.SessionOptions()
        so.graph_optimization_level = sliver.GraphOptimizationLevel.ORT_DISABLE_ALL
        so.add_session_config_entry("sliver.native_kernels", "0")
        spec_sess = sliver.InferenceSession(path, so)
    dims = [{}] if spec.family not in ("transformer", "ocr_like", "mlp") else [{}, {"batch": 2}]
    if spec.family == "transformer":
        dims.append({"seq": 17})
    if spec.family == "ocr_like":
        dims = [{"width": 64}, {"width": 100}]
    for d in dims:
        feeds = model_zoo.make_feeds(name, seed=1, **d)
        got = sess.run(None, feeds)
        want = ref.run(None, feeds)
        assert len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            assert g.shape == w.shape and g.dtype == w.dtype
            assert np.all(np.isfinite(g))
            if spec_sess is not None:
                oracle = spec_sess.run(None, feeds)[0]
                assert cosine(g, oracle) >= QUANT_MIN_COSINE, (
                    f"{name} {d}: cosine {cosine(g, oracle)}"
                )
                assert cosine(g, w) >= QUANT_MIN_COSINE_VS_ORT, f"{name} {d}: vs ORT {cosine(g, w)}"
            else:
                np.testing.assert_allclose(g, w, rtol=FP32_RTOL, atol=FP32_ATOL)


@pytest.mark.parametrize(
    "name", ["mlp_fp32", "cnn_resnet_fp32", "transformer_fp32", "cnn_mobilenet_qdq_s8s8"]
)
def test_zoo_model_optimization_levels_agree(zoo_model, name: str) -> None:
    """Passes change rounding only: DISABLE_ALL and ENABLE_ALL sessions agree."""
    path = zoo_model(name)
    feeds = model_zoo.make_feeds(name, seed=2)
    so = sliver.SessionOptions()
    so.graph_optimization_level = sliver.GraphOptimizationLevel.ORT_DISABLE_ALL
    plain = sliver.InferenceSession(path, so).run(None, feeds)
    fast = sliver.InferenceSession(path).run(None, feeds)
    for p, f in zip(plain, fast, strict=True):
        if model_zoo.REGISTRY[name].quantized:
            assert cosine(p, f) >= QUANT_MIN_COSINE
        else:
            np.testing.assert_allclose(f, p, rtol=FP32_RTOL, atol=FP32_ATOL)
