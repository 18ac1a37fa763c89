"""The 'light' CNNs shipped with onnx (weights filled by ConstantOfShape) run on sliver.

Each model must match onnxruntime and the output onnx ships next to it. onnx's backend
runner feeds these models ``arange(n) / n`` shaped like the input (unknown dims = 1), so
the shipped ``*_output_0.pb`` is the answer for that input. Most of these nets end in a
Softmax whose output is nearly uniform, so the logits (the Softmax input) are compared
too. A random input is checked against onnxruntime as well, on the logits only where
there is a Softmax: with these weights the logits reach ~1e9, where float32 rounding of a
different summation order decides the Softmax.
"""

from __future__ import annotations

import pathlib
import warnings
import zlib

import numpy as np
import onnx
import pytest
import sliver

ort = pytest.importorskip("onnxruntime")

LIGHT_DIR = pathlib.Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
MODELS = sorted(LIGHT_DIR.glob("*.onnx"))
RTOL = 1e-3  # as onnx's runner uses for real models
ATOL = 1e-7
MIN_COSINE = 0.99999


def _with_logits(model: onnx.ModelProto) -> tuple[onnx.ModelProto, list[str], list[str]]:
    """The model with the inputs of its final Softmaxes as extra outputs.

    Returns (model, all output names, the names a random input is compared on).
    """
    outputs = [o.name for o in model.graph.output]
    last = {n.output[0]: n for n in model.graph.node if n.output}
    extra = []
    for name in outputs:
        node = last.get(name)
        if node is not None and node.op_type == "Softmax":
            extra.append(node.input[0])
    for name in extra:
        model.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    softmaxed = {n.output[0] for n in model.graph.node if n.op_type == "Softmax"}
    stable = [n for n in outputs if n not in softmaxed] + extra
    return model, outputs + extra, stable


def _runner_input(vi: onnx.ValueInfoProto) -> np.ndarray:
    """The input onnx's backend runner generates (generate_dummy_data, random=False)."""
    shape = tuple(
        d.dim_value if d.HasField("dim_value") else 1 for d in vi.type.tensor_type.shape.dim
    )
    n = int(np.prod(shape))
    return (np.arange(n).reshape(shape) / n).astype(np.float32)


def _check_close(got: np.ndarray, want: np.ndarray, what: str) -> None:
    assert got.shape == want.shape and got.dtype == want.dtype, (
        f"{what}: {got.dtype}{list(got.shape)} vs {want.dtype}{list(want.shape)}"
    )
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, err_msg=what)
    g, w = got.ravel().astype(np.float64), want.ravel().astype(np.float64)
    cosine = float(g @ w / (np.linalg.norm(g) * np.linalg.norm(w) + 1e-300))
    assert cosine >= MIN_COSINE, f"{what}: cosine {cosine}"


@pytest.mark.parametrize("path", MODELS, ids=[p.stem for p in MODELS])
def test_light_model(path: pathlib.Path) -> None:
    model, names, stable = _with_logits(onnx.load(str(path)))
    data = model.SerializeToString()
    inits = {t.name for t in model.graph.initializer}
    (vi,) = [i for i in model.graph.input if i.name not in inits]
    sess = sliver.InferenceSession(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = ort.InferenceSession(data, providers=["CPUExecutionProvider"])

    x = _runner_input(vi)
    got = sess.run(names, {vi.name: x})
    want = ref.run(names, {vi.name: x})
    shipped = onnx.numpy_helper.to_array(
        onnx.load_tensor(str(path).replace(".onnx", "_output_0.pb"))
    )
    _check_close(got[0], shipped, f"{path.stem}: output vs shipped {path.stem}_output_0.pb")
    for name, g, w in zip(names, got, want, strict=True):
        _check_close(g, w, f"{path.stem}: {name} vs onnxruntime (runner input)")

    rng = np.random.default_rng(zlib.crc32(path.stem.encode()))
    x = rng.uniform(-1, 1, size=x.shape).astype(np.float32)
    got = sess.run(stable, {vi.name: x})
    want = ref.run(stable, {vi.name: x})
    for name, g, w in zip(stable, got, want, strict=True):
        _check_close(g, w, f"{path.stem}: {name} vs onnxruntime (random input)")
