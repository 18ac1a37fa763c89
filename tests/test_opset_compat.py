"""Ops at the older opsets (7..12) that real models still declare, checked against onnxruntime.

onnx's reference implementation mostly follows the newest opset (Softmax without the 2-D
coercion, BatchNormalization recomputing statistics, Resize-10 reading scales as roi...), so
each old-opset form is pinned here whichever way sliver runs it (native or Python).
"""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import onnxruntime
import pytest
import sliver
from onnx import helper

F = np.float32
I64 = np.int64


class Const:
    """An input baked into the model as an initializer (for inputs that must be constant)."""

    def __init__(self, value) -> None:
        self.value = np.asarray(value)


# (op, opset, attrs, input shapes or Const, number of outputs)
CASES = [
    ("Softmax", 11, {}, [(2, 3, 4)], 1),
    ("Softmax", 9, {"axis": 2}, [(2, 3, 4, 2)], 1),
    ("LogSoftmax", 9, {}, [(2, 3, 4)], 1),
    ("Hardmax", 11, {"axis": 0}, [(2, 3, 4)], 1),
    ("BatchNormalization", 7, {"epsilon": 1e-3}, [(2, 3, 4, 5), 3, 3, 3, "var3"], 1),
    ("BatchNormalization", 9, {}, [(2, 3, 4), 3, 3, 3, "var3"], 1),
    ("LRN", 7, {"size": 3}, [(2, 5, 4, 4)], 1),
    ("LRN", 13, {"size": 5, "alpha": 0.1, "bias": 2.0}, [(1, 6, 3, 2)], 1),
    ("Upsample", 7, {"scales": [1.0, 1.0, 2.0, 3.0], "mode": "nearest"}, [(1, 2, 3, 3)], 1),
    ("Upsample", 7, {"scales": [1.0, 1.0, 1.5, 2.5], "mode": "linear"}, [(1, 2, 3, 4)], 1),
    ("Upsample", 9, {"mode": "linear"}, [(2, 3, 4), Const(F([1, 2, 3.5]))], 1),
    ("Upsample", 9, {"mode": "nearest"}, [(1, 1, 2, 3), Const(F([1, 1, 2, 2]))], 1),
    ("Resize", 10, {"mode": "nearest"}, [(2, 3, 10, 8), Const(F([1, 1, 0.4, 0.75]))], 1),
    ("Resize", 10, {"mode": "nearest"}, [(2, 3, 10, 8), Const(F([0.5, 1, 1.7, 3.0]))], 1),
    ("Resize", 10, {"mode": "linear"}, [(1, 2, 5, 6), Const(F([1, 1, 0.6, 1.7]))], 1),
    ("Resize", 11, {"mode": "linear"}, [(1, 2, 3, 3), Const(F([])), Const(F([1, 1, 2, 2]))], 1),
    ("RoiAlign", 10, {"output_height": 3, "output_width": 2, "spatial_scale": 0.5},
     [(1, 2, 6, 6), Const(F([[0, 0, 4, 4], [1, 1, 5, 3]])), Const(I64([0, 0]))], 1),
    ("GlobalMaxPool", 7, {}, [(2, 3, 4)], 1),
    ("GlobalAveragePool", 7, {}, [(2, 3, 4, 5)], 1),
    ("MaxPool", 7, {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]},
     [(1, 2, 7, 7)], 1),
    ("MaxPool", 10, {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}, [(1, 2, 8, 8)], 1),
    ("MaxPool", 8, {"kernel_shape": [2, 2]}, [(1, 2, 4, 4)], 2),
    ("MaxPool", 8, {"kernel_shape": [3, 2], "strides": [2, 1], "pads": [1, 0, 1, 1],
                    "storage_order": 1}, [(2, 3, 7, 6)], 2),
    ("MaxPool", 10, {"kernel_shape": [3], "strides": [2], "dilations": [2], "ceil_mode": 1},
     [(2, 3, 10)], 2),
    ("MaxPool", 12, {"kernel_shape": [2, 2, 2], "auto_pad": "SAME_UPPER", "strides": [2, 2, 1]},
     [(1, 2, 5, 4, 3)], 2),
    ("MaxPool", 12, {"kernel_shape": [2, 2], "auto_pad": "SAME_LOWER"}, [(1, 2, 5, 4)], 2),
    ("AveragePool", 7, {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "count_include_pad": 1},
     [(1, 2, 5, 5)], 1),
    ("AveragePool", 7, {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}, [(1, 2, 5, 5)], 1),
    ("AveragePool", 10, {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1},
     [(1, 2, 6, 6)], 1),
    ("Pad", 7, {"pads": [0, 1, 2, 0, 0, 1], "mode": "constant", "value": 1.5}, [(2, 3, 4)], 1),
    ("Pad", 7, {"pads": [0, 1, 2, 0, 0, 1], "mode": "reflect"}, [(2, 3, 4)], 1),
    ("Slice", 7, {"starts": [1, 0], "ends": [3, -1], "axes": [0, 2]}, [(4, 3, 5)], 1),
    ("Clip", 7, {"min": -0.5, "max": 0.5}, [(3, 4)], 1),
    ("Split", 7, {"axis": 1, "split": [1, 2]}, [(2, 3)], 2),
    ("Squeeze", 7, {"axes": [1]}, [(2, 1, 3)], 1),
    ("Unsqueeze", 7, {"axes": [0, 3]}, [(2, 3)], 1),
    ("TopK", 7, {"k": 2, "axis": 1}, [(3, 5)], 2),
    ("TopK", 10, {"axis": -1}, [(3, 5), Const(I64([2]))], 2),
    ("ReduceSum", 7, {"axes": [1], "keepdims": 0}, [(2, 3, 4)], 1),
    ("ReduceMean", 11, {"axes": [-1]}, [(2, 3, 4)], 1),
    ("ReduceL2", 7, {"axes": [0, 2]}, [(2, 3, 4)], 1),
    ("ArgMax", 7, {"axis": 1, "keepdims": 0}, [(3, 4)], 1),
    ("Dropout", 7, {"ratio": 0.3}, [(3, 4)], 1),
    ("Dropout", 10, {}, [(3, 4)], 1),
    ("Flatten", 9, {"axis": 2}, [(2, 3, 4, 5)], 1),
    ("Gemm", 7, {"transB": 1, "alpha": 0.5, "beta": 2.0}, [(3, 4), (5, 4), (5,)], 1),
    ("Gemm", 9, {"transA": 1}, [(4, 3), (4, 5), (1, 5)], 1),
    ("PRelu", 7, {}, [(2, 3, 4), (3, 1)], 1),
    ("InstanceNormalization", 7, {"epsilon": 1e-3}, [(2, 3, 4, 5), 3, 3], 1),
    ("ConvTranspose", 7, {"strides": [2, 2], "pads": [1, 1, 1, 1], "output_padding": [1, 1]},
     [(1, 2, 4, 4), (2, 3, 3, 3)], 1),
    ("ConvTranspose", 11, {"strides": [2, 2], "output_shape": [9, 9]},
     [(1, 2, 4, 4), (2, 3, 3, 3)], 1),
    ("Conv", 7, {"pads": [1, 1, 1, 1], "group": 2, "dilations": [2, 1]},
     [(1, 4, 6, 6), (4, 2, 3, 3), (4,)], 1),
    ("DepthToSpace", 7, {"blocksize": 2}, [(1, 8, 2, 3)], 1),
    ("DepthToSpace", 11, {"blocksize": 2, "mode": "CRD"}, [(1, 8, 2, 3)], 1),
    ("Mean", 8, {}, [(3, 4), (1, 4)], 1),
    ("Max", 8, {}, [(3, 4), (3, 1), (4,)], 1),
    ("Scatter", 9, {"axis": 1},
     [(3, 4), Const(I64([[1, 0], [2, 3], [0, 1]])), (3, 2)], 1),
    ("GRU", 7, {"hidden_size": 3, "linear_before_reset": 1}, [(2, 1, 4), (1, 9, 4), (1, 9, 3),
                                                              (1, 18)], 1),
    ("LSTM", 7, {"hidden_size": 3, "direction": "bidirectional"},
     [(2, 1, 4), (2, 12, 4), (2, 12, 3)], 1),
    ("MaxUnpool", 9, {"kernel_shape": [2, 2], "strides": [2, 2]},
     [(1, 1, 2, 2), Const(I64([[[[0, 3], [9, 14]]]]))], 1),
    ("MeanVarianceNormalization", 9, {}, [(2, 3, 4, 5)], 1),
    ("Upsample", 9, {"mode": "nearest"}, [(1, 2, 3, 3), Const(F([1, 1, 3, 2]))], 1),
]  # fmt: skip


