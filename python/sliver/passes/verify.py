"""Checks the invariants every pass must keep (run after each pass in debug mode).

Nodes in topological order, each value written once, every read defined before it,
graph outputs defined, every constant with a Value record (dtype and shape).
"""

from __future__ import annotations

from ..errors import InvalidGraph
from ..ir import Graph


def verify(graph: Graph, after: str = "") -> None:
    """Raises InvalidGraph naming the pass, node and value when an invariant is broken."""
    where = f" after pass {after!r}" if after else ""
    defined = {v.name for v in graph.inputs} | set(graph.initializers)
    defined |= {v.name for v in getattr(graph, "overridable", [])}
    produced = {o for n in graph.nodes for o in n.outputs if o}
    for node in graph.nodes:
        what = f"node {node.name!r} ({node.key})"
        for i in list(node.inputs) + node.implicit_inputs:
            if i and i not in defined:
                why = "before its producer" if i in produced else "a name nothing defines"
                raise InvalidGraph(f"{what} reads {i!r}, {why}{where}")
        for o in node.outputs:
            if o and o in defined:
                raise InvalidGraph(f"{what} writes {o!r}, which is already defined{where}")
            defined.add(o)
    for v in graph.outputs:
        if v.name not in defined:
            raise InvalidGraph(f"graph output {v.name!r} is never computed{where}")
    for name in graph.initializers:
        v = graph.values.get(name)
        if v is None or v.shape is None:
            raise InvalidGraph(f"constant {name!r} has no Value record{where}")
