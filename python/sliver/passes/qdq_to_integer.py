"""qdq_to_integer: a float Conv/MatMul/Gemm between DequantizeLinear and QuantizeLinear
becomes one integer op with the requantization (and any Relu/Clip) fused.

    Q(act(Conv(DQ(x), DQ(w), DQ(b32) | b)), sy, zy)   -> QLinearConv(x, .., w, .., sy, zy, b32)
    Q(act(MatMul(DQ(a), DQ(b))), sy, zy)              -> QLinearMatMul(a, .., b, .., sy, zy)
    Q(act(Gemm(DQ(a), DQ(w), DQ(b32) | b)), sy, zy)   -> sliver:QLinearMatMul(a', .., w, .., b32)
                                                          a' = Transpose(a) when transA

``act`` is nothing, Relu or Clip(lo, hi) with constant bounds: Q is monotone, so
``Q(clip(v, lo, hi)) == clamp(Q(v), Q(lo), Q(hi))`` exactly and the activation becomes the
output clamp (``activation_min``/``activation_max`` of the sliver ops, see ops/qfused.py);
Relu's lower bound is Q(0) = zy. Without a clamp (or bias, or transB) the standard ONNX op
is written.

Weights must be constant 8-bit codes, per tensor or per output channel (Conv: axis 0;
MatMul: the last axis; Gemm: the N axis); a MatMul's B may also be an activation (attention
scores), packed per run. x, y are per tensor. The bias reaches the integer sum in units of
sx * sw[n]: an int32 bias dequantized with exactly that scale (what every quantizer writes)
is used as is; any other bias (a float constant, another scale) is rounded half to even to
those units only when the rounding moves no output by more than ``BIAS_MAX_ERROR_LSB`` of
sy (onnxruntime only fuses int32 biases; this admits the float ones whose rounding is
harmless, which for sensible scales is all of them).

Exactness: the integer sums are exact; the float path rounds its float32 products and sums,
so the two agree except where the float result lies within its rounding error of a .5 tie
of y's grid: an output may differ by 1 code there (tests count these).
"""

from __future__ import annotations

import math

import numpy as np

from ..ir import Graph, Node
from .fuse_epilogue import activation_params
from .qdq_common import (
    INT32,
    SLIVER,
    Context,
    QParams,
    apply,
    code_range,
    dq_params,
    node,
    quantize_value,
)
from .util import constant, dims

# Largest output error, in units of y's scale, a rounded (non-int32) bias may introduce.
BIAS_MAX_ERROR_LSB = 1.0 / 16
# Conv weights of these ranks have native integer kernels (1-D and 2-D convolutions).
CONV_WEIGHT_RANKS = (3, 4)
CONV_ATTRS = ("auto_pad", "dilations", "group", "kernel_shape", "pads", "strides")


def _weight(
    ctx: Context,
    name: str,
    rank: int | None,
    n_axis: int | None,
    n: int | None,
    need_const: bool = True,
) -> tuple[str, QParams] | None:
    """The DQ'd 8-bit weight ``name``: its codes' name and parameters. Per-axis parameters
    must lie along ``n_axis`` (of a weight of rank ``rank``) with ``n`` values."""
    dq = ctx.producers.get(name)
    p = dq_params(ctx.graph, dq)
    if dq is None or p is None:
        return None
    codes = constant(ctx.graph, dq.inputs[0])
    if need_const and codes is None:
        return None
    if p.per_tensor:
        return dq.inputs[0], p
    if codes is None or rank is None or codes.ndim != rank or p.scale.ndim != 1:
        return None
    axis = p.axis + rank if p.axis < 0 else p.axis
    if axis != n_axis or p.scale.size != n or codes.shape[axis] != n:
        return None
    return dq.inputs[0], p


def _bias(
    ctx: Context, name: str, px: QParams, pw: QParams, py: QParams, n: int
) -> np.ndarray | None:
    """The bias as int32 [n] in units of sx * sw[c], or None when it cannot be one."""
    g = ctx.graph
    unit = (np.float32(px.s) * np.broadcast_to(pw.scale.reshape(-1), (n,))).astype(np.float32)
    dq = ctx.producers.get(name)
    pb = dq_params(g, dq, frozenset({INT32}))
    if dq is not None and pb is not None:
        codes = constant(g, dq.inputs[0])
        if codes is None or codes.size not in (1, n) or np.any(pb.zero_point != 0):
            return None
        if pb.scale.size not in (1, n):
            return None
        codes = np.broadcast_to(codes.reshape(-1), (n,)).astype(np.int32)
        sb = np.broadcast_to(pb.scale.reshape(-1), (n,)).astype(np.float32)
        if np.array_equal(sb, unit):
            return codes.copy()
        value = (codes.astype(np.float32) * sb).astype(np.float32)  # what DQ computes
    else:
        value = constant(g, name)
        if value is None or value.dtype != np.float32 or value.size not in (1, n):
            return None
        value = np.broadcast_to(value.reshape(-1), (n,))
    exact = value.astype(np.float64) / unit.astype(np.float64)
    if not np.all(np.isfinite(exact)) or np.any(np.abs(exact) >= 2.0**31 - 1):
        return None
    rounded = np.rint(exact)
    error_lsb = np.abs(rounded - exact) * unit.astype(np.float64) / py.s
    if np.any(error_lsb > BIAS_MAX_ERROR_LSB):
        return None
    return rounded.astype(np.int32)


