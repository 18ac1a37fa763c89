"""The erf form of GELU as exporters write it, ``x*0.5*(1+erf(x/sqrt2))``, matched on a value x.

Shared by fuse_epilogue (GELU as a GEMM/conv epilogue) and fuse_gelu (GELU as one elementwise
op after anything else). Three orderings of the final multiplications are recognised:
``(x*(1+e))*0.5``, ``(x*0.5)*(1+e)`` and ``x*((1+e)*0.5)``; ``x/sqrt2`` may be ``x*(1/sqrt2)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from ..ir import Graph, Node
from .util import constant, scalar_value

# How close a constant must be to sqrt(2), 1 or 0.5 to be read as the erf-GELU's.
GELU_CONST_RTOL = 1e-4

# take(name): the node that alone reads `name` when the caller may absorb it, else None.
Take = Callable[[str], "Node | None"]


def const_scalar(graph: Graph, node: Node, x: str) -> float | None:
    """The single-number constant a binary node combines with ``x``."""
    if len(node.inputs) != 2 or x not in node.inputs:
        return None
    other = node.inputs[1] if node.inputs[0] == x else node.inputs[0]
    if other == x:
        return None
    return scalar_value(constant(graph, other))


def _near(v: float | None, target: float) -> bool:
    return v is not None and abs(v - target) <= GELU_CONST_RTOL * abs(target)


def match_erf_gelu(graph: Graph, x: str, users: list[Node], take: Take) -> list[Node] | None:
    """The nodes computing GELU(x) in graph order of dependence (the last one's output is the
    result), or None. ``users`` are x's readers; every other intermediate must pass ``take``."""
    if len(users) != 2 or users[0] is users[1] or any(u.domain != "" for u in users):
        return None
    for d, m in (users, users[::-1]):
        scale = const_scalar(graph, d, x)
        is_div = d.op_type == "Div" and d.inputs[0] == x and _near(scale, math.sqrt(2))
        if not is_div and not (d.op_type == "Mul" and _near(scale, 1 / math.sqrt(2))):
            continue
        e = take(d.outputs[0])
        if e is None or e.op_type != "Erf":
            continue
        a = take(e.outputs[0])
        if a is None or a.op_type != "Add" or not _near(const_scalar(graph, a, e.outputs[0]), 1.0):
            continue
        if m.op_type != "Mul" or len(m.inputs) != 2:
            continue
        tail = _tail(graph, x, a, m, take)
        if tail is not None:
            return [d, e, a] + tail
    return None


def _tail(graph: Graph, x: str, a: Node, m: Node, take: Take) -> list[Node] | None:
    """The multiplications after 1+erf(..)."""
    one_plus = a.outputs[0]
    nxt = take(one_plus)
    if nxt is m and set(m.inputs) == {x, one_plus}:  # (x*(1+e))*0.5
        half = take(m.outputs[0])
        if half is not None and half.op_type == "Mul":
            if _near(const_scalar(graph, half, m.outputs[0]), 0.5):
                return [m, half]
        return None
    if nxt is None or nxt.op_type != "Mul":
        return None
    if _near(const_scalar(graph, m, x), 0.5):  # (x*0.5) * (1+e)
        if set(nxt.inputs) == {m.outputs[0], one_plus} and take(m.outputs[0]) is nxt:
            return [m, nxt]
        return None
    if _near(const_scalar(graph, nxt, one_plus), 0.5):  # x * ((1+e)*0.5)
        if set(m.inputs) == {x, nxt.outputs[0]} and take(nxt.outputs[0]) is m:
            return [nxt, m]
    return None
