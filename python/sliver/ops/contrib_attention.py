"""onnxruntime's fused BERT ops, as its transformers optimizer writes them: Attention and
EmbedLayerNormalization (com.microsoft), and QAttention / QEmbedLayerNormalization (what
quantize_dynamic makes of them), in numpy.

They have no ONNX equivalent to lower to, so these implementations make such models load and
agree with onnxruntime (its CPU kernels are the spec: mask formats, the mask filter value, the
mask_index that EmbedLayerNormalization hands to Attention). Each call is a few large numpy
products, so the Python cost per node stays small next to the work. Not covered, refused at
load with NotImplementedOp: past/present key-value caches and rotary embeddings; a 4-D mask
raises at run time. A causal row whose every key a start position (2B-long mask_index) also
masks weighs the fill values differently from onnxruntime (both are meaningless there).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ..errors import NotImplementedOp
from ..ir import Graph, Node
from .registry import register_python_op

Op = Callable[..., tuple]


def _input(node: Node, i: int) -> str:
    return node.inputs[i] if i < len(node.inputs) else ""


def _refuse(node: Node, what: str) -> NotImplementedOp:
    return NotImplementedOp(
        f"node {node.name!r}: op {node.op_type!r} (domain 'com.microsoft') with {what} is not "
        "supported"
    )


def _mask_bias(mask: np.ndarray | None, b: int, s: int, total: int, fill: float) -> np.ndarray:
    """Additive [B, 1, S or 1, total] scores bias for onnxruntime's mask_index formats."""
    bias = np.zeros((b, 1, 1, total), np.float32)
    if mask is None:
        return bias
    mask = np.asarray(mask)
    if mask.ndim == 1 and mask.shape[0] == b:  # valid lengths (right padding)
        keys = np.arange(total)[None, :]
        bias[:, 0, 0, :] = np.where(keys < mask[:, None], 0.0, fill)
        return bias
    if mask.ndim == 1 and mask.shape[0] == 2 * b:  # end and start positions
        keys = np.arange(total)[None, :]
        end, start = mask[:b, None], mask[b:, None]
        bias[:, 0, 0, :] = np.where((keys < end) & (keys >= start), 0.0, fill)
        return bias
    if mask.ndim == 2:  # raw 0/1 per key
        return ((1.0 - mask.astype(np.float32)) * fill)[:, None, None, :]
    if mask.ndim == 3:  # raw 0/1 per query and key
        return ((1.0 - mask.astype(np.float32)) * fill)[:, None, :, :]
    raise ValueError(f"Attention: mask_index of shape {mask.shape} is not supported")


