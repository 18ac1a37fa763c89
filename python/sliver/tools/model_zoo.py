"""The repo's own test and benchmark models, built from a seed with ``onnx.helper`` and numpy.

Five small but real FP32 families (``mlp``, ``cnn_resnet``, ``cnn_mobilenet``, ``transformer``,
``ocr_like``) and, derived from them, the variants a CPU runtime for quantized and pruned models
meets in the wild:

* ``<family>_fp32`` (opset 17) and ``<family>_fp32_op13`` (opset 13; the transformer's
  LayerNormalization is spelled out as ReduceMean/Sub/Pow/Sqrt/Div there);
* static quantization by ``onnxruntime.quantization`` after ``quant_pre_process`` (ONNX shape
  inference plus onnxruntime's basic graph optimizations, which among others fold
  BatchNormalization into the preceding Conv, as a real deployment would): ``_qdq_s8s8``,
  ``_qdq_u8s8``, ``_qdq_s8s8_pc`` (per-channel weights), ``_qop_u8s8``, ``_qop_u8s8_pc`` and
  ``_qop_s8s8`` (the quantizer's default types in QOperator format)
  (QOperator format: QLinearConv, QLinearMatMul and the com.microsoft QLinearAdd /
  QLinearGlobalAveragePool / QGemm / ... ops);
* dynamic quantization (``_dyn_u8s8``: DynamicQuantizeLinear + MatMulInteger) of ``mlp`` and
  ``transformer``; onnxruntime's dynamic quantizer only handles MatMul/Conv, so the mlp is
  quantized from its MatMul+Add spelling (same weights, same function);
* magnitude pruning of every Conv/Gemm/MatMul weight (depthwise convolutions and biases are left
  dense): ``_fp32_sp50`` / ``_sp80`` / ``_sp90`` unstructured, ``_fp32_bsp80`` in 1x4 blocks
  along the input-channel (K) axis, and the same four QDQ-quantized after pruning
  (``_qdq_s8s8_sp80`` ...). Weights are quantized symmetrically (zero point 0), so a pruned zero
  stays an exact zero.

Pruned models carry a ``sliver.sparsity`` metadata entry (JSON: weight name -> fraction, block
shape, K axis), every model a ``sliver.zoo`` entry (its ``ModelSpec``). A weight whose K is not a
multiple of 4 (a stem conv on 1 or 3 channels) cannot hold 1x4 blocks; it is pruned unstructured
at the same fraction and its metadata block is ``null``.

``REGISTRY`` lists every model (family, opset, scheme, activation/weight types, per-channel,
sparsity), ``make_feeds`` makes inputs for any of them, ``build_all`` writes them. CLI::

    python -m sliver.tools.model_zoo OUTDIR [--only NAME ...] [--seed N] [--list]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import math
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
OPSET_COMPAT = 13
DEFAULT_SEED = 0
FAMILIES = ("mlp", "cnn_resnet", "cnn_mobilenet", "transformer", "ocr_like")
# Deployment-sized networks: benchmarks only (minutes to quantize, seconds per test run).
FULL_SIZE_FAMILIES = ("resnet18", "mobilenet_v2", "bert_base")
BLOCK = (1, 4)
SPARSITY_KEY = "sliver.sparsity"
CALIBRATION_SAMPLES = 8


# --------------------------------------------------------------------------------------------------
# A tiny graph builder
# --------------------------------------------------------------------------------------------------
class GraphBuilder:
    """Collects nodes and initializers; ``op`` returns the name of the (first) output it creates."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.count: dict[str, int] = {}

    def fresh(self, stem: str) -> str:
        """A new unique name starting with ``stem``."""
        n = self.count.get(stem, 0)
        self.count[stem] = n + 1
        return f"{stem}_{n}"

    def const(self, stem: str, value: np.ndarray) -> str:
        """Add an initializer and return its name."""
        name = self.fresh(stem)
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, op_type: str, inputs: Sequence[str], n_out: int = 1, **attrs: object) -> str:
        """Add one node; ``op(...)`` names its outputs ``<op>_<k>`` (use ``ops`` for several)."""
        return self.ops(op_type, inputs, n_out, **attrs)[0]

    def ops(
        self, op_type: str, inputs: Sequence[str], n_out: int = 1, **attrs: object
    ) -> list[str]:
        """Add one node and return all its output names."""
        node_name = self.fresh(op_type.lower())
        outs = [f"{node_name}_out{i}" if n_out > 1 else node_name for i in range(n_out)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, name=node_name, **attrs))
        return outs

    # ---- layers --------------------------------------------------------------------------------
    def he(self, shape: Sequence[int], fan_in: int, gain: float = 2.0) -> np.ndarray:
        """Normal weights with variance ``gain / fan_in`` (He init for gain 2)."""
        return (self.rng.standard_normal(shape) * math.sqrt(gain / fan_in)).astype(np.float32)

    def small(self, shape: Sequence[int], scale: float = 0.05) -> np.ndarray:
        """Small random values (biases)."""
        return (self.rng.standard_normal(shape) * scale).astype(np.float32)

    def conv(
        self,
        x: str,
        cin: int,
        cout: int,
        k: int,
        stride: int = 1,
        group: int = 1,
        bias: bool = True,
        gain: float = 2.0,
    ) -> str:
        """Conv with 'same' padding for odd ``k``."""
        fan_in = cin // group * k * k
        w = self.const("conv_w", self.he((cout, cin // group, k, k), fan_in, gain))
        ins = [x, w] + ([self.const("conv_b", self.small((cout,)))] if bias else [])
        p = k // 2
        return self.op(
            "Conv",
            ins,
            kernel_shape=[k, k],
            strides=[stride, stride],
            pads=[p, p, p, p],
            group=group,
        )

    def bn(self, x: str, c: int) -> str:
        """BatchNormalization with plausible random statistics (close to identity)."""
        r = self.rng
        gamma = (1.0 + 0.1 * r.standard_normal(c)).astype(np.float32)
        beta = (0.1 * r.standard_normal(c)).astype(np.float32)
        mean = (0.1 * r.standard_normal(c)).astype(np.float32)
        var = r.uniform(0.8, 1.2, c).astype(np.float32)
        ins = [x] + [
            self.const(s, v)
            for s, v in (("bn_scale", gamma), ("bn_bias", beta), ("bn_mean", mean), ("bn_var", var))
        ]
        return self.op("BatchNormalization", ins, epsilon=1e-5)

    def relu6(self, x: str) -> str:
        """Clip(0, 6), the ONNX spelling of ReLU6."""
        lo = self.const("clip_min", np.array(0.0, np.float32))
        hi = self.const("clip_max", np.array(6.0, np.float32))
        return self.op("Clip", [x, lo, hi])

    def basic_block(self, x: str, cin: int, cout: int, stride: int) -> str:
        """ResNet basic block: Conv3x3+BN+Relu, Conv3x3+BN, identity or 1x1 projection
        shortcut (Conv+BN), Add, Relu."""
        y = self.op("Relu", [self.bn(self.conv(x, cin, cout, 3, stride, bias=False), cout)])
        y = self.bn(self.conv(y, cout, cout, 3, bias=False, gain=1.0), cout)
        short = (
            x
            if (cin == cout and stride == 1)
            else self.bn(self.conv(x, cin, cout, 1, stride, bias=False, gain=1.0), cout)
        )
        return self.op("Relu", [self.op("Add", [y, short])])

    def inverted_residual(self, x: str, cin: int, cout: int, stride: int, t: int) -> str:
        """MobileNetV2 block: 1x1 expand by t + Relu6 (none when t = 1), depthwise 3x3 + Relu6,
        linear 1x1 project, Add when the shapes match."""
        mid = cin * t
        y = x
        if t != 1:
            y = self.relu6(self.bn(self.conv(y, cin, mid, 1, bias=False), mid))
        y = self.relu6(self.bn(self.conv(y, mid, mid, 3, stride, group=mid, bias=False), mid))
        y = self.bn(self.conv(y, mid, cout, 1, bias=False, gain=1.0), cout)
        return self.op("Add", [x, y]) if (cin == cout and stride == 1) else y

    def linear(self, x: str, k: int, n: int, gain: float = 2.0, gemm: bool = True) -> str:
        """A dense layer: ``Gemm(transB=1)`` (weight [N, K]) or ``MatMul`` + ``Add`` ([K, N])."""
        w = self.he((n, k), k, gain)
        b = self.small((n,))
        if gemm:
            return self.op("Gemm", [x, self.const("fc_w", w), self.const("fc_b", b)], transB=1)
        y = self.op("MatMul", [x, self.const("fc_w", np.ascontiguousarray(w.T))])
        return self.op("Add", [y, self.const("fc_b", b)])

    def pooled_classifier(self, x: str, channels: int, classes: int) -> None:
        """The CNN head: GlobalAveragePool, Flatten, a Gemm to ``classes`` named "logits"."""
        h = self.op("Flatten", [self.op("GlobalAveragePool", [x])], axis=1)
        self.linear(h, channels, classes, gain=1.0)
        self.nodes[-1].output[0] = "logits"

    def model(
        self,
        inputs: list[onnx.ValueInfoProto],
        outputs: list[onnx.ValueInfoProto],
        name: str,
        opset: int,
    ) -> onnx.ModelProto:
        """Wrap everything into a checked ModelProto."""
        graph = helper.make_graph(self.nodes, name, inputs, outputs, self.inits)
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", opset)],
            producer_name="sliver.tools.model_zoo",
        )
        model.ir_version = 8  # readable by every onnxruntime since 1.10
        onnx.checker.check_model(model)
        return model


def _vi(name: str, shape: Sequence[int | str | None]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))


# --------------------------------------------------------------------------------------------------
# FP32 families
# --------------------------------------------------------------------------------------------------
def build_mlp(seed: int = DEFAULT_SEED, opset: int = OPSET, gemm: bool = True) -> onnx.ModelProto:
    """256-512-512-10 perceptron: ``Gemm+Relu`` (or ``MatMul+Add+Relu`` with ``gemm=False``)."""
    g = GraphBuilder(seed)
    h = "input"
    dims = [256, 512, 512, 10]
    for i, (k, n) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
        last = i == len(dims) - 2
        h = g.linear(h, k, n, gain=1.0 if last else 2.0, gemm=gemm)
        if not last:
            h = g.op("Relu", [h])
    g.nodes[-1].output[0] = "logits"
    return g.model([_vi("input", ["batch", 256])], [_vi("logits", ["batch", 10])], "mlp", opset)


def build_cnn_resnet(seed: int = DEFAULT_SEED, opset: int = OPSET) -> onnx.ModelProto:
    """ResNet-ish: Conv3x3+BN+Relu stem, MaxPool, three basic blocks (two strided, 1x1 projection
    shortcut), GlobalAveragePool, Flatten, Gemm. Input 1x3x64x64, output 1x10."""
    g = GraphBuilder(seed)
    h = g.op("Relu", [g.bn(g.conv("input", 3, 16, 3, bias=False), 16)])
    h = g.op("MaxPool", [h], kernel_shape=[2, 2], strides=[2, 2])  # 32x32
    for cin, cout, stride in ((16, 16, 1), (16, 32, 2), (32, 64, 2)):
        h = g.basic_block(h, cin, cout, stride)
    g.pooled_classifier(h, 64, 10)
    return g.model([_vi("input", [1, 3, 64, 64])], [_vi("logits", [1, 10])], "cnn_resnet", opset)


def build_cnn_mobilenet(seed: int = DEFAULT_SEED, opset: int = OPSET) -> onnx.ModelProto:
    """MobileNetV2-ish: strided stem, inverted residual blocks (1x1 expand + Relu6, depthwise 3x3
    stride 1/2 + Relu6, linear 1x1 project, Add when shapes match), 1x1 head, GAP, Gemm."""
    g = GraphBuilder(seed)
    h = g.relu6(g.bn(g.conv("input", 3, 16, 3, 2, bias=False), 16))  # 32x32
    # (in, out, stride, expansion)
    for cin, cout, stride, t in (
        (16, 16, 1, 1),
        (16, 24, 2, 4),
        (24, 24, 1, 4),
        (24, 32, 2, 4),
        (32, 32, 1, 4),
    ):
        h = g.inverted_residual(h, cin, cout, stride, t)
    h = g.relu6(g.bn(g.conv(h, 32, 128, 1, bias=False), 128))
    g.pooled_classifier(h, 128, 10)
    return g.model([_vi("input", [1, 3, 64, 64])], [_vi("logits", [1, 10])], "cnn_mobilenet", opset)


def _layer_norm(g: GraphBuilder, x: str, hidden: int, opset: int) -> str:
    gamma = g.const("ln_scale", (1.0 + 0.05 * g.rng.standard_normal(hidden)).astype(np.float32))
    beta = g.const("ln_bias", g.small((hidden,)))
    if opset >= 17:
        return g.op("LayerNormalization", [x, gamma, beta], axis=-1, epsilon=1e-5)
    # opset 13: the decomposition PyTorch exported before LayerNormalization existed
    mean = g.op("ReduceMean", [x], axes=[-1], keepdims=1)
    d = g.op("Sub", [x, mean])
    var = g.op(
        "ReduceMean",
        [g.op("Pow", [d, g.const("two", np.array(2.0, np.float32))])],
        axes=[-1],
        keepdims=1,
    )
    std = g.op("Sqrt", [g.op("Add", [var, g.const("eps", np.array(1e-5, np.float32))])])
    return g.op("Add", [g.op("Mul", [g.op("Div", [d, std]), gamma]), beta])


def _gelu_erf(g: GraphBuilder, x: str) -> str:
    """x * 0.5 * (1 + erf(x / sqrt 2)), as exported by PyTorch."""
    e = g.op("Erf", [g.op("Div", [x, g.const("sqrt2", np.array(math.sqrt(2.0), np.float32))])])
    y = g.op("Mul", [x, g.op("Add", [e, g.const("one", np.array(1.0, np.float32))])])
    return g.op("Mul", [y, g.const("half", np.array(0.5, np.float32))])


def build_transformer(
    seed: int = DEFAULT_SEED,
    opset: int = OPSET,
    layers: int = 2,
    hidden: int = 128,
    heads: int = 4,
    ffn: int = 512,
) -> onnx.ModelProto:
    """BERT-like post-LN encoder on float input [batch, seq, hidden] (both dynamic): MatMul+Add
    projections, Reshape/Transpose into heads, scaled Softmax attention, Gelu (Erf) FFN, residual
    Adds and LayerNormalization. Output ``last_hidden_state`` [batch, seq, hidden]."""
    g = GraphBuilder(seed)
    dh = hidden // heads
    split = g.const("heads_shape", np.array([0, 0, heads, dh], np.int64))
    merge = g.const("hidden_shape", np.array([0, 0, hidden], np.int64))
    scale = g.const("attn_scale", np.array(math.sqrt(dh), np.float32))
    h = "input"
    for _ in range(layers):
        q, k, v = (
            g.op("Reshape", [g.linear(h, hidden, hidden, gain=1.0, gemm=False), split])
            for _ in range(3)
        )
        q = g.op("Transpose", [q], perm=[0, 2, 1, 3])  # [B, H, S, dh]
        k = g.op("Transpose", [k], perm=[0, 2, 3, 1])  # [B, H, dh, S]
        v = g.op("Transpose", [v], perm=[0, 2, 1, 3])
        probs = g.op("Softmax", [g.op("Div", [g.op("MatMul", [q, k]), scale])], axis=-1)
        ctx = g.op("Transpose", [g.op("MatMul", [probs, v])], perm=[0, 2, 1, 3])
        attn = g.linear(g.op("Reshape", [ctx, merge]), hidden, hidden, gain=1.0, gemm=False)
        h = _layer_norm(g, g.op("Add", [h, attn]), hidden, opset)
        f = _gelu_erf(g, g.linear(h, hidden, ffn, gain=1.0, gemm=False))
        f = g.linear(f, ffn, hidden, gain=1.0, gemm=False)
        h = _layer_norm(g, g.op("Add", [h, f]), hidden, opset)
    g.nodes[-1].output[0] = "last_hidden_state"
    return g.model(
        [_vi("input", ["batch", "seq", hidden])],
        [_vi("last_hidden_state", ["batch", "seq", hidden])],
        "transformer",
        opset,
    )


def build_ocr_like(
    seed: int = DEFAULT_SEED, opset: int = OPSET, classes: int = 37
) -> onnx.ModelProto:
    """CRNN-style text-line recognizer, input [1, 1, 32, W] (W dynamic, a multiple of 4): four
    Conv+Relu with pooling that collapses the height to 1 and the width to W/4, then
    Reshape/Transpose to [W/4, 64] and a MatMul+Add classifier to [W/4, classes]."""
    g = GraphBuilder(seed)
    h = g.op("Relu", [g.conv("input", 1, 16, 3)])
    h = g.op("MaxPool", [h], kernel_shape=[2, 2], strides=[2, 2])  # 16 x W/2
    h = g.op("Relu", [g.conv(h, 16, 32, 3)])
    h = g.op("MaxPool", [h], kernel_shape=[2, 2], strides=[2, 2])  # 8 x W/4
    h = g.op("Relu", [g.bn(g.conv(h, 32, 64, 3, bias=False), 64)])
    h = g.op("MaxPool", [h], kernel_shape=[2, 1], strides=[2, 1])  # 4 x W/4
    h = g.op("Relu", [g.conv(h, 64, 64, 3)])
    h = g.op("MaxPool", [h], kernel_shape=[4, 1], strides=[4, 1])  # 1 x W/4
    h = g.op("Reshape", [h, g.const("seq_shape", np.array([64, -1], np.int64))])  # [64, W/4]
    h = g.op("Transpose", [h], perm=[1, 0])  # [W/4, 64]
    g.linear(h, 64, classes, gain=1.0, gemm=False)
    g.nodes[-1].output[0] = "logits"
    return g.model(
        [_vi("input", [1, 1, 32, "width"])], [_vi("logits", ["steps", classes])], "ocr_like", opset
    )


def build_resnet18(seed: int = DEFAULT_SEED, opset: int = OPSET) -> onnx.ModelProto:
    """ResNet-18 (torchvision layout): Conv7x7/2+BN+Relu stem, MaxPool3x3/2, four stages of two
    basic blocks (64-128-256-512 channels, 1x1/2 projection shortcuts), GAP, Gemm to 1000 classes.
    Input 1x3x224x224."""
    g = GraphBuilder(seed)
    h = g.op("Relu", [g.bn(g.conv("input", 3, 64, 7, 2, bias=False), 64)])
    h = g.op("MaxPool", [h], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])  # 56x56
    cin = 64
    for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        for s in (stride, 1):
            h = g.basic_block(h, cin, cout, s)
            cin = cout
    g.pooled_classifier(h, 512, 1000)
    return g.model([_vi("input", [1, 3, 224, 224])], [_vi("logits", [1, 1000])], "resnet18", opset)