def _clamp(ctx: Context, y: str) -> tuple[list[Node], Node, QParams, tuple[float, float]] | None:
    """From the anchor's result ``y``: the optional Relu/Clip, then the Q; returns the
    absorbed activation nodes, the Q, its parameters and the float bounds."""
    g = ctx.graph
    act = ctx.next_node(y)
    if act is None:
        return None
    absorbed: list[Node] = []
    bounds = (-math.inf, math.inf)
    if act.domain == "" and act.op_type in ("Relu", "Clip") and act.inputs[0] == y:
        params = activation_params(g, act)
        if params is None:
            return None
        bounds = (0.0, math.inf) if act.op_type == "Relu" else (params[0], params[1])
        absorbed.append(act)
        y = act.outputs[0]
    q = ctx.q_after(y)
    if q is None:
        return None
    return absorbed, q[0], q[1], bounds


def _code_bounds(py: QParams, bounds: tuple[float, float]) -> dict[str, int]:
    """activation_min/max attributes (codes) for float bounds; {} when they clamp nothing."""
    qmin, qmax = code_range(py.dtype)
    lo = qmin if bounds[0] == -math.inf else max(qmin, quantize_value(bounds[0], py))
    hi = qmax if bounds[1] == math.inf else min(qmax, quantize_value(bounds[1], py))
    lo = min(lo, hi)  # Clip(lo > hi) is hi everywhere; so is clamp(., hi, hi)
    if (lo, hi) == (qmin, qmax):
        return {}
    return {"activation_min": lo, "activation_max": hi}