def _attention_core(node: Node, past_input: int) -> Callable[..., np.ndarray]:
    """The attention after the QKV projection, configured from Attention's / QAttention's
    attributes: (qkv [B, S, 3 N H] before its bias, bias, mask, rel_bias) -> [B, S, N H]."""
    heads = int(node.attrs["num_heads"])
    if int(node.attrs.get("do_rotary", 0)):
        raise _refuse(node, "do_rotary")
    if _input(node, past_input) or (len(node.outputs) > 1 and node.outputs[1]):
        raise _refuse(node, "a past/present key-value cache")
    sizes = [int(v) for v in node.attrs.get("qkv_hidden_sizes", [])]
    causal = bool(int(node.attrs.get("unidirectional", 0)))
    fill = float(node.attrs.get("mask_filter_value", -10000.0))
    scale_attr = node.attrs.get("scale")

    def attend(
        qkv: np.ndarray,
        bias: np.ndarray | None,
        mask: np.ndarray | None,
        rel_bias: np.ndarray | None,
    ) -> np.ndarray:
        if bias is not None:
            qkv = qkv + np.asarray(bias, np.float32)
        b, s, _ = qkv.shape
        hq, hk, hv = sizes or [qkv.shape[-1] // 3] * 3
        q, k, v = qkv[..., :hq], qkv[..., hq : hq + hk], qkv[..., hq + hk :]

        def split(t: np.ndarray) -> np.ndarray:  # [B, S, N*H] -> [B, N, S, H]
            return t.reshape(b, s, heads, -1).transpose(0, 2, 1, 3)

        q, k, v = split(q), split(k), split(v)
        scale = float(scale_attr) if scale_attr is not None else 1.0 / math.sqrt(hq // heads)
        scores = (q @ k.transpose(0, 1, 3, 2)) * np.float32(scale)
        scores = scores + _mask_bias(mask, b, s, s, fill)
        if rel_bias is not None:
            scores = scores + np.asarray(rel_bias, np.float32)
        if causal:
            scores = scores + np.triu(np.full((s, s), fill, np.float32), 1)
        scores = scores - scores.max(axis=-1, keepdims=True)
        p = np.exp(scores)
        p /= p.sum(axis=-1, keepdims=True)
        return (p @ v).transpose(0, 2, 1, 3).reshape(b, s, hv).astype(np.float32)

    return attend


@register_python_op("com.microsoft:Attention")
def _attention(node: Node, graph: Graph) -> Op:
    attend = _attention_core(node, past_input=4)

    def run(x, w, bias=None, mask=None, past=None, rel_bias=None, *rest):  # noqa: ANN001, ANN002, ANN202
        qkv = np.asarray(x, np.float32) @ np.asarray(w, np.float32)
        return (attend(qkv, bias, mask, rel_bias),)

    return run


@register_python_op("com.microsoft:QAttention")
def _qattention(node: Node, graph: Graph) -> Op:
    """quantize_dynamic's Attention: 8-bit input codes (from a DynamicQuantizeLinear) and
    weights, the projection summed in exact integers times input_scale * weight_scale (per
    tensor or per column), then the float attention."""
    attend = _attention_core(node, past_input=8)

    def run(x, w, bias, x_scale, w_scale, mask=None, x_zp=None, w_zp=None, *rest):  # noqa: ANN001, ANN002, ANN202
        xi = np.asarray(x).astype(np.int64) - (
            0 if x_zp is None else int(np.asarray(x_zp).ravel()[0])
        )
        wz = 0 if w_zp is None else np.asarray(w_zp).astype(np.int64).reshape(-1)
        acc = xi @ (np.asarray(w).astype(np.int64) - wz)
        mult = (
            np.float32(np.asarray(x_scale).ravel()[0]) * np.asarray(w_scale, np.float32).reshape(-1)
        ).astype(np.float32)
        return (attend((acc.astype(np.float32) * mult).astype(np.float32), bias, mask, None),)

    return run


def _embed_norm(ids, seg_ids, word, pos, seg, gamma, beta, mask, pos_ids, eps):  # noqa: ANN001, ANN202
    """EmbedLayerNormalization's arithmetic; word / pos / seg are callables from an index array
    to its float rows (QEmbedLayerNormalization dequantizes only the rows it gathers)."""
    ids = np.asarray(ids).astype(np.int64)
    b, s = ids.shape
    e = word(ids)
    positions = np.arange(s)[None, :] if pos_ids is None else np.asarray(pos_ids)
    e = e + pos(np.broadcast_to(positions, (b, s)).astype(np.int64))
    if seg is not None and seg_ids is not None:
        e = e + seg(np.asarray(seg_ids).astype(np.int64))
    e64 = e.astype(np.float64)
    mean = e64.mean(-1, keepdims=True)
    var = ((e64 - mean) ** 2).mean(-1, keepdims=True)
    y = (e64 - mean) / np.sqrt(var + eps) * np.asarray(gamma) + np.asarray(beta)
    if mask is None:
        mask_index = np.zeros(b, np.int32)
    else:
        mask_index = np.asarray(mask).astype(np.int32).sum(axis=1).astype(np.int32)
    return y.astype(np.float32), mask_index, e.astype(np.float32)


def _rows(table):  # noqa: ANN001, ANN202
    return None if table is None else lambda i: np.asarray(table, np.float32)[i]


@register_python_op("com.microsoft:EmbedLayerNormalization")
def _embed_layer_norm(node: Node, graph: Graph) -> Op:
    eps = float(node.attrs.get("epsilon", 1e-12))

    def run(ids, seg_ids, word, pos, seg, gamma, beta, mask=None, pos_ids=None):  # noqa: ANN001, ANN202
        return _embed_norm(
            ids, seg_ids, _rows(word), _rows(pos), _rows(seg), gamma, beta, mask, pos_ids, eps
        )

    return run


@register_python_op("com.microsoft:QEmbedLayerNormalization")
def _qembed_layer_norm(node: Node, graph: Graph) -> Op:
    """What quantize_dynamic makes of EmbedLayerNormalization: 8-bit tables, gamma and beta with
    per-tensor scales and zero points, dequantized as (q - zero_point) * scale (the rows a call
    gathers only); outputs (layernorm_out, mask_index)."""
    eps = float(node.attrs.get("epsilon", 1e-12))

    def deq(q, scale, zp):  # noqa: ANN001, ANN202
        sc = np.float32(np.asarray(scale).ravel()[0])
        z = np.int32(np.asarray(zp).ravel()[0]) if zp is not None else np.int32(0)
        return lambda i: (np.asarray(q)[i].astype(np.int32) - z).astype(np.float32) * sc

    def run(  # noqa: ANN202
        ids,
        seg_ids,
        word,
        pos,
        seg,
        gamma,
        beta,
        mask,  # noqa: ANN001
        word_s,
        pos_s,
        seg_s,
        gamma_s,
        beta_s,  # noqa: ANN001
        word_z=None,
        pos_z=None,
        seg_z=None,
        gamma_z=None,
        beta_z=None,  # noqa: ANN001
    ):
        g = deq(gamma, gamma_s, gamma_z)(slice(None))
        bt = deq(beta, beta_s, beta_z)(slice(None))
        segf = deq(seg, seg_s, seg_z) if seg is not None else None
        y, mask_index, _ = _embed_norm(
            ids,
            seg_ids,
            deq(word, word_s, word_z),
            deq(pos, pos_s, pos_z),
            segf,
            g,
            bt,
            mask,
            None,
            eps,
        )
        return (y, mask_index)

    return run
