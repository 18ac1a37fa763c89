"""GELU as exporters write it, matched on a value x: the erf form ``x*0.5*(1+erf(x/sqrt2))``
and the tanh form ``x*0.5*(1+tanh(sqrt(2/pi)*(x+0.044715*x^3)))`` (GPT-2's "gelu_new").

Shared by fuse_epilogue (GELU as a GEMM/conv epilogue) and fuse_gelu (GELU as one elementwise
op after anything else). Three orderings of the final multiplications are recognised:
``(x*(1+e))*0.5``, ``(x*0.5)*(1+e)`` and ``x*((1+e)*0.5)``; ``x/sqrt2`` may be ``x*(1/sqrt2)``;
``x^3`` may be ``Pow(x, 3)`` or ``(x*x)*x``.
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


def _cube(graph: Graph, x: str, users: list[Node], take: Take) -> list[Node] | None:
    """The nodes computing x^3 from x (Pow(x, 3) or (x*x)*x); the last one's output is it."""
    for u in users:
        if u.op_type == "Pow" and u.inputs[0] == x and const_scalar(graph, u, x) == 3.0:
            return [u]
        if u.op_type == "Mul" and u.inputs == [x, x]:
            cube = take(u.outputs[0])
            if cube is not None and cube.op_type == "Mul" and set(cube.inputs) == {x, u.outputs[0]}:
                return [u, cube]
    return None


def match_tanh_gelu(graph: Graph, x: str, users: list[Node], take: Take) -> list[Node] | None:
    """As match_erf_gelu, for the tanh form: x's readers are the cube, the Add x + c*x^3 and
    the final multiplication, and nothing else."""
    uniq = list({id(u): u for u in users}.values())
    if any(u.domain != "" for u in uniq):
        return None
    cube = _cube(graph, x, uniq, take)
    if cube is None:
        return None
    scaled = take(cube[-1].outputs[0])
    if scaled is None or scaled.op_type != "Mul":
        return None
    if not _near(const_scalar(graph, scaled, cube[-1].outputs[0]), 0.044715):
        return None
    inner = take(scaled.outputs[0])
    if inner is None or inner.op_type != "Add" or set(inner.inputs) != {x, scaled.outputs[0]}:
        return None
    arg = take(inner.outputs[0])
    if arg is None or arg.op_type != "Mul":
        return None
    if not _near(const_scalar(graph, arg, inner.outputs[0]), math.sqrt(2 / math.pi)):
        return None
    t = take(arg.outputs[0])
    if t is None or t.op_type != "Tanh":
        return None
    a = take(t.outputs[0])
    if a is None or a.op_type != "Add" or not _near(const_scalar(graph, a, t.outputs[0]), 1.0):
        return None
    head = cube + [scaled, inner, arg, t, a]
    rest = [u for u in uniq if all(u is not n for n in head)]
    if len(rest) != 1 or rest[0].op_type != "Mul" or len(rest[0].inputs) != 2:
        return None
    tail = _tail(graph, x, a, rest[0], take)
    return None if tail is None else head + tail


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
