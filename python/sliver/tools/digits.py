"""Train, prune, export and quantize the bundled digits CNN (a developer script; needs scikit-learn
and onnxruntime, neither of which sliver needs at runtime).

The data is scikit-learn's ``load_digits`` (1797 8x8 greyscale digits, 10 classes), scaled to
[0, 1], split 70/30 stratified with a fixed seed. The network, trained with plain numpy (im2col
convolutions, hand-written backward pass, Adam)::

    input [N,1,8,8] -> Conv 3x3 (16) -> Relu -> MaxPool 2 -> Conv 3x3 (32) -> Relu -> MaxPool 2
          -> Flatten (128) -> Gemm (64) -> Relu -> Gemm (10) -> logits [N,10]

Steps: train dense; magnitude-prune every Conv/Gemm weight (per layer; biases stay dense) to
50%, 70%, then 80% zeros, fine-tuning with the masks fixed after each step; export FP32 ONNX
(input ``input`` with a dynamic batch ``N``, output ``logits``); quantize to INT8 QDQ (S8S8,
per-tensor, MinMax calibrated on training images) with symmetric weights, so every pruned zero is
stored as the int8 zero point 0.
The script prints the test accuracy of FP32 dense, FP32 pruned and INT8 pruned (all measured with
onnxruntime on the exported files) and the zero fraction of every quantized weight, and writes::

    OUT/digits_cnn_int8_pruned.onnx   the bundled main-job model
    OUT/digits_test.npz               held-out images float32 [N,1,8,8] and labels int64 [N]

Run ``python -m sliver.tools.digits --out python/sliver/data``. Deterministic for a given seed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from sliver.tools.model_zoo import prunable_weight_views, strip_unused_opsets

SEED = 0
SPARSITY = 0.8
PRUNE_SCHEDULE = ((0.5, 5), (0.7, 5), (SPARSITY, 30))  # (zero fraction, fine-tuning epochs)
MODEL_FILE = "digits_cnn_int8_pruned.onnx"
TEST_FILE = "digits_test.npz"
Params = dict[str, np.ndarray]


# --------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------
def load_split(seed: int = SEED) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x_train, y_train, x_test, y_test)``: images float32 [N,1,8,8] in [0, 1], labels int64."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    y = d.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.3, random_state=seed, stratify=y)
    return x_tr, y_tr, x_te, y_te


# --------------------------------------------------------------------------------------------------
# A numpy CNN: forward keeps a tape, backward walks it
# --------------------------------------------------------------------------------------------------
def im2col(x: np.ndarray) -> np.ndarray:
    """3x3, stride 1, pad 1: [N,C,H,W] -> [N*H*W, C*9] with columns in ONNX (c, kh, kw) order."""
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    cols = np.empty((n, c, 3, 3, h, w), x.dtype)
    for i in range(3):
        for j in range(3):
            cols[:, :, i, j] = xp[:, :, i : i + h, j : j + w]
    return cols.transpose(0, 4, 5, 1, 2, 3).reshape(n * h * w, c * 9)


def col2im(dcols: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Adjoint of ``im2col``: scatter-add column gradients back to [N,C,H,W]."""
    n, c, h, w = shape
    d = dcols.reshape(n, h, w, c, 3, 3).transpose(0, 3, 4, 5, 1, 2)
    dxp = np.zeros((n, c, h + 2, w + 2), dcols.dtype)
    for i in range(3):
        for j in range(3):
            dxp[:, :, i : i + h, j : j + w] += d[:, :, i, j]
    return dxp[:, :, 1:-1, 1:-1]