def build_mobilenet_v2(seed: int = DEFAULT_SEED, opset: int = OPSET) -> onnx.ModelProto:
    """MobileNetV2 1.0 (the paper's table 2): Conv3x3/2 stem to 32, seventeen inverted residual
    blocks, 1x1 head to 1280, GAP, Gemm to 1000 classes. Input 1x3x224x224."""
    g = GraphBuilder(seed)
    h = g.relu6(g.bn(g.conv("input", 3, 32, 3, 2, bias=False), 32))  # 112x112
    cin = 32
    for t, c, n, s in (
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    ):
        for i in range(n):
            h = g.inverted_residual(h, cin, c, s if i == 0 else 1, t)
            cin = c
    h = g.relu6(g.bn(g.conv(h, 320, 1280, 1, bias=False), 1280))
    g.pooled_classifier(h, 1280, 1000)
    return g.model(
        [_vi("input", [1, 3, 224, 224])], [_vi("logits", [1, 1000])], "mobilenet_v2", opset
    )


def build_bert_base(seed: int = DEFAULT_SEED, opset: int = OPSET) -> onnx.ModelProto:
    """BERT-base-sized encoder layers (hidden 768, 12 heads, FFN 3072), four of BERT-base's
    twelve: the same graph as ``transformer``, at the size people deploy."""
    return build_transformer(seed, opset, layers=4, hidden=768, heads=12, ffn=3072)