def _inputs(spec: list, rng: np.random.Generator) -> list[tuple[str, np.ndarray, bool]]:
    out = []
    for k, s in enumerate(spec):
        if isinstance(s, Const):
            out.append((f"x{k}", s.value, True))
        elif s == "var3":  # a variance: positive
            out.append((f"x{k}", rng.uniform(0.5, 2.0, 3).astype(F), False))
        else:
            shape = (s,) if isinstance(s, int) else s
            out.append((f"x{k}", rng.standard_normal(shape).astype(F), False))
    return out


@pytest.mark.parametrize(
    "op, opset, attrs, spec, n_out",
    CASES,
    ids=[f"{c[0]}-{c[1]}-{i}" for i, c in enumerate(CASES)],
)
def test_old_opset_matches_onnxruntime(op, opset, attrs, spec, n_out) -> None:
    rng = np.random.default_rng(len(op) * 100 + opset)
    inputs = _inputs(spec, rng)
    outs = [f"y{k}" for k in range(n_out)]
    graph = helper.make_graph(
        [helper.make_node(op, [n for n, _, _ in inputs], outs, **attrs)],
        "g",
        [
            helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
            for n, v, const in inputs
            if not const
        ],
        [helper.make_empty_tensor_value_info(o) for o in outs],
        [onnx.numpy_helper.from_array(v, n) for n, v, const in inputs if const],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=7)
    data = model.SerializeToString()
    feeds = {n: v for n, v, const in inputs if not const}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"]).run(
            None, feeds
        )
    got = sliver.InferenceSession(data).run(None, feeds)
    for k, (g, w) in enumerate(zip(got, want, strict=True)):
        assert g.dtype == w.dtype and g.shape == w.shape, (k, g.dtype, g.shape, w.dtype, w.shape)
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5, err_msg=f"output {k}")


def test_every_case_is_a_known_onnx_op() -> None:
    for op, opset, *_ in CASES:
        assert onnx.defs.get_schema(op, opset).since_version <= opset
