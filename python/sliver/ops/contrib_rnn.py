"""com.microsoft DynamicQuantizeLSTM (what ``onnxruntime.quantization.quantize_dynamic`` makes
of an LSTM: CRNN-style OCR and speech models), in numpy.

The op is an LSTM whose W and R are 8-bit: W [D, I, 4H] and R [D, H, 4H] (transposed against
LSTM's), with per-direction ([D]) or per-gate-column ([D, 4H]) scales and zero points. Its
spec is onnxruntime's CPU kernel, which quantizes the activations too: X (all steps at once)
and every step's hidden state are dynamically quantized to uint8 (per tensor, the
DynamicQuantizeMatMul rule), multiplied in integers and scaled back to float. Doing the same
keeps results within float rounding of onnxruntime's (dequantizing the weights alone leaves
the activation rounding out: about 5% of the output range after 20 steps). The native kernel
(csrc/ops/rnn.cc) follows the same steps; this is the fallback and the tests' reference.
Default activations only; other attributes are refused at load with NotImplementedOp.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..errors import NotImplementedOp
from ..ir import Graph, Node
from .contrib import dynamic_quant_params, quantize_mlas
from .registry import register_python_op

F32 = np.float32
Op = Callable[..., tuple]


def _refuse(node: Node, what: str) -> NotImplementedOp:
    return NotImplementedOp(
        f"node {node.name!r}: op 'DynamicQuantizeLSTM' (domain 'com.microsoft') with {what} is "
        "not supported"
    )


def _qmatmul(a: np.ndarray, wq: np.ndarray, wz: np.ndarray, ws: np.ndarray) -> np.ndarray:
    """a [M, K] float x the 8-bit w [K, N] as onnxruntime's quantized GEMM: a to uint8 with
    dynamic parameters, exact integer sums, times a_scale * w_scale in float32."""
    sa, za = dynamic_quant_params(a)
    aq = quantize_mlas(a, sa, za, np.dtype(np.uint8)).astype(np.int64) - za
    acc = aq @ (wq.astype(np.int64) - wz)
    return (acc.astype(F32) * (sa * ws).astype(F32)).astype(F32)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-x.astype(np.float64)))).astype(F32)


@register_python_op("com.microsoft:DynamicQuantizeLSTM")
def _dynamic_quantize_lstm(node: Node, graph: Graph) -> Op:
    a = node.attrs
    acts = a.get("activations")
    if acts and [s.decode() if isinstance(s, bytes) else s for s in acts] != [
        "Sigmoid",
        "Tanh",
        "Tanh",
    ] * (len(acts) // 3):
        raise _refuse(node, f"activations {acts}")
    if a.get("input_forget", 0):
        raise _refuse(node, "input_forget=1")
    direction = a.get("direction", "forward")
    direction = direction.decode() if isinstance(direction, bytes) else direction
    if direction not in ("forward", "reverse", "bidirectional"):
        raise _refuse(node, f"direction {direction!r}")
    clip = float(a.get("clip", 0.0))

    def run(
        x, w, r, b=None, seq_lens=None, h0=None, c0=None, p=None, ws=None, wz=None, rs=None, rz=None
    ):  # noqa: ANN001, ANN202
        x = np.asarray(x, F32)
        t_len, batch, _ = x.shape
        dirs, _, gh = np.asarray(w).shape
        h = gh // 4
        lens = (
            np.full(batch, t_len, np.int64)
            if seq_lens is None
            else np.asarray(seq_lens, np.int64).reshape(batch)
        )

        def per_col(v, d: int, default: float, dtype) -> np.ndarray:  # noqa: ANN001
            if v is None:
                return np.full(gh, default, dtype)
            v = np.asarray(v)
            return np.broadcast_to(v.reshape(dirs, -1)[d].astype(dtype), (gh,))

        y = np.zeros((t_len, dirs, batch, h), F32)
        yh = np.zeros((dirs, batch, h), F32)
        yc = np.zeros((dirs, batch, h), F32)
        for d in range(dirs):
            reverse = direction == "reverse" or d == 1
            bias = (
                np.zeros(gh, F32)
                if b is None
                else (np.asarray(b, F32)[d, :gh] + np.asarray(b, F32)[d, gh:]).astype(F32)
            )
            proj = _qmatmul(
                x.reshape(t_len * batch, -1),
                np.asarray(w)[d],
                per_col(wz, d, 0, np.int64),
                per_col(ws, d, 1.0, F32),
            )
            proj = (proj + bias).reshape(t_len, batch, gh)
            hs = np.zeros((batch, h), F32) if h0 is None else np.asarray(h0, F32)[d].copy()
            cs = np.zeros((batch, h), F32) if c0 is None else np.asarray(c0, F32)[d].copy()
            pp = None if p is None else np.asarray(p, F32)[d]
            rzd, rsd = per_col(rz, d, 0, np.int64), per_col(rs, d, 1.0, F32)
            for s in range(int(lens.max(initial=0))):
                g = _qmatmul(hs, np.asarray(r)[d], rzd, rsd)
                for bi in range(batch):
                    if s >= lens[bi]:
                        continue
                    t = lens[bi] - 1 - s if reverse else s
                    gb = (g[bi] + proj[t, bi]).astype(F32)
                    gi, go, gf, gc = gb[:h], gb[h : 2 * h], gb[2 * h : 3 * h], gb[3 * h :]
                    if pp is not None:
                        gi = gi + pp[:h] * cs[bi]
                        gf = gf + pp[2 * h :] * cs[bi]
                    if clip > 0:
                        gi, gf, gc = (np.clip(v, -clip, clip) for v in (gi, gf, gc))
                    i_, f_, c_ = _sigmoid(gi), _sigmoid(gf), np.tanh(gc).astype(F32)
                    cs[bi] = (f_ * cs[bi] + i_ * c_).astype(F32)
                    if pp is not None:
                        go = go + pp[h : 2 * h] * cs[bi]
                    if clip > 0:
                        go = np.clip(go, -clip, clip)
                    hs[bi] = (_sigmoid(go) * np.tanh(cs[bi])).astype(F32)
                    y[t, d, bi] = hs[bi]
            for bi in range(batch):
                if lens[bi] == 0:
                    hs[bi] = 0
                    cs[bi] = 0
            yh[d], yc[d] = hs, cs
        return y, yh, yc

    return run