FP32_BUILDERS = {
    "mlp": build_mlp,
    "cnn_resnet": build_cnn_resnet,
    "cnn_mobilenet": build_cnn_mobilenet,
    "transformer": build_transformer,
    "ocr_like": build_ocr_like,
    "resnet18": build_resnet18,
    "mobilenet_v2": build_mobilenet_v2,
    "bert_base": build_bert_base,
}

# Concrete input shapes used for calibration, tests and benchmarks (dynamic dims filled in).
INPUT_SHAPES: dict[str, dict[str, tuple[int, ...]]] = {
    "mlp": {"input": (4, 256)},
    "cnn_resnet": {"input": (1, 3, 64, 64)},
    "cnn_mobilenet": {"input": (1, 3, 64, 64)},
    "transformer": {"input": (1, 32, 128)},
    "ocr_like": {"input": (1, 1, 32, 128)},
    "resnet18": {"input": (1, 3, 224, 224)},
    "mobilenet_v2": {"input": (1, 3, 224, 224)},
    "bert_base": {"input": (1, 128, 768)},
}


# --------------------------------------------------------------------------------------------------
# Pruning
# --------------------------------------------------------------------------------------------------
def magnitude_mask(w: np.ndarray, fraction: float, k_axis: int, block: int = 1) -> np.ndarray:
    """Keep-mask that zeroes the ``round(fraction * n)`` smallest-magnitude elements of ``w``
    (``block == 1``) or 1x``block`` groups along ``k_axis`` ranked by L2 norm. Exact fraction."""
    if block == 1:
        flat = np.abs(w).ravel()
        n_prune = int(round(fraction * flat.size))
        keep = np.ones(flat.size, bool)
        keep[np.argsort(flat, kind="stable")[:n_prune]] = False
        return keep.reshape(w.shape)
    moved = np.moveaxis(w, k_axis, -1)
    k = moved.shape[-1]
    assert k % block == 0, f"K={k} is not a multiple of the block {block}"
    blocks = moved.reshape(*moved.shape[:-1], k // block, block)
    keep = magnitude_mask(np.sqrt((blocks.astype(np.float64) ** 2).sum(-1)), fraction, 0, 1)
    keep = np.broadcast_to(keep[..., None], blocks.shape).reshape(moved.shape)
    return np.ascontiguousarray(np.moveaxis(keep, -1, k_axis))


def prune_model(
    model: onnx.ModelProto, fraction: float, block: tuple[int, int] | None = None
) -> onnx.ModelProto:
    """Magnitude-prune every prunable weight (see ``prunable_weight_views``) to ``fraction``
    zeros, unstructured or in ``block`` = (1, B) groups along K; records ``sliver.sparsity``."""
    pruned = onnx.ModelProto()
    pruned.CopyFrom(model)
    targets = {v.name: v.k_axis for v in prunable_weight_views(pruned)}
    meta: dict[str, dict[str, object]] = {}
    for t in pruned.graph.initializer:
        if t.name not in targets:
            continue
        w = numpy_helper.to_array(t)
        k_axis = targets[t.name]
        b = block[1] if block and w.shape[k_axis] % block[1] == 0 else 1
        w = np.where(magnitude_mask(w, fraction, k_axis, b), w, np.float32(0)).astype(np.float32)
        t.CopyFrom(numpy_helper.from_array(w, t.name))
        meta[t.name] = {"fraction": fraction, "block": [1, b] if b > 1 else None, "k_axis": k_axis}
    _set_meta(pruned, SPARSITY_KEY, json.dumps(meta, sort_keys=True))
    return pruned


@dataclasses.dataclass
class WeightView:
    """A weight in a prunable slot of a (possibly quantized) model: its stored values (float or
    integer), the zero point and scale they are stored against (0 and 1 for float; a dynamic
    quantizer's scale is not in the node: 1), its K axis and its consumer."""

    name: str
    values: np.ndarray
    zero_point: np.ndarray
    scale: np.ndarray
    k_axis: int
    op_type: str

    @property
    def zero_fraction(self) -> float:
        """Fraction of elements that represent an exact 0.0."""
        return float(np.mean(self.values == self.zero_point))


# op -> (weight, weight scale, weight zero point) input indices; the K axis of each is below
_WEIGHT_SLOTS = {
    "Conv": (1, None, None),
    "Gemm": (1, None, None),
    "MatMul": (1, None, None),
    "QLinearConv": (3, 4, 5),
    "ConvInteger": (1, None, 3),
    "QLinearMatMul": (3, 4, 5),
    "QGemm": (3, 4, 5),
    "MatMulInteger": (1, None, 3),
}


def prunable_weight_views(model: onnx.ModelProto) -> list[WeightView]:
    """Every constant weight in a Conv/Gemm/MatMul slot (also QDQ-wrapped, QLinear*, QGemm,
    *Integer), in node order: the weights pruning touches. Excluded: depthwise convolutions (one
    input channel per group), biases, and MatMuls of two activations (attention scores)."""
    inits = {t.name: t for t in model.graph.initializer}
    producers = {o: n for n in model.graph.node for o in n.output}
    views: list[WeightView] = []
    for node in model.graph.node:
        if node.op_type not in _WEIGHT_SLOTS:
            continue
        w_idx, s_idx, zp_idx = _WEIGHT_SLOTS[node.op_type]
        if len(node.input) <= w_idx:
            continue
        name, axis = node.input[w_idx], None
        s_name = node.input[s_idx] if s_idx is not None else None
        zp_name = node.input[zp_idx] if zp_idx is not None and len(node.input) > zp_idx else None
        dq = producers.get(name)
        if dq is not None and dq.op_type == "DequantizeLinear":  # QDQ: look through the DQ
            name, s_name = dq.input[0], dq.input[1]
            zp_name = dq.input[2] if len(dq.input) > 2 else None
            axis = next((a.i for a in dq.attribute if a.name == "axis"), 1)
        if name not in inits:
            continue
        w = numpy_helper.to_array(inits[name])
        if w.ndim < 2:
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type in ("Conv", "QLinearConv", "ConvInteger"):
            if attrs.get("group", 1) > 1 and w.shape[1] == 1:
                continue  # depthwise
            k_axis = 1
        elif node.op_type in ("Gemm", "QGemm"):
            k_axis = 1 if attrs.get("transB", 0) else 0
        else:
            k_axis = w.ndim - 2
        zp = numpy_helper.to_array(inits[zp_name]) if zp_name in inits else np.zeros((), w.dtype)
        if zp.size > 1:
            if np.all(zp == zp.flat[0]):
                zp = zp.flat[0]
            elif axis is not None:  # per-channel zero points along the DQ axis
                shape = [1] * w.ndim
                shape[axis] = zp.size
                zp = zp.reshape(shape)
            else:
                raise NotImplementedError(f"non-uniform zero points of {name} in {node.op_type}")
        scale = numpy_helper.to_array(inits[s_name]) if s_name in inits else np.ones((), np.float32)
        views.append(WeightView(name, w, np.asarray(zp), scale, k_axis, node.op_type))
    return views


def _set_meta(model: onnx.ModelProto, key: str, value: str) -> None:
    for p in model.metadata_props:
        if p.key == key:
            p.value = value
            return
    model.metadata_props.add(key=key, value=value)


def strip_unused_opsets(model: onnx.ModelProto) -> None:
    """Drop opset imports no node uses (onnxruntime's optimizer, run by ``quant_pre_process``,
    declares a dozen of its own domains); the default domain always stays."""
    used = {n.domain for n in model.graph.node} | {""}
    keep = [o for o in model.opset_import if o.domain in used]
    del model.opset_import[:]
    model.opset_import.extend(keep)


def read_meta(model: onnx.ModelProto, key: str) -> str | None:
    """A ``metadata_props`` value, or None."""
    return next((p.value for p in model.metadata_props if p.key == key), None)


# --------------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """One zoo model. ``scheme``: ``fp32`` | ``qdq`` | ``qoperator`` | ``dynamic``; ``activation``
    and ``weight`` are ``s8``/``u8`` for quantized schemes; ``sparsity`` is the zero fraction of
    every prunable weight (0 for dense), ``block`` its block shape (None: unstructured)."""

    name: str
    family: str
    scheme: str = "fp32"
    opset: int = OPSET
    activation: str | None = None
    weight: str | None = None
    per_channel: bool = False
    sparsity: float = 0.0
    block: tuple[int, int] | None = None
    source: str | None = None  # the registered model this one is derived from

    @property
    def dtype(self) -> str:
        """``fp32``, or e.g. ``qdq_s8s8`` / ``qoperator_u8s8`` / ``dynamic_u8s8``."""
        return "fp32" if self.scheme == "fp32" else f"{self.scheme}_{self.activation}{self.weight}"

    @property
    def quantized(self) -> bool:
        return self.scheme != "fp32"


def _make_registry(families: Sequence[str], compat: bool = True) -> dict[str, ModelSpec]:
    """Every variant of each family (``compat``: also the opset-13 FP32 spelling)."""
    reg: dict[str, ModelSpec] = {}

    def add(spec: ModelSpec) -> None:
        reg[spec.name] = spec

    prunings = (
        ("sp50", 0.5, None),
        ("sp80", 0.8, None),
        ("sp90", 0.9, None),
        ("bsp80", 0.8, BLOCK),
    )
    for f in families:
        base = f"{f}_fp32"
        add(ModelSpec(base, f))
        if compat:
            add(ModelSpec(f"{f}_fp32_op13", f, opset=OPSET_COMPAT))
        add(ModelSpec(f"{f}_qdq_s8s8", f, "qdq", activation="s8", weight="s8", source=base))
        add(ModelSpec(f"{f}_qdq_u8s8", f, "qdq", activation="u8", weight="s8", source=base))
        add(
            ModelSpec(
                f"{f}_qdq_s8s8_pc",
                f,
                "qdq",
                activation="s8",
                weight="s8",
                per_channel=True,
                source=base,
            )
        )
        add(ModelSpec(f"{f}_qop_u8s8", f, "qoperator", activation="u8", weight="s8", source=base))
        # onnxruntime's quantizer defaults (QInt8 activations and weights) in QOperator format
        add(ModelSpec(f"{f}_qop_s8s8", f, "qoperator", activation="s8", weight="s8", source=base))
        add(
            ModelSpec(
                f"{f}_qop_u8s8_pc",
                f,
                "qoperator",
                activation="u8",
                weight="s8",
                per_channel=True,
                source=base,
            )
        )
        if f in ("mlp", "transformer", "bert_base"):
            add(ModelSpec(f"{f}_dyn_u8s8", f, "dynamic", activation="u8", weight="s8", source=base))
        for tag, frac, block in prunings:
            sp = ModelSpec(f"{f}_fp32_{tag}", f, sparsity=frac, block=block, source=base)
            add(sp)
            add(
                ModelSpec(
                    f"{f}_qdq_s8s8_{tag}",
                    f,
                    "qdq",
                    activation="s8",
                    weight="s8",
                    sparsity=frac,
                    block=block,
                    source=sp.name,
                )
            )
    return reg


REGISTRY: dict[str, ModelSpec] = _make_registry(FAMILIES)
FULL_SIZE_REGISTRY: dict[str, ModelSpec] = _make_registry(FULL_SIZE_FAMILIES, compat=False)


def spec_of(name: str) -> ModelSpec:
    """The ``ModelSpec`` of a small (``REGISTRY``) or full-size (``FULL_SIZE_REGISTRY``) model."""
    spec = REGISTRY.get(name) or FULL_SIZE_REGISTRY.get(name)
    if spec is None:
        raise KeyError(f"unknown zoo model {name!r}; see model_zoo.REGISTRY / FULL_SIZE_REGISTRY")
    return spec


# A quick subset that covers every family and scheme (for smoke tests).
FAST_SUBSET: tuple[str, ...] = (
    "mlp_fp32",
    "mlp_dyn_u8s8",
    "mlp_qop_u8s8",
    "cnn_resnet_qdq_s8s8",
    "cnn_resnet_qop_u8s8_pc",
    "cnn_mobilenet_qdq_u8s8",
    "cnn_mobilenet_fp32_bsp80",
    "transformer_fp32_op13",
    "transformer_qdq_s8s8_sp80",
    "ocr_like_qdq_s8s8_pc",
)


def make_feeds(name: str, seed: int = 0, **dims: int) -> dict[str, np.ndarray]:
    """Random N(0, 1) inputs for model ``name`` (or a family name). Dynamic dims can be overridden:
    ``batch`` (mlp, transformer), ``seq`` (transformer), ``width`` (ocr_like, a multiple of 4)."""
    family = name if name in INPUT_SHAPES else spec_of(name).family
    shapes = dict(INPUT_SHAPES[family])
    if family == "mlp":
        shapes["input"] = (dims.get("batch", shapes["input"][0]), 256)
    elif family in ("transformer", "bert_base"):
        b, s, h = shapes["input"]
        shapes["input"] = (dims.get("batch", b), dims.get("seq", s), h)
    elif family == "ocr_like":
        shapes["input"] = (1, 1, 32, dims.get("width", shapes["input"][3]))
    rng = np.random.default_rng(seed)
    return {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}


# --------------------------------------------------------------------------------------------------
# Quantization (onnxruntime.quantization is imported lazily: a build-time dependency only)
# --------------------------------------------------------------------------------------------------
def _calibration_reader(family: str, seed: int):  # noqa: ANN202 - CalibrationDataReader subclass
    from onnxruntime.quantization import CalibrationDataReader

    class RandomReader(CalibrationDataReader):
        """``CALIBRATION_SAMPLES`` random feeds of the family's concrete input shape."""

        def __init__(self) -> None:
            self.feeds = iter(
                [make_feeds(family, seed=seed + i) for i in range(CALIBRATION_SAMPLES)]
            )

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.feeds, None)

    return RandomReader()


