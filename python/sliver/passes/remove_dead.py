"""remove_dead: nodes whose results nobody reads, and initializers nobody reads, go.

A node is live when one of its outputs is a graph output or is read (explicitly, or
by a subgraph) by a live node. Walking the topologically ordered list backwards
decides each node after all its readers. Feedable initializers (graph inputs) stay:
they are part of the model's interface.
"""

from __future__ import annotations

from ..ir import Graph
from .util import is_constant, output_names, remove_nodes


def run(graph: Graph) -> bool:
    """Drops dead nodes and unread constant initializers."""
    live = set(output_names(graph))
    dead = []
    for node in reversed(graph.nodes):
        if any(o and o in live for o in node.outputs):
            live.update(i for i in list(node.inputs) + node.implicit_inputs if i)
        else:
            dead.append(node)
    unread = [name for name in graph.initializers if name not in live and is_constant(graph, name)]
    if not dead and not unread:
        return False
    remove_nodes(graph, dead)
    for name in unread:
        del graph.initializers[name]
    if unread and getattr(graph, "overridable", None):
        gone = set(unread)
        graph.overridable = [v for v in graph.overridable if v.name not in gone]  # type: ignore[attr-defined]
    return True
