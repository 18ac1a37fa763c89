"""sliver's fused ops, in numpy: the reference the native kernels are tested against.

``sliver:FusedConv``, ``sliver:FusedGemm`` and ``sliver:FusedMatMul`` take the ONNX
op's inputs (FusedMatMul: A, B, optional bias [N]) plus an optional trailing
``residual`` input, and the ONNX op's attributes plus:

* ``activation``: "" | Relu | Clip | LeakyRelu | Sigmoid | HardSigmoid | HardSwish | Tanh | Gelu
* ``activation_params`` (floats): Clip [min, max], LeakyRelu [alpha], HardSigmoid [alpha, beta]
* ``post_activation``: "" | Relu | Clip, with ``post_activation_params`` as for activation

An absent attribute means "" or []. They compute
``y = post_activation(activation(op(x) + bias) + residual)``, where the residual has
y's full shape. Gelu is the exact (erf) form.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ..ir import Graph, Node
from . import reference
from .registry import register_python_op

# ONNX op -> the fused op that extends it, and the index of its residual input.
FUSED_OP = {"Conv": "FusedConv", "Gemm": "FusedGemm", "MatMul": "FusedMatMul"}
BASE_OP = {v: k for k, v in FUSED_OP.items()}
RESIDUAL_INDEX = {"FusedConv": 3, "FusedGemm": 3, "FusedMatMul": 3}
ACTIVATIONS = ("Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Gelu")
POST_ACTIVATIONS = ("Relu", "Clip")
EPILOGUE_ATTRS = ("activation", "activation_params", "post_activation", "post_activation_params")

_erf = np.vectorize(math.erf, otypes=[np.float64])


def activation_fn(name: str, params: list[float]) -> Callable[[np.ndarray], np.ndarray]:
    """The elementwise function ``name`` with ``params`` (dtype-preserving)."""
    if name == "":
        return lambda y: y
    if name == "Relu":
        return lambda y: np.maximum(y, y.dtype.type(0))
    if name == "Clip":
        lo, hi = params
        return lambda y: np.minimum(np.maximum(y, y.dtype.type(lo)), y.dtype.type(hi))
    if name == "LeakyRelu":
        (alpha,) = params
        return lambda y: np.where(y >= 0, y, y * y.dtype.type(alpha))
    if name == "Sigmoid":
        return lambda y: (1.0 / (1.0 + np.exp(-y.astype(np.float64)))).astype(y.dtype)
    if name == "HardSigmoid":
        alpha, beta = params
        return lambda y: np.clip(y * y.dtype.type(alpha) + y.dtype.type(beta), 0, 1).astype(y.dtype)
    if name == "HardSwish":
        return lambda y: (y * np.clip(y / y.dtype.type(6) + y.dtype.type(0.5), 0, 1)).astype(
            y.dtype
        )
    if name == "Tanh":
        return np.tanh
    if name == "Gelu" and params and params[0]:  # the tanh form

        def gelu_tanh(y: np.ndarray) -> np.ndarray:
            v = y.astype(np.float64)
            u = math.sqrt(2 / math.pi) * (v + 0.044715 * v**3)
            return (0.5 * v * (1.0 + np.tanh(u))).astype(y.dtype)

        return gelu_tanh
    if name == "Gelu":
        return lambda y: (0.5 * y * (1.0 + _erf(y.astype(np.float64) / math.sqrt(2.0)))).astype(
            y.dtype
        )
    raise ValueError(f"unknown fused activation {name!r}")


def epilogue(attrs: dict) -> Callable[[np.ndarray, np.ndarray | None], np.ndarray]:
    """``(y, residual) -> post(act(y) + residual)`` for a fused node's attributes."""
    act = activation_fn(attrs.get("activation", ""), list(attrs.get("activation_params", [])))
    post = activation_fn(
        attrs.get("post_activation", ""), list(attrs.get("post_activation_params", []))
    )

    def apply(y: np.ndarray, residual: np.ndarray | None) -> np.ndarray:
        y = act(y)
        if residual is not None:
            if residual.shape != y.shape:
                raise ValueError(f"residual shape {residual.shape} != result shape {y.shape}")
            y = y + residual
        return post(y)

    return apply


def _base_node(node: Node) -> Node:
    """The ONNX node the fused node extends (epilogue attributes and residual dropped)."""
    attrs = {k: v for k, v in node.attrs.items() if k not in EPILOGUE_ATTRS}
    inputs = list(node.inputs[: RESIDUAL_INDEX[node.op_type]])
    while inputs and not inputs[-1]:
        inputs.pop()
    return Node(BASE_OP[node.op_type], "", node.name, inputs, list(node.outputs[:1]), attrs)


def _split(node: Node, args: tuple) -> tuple[tuple, np.ndarray | None]:
    k = RESIDUAL_INDEX[node.op_type]
    residual = args[k] if len(args) > k else None
    return args[:k], residual


@register_python_op("sliver:FusedConv")
def fused_conv(node: Node, graph: Graph) -> Callable[..., tuple]:
    """Conv (onnx reference) then the epilogue."""
    conv = reference.make(_base_node(node), graph)
    post = epilogue(node.attrs)

    def run(*args: np.ndarray) -> tuple:
        base, residual = _split(node, args)
        (y,) = conv(*[a for a in base if a is not None])
        return (post(y, residual),)

    return run


@register_python_op("sliver:FusedGemm")
def fused_gemm(node: Node, graph: Graph) -> Callable[..., tuple]:
    """``alpha * A' @ B' + beta * C`` then the epilogue."""
    alpha = float(node.attrs.get("alpha", 1.0))
    beta = float(node.attrs.get("beta", 1.0))
    trans_a = int(node.attrs.get("transA", 0))
    trans_b = int(node.attrs.get("transB", 0))
    post = epilogue(node.attrs)

    def run(*args: np.ndarray) -> tuple:
        (a, b, *rest), residual = _split(node, args)
        c = rest[0] if rest else None
        a = a.T if trans_a else a
        b = b.T if trans_b else b
        y = np.matmul(a, b)
        if alpha != 1.0:
            y = y * y.dtype.type(alpha)
        if c is not None:
            y = y + (c * c.dtype.type(beta) if beta != 1.0 else c)
        return (post(y.astype(a.dtype, copy=False), residual),)

    return run


@register_python_op("sliver:FusedMatMul")
def fused_matmul(node: Node, graph: Graph) -> Callable[..., tuple]:
    """``A @ B + bias`` (numpy broadcasting over A's leading axes) then the epilogue."""
    post = epilogue(node.attrs)

    def run(*args: np.ndarray) -> tuple:
        (a, b, *rest), residual = _split(node, args)
        bias = rest[0] if rest else None
        y = np.matmul(a, b)
        if bias is not None:
            y = y + bias
        return (post(y, residual),)

    return run