def _preprocess(model: onnx.ModelProto, tmp: Path) -> Path:
    """``quant_pre_process``: shape inference + onnxruntime basic optimizations (BN folding,
    constant folding), as onnxruntime's quantization docs recommend before static quantization.

    The symbolic (sympy-based) shape inference is skipped: every zoo op is a standard ONNX op whose
    shapes ``onnx.shape_inference`` already infers, and it would make sympy a build dependency."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    src, dst = tmp / "pre_in.onnx", tmp / "pre_out.onnx"
    onnx.save(model, src)
    quant_pre_process(str(src), str(dst), skip_symbolic_shape=True)
    return dst


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """onnxruntime.quantization warns through the root logger (e.g. that a LayerNormalization scale
    has no channel axis for per-channel quantization); keep the build output readable."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def quantize(
    model: onnx.ModelProto, spec: ModelSpec, out_path: Path, seed: int = DEFAULT_SEED
) -> None:
    """Quantize ``model`` (FP32) as ``spec`` says and write it to ``out_path``."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

    qtype = {"s8": QuantType.QInt8, "u8": QuantType.QUInt8}
    # Symmetric int8 weights: zero point 0, so pruned zeros quantize to exact zeros.
    extra = {"WeightSymmetric": True}
    with tempfile.TemporaryDirectory() as d, _quiet_root_logger():
        tmp = Path(d)
        if spec.scheme == "dynamic":
            # No quant_pre_process here: its MatMul+Add -> Gemm fusion would undo the next line.
            if (
                spec.family == "mlp"
            ):  # the dynamic quantizer ignores Gemm: use the MatMul+Add spelling
                model = build_mlp(seed, spec.opset, gemm=False)
            src = tmp / "dyn_in.onnx"
            onnx.save(model, src)
            quantize_dynamic(
                str(src),
                str(out_path),
                weight_type=qtype[spec.weight],
                per_channel=spec.per_channel,
                extra_options=extra,
            )
        else:
            quantize_static(
                str(_preprocess(model, tmp)),
                str(out_path),
                _calibration_reader(spec.family, seed + 1000),
                quant_format=QuantFormat.QDQ if spec.scheme == "qdq" else QuantFormat.QOperator,
                activation_type=qtype[spec.activation],
                weight_type=qtype[spec.weight],
                per_channel=spec.per_channel,
                extra_options=extra,
            )


# --------------------------------------------------------------------------------------------------
# Building
# --------------------------------------------------------------------------------------------------
def _fp32(spec: ModelSpec, seed: int, cache: dict[str, onnx.ModelProto]) -> onnx.ModelProto:
    """The FP32 (possibly pruned) ModelProto of an FP32 spec, memoized in ``cache``."""
    if spec.name not in cache:
        if spec.sparsity:
            src = _fp32(spec_of(spec.source), seed, cache)
            cache[spec.name] = prune_model(src, spec.sparsity, spec.block)
        else:
            cache[spec.name] = FP32_BUILDERS[spec.family](seed, spec.opset)
    return cache[spec.name]


def _rename_sparsity(
    meta: dict[str, dict[str, object]], model: onnx.ModelProto
) -> dict[str, dict[str, object]]:
    """Re-key FP32 sparsity metadata by the quantized weight names (``conv_w_3`` ->
    ``conv_w_3_quantized`` or ``ConvBnFusion_W_conv_w_3_quantized`` after BN folding), checking
    that the pruned zeros survived: zero point 0 and at least as many exact zeros as were pruned
    (a kept weight smaller than half a quantization step may add a few)."""
    out: dict[str, dict[str, object]] = {}
    for v in prunable_weight_views(model):
        for k, info in meta.items():
            if v.name in (k, f"{k}_quantized") or v.name.endswith(f"_{k}_quantized"):
                slack = 4 / v.values.size  # rounding of the pruned count (one 1x4 block)
                if np.any(v.zero_point != 0) or v.zero_fraction < float(info["fraction"]) - slack:
                    raise RuntimeError(f"pruned zeros of {k} did not survive quantization")
                out[v.name] = dict(info, k_axis=v.k_axis)
    if len(out) != len(meta):
        raise RuntimeError(f"lost track of pruned weights: {sorted(meta)} vs {sorted(out)}")
    return out


def build_one(
    name: str,
    outdir: str | Path,
    seed: int = DEFAULT_SEED,
    cache: dict[str, onnx.ModelProto] | None = None,
) -> Path:
    """Build registry model ``name`` into ``outdir/<name>.onnx`` and return the path."""
    spec = spec_of(name)
    cache = {} if cache is None else cache
    path = Path(outdir) / f"{name}.onnx"
    if spec.quantized:
        src = _fp32(spec_of(spec.source), seed, cache)
        quantize(src, spec, path, seed)
        model = onnx.load(path)
        strip_unused_opsets(model)
        sparsity = read_meta(src, SPARSITY_KEY)
        if sparsity is not None:
            _set_meta(
                model,
                SPARSITY_KEY,
                json.dumps(_rename_sparsity(json.loads(sparsity), model), sort_keys=True),
            )
    else:
        model = onnx.ModelProto()
        model.CopyFrom(_fp32(spec, seed, cache))  # the cached one stays as built
    _set_meta(model, "sliver.zoo", json.dumps(dataclasses.asdict(spec), sort_keys=True))
    onnx.save(model, path)
    return path


def build_all(
    outdir: str | Path, names: Iterable[str] | None = None, seed: int = DEFAULT_SEED
) -> dict[str, Path]:
    """Build the named models (default: all of ``REGISTRY``) into ``outdir``; returns name ->
    path. Full-size models are built only when named."""
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    names = list(REGISTRY) if names is None else list(names)
    unknown = [n for n in names if n not in REGISTRY and n not in FULL_SIZE_REGISTRY]
    if unknown:
        raise KeyError(f"unknown zoo model(s): {unknown}; see model_zoo.REGISTRY")
    cache: dict[str, onnx.ModelProto] = {}
    return {n: build_one(n, out, seed, cache) for n in names}


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point."""
    ap = argparse.ArgumentParser(
        prog="python -m sliver.tools.model_zoo", description=__doc__.split("\n")[0]
    )
    ap.add_argument("outdir", type=Path)
    ap.add_argument("--only", nargs="+", metavar="NAME", help="model names (default: all)")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--list", action="store_true", help="print the registry and exit")
    args = ap.parse_args(argv)
    if args.list:
        for s in (*REGISTRY.values(), *FULL_SIZE_REGISTRY.values()):
            print(
                f"{s.name:30s} {s.family:14s} {s.dtype:14s} opset={s.opset} pc={s.per_channel:d} "
                f"sparsity={s.sparsity} block={s.block}"
            )
        return 0
    t0 = time.perf_counter()
    paths = build_all(args.outdir, args.only, args.seed)
    for n, p in paths.items():
        print(f"{n:32s} {p.stat().st_size / 1024:8.1f} KiB  {p}")
    print(f"built {len(paths)} models in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