def init_params(rng: np.random.Generator) -> Params:
    """He-initialized weights in ONNX layouts (Conv [O,C,3,3], Gemm [N,K] for transB=1)."""

    def he(shape: tuple[int, ...], fan_in: int) -> np.ndarray:
        return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)

    return {
        "conv1_w": he((16, 1, 3, 3), 9),
        "conv1_b": np.zeros(16, np.float32),
        "conv2_w": he((32, 16, 3, 3), 144),
        "conv2_b": np.zeros(32, np.float32),
        "fc1_w": he((64, 128), 128),
        "fc1_b": np.zeros(64, np.float32),
        "fc2_w": he((10, 64), 64),
        "fc2_b": np.zeros(10, np.float32),
    }


WEIGHTS = ("conv1_w", "conv2_w", "fc1_w", "fc2_w")


def _conv_relu_pool(x: np.ndarray, w: np.ndarray, b: np.ndarray, tape: list) -> np.ndarray:
    n, _, h, wd = x.shape
    cols = im2col(x)
    y = (cols @ w.reshape(w.shape[0], -1).T + b).reshape(n, h, wd, -1).transpose(0, 3, 1, 2)
    y = np.maximum(y, 0)
    blocks = y.reshape(n, y.shape[1], h // 2, 2, wd // 2, 2)
    out = blocks.max(axis=(3, 5))
    tape.append((x.shape, cols, y, blocks == out[:, :, :, None, :, None]))
    return out


def _conv_relu_pool_back(dout: np.ndarray, w: np.ndarray, rec: tuple) -> tuple[np.ndarray, ...]:
    xshape, cols, y, argmax = rec
    n, o, h, wd = y.shape
    dy = (argmax * dout[:, :, :, None, :, None]).reshape(y.shape) * (y > 0)
    dy2 = dy.transpose(0, 2, 3, 1).reshape(-1, o)
    dw = (dy2.T @ cols).reshape(w.shape)
    db = dy2.sum(0)
    dx = col2im(dy2 @ w.reshape(o, -1), xshape)
    return dx, dw, db


def forward(p: Params, x: np.ndarray, tape: list | None = None) -> np.ndarray:
    """Logits [N, 10]; with ``tape``, records what ``backward`` needs."""
    t: list = [] if tape is None else tape
    h = _conv_relu_pool(x, p["conv1_w"], p["conv1_b"], t)
    h = _conv_relu_pool(h, p["conv2_w"], p["conv2_b"], t)
    f = h.reshape(len(x), -1)
    z = np.maximum(f @ p["fc1_w"].T + p["fc1_b"], 0)
    t.append((f, z))
    return z @ p["fc2_w"].T + p["fc2_b"]


def backward(p: Params, tape: list, dlogits: np.ndarray) -> Params:
    """Gradients of every parameter given d(loss)/d(logits)."""
    rec1, rec2, (f, z) = tape
    g = {"fc2_w": dlogits.T @ z, "fc2_b": dlogits.sum(0)}
    dz = (dlogits @ p["fc2_w"]) * (z > 0)
    g["fc1_w"], g["fc1_b"] = dz.T @ f, dz.sum(0)
    dh = (dz @ p["fc1_w"]).reshape(len(f), 32, 2, 2)
    dh, g["conv2_w"], g["conv2_b"] = _conv_relu_pool_back(dh, p["conv2_w"], rec2)
    _, g["conv1_w"], g["conv1_b"] = _conv_relu_pool_back(dh, p["conv1_w"], rec1)
    return g


def _batches(rng: np.random.Generator, n: int, size: int) -> Iterator[np.ndarray]:
    order = rng.permutation(n)
    for i in range(0, n, size):
        yield order[i : i + size]


def train(
    p: Params,
    x: np.ndarray,
    y: np.ndarray,
    epochs: int,
    lr: float,
    rng: np.random.Generator,
    masks: Params | None = None,
    batch: int = 32,
    weight_decay: float = 1e-4,
) -> Params:
    """Adam on softmax cross-entropy (+ L2 on weights); ``masks`` keep pruned weights at zero.
    The learning rate decays linearly to 10% over the run."""
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(val) for k, val in p.items()}
    b1, b2, eps, step = 0.9, 0.999, 1e-8, 0
    total = epochs * -(-len(x) // batch)
    for _ in range(epochs):
        for idx in _batches(rng, len(x), batch):
            tape: list = []
            logits = forward(p, x[idx], tape)
            prob = np.exp(logits - logits.max(1, keepdims=True))
            prob /= prob.sum(1, keepdims=True)
            prob[np.arange(len(idx)), y[idx]] -= 1.0
            grads = backward(p, tape, prob / len(idx))
            step += 1
            rate = lr * (1.0 - 0.9 * step / total)
            for k, gk in grads.items():
                if k in WEIGHTS:
                    gk = gk + weight_decay * p[k]
                if masks is not None and k in masks:
                    gk = gk * masks[k]
                m[k] = b1 * m[k] + (1 - b1) * gk
                v[k] = b2 * v[k] + (1 - b2) * gk * gk
                mhat, vhat = m[k] / (1 - b1**step), v[k] / (1 - b2**step)
                p[k] = (p[k] - rate * mhat / (np.sqrt(vhat) + eps)).astype(np.float32)
                if masks is not None and k in masks:
                    p[k] *= masks[k]
    return p


def prune_masks(p: Params, fraction: float) -> Params:
    """Per-layer magnitude masks that zero ``round(fraction * size)`` weights of each layer."""
    masks = {}
    for k in WEIGHTS:
        w = np.abs(p[k]).ravel()
        keep = np.ones(w.size, np.float32)
        keep[np.argsort(w, kind="stable")[: int(round(fraction * w.size))]] = 0.0
        masks[k] = keep.reshape(p[k].shape)
    return masks


def accuracy(logits: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy."""
    return float(np.mean(logits.argmax(1) == y))


# --------------------------------------------------------------------------------------------------
# Export and quantization
# --------------------------------------------------------------------------------------------------
def to_onnx(p: Params, opset: int = 17) -> onnx.ModelProto:
    """The trained network as an FP32 ONNX model with a dynamic batch."""
    inits = [numpy_helper.from_array(v, k) for k, v in p.items()]
    conv = {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}
    pool = {"kernel_shape": [2, 2], "strides": [2, 2]}
    nodes = [
        helper.make_node("Conv", ["input", "conv1_w", "conv1_b"], ["conv1"], "conv1", **conv),
        helper.make_node("Relu", ["conv1"], ["relu1"], "relu1"),
        helper.make_node("MaxPool", ["relu1"], ["pool1"], "pool1", **pool),
        helper.make_node("Conv", ["pool1", "conv2_w", "conv2_b"], ["conv2"], "conv2", **conv),
        helper.make_node("Relu", ["conv2"], ["relu2"], "relu2"),
        helper.make_node("MaxPool", ["relu2"], ["pool2"], "pool2", **pool),
        helper.make_node("Flatten", ["pool2"], ["flat"], "flatten", axis=1),
        helper.make_node("Gemm", ["flat", "fc1_w", "fc1_b"], ["fc1"], "fc1", transB=1),
        helper.make_node("Relu", ["fc1"], ["relu3"], "relu3"),
        helper.make_node("Gemm", ["relu3", "fc2_w", "fc2_b"], ["logits"], "fc2", transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "digits_cnn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
        inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="sliver.tools.digits"
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def quantize_qdq(fp32_path: Path, out_path: Path, calib: np.ndarray) -> None:
    """Static S8S8 QDQ quantization (per-tensor, symmetric weights), MinMax-calibrated on
    ``calib`` after ``quant_pre_process`` (ONNX shape inference; sympy-based symbolic inference
    is not needed for these standard ops)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter(calib[i : i + 64] for i in range(0, len(calib), 64))

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self.it, None)
            return None if batch is None else {"input": batch}

    pre = out_path.with_suffix(".pre.onnx")
    quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
    quantize_static(
        str(pre),
        str(out_path),
        Reader(),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
        per_channel=False,
        extra_options={"WeightSymmetric": True},
    )
    pre.unlink()
    model = onnx.load(out_path)
    strip_unused_opsets(model)
    onnx.save(model, out_path)


def ort_accuracy(path: Path, x: np.ndarray, y: np.ndarray) -> float:
    """Accuracy of an ONNX file on onnxruntime's CPU provider."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return accuracy(sess.run(["logits"], {"input": x})[0], y)


def main(argv: list[str] | None = None) -> int:
    """Train, prune, export, quantize, report; write the model and the test set to ``--out``."""
    ap = argparse.ArgumentParser(prog="python -m sliver.tools.digits", description=__doc__)
    ap.add_argument("--out", type=Path, default=Path("python/sliver/data"))
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--epochs", type=int, default=40, help="dense training epochs")
    args = ap.parse_args(argv)
    from threadpoolctl import threadpool_limits  # comes with scikit-learn

    # One BLAS thread: bit-reproducible sums whatever the core count, and faster for these
    # small matrices than threads fighting over 2 cores.
    with threadpool_limits(limits=1):
        build(args.out, args.seed, args.epochs)
    return 0


def build(out: Path, seed: int = SEED, dense_epochs: int = 40) -> dict[str, float]:
    """Train, prune, export and quantize; write the bundle to ``out``; print and return the test
    accuracies (``fp32 dense``, ``fp32 pruned``, ``int8 pruned``)."""
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    x_tr, y_tr, x_te, y_te = load_split(seed)

    p = train(init_params(rng), x_tr, y_tr, dense_epochs, 3e-3, rng)
    dense = {k: v.copy() for k, v in p.items()}
    acc_steps = []
    for fraction, epochs in PRUNE_SCHEDULE:  # gradual magnitude pruning, masks fixed per step
        masks = prune_masks(p, fraction)
        p = train(
            {k: v * masks.get(k, 1) for k, v in p.items()}, x_tr, y_tr, epochs, 1e-3, rng, masks
        )
        acc_steps.append((fraction, accuracy(forward(p, x_te), y_te)))
    for k in WEIGHTS:  # the masked updates keep exact zeros; make it explicit
        p[k] = np.where(masks[k] > 0, p[k], np.float32(0)).astype(np.float32)

    out.mkdir(parents=True, exist_ok=True)
    q_path = out / MODEL_FILE
    with tempfile.TemporaryDirectory() as d:
        dense_path, pruned_path = Path(d) / "dense.onnx", Path(d) / "pruned.onnx"
        onnx.save(to_onnx(dense), dense_path)
        onnx.save(to_onnx(p), pruned_path)
        quantize_qdq(pruned_path, q_path, x_tr[:512])
        acc = {
            "fp32 dense": ort_accuracy(dense_path, x_te, y_te),
            "fp32 pruned": ort_accuracy(pruned_path, x_te, y_te),
            "int8 pruned": ort_accuracy(q_path, x_te, y_te),
        }
    np.savez_compressed(out / TEST_FILE, images=x_te, labels=y_te)

    print(f"train {len(x_tr)} / test {len(x_te)} images; {time.perf_counter() - t0:.1f} s")
    for fraction, a in acc_steps:
        print(f"  (numpy) after pruning to {fraction:.0%} and fine-tuning: {a:.4f}")
    for k, a in acc.items():
        print(f"  test accuracy {k:12s}: {a:.4f}")
    print("  quantized weight zero fractions (value == zero point):")
    for v in prunable_weight_views(onnx.load(q_path)):
        zp = int(np.asarray(v.zero_point).ravel()[0])
        print(
            f"    {v.name:20s} {v.values.dtype} {str(v.values.shape):16s} zp={zp} "
            f"zeros={v.zero_fraction:.4f}"
        )
    for f in (q_path, out / TEST_FILE):
        print(f"  wrote {f} ({f.stat().st_size / 1024:.1f} KiB)")
    return acc


if __name__ == "__main__":
    sys.exit(main())