class _Rewriter:
    def __init__(self, graph: Graph) -> None:
        self.ctx = Context(graph)
        self.place: dict[int, list[Node]] = {}
        self.dead: set[int] = set()

    def common(self, anchor: Node) -> tuple | None:
        """x's DQ, and the Relu/Clip + Q after the anchor."""
        ctx = self.ctx
        x = ctx.dq_of(anchor.inputs[0]) if anchor.inputs else None
        if x is None or len(anchor.outputs) != 1:
            return None
        tail = _clamp(ctx, anchor.outputs[0])
        if tail is None:
            return None
        return x, tail

    def commit(self, anchor: Node, absorbed: list[Node], q: Node, new: list[Node]) -> None:
        ctx = self.ctx
        for n in [anchor, q, *absorbed]:
            ctx.claimed.add(id(n))
            self.dead.add(id(n))
        self.place[id(q)] = new

    def conv(self, anchor: Node) -> None:
        ctx, g = self.ctx, self.ctx.graph
        if len(anchor.inputs) < 2:
            return
        found = self.common(anchor)
        if found is None:
            return
        (_, px), (absorbed, q, py, bounds) = found
        w_dq = ctx.producers.get(anchor.inputs[1])
        w_codes = constant(g, w_dq.inputs[0]) if w_dq is not None else None
        if w_codes is None or w_codes.ndim not in CONV_WEIGHT_RANKS:
            return
        oc = int(w_codes.shape[0])
        w = _weight(ctx, anchor.inputs[1], w_codes.ndim, 0, oc)
        if w is None:
            return
        w_name, pw = w
        bias = None
        if len(anchor.inputs) > 2 and anchor.inputs[2]:
            bias = _bias(ctx, anchor.inputs[2], px, pw, py, oc)
            if bias is None:
                return
        inputs = self.quant_inputs(anchor, px, w_name, pw, py)
        if bias is not None:
            inputs.append(ctx.constant_input(bias, f"{anchor.name}_bias_i32"))
        attrs = {k: v for k, v in anchor.attrs.items() if k in CONV_ATTRS}
        clamp = _code_bounds(py, bounds)
        op, domain = ("QLinearConv", "") if not clamp else ("QLinearConv", SLIVER)
        new = node(g, op, domain, anchor.name, inputs, [q.outputs[0]], **attrs, **clamp)
        self.commit(anchor, absorbed, q, [new])

    def quant_inputs(
        self, anchor: Node, px: QParams, w_name: str, pw: QParams, py: QParams
    ) -> list[str]:
        ctx = self.ctx
        x_dq = ctx.producers[anchor.inputs[0]]
        return [
            x_dq.inputs[0], px.scale_name, ctx.zp_input(px, f"{anchor.name}_x_zp"),
            w_name, pw.scale_name, ctx.zp_input(pw, f"{anchor.name}_w_zp"),
            py.scale_name, ctx.zp_input(py, f"{anchor.name}_y_zp"),
        ]  # fmt: skip

    def matmul(self, anchor: Node) -> None:
        ctx, g = self.ctx, self.ctx.graph
        found = self.common(anchor)
        if found is None or len(anchor.inputs) != 2:
            return
        (_, px), (absorbed, q, py, bounds) = found
        b_dims = dims(g, anchor.inputs[1])
        w = None
        if b_dims is not None and len(b_dims) >= 2 and isinstance(b_dims[-1], int):
            w = _weight(ctx, anchor.inputs[1], len(b_dims), len(b_dims) - 1, b_dims[-1])
        const_b = w is not None
        if w is None:  # an activation B (attention): per tensor, packed per run
            w = _weight(ctx, anchor.inputs[1], None, None, None, need_const=False)
            if w is None or not w[1].per_tensor:
                return
            if b_dims is not None and len(b_dims) < 2:
                return
        w_name, pw = w
        inputs = self.quant_inputs(anchor, px, w_name, pw, py)
        clamp = _code_bounds(py, bounds)
        standard = const_b and not clamp
        op_domain = "" if standard else SLIVER
        new = node(g, "QLinearMatMul", op_domain, anchor.name, inputs, [q.outputs[0]], **clamp)
        self.commit(anchor, absorbed, q, [new])

    def gemm(self, anchor: Node) -> None:
        ctx, g = self.ctx, self.ctx.graph
        if len(anchor.inputs) < 2:
            return
        if float(anchor.attrs.get("alpha", 1.0)) != 1.0:
            return
        has_c = len(anchor.inputs) > 2 and bool(anchor.inputs[2])
        if has_c and float(anchor.attrs.get("beta", 1.0)) != 1.0:
            return
        found = self.common(anchor)
        if found is None:
            return
        (x_dq, px), (absorbed, q, py, bounds) = found
        trans_a = int(anchor.attrs.get("transA", 0))
        trans_b = int(anchor.attrs.get("transB", 0))
        b_dims = dims(g, anchor.inputs[1])
        if b_dims is None or len(b_dims) != 2 or not all(isinstance(d, int) for d in b_dims):
            return
        n = int(b_dims[0] if trans_b else b_dims[1])
        w = _weight(ctx, anchor.inputs[1], 2, 0 if trans_b else 1, n)
        if w is None:
            return
        w_name, pw = w
        bias = _bias(ctx, anchor.inputs[2], px, pw, py, n) if has_c else None
        if has_c and bias is None:
            return
        inputs = self.quant_inputs(anchor, px, w_name, pw, py)
        new_nodes: list[Node] = []
        if trans_a:
            a_shape = dims(g, anchor.inputs[0])
            t_out = ctx.names(f"{anchor.name}_a_t")
            shape = tuple(reversed(a_shape)) if a_shape is not None and len(a_shape) == 2 else None
            ctx.add_value(t_out, px.dtype, shape)
            new_nodes.append(
                node(
                    g,
                    "Transpose",
                    "",
                    f"{anchor.name}_transA",
                    [x_dq.inputs[0]],
                    [t_out],
                    perm=[1, 0],
                )
            )
            inputs[0] = t_out
        if bias is not None:
            inputs.append(ctx.constant_input(bias, f"{anchor.name}_bias_i32"))
        attrs = _code_bounds(py, bounds)
        if trans_b:
            attrs["transB"] = 1
        new_nodes.append(
            node(g, "QLinearMatMul", SLIVER, anchor.name, inputs, [q.outputs[0]], **attrs)
        )
        self.commit(anchor, absorbed, q, new_nodes)


def run(graph: Graph) -> bool:
    """Rewrites every DQ -> Conv/MatMul/Gemm [-> Relu/Clip] -> Q it can."""
    rw = _Rewriter(graph)
    for n in graph.nodes:
        if n.domain != "" or id(n) in rw.ctx.claimed:
            continue
        if n.op_type == "Conv":
            rw.conv(n)
        elif n.op_type == "MatMul":
            rw.matmul(n)
        elif n.op_type == "Gemm":
            rw.gemm(n)
    return apply(graph, rw.place, rw.dead)
